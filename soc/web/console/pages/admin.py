"""Administration: users (list, add with roles and agency scope, disable, enable, reset the
password), roles and what they allow, agency scopes, API tokens (list, create, revoke).

Everything goes through the identity service (:attr:`soc.app.App.identity`) acting as the
logged-in administrator: each change is checked there (``users:admin``; ``tokens:admin`` for
other users' tokens) and recorded in the audit trail under the administrator's name. A
one-time password and a new token's secret are shown once, in the answer to the form that made
them (never stored, never in a URL; the answer is not cached).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from soc.access import PERMISSIONS, ROLES
from soc.identity.model import IdentityError, TokenNotFound, User, UserNotFound
from soc.identity.tokens import parse_lifetime
from soc.web.api.paging import page_list
from soc.web.console.render import render
from soc.web.console.security import console_caller
from soc.web.deps import Caller
from soc.web.problems import NotFound

router = APIRouter(include_in_schema=False)

PAGE = 50
NO_STORE = {"Cache-Control": "no-store"}
#: the token scopes offered by the form: one per resource (a token's user's roles still apply)
SCOPE_CHOICES = sorted({f"{p.split(':', 1)[0]}:*" for p in PERMISSIONS})


def N_(message: str) -> str:
    """Marks a message for the catalogue; the template translates it (``_(error)``)."""
    return message


def _admin(who: Caller) -> Caller:
    who.principal.require("users:admin")
    return who


def _user(who: Caller, name: str) -> User:
    try:
        return who.services.identity.users.require(name)
    except (UserNotFound, IdentityError) as error:
        raise NotFound(f"no user {name!r}") from error


def _agencies(who: Caller) -> list[dict[str, Any]]:
    """Agencies a user may be scoped to (merged ones are not offered), each with its depth."""
    tree = who.services.agencies
    rows = []
    for agency in tree:
        if agency.merged_into or agency.id == tree.unknown.id:
            continue
        rows.append({"id": agency.id, "name": agency.name, "level": agency.level,
                     "depth": len(tree.path(agency.id)) - 1})
    return rows


def _users_page(request: Request, who: Caller, *, status: int = 200, error: str | None = None,
                made: dict[str, Any] | None = None, form: dict[str, Any] | None = None) -> Response:
    query = request.query_params
    role, agency, state, text = (query.get("role") or None, query.get("agency") or None,
                                 query.get("state") or None, (query.get("q") or "").strip().lower())
    users = who.services.identity.users.list()
    now = who.services.clock()
    users = [u for u in users if (role is None or role in u.roles) and (agency is None or u.agency == agency)
             and (state is None or _state(u, now) == state)
             and (not text or text in u.name or text in u.display_name.lower() or text in (u.email or ""))]
    page = page_list(users, lambda u: (u.name,), limit=PAGE, cursor=query.get("cursor") or None)
    shown = [{**u.public(now), "state": _state(u, now)} for u in page.items]
    headers = NO_STORE if made else None
    answer = render(request, "admin/users.html", status=status, users=shown, total=page.total, next=page.next,
                    roles=list(ROLES), agencies=_agencies(who), names=who.services.agencies.names(), error=error,
                    made=made, form=form or {"roles": ["analyst"]}, filters={"role": role, "agency": agency,
                                                                             "state": state, "q": text})
    if headers:
        answer.headers.update(headers)
    return answer


def _state(user: User, now: Any) -> str:
    if user.disabled:
        return "disabled"
    if user.locked(now):
        return "locked"
    return "must_change" if user.must_change_password else "active"


@router.get("/admin")
def admin_home(who: Caller = Depends(console_caller)) -> Response:
    who.principal.require("users:admin")
    return RedirectResponse("/admin/users", status_code=303)


@router.get("/admin/users")
def users(request: Request, who: Caller = Depends(console_caller)) -> Response:
    return _users_page(request, _admin(who))


@router.post("/admin/users")
def add_user(request: Request, name: Annotated[str, Form(max_length=64)],
             roles: Annotated[list[str], Form()] = [],  # noqa: B006 -- FastAPI copies form defaults
             agency: Annotated[str, Form(max_length=100)] = "", email: Annotated[str, Form(max_length=254)] = "",
             display_name: Annotated[str, Form(max_length=200)] = "",
             who: Caller = Depends(console_caller)) -> Response:
    _admin(who)
    form = {"name": name, "roles": roles, "agency": agency, "email": email, "display_name": display_name}
    try:
        made = who.services.identity.users.add(who.principal, name, roles, agency=agency or None,
                                               email=email or None, display_name=display_name or None)
    except IdentityError as error:
        return _users_page(request, who, status=400, error=str(error), form=form)
    return _users_page(request, who, made={"user": made.user.name, "password": made.one_time_password})


def _detail(request: Request, who: Caller, name: str, *, status: int = 200, error: str | None = None,
            password: str | None = None, secret: dict[str, Any] | None = None) -> Response:
    user = _user(who, name)
    now = who.services.clock()
    tokens = [t.public(now) for t in who.services.identity.tokens.list(user.name)] \
        if who.principal.can("tokens:admin") else None
    tree = who.services.agencies
    sees = sorted(tree.below(user.agency)) if user.agency else None
    answer = render(request, "admin/user.html", status=status, user={**user.public(now), "state": _state(user, now)},
                    roles=list(ROLES), agencies=_agencies(who), names=tree.names(), sees=sees, tokens=tokens,
                    scopes=SCOPE_CHOICES, error=error, password=password, secret=secret,
                    done=request.query_params.get("done"), me=user.name == who.principal.name)
    if password or secret:
        answer.headers.update(NO_STORE)
    return answer


@router.get("/admin/users/{name}")
def user_page(request: Request, name: str, who: Caller = Depends(console_caller)) -> Response:
    return _detail(request, _admin(who), name)


def _back(name: str, done: str) -> RedirectResponse:
    return RedirectResponse(f"/admin/users/{name}?done={done}", status_code=303)


@router.post("/admin/users/{name}/roles")
def set_roles(request: Request, name: str, roles: Annotated[list[str], Form()] = [],  # noqa: B006
              agency: Annotated[str, Form(max_length=100)] = "", who: Caller = Depends(console_caller)) -> Response:
    user = _user(_admin(who), name)
    try:
        who.services.identity.users.set_roles(who.principal, user.name, roles, agency=agency or None,
                                              clear_agency=not agency)
    except IdentityError as error:
        return _detail(request, who, user.name, status=400, error=str(error))
    return _back(user.name, "roles")


@router.post("/admin/users/{name}/disable")
def disable(request: Request, name: str, who: Caller = Depends(console_caller)) -> Response:
    user = _user(_admin(who), name)
    if user.name == who.principal.name:
        return _detail(request, who, user.name, status=400, error=N_("You cannot disable your own account."))
    who.services.identity.users.disable(who.principal, user.name)
    return _back(user.name, "disabled")


@router.post("/admin/users/{name}/enable")
def enable(name: str, who: Caller = Depends(console_caller)) -> Response:
    user = _user(_admin(who), name)
    who.services.identity.users.enable(who.principal, user.name)
    return _back(user.name, "enabled")


@router.post("/admin/users/{name}/password")
def reset_password(request: Request, name: str, who: Caller = Depends(console_caller)) -> Response:
    user = _user(_admin(who), name)
    made = who.services.identity.users.set_password(who.principal, user.name, None)
    return _detail(request, who, user.name, password=made.one_time_password)


@router.get("/admin/roles")
def roles_page(request: Request, who: Caller = Depends(console_caller)) -> Response:
    _admin(who)
    return render(request, "admin/roles.html", roles=ROLES, permissions=PERMISSIONS)


@router.get("/admin/agencies")
def agencies_page(request: Request, who: Caller = Depends(console_caller)) -> Response:
    _admin(who)
    tree = who.services.agencies
    by_agency: dict[str | None, list[str]] = {}
    for user in who.services.identity.users.list():
        by_agency.setdefault(user.agency, []).append(user.name)
    rows = [{"id": a.id, "name": a.name, "level": a.level, "depth": len(tree.path(a.id)) - 1,
             "merged_into": a.merged_into, "sees": len(tree.below(a.id)), "users": by_agency.get(a.id, [])}
            for a in tree if a.id != tree.unknown.id]
    return render(request, "admin/agencies.html", agencies=rows, everywhere=by_agency.get(None, []))


# -- tokens ------------------------------------------------------------------------------------
def _tokens_page(request: Request, who: Caller, *, status: int = 200, error: str | None = None,
                 secret: dict[str, Any] | None = None, form: dict[str, Any] | None = None) -> Response:
    user = (request.query_params.get("user") or "").strip() or None
    now = who.services.clock()
    tokens = who.services.identity.tokens.list(user)
    page = page_list(tokens, lambda t: (t.created_at.isoformat(), t.id), limit=PAGE,
                     cursor=request.query_params.get("cursor") or None, descending=True)
    answer = render(request, "admin/tokens.html", status=status, tokens=[t.public(now) for t in page.items],
                    total=page.total, next=page.next, user=user, scopes=SCOPE_CHOICES, error=error, secret=secret,
                    users=[u.name for u in who.services.identity.users.list() if not u.disabled],
                    form=form or {"user": user or "", "scopes": [], "lifetime": "90d", "name": ""})
    if secret:
        answer.headers.update(NO_STORE)
    return answer


def _tokens_admin(who: Caller) -> Caller:
    who.principal.require("tokens:admin")
    return who


@router.get("/admin/tokens")
def tokens_page(request: Request, who: Caller = Depends(console_caller)) -> Response:
    return _tokens_page(request, _tokens_admin(who))


@router.post("/admin/tokens")
def create_token(request: Request, user: Annotated[str, Form(max_length=64)], name: Annotated[str, Form(max_length=64)],
                 scopes: Annotated[list[str], Form()] = [],  # noqa: B006
                 lifetime: Annotated[str, Form(max_length=16)] = "", back: Annotated[str, Form()] = "",
                 who: Caller = Depends(console_caller)) -> Response:
    _tokens_admin(who)
    form = {"user": user, "name": name, "scopes": scopes, "lifetime": lifetime}
    try:
        made = who.services.identity.tokens.create(who.principal, user, name, scopes,
                                                   parse_lifetime(lifetime) if lifetime.strip() else None)
    except UserNotFound:
        return _tokens_page(request, who, status=400, error=f"no user {user!r}", form=form)
    except IdentityError as error:
        if back == "user":
            return _detail(request, who, user, status=400, error=str(error))
        return _tokens_page(request, who, status=400, error=str(error), form=form)
    secret = {"secret": made.secret, "name": made.token.name, "user": made.token.user,
              "expires_at": made.token.expires_at}
    if back == "user":
        return _detail(request, who, made.token.user, secret=secret)
    return _tokens_page(request, who, secret=secret)


@router.post("/admin/tokens/{token_id}/revoke")
def revoke_token(token_id: str, back: Annotated[str, Form()] = "", who: Caller = Depends(console_caller)) -> Response:
    _tokens_admin(who)
    tokens = who.services.identity.tokens
    try:
        token = tokens.find(token_id)
    except (TokenNotFound, IdentityError) as error:
        raise NotFound(f"no API token {token_id!r}") from error
    tokens.revoke(who.principal, token.id, token.user)
    if back == "user":
        return _back(token.user, "revoked")
    return RedirectResponse("/admin/tokens?done=revoked", status_code=303)
