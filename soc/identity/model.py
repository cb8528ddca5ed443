"""What the identity services share: their errors, collections, user names, the stored user
and a compare-and-set update over the store protocol."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from soc.access import Principal
from soc.errors import SocError
from soc.model import iso, parse_iso
from soc.store.base import Conflict, Store

__all__ = ["ATTEMPTS", "SESSIONS", "TOKENS", "USERS", "IdentityError", "PasswordRejected", "TokenNotFound",
           "User", "UserExists", "UserNotFound", "check_name", "digest", "parse_time", "time_text", "update"]

USERS = "users"
SESSIONS = "sessions"
TOKENS = "api_tokens"
ATTEMPTS = "login_attempts"

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_CAS_TRIES = 8


class IdentityError(SocError, ValueError):
    """A user, password or token operation was refused; the message says why."""


class UserNotFound(IdentityError, LookupError):
    """No user has this name."""


class UserExists(IdentityError):
    """A user with this name exists already."""


class PasswordRejected(IdentityError):
    """The password does not meet the policy (length, not the user name)."""


class TokenNotFound(IdentityError, LookupError):
    """No API token has this id or name."""


def check_name(name: str) -> str:
    """A user name, lowercased: letters, digits, ``.``, ``_``, ``-``, at most 64, starting with a
    letter or digit; else :class:`IdentityError`."""
    normal = name.strip().lower()
    if not NAME_PATTERN.match(normal):
        raise IdentityError(f"invalid user name {name!r}: use 1-64 letters a-z, digits, '.', '_' or '-', "
                            "starting with a letter or digit")
    return normal


def digest(secret: str) -> str:
    """SHA-256 of a secret (session id, API token) as hex: what the store keeps instead."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def time_text(at: datetime | None) -> str | None:
    return iso(at) if at is not None else None


def parse_time(text: str | None) -> datetime | None:
    return parse_iso(text) if text else None


@dataclass(frozen=True)
class User:
    """A local user as stored (collection ``users``, id = name). ``password_hash`` is never
    shown (:meth:`public`); ``login_failures``/``locked_until`` are the lockout state and
    ``session_epoch`` grows whenever the user's sessions must end."""

    name: str
    roles: tuple[str, ...]
    display_name: str = ""
    agency: str | None = None
    email: str | None = None
    disabled: bool = False
    must_change_password: bool = False
    created_at: datetime | None = None
    updated_at: datetime | None = None
    password_changed_at: datetime | None = None
    last_login_at: datetime | None = None
    login_failures: int = 0
    locked_until: datetime | None = None
    session_epoch: int = 0
    password_hash: str = field(default="", repr=False)

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> User:
        login = body.get("login") or {}
        return cls(
            name=body["name"], roles=tuple(body.get("roles") or ()), display_name=body.get("display_name") or "",
            agency=body.get("agency"), email=body.get("email"), disabled=bool(body.get("disabled")),
            must_change_password=bool(body.get("must_change_password")),
            created_at=parse_time(body.get("created_at")), updated_at=parse_time(body.get("updated_at")),
            password_changed_at=parse_time(body.get("password_changed_at")),
            last_login_at=parse_time(body.get("last_login_at")),
            login_failures=len(login.get("failures") or ()), locked_until=parse_time(login.get("locked_until")),
            session_epoch=int(body.get("session_epoch") or 0), password_hash=body.get("password_hash") or "")

    def principal(self) -> Principal:
        """The user acting with their own rights (a session)."""
        return Principal(name=self.name, roles=frozenset(self.roles), agency=self.agency, kind="user")

    def locked(self, now: datetime) -> bool:
        return self.locked_until is not None and self.locked_until > now

    def public(self, now: datetime | None = None) -> dict[str, Any]:
        """Everything but the password hash, JSON-ready (``locked`` only when ``now`` is given)."""
        shown: dict[str, Any] = {
            "name": self.name, "display_name": self.display_name, "roles": list(self.roles), "agency": self.agency,
            "email": self.email, "disabled": self.disabled, "must_change_password": self.must_change_password,
            "created_at": time_text(self.created_at), "updated_at": time_text(self.updated_at),
            "password_changed_at": time_text(self.password_changed_at),
            "last_login_at": time_text(self.last_login_at), "login_failures": self.login_failures,
            "locked_until": time_text(self.locked_until)}
        if now is not None:
            shown["locked"] = self.locked(now)
        return shown


def update(store: Store, collection: str, id_: str,
           change: Callable[[dict[str, Any] | None], dict[str, Any] | None]) -> dict[str, Any] | None:
    """Read ``collection/id_``, let ``change`` make the new body from the current one (``None``:
    missing) and write it with compare-and-set, again on a lost race. ``change`` returning
    ``None`` writes nothing. Returns the body written (or ``None``)."""
    for _ in range(_CAS_TRIES):
        doc = store.get(collection, id_)
        body = change(dict(doc.body) if doc is not None else None)
        if body is None:
            return None
        try:
            store.put(collection, id_, body, expected_version=doc.version if doc is not None else 0)
        except Conflict:
            continue
        return body
    raise IdentityError(f"{collection}/{id_}: changed by others {_CAS_TRIES} times in a row; try again")
