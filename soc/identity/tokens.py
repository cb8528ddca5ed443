"""API tokens: for scripts and other systems, never for people in a browser.

A token reads ``soc_<id>_<secret>``: ``id`` (12 hex digits) is its public handle, shown in
lists and used for lookup (collection ``api_tokens``, document id = ``id``); the whole token is
shown once, when it is created, and the store keeps only its SHA-256 digest, compared in
constant time.

A token acts as its user (:class:`soc.access.Principal` with ``kind="token"``) with the
user's *current* roles and agency, narrowed by the token's scopes (``alerts:read``,
``reports:*``, ``taxii:COLLECTION:read``): it never has more than its user. An expired or
revoked token, or one whose user is disabled or gone, authenticates nothing. Its last use is
recorded at most every few minutes.
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from soc.access import Principal, check_scopes
from soc.clock import Clock, system_clock
from soc.config import AuthSettings
from soc.identity.hooks import AuditHook, emit, no_audit
from soc.identity.model import (
    TOKENS,
    IdentityError,
    TokenNotFound,
    digest,
    parse_time,
    time_text,
    update,
)
from soc.identity.users import Users
from soc.store.base import Conflict, Store

__all__ = ["TOKEN_PREFIX", "ApiToken", "NewToken", "Tokens", "parse_lifetime"]

TOKEN_PREFIX = "soc_"
_TOKEN = re.compile(r"^soc_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_TOKEN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_LIFETIME = re.compile(r"^(\d+)\s*([hdw])$")
#: the last use is written at most this often
_TOUCH = timedelta(minutes=5)


def parse_lifetime(text: str) -> timedelta:
    """``12h``, ``90d``, ``2w`` -> a duration (``never`` is not offered: every token expires)."""
    found = _LIFETIME.match(text.strip().lower())
    if not found or int(found.group(1)) == 0:
        raise IdentityError(f"invalid token lifetime {text!r}: use hours, days or weeks such as 12h, 90d, 2w")
    amount, unit = int(found.group(1)), found.group(2)
    return timedelta(hours=amount) if unit == "h" else timedelta(days=amount * (7 if unit == "w" else 1))


@dataclass(frozen=True)
class ApiToken:
    """A token as listed: no secret, not even its digest."""

    id: str
    name: str
    user: str
    scopes: tuple[str, ...]
    created_at: datetime
    expires_at: datetime
    created_by: str = ""
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None

    @classmethod
    def from_body(cls, id_: str, body: dict[str, Any]) -> ApiToken:
        created, expires = parse_time(body.get("created_at")), parse_time(body.get("expires_at"))
        assert created is not None and expires is not None
        return cls(id=id_, name=body["name"], user=body["user"], scopes=tuple(body.get("scopes") or ()),
                   created_at=created, expires_at=expires, created_by=body.get("created_by") or "",
                   revoked_at=parse_time(body.get("revoked_at")), last_used_at=parse_time(body.get("last_used_at")))

    @property
    def prefix(self) -> str:
        """What a token starts with, to recognise it: ``soc_<id>_``."""
        return f"{TOKEN_PREFIX}{self.id}_"

    def status(self, now: datetime) -> str:
        """``active``, ``expired`` or ``revoked``."""
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if now >= self.expires_at else "active"

    def public(self, now: datetime | None = None) -> dict[str, Any]:
        shown = {"id": self.id, "name": self.name, "user": self.user, "scopes": list(self.scopes),
                 "prefix": self.prefix, "created_at": time_text(self.created_at),
                 "expires_at": time_text(self.expires_at), "created_by": self.created_by,
                 "revoked_at": time_text(self.revoked_at), "last_used_at": time_text(self.last_used_at)}
        if now is not None:
            shown["status"] = self.status(now)
        return shown


@dataclass(frozen=True)
class NewToken:
    """A token just created and its secret, to be shown once."""

    token: ApiToken
    secret: str = field(repr=False)


class Tokens:
    """API tokens over the store (collection ``api_tokens``) and the user directory."""

    def __init__(self, store: Store, users: Users, settings: AuthSettings | None = None, *,
                 clock: Clock = system_clock, audit: AuditHook = no_audit) -> None:
        settings = settings or AuthSettings()
        self.store, self.users, self.clock, self.audit = store, users, clock, audit
        self.default_lifetime = timedelta(days=settings.token_default_days)
        self.max_lifetime = timedelta(days=settings.token_max_days)

    def create(self, actor: Principal, user: str, name: str, scopes: Iterable[str],
               lifetime: timedelta | None = None) -> NewToken:
        """A new token of ``user`` called ``name`` (unique among the user's live tokens). A user
        may create their own tokens; for another user's, ``tokens:admin`` is needed. At least one
        scope is required: a token has only the rights it names (and its user has)."""
        owner = self.users.require(user)
        self._may_manage(actor, owner.name)
        if owner.disabled:
            raise IdentityError(f"user {owner.name!r} is disabled: enable it first")
        name = name.strip()
        if not _TOKEN_NAME.match(name):
            raise IdentityError(f"invalid token name {name!r}: 1-64 letters, digits, '.', '_' or '-'")
        try:
            checked = sorted(check_scopes(s.strip() for s in scopes))
        except ValueError as error:
            raise IdentityError(str(error)) from None
        if not checked:
            raise IdentityError("give the token at least one --scope (e.g. alerts:read, events:*, "
                                "taxii:COLLECTION:read): a token has only the rights it names")
        lifetime = lifetime or self.default_lifetime
        if lifetime > self.max_lifetime:
            raise IdentityError(f"a token may live at most {self.max_lifetime.days} days (auth.token_max_days)")
        now = self.clock()
        live = [t for t in self.list(owner.name) if t.name == name and t.status(now) == "active"]
        if live:
            raise IdentityError(f"user {owner.name!r} has a live token {name!r} already (id {live[0].id}): "
                                "revoke it or choose another name")
        while True:
            token_id = secrets.token_hex(6)
            secret = f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
            body = {"name": name, "user": owner.name, "scopes": checked, "hash": digest(secret),
                    "created_at": time_text(now), "expires_at": time_text(now + lifetime),
                    "created_by": actor.label, "revoked_at": None, "last_used_at": None}
            if self.store.create(TOKENS, token_id, body):
                break
        token = ApiToken.from_body(token_id, body)
        emit(self.audit, actor, "token.created", {"user": owner.name, "token": name, "id": token_id,
                                                  "scopes": checked, "expires_at": body["expires_at"]})
        return NewToken(token, secret)

    def list(self, user: str | None = None) -> list[ApiToken]:
        """Every token (of ``user``), newest first."""
        docs = self.store.find(TOKENS, {"user": user.strip().lower()} if user else None, limit=100_000)
        return sorted((ApiToken.from_body(d.id, d.body) for d in docs), key=lambda t: t.created_at, reverse=True)

    def find(self, handle: str, user: str | None = None) -> ApiToken:
        """A token by id, by its prefix ``soc_<id>_``, or by name (of ``user``; a name several
        users' live tokens share needs ``user``). Raises :class:`TokenNotFound`."""
        handle = handle.strip()
        token_id = handle.removeprefix(TOKEN_PREFIX).rstrip("_") if handle.startswith(TOKEN_PREFIX) else handle
        doc = self.store.get(TOKENS, token_id) if re.fullmatch(r"[0-9a-f]{12}", token_id) else None
        if doc is not None and (user is None or doc.body.get("user") == user.strip().lower()):
            return ApiToken.from_body(doc.id, doc.body)
        now = self.clock()
        named = [t for t in self.list(user) if t.name == handle]
        live = [t for t in named if t.status(now) == "active"] or named
        if not live:
            raise TokenNotFound(f"no API token {handle!r}" + (f" of user {user!r}" if user else "")
                                + ": `soc tokens list` shows them")
        if len({t.user for t in live}) > 1:
            raise IdentityError(f"several users have a token {handle!r}: give --user or the token id "
                                f"({', '.join(t.id for t in live)})")
        return live[0]

    def revoke(self, actor: Principal, handle: str, user: str | None = None) -> ApiToken:
        """Revoke a token (it stops working at once); revoking a revoked token changes nothing."""
        token = self.find(handle, user)
        self._may_manage(actor, token.user)
        if token.revoked_at is not None:
            return token
        now = time_text(self.clock())
        body = update(self.store, TOKENS, token.id, lambda b: None if b is None or b.get("revoked_at") else
                      {**b, "revoked_at": now, "revoked_by": actor.label})
        if body is None:  # revoked (or deleted) meanwhile
            return self.find(token.id)
        emit(self.audit, actor, "token.revoked", {"user": token.user, "token": token.name, "id": token.id})
        return ApiToken.from_body(token.id, body)

    def resolve(self, secret: str | None) -> Principal | None:
        """The principal a presented token acts as, or ``None`` (malformed, unknown, wrong,
        expired, revoked, user disabled or gone)."""
        found = _TOKEN.match(secret or "")
        if not found:
            return None
        doc = self.store.get(TOKENS, found.group(1))
        if doc is None or not hmac.compare_digest(str(doc.body.get("hash", "")), digest(secret or "")):
            return None
        token, now = ApiToken.from_body(doc.id, doc.body), self.clock()
        if token.status(now) != "active":
            return None
        user = self.users.get(token.user)
        if user is None or user.disabled:
            return None
        if token.last_used_at is None or now - token.last_used_at >= _TOUCH:
            try:
                self.store.put(TOKENS, doc.id, {**doc.body, "last_used_at": time_text(now)},
                               expected_version=doc.version)
            except Conflict:
                pass  # another request recorded the use
        return Principal(name=user.name, roles=frozenset(user.roles), agency=user.agency, kind="token",
                         token=token.name, token_scopes=frozenset(token.scopes))

    @staticmethod
    def _may_manage(actor: Principal, owner: str) -> None:
        if not (actor.kind == "user" and actor.name == owner):
            actor.require("tokens:admin")
