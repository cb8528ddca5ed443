"""Server-side sessions for the web console.

A session id is ``secrets.token_urlsafe(32)`` (256 random bits), made here and nowhere else:
a login always gets a new one, and an id a client presents is only ever looked up, never
adopted (no session fixation). The cookie carries the id; the store keeps its SHA-256 digest
(collection ``sessions``), so reading the store gives no usable session.

A session ends after ``auth.session_idle_minutes`` without use, ``auth.session_absolute_hours``
after login whatever the use, on logout, and when its user is disabled or gets a new password,
roles or agency (the user's ``session_epoch`` grows; every lookup compares it). Each lookup
reads the user, so the principal always has the user's current roles and agency.

Each session has a CSRF token, for state-changing requests authenticated by the cookie: the web
layer puts :func:`csrf_token` in its pages and checks what comes back with :func:`check_csrf`
(constant-time). Cookie attributes are the web layer's job; :func:`cookie_name` and
:data:`COOKIE_ATTRIBUTES` say what they are.
"""

from __future__ import annotations

import hmac
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from soc.access import Principal
from soc.clock import Clock, system_clock
from soc.config import AuthSettings
from soc.identity.hooks import AuditHook, emit, no_audit
from soc.identity.model import SESSIONS, User, digest, parse_time, time_text
from soc.identity.users import Users
from soc.store.base import Conflict, Store

__all__ = ["COOKIE_ATTRIBUTES", "Session", "Sessions", "check_csrf", "cookie_name", "csrf_token"]

#: the session cookie's attributes (``Secure`` too whenever the console is served over TLS)
COOKIE_ATTRIBUTES: dict[str, Any] = {"httponly": True, "samesite": "strict", "path": "/"}
#: a presented id that does not look like one of ours is not even looked up
_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{32,128}$")
#: a session's last use is written at most this often (not on every request)
_TOUCH = timedelta(seconds=60)


def cookie_name(base: str = "soc_session", *, tls: bool = False) -> str:
    """The cookie name: with TLS ``__Host-`` + ``base`` (browsers then insist on ``Secure``,
    ``Path=/`` and no ``Domain``)."""
    return f"__Host-{base}" if tls else base


@dataclass(frozen=True)
class Session:
    """A live session: its id (the cookie value: a secret), its user and principal, its CSRF
    token and when it ends (``expires_at``: the earlier of the idle and the absolute end)."""

    id: str = field(repr=False)
    user: str
    principal: Principal
    csrf: str = field(repr=False)
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    must_change_password: bool = False


def csrf_token(session: Session) -> str:
    """The CSRF token of a session, to embed in forms or send in a header."""
    return session.csrf


def check_csrf(session: Session | None, token: str | None) -> bool:
    """Whether ``token`` is the session's CSRF token (constant-time)."""
    if session is None or not token:
        return False
    return hmac.compare_digest(session.csrf.encode(), token.encode("utf-8", "replace"))


