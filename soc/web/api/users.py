"""Users (:mod:`soc.identity.users`): list, read, add, disable, enable, set roles and agency,
set a password. Every route needs ``users:admin``; every change is audited under the caller.

Adding a user (or setting a password) without a password makes up a one-time password: the
answer shows it **once** (``one_time_password``); it is never stored or logged, and the user
must change it at the first login. Disabling a user and changing roles, agency or password end
the user's sessions at once.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from soc.identity.model import User, UserNotFound
from soc.identity.users import NewPassword
from soc.web.api.paging import Cursor, Limit, page_list
from soc.web.deps import Caller, need
from soc.web.problems import NotFound

router = APIRouter(prefix="/users", tags=["users"])


class NewUser(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    roles: list[str] = Field(min_length=1, max_length=10)
    agency: str | None = Field(None, max_length=100, description="agency scope (none: every agency)")
    email: str | None = Field(None, max_length=254)
    display_name: str | None = Field(None, max_length=200)
    password: str | None = Field(None, min_length=1, max_length=1024,
                                 description="none: a one-time password is made up and shown once")


class RolesChange(BaseModel):
    roles: list[str] | None = Field(None, min_length=1, max_length=10, description="none: keep the roles")
    agency: str | None = Field(None, max_length=100, description="none: keep the agency")
    clear_agency: bool = Field(False, description="remove the agency scope (the user sees every agency)")


class PasswordSet(BaseModel):
    password: str | None = Field(None, min_length=1, max_length=1024,
                                 description="none: a one-time password is made up and shown once")
    must_change_password: bool | None = None


def _user(user: User, who: Caller) -> dict[str, Any]:
    return user.public(who.services.identity.clock())


def _with_password(made: NewPassword, who: Caller) -> dict[str, Any]:
    shown = _user(made.user, who)
    if made.one_time_password is not None:
        shown["one_time_password"] = made.one_time_password
    return shown


def _require(who: Caller, name: str) -> User:
    try:
        return who.services.identity.users.require(name)
    except UserNotFound as error:
        raise NotFound(f"no user {name!r}") from error


@router.get("", summary="Users, by name")
def list_users(role: str | None = Query(None, max_length=50), agency: str | None = Query(None, max_length=100),
               disabled: bool | None = Query(None), limit: int = Limit, cursor: str | None = Cursor,
               who: Caller = need("users:admin")) -> dict[str, Any]:
    users = who.services.identity.users.list()
    users = [u for u in users if (role is None or role in u.roles) and (agency is None or u.agency == agency)
             and (disabled is None or u.disabled == disabled)]
    return page_list(users, lambda u: (u.name,), limit=limit, cursor=cursor, show=lambda u: _user(u, who)).body()


@router.get("/{name}", summary="One user")
def get_user(name: str, who: Caller = need("users:admin")) -> dict[str, Any]:
    return _user(_require(who, name), who)


@router.post("", status_code=201, summary="Add a user (a one-time password is shown once when none is given)")
def add_user(body: NewUser, who: Caller = need("users:admin")) -> dict[str, Any]:
    made = who.services.identity.users.add(who.principal, body.name, body.roles, agency=body.agency,
                                           email=body.email, display_name=body.display_name,
                                           password=body.password)
    return _with_password(made, who)


@router.post("/{name}/disable", summary="Disable a user (no login, no session, no token works)")
def disable_user(name: str, who: Caller = need("users:admin")) -> dict[str, Any]:
    if who.principal.kind in ("user", "token") and _require(who, name).name == who.principal.name:
        raise ValueError("you cannot disable your own account")
    return _user(who.services.identity.users.disable(who.principal, name), who)


@router.post("/{name}/enable", summary="Enable a user again (and clear a lockout)")
def enable_user(name: str, who: Caller = need("users:admin")) -> dict[str, Any]:
    _require(who, name)
    return _user(who.services.identity.users.enable(who.principal, name), who)


@router.put("/{name}/roles", summary="Set a user's roles and/or agency scope (ends their sessions)")
def set_roles(name: str, body: RolesChange, who: Caller = need("users:admin")) -> dict[str, Any]:
    _require(who, name)
    if body.roles is None and body.agency is None and not body.clear_agency:
        raise ValueError("give roles, agency or clear_agency")
    if body.agency is not None and body.clear_agency:
        raise ValueError("give an agency or clear_agency, not both")
    user = who.services.identity.users.set_roles(who.principal, name, body.roles, agency=body.agency,
                                                 clear_agency=body.clear_agency)
    return _user(user, who)


@router.post("/{name}/password", summary="Set a user's password (ends their sessions)")
def set_password(name: str, body: PasswordSet, who: Caller = need("users:admin")) -> dict[str, Any]:
    _require(who, name)
    made = who.services.identity.users.set_password(who.principal, name, body.password,
                                                    must_change_password=body.must_change_password)
    return _with_password(made, who)