class Sessions:
    """The session store (collection ``sessions``) over the user directory."""

    def __init__(self, store: Store, users: Users, settings: AuthSettings | None = None, *,
                 clock: Clock = system_clock, audit: AuditHook = no_audit) -> None:
        settings = settings or AuthSettings()
        self.store, self.users, self.clock, self.audit = store, users, clock, audit
        self.idle = timedelta(minutes=settings.session_idle_minutes)
        self.absolute = timedelta(hours=settings.session_absolute_hours)
        self.cookie = settings.session_cookie
        self._touch = min(_TOUCH, self.idle / 10)

    def create(self, user: User, *, source_ip: str | None = None, created_at: datetime | None = None) -> Session:
        """A new session for ``user`` (after a successful login), with a fresh id and CSRF
        token. ``created_at`` keeps the absolute timeout of a rotated session."""
        now = self.clock()
        session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        body = {"user": user.name, "epoch": user.session_epoch, "csrf": csrf,
                "created_at": time_text(created_at or now), "last_seen_at": time_text(now), "source_ip": source_ip}
        if not self.store.create(SESSIONS, digest(session_id), body):  # 256 random bits: never in practice
            return self.create(user, source_ip=source_ip, created_at=created_at)
        return self._session(session_id, body, user)

    def lookup(self, session_id: str | None) -> Session | None:
        """The live session with this id, or ``None`` (unknown, expired, ended, user disabled).
        An expired session is deleted and reported (``session.expired``)."""
        if not session_id or not _ID_PATTERN.match(session_id):
            return None
        key = digest(session_id)
        doc = self.store.get(SESSIONS, key)
        if doc is None:
            return None
        body, now = doc.body, self.clock()
        created, seen = parse_time(body.get("created_at")), parse_time(body.get("last_seen_at"))
        if created is None or seen is None:
            self.store.delete(SESSIONS, key)
            return None
        reason = "absolute" if now >= created + self.absolute else "idle" if now >= seen + self.idle else None
        if reason is not None:
            if self.store.delete(SESSIONS, key):
                emit(self.audit, Principal(name=body["user"]), "session.expired",
                     {"user": body["user"], "reason": reason})
            return None
        user = self.users.get(body["user"])
        if user is None or user.disabled or user.session_epoch != body.get("epoch"):
            self.store.delete(SESSIONS, key)
            return None
        if now - seen >= self._touch:
            body = {**body, "last_seen_at": time_text(now)}
            try:
                self.store.put(SESSIONS, key, body, expected_version=doc.version)
            except Conflict:
                pass  # another request of the same session touched it
        return self._session(session_id, body, user)

    def principal(self, session_id: str | None) -> Principal | None:
        """The principal of a live session, or ``None``. The web layer should also look at
        :attr:`Session.must_change_password` (via :meth:`lookup`) and allow nothing but a
        password change then."""
        session = self.lookup(session_id)
        return session.principal if session is not None else None

    def rotate(self, session_id: str | None) -> Session | None:
        """Replace a live session by one with a new id and CSRF token (after a privilege change
        such as a re-authentication); the old id stops working. The absolute timeout still
        counts from the first login."""
        session = self.lookup(session_id)
        if session is None:
            return None
        user = self.users.get(session.user)
        if user is None:
            return None
        self.store.delete(SESSIONS, digest(session.id))
        return self.create(user, created_at=session.created_at)

    def logout(self, session_id: str | None) -> bool:
        """End a session (``logout``); ``False`` when there was no such session."""
        if not session_id or not _ID_PATTERN.match(session_id):
            return False
        key = digest(session_id)
        doc = self.store.get(SESSIONS, key)
        if doc is None or not self.store.delete(SESSIONS, key):
            return False
        emit(self.audit, Principal(name=doc.body.get("user", "")), "logout", {"user": doc.body.get("user")})
        return True

    def purge(self) -> int:
        """Delete the sessions that have expired (run now and then; lookups refuse them anyway)."""
        now, removed = self.clock(), 0
        for doc in list(self.store.iter_all(SESSIONS)):
            created, seen = parse_time(doc.body.get("created_at")), parse_time(doc.body.get("last_seen_at"))
            if created is None or seen is None or now >= created + self.absolute or now >= seen + self.idle:
                if self.store.delete(SESSIONS, doc.id):
                    removed += 1
                    emit(self.audit, Principal(name=doc.body.get("user", "")), "session.expired",
                         {"user": doc.body.get("user"), "reason": "purged"})
        return removed

    def _session(self, session_id: str, body: dict[str, Any], user: User) -> Session:
        created, seen = parse_time(body["created_at"]), parse_time(body["last_seen_at"])
        assert created is not None and seen is not None
        return Session(id=session_id, user=user.name, principal=user.principal(), csrf=body["csrf"],
                       created_at=created, last_seen_at=seen, expires_at=min(created + self.absolute, seen + self.idle),
                       must_change_password=user.must_change_password)
