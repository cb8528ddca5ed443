"""The login: a name, a password and the source address in, a :class:`LoginResult` out.

:class:`IdentityProvider` is the seam for where identities come from. The local provider
(:class:`LocalIdentityProvider`: users in the store, argon2id passwords) implements it; an
external one (OIDC) can be added beside it later and give the same results.

**No user enumeration.** A name that is no user takes the same path as a wrong password -- an
argon2 verification against a dummy hash, a counted failure, the same answer -- and locks the
same way after too many failures. A disabled user's correct password is a failure too. The web
layer shows :attr:`LoginResult.message`: ``wrong name or password``, or ``too many failed
logins: try again in N minutes``; the reason in between (``invalid``, ``disabled``,
``locked``, ``throttled``) is for the audit trail only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable

from soc.access import Principal
from soc.clock import Clock, system_clock
from soc.identity.hooks import AuditHook, emit, no_audit
from soc.identity.model import User, time_text
from soc.identity.passwords import Passwords
from soc.identity.throttle import LoginThrottle
from soc.identity.users import Users

__all__ = ["WRONG", "IdentityProvider", "LocalIdentityProvider", "LoginResult", "Reason"]

Reason = Literal["ok", "invalid", "disabled", "locked", "throttled"]
#: the one answer to a wrong name, a wrong password and a disabled user
WRONG = "wrong name or password"
_TYPED = 128  # of a typed name, at most this much goes to the audit trail


@dataclass(frozen=True)
class LoginResult:
    """A login's outcome: the principal (``ok``), or why not and, when locked or throttled, when
    to try again. ``user`` is the user logged in (to start a session with)."""

    reason: Reason
    principal: Principal | None = None
    user: User | None = field(default=None, repr=False)
    retry_after: datetime | None = None
    wait_seconds: int = 0
    must_change_password: bool = False

    @property
    def ok(self) -> bool:
        return self.reason == "ok"

    @property
    def message(self) -> str:
        """What to tell the person logging in (never which of name or password was wrong)."""
        if self.ok:
            return "welcome"
        if self.reason in ("locked", "throttled"):
            minutes = max(1, math.ceil(self.wait_seconds / 60))
            return f"too many failed logins: try again in {minutes} minute{'s' if minutes != 1 else ''}"
        return WRONG


@runtime_checkable
class IdentityProvider(Protocol):
    """Where identities come from: checks credentials and says who a name is now."""

    #: how the audit trail names the provider (``local``, ``oidc``)
    name: str

    def authenticate(self, name: str, password: str, source_ip: str | None) -> LoginResult:
        """Check a name and password presented from ``source_ip``."""
        ...

    def resolve(self, name: str) -> Principal | None:
        """The principal ``name`` acts as now (current roles and agency), or ``None`` when the
        user is unknown or disabled."""
        ...


class LocalIdentityProvider:
    """Users of the store with argon2id passwords, throttled per name and per address."""

    name = "local"

    def __init__(self, users: Users, passwords: Passwords, throttle: LoginThrottle, *,
                 clock: Clock = system_clock, audit: AuditHook = no_audit) -> None:
        self.users, self.passwords, self.throttle = users, passwords, throttle
        self.clock, self.audit = clock, audit

    def resolve(self, name: str) -> Principal | None:
        user = self.users.get(name)
        return user.principal() if user is not None and not user.disabled else None

    def authenticate(self, name: str, password: str, source_ip: str | None) -> LoginResult:
        now, typed = self.clock(), (name or "")[:_TYPED]
        waits = self.throttle.address_waits_until(source_ip)
        if waits is not None:
            return self._refused("throttled", typed, source_ip, waits, now)
        user = self.users.get(typed)
        if user is None:
            locked = self.throttle.unknown_name_locked_until(typed)
            if locked is not None:
                return self._refused("locked", typed, source_ip, locked, now)
            self.passwords.dummy_verify(password or "")
            until = self.throttle.unknown_name_failed(typed)
            self.throttle.address_failed(source_ip)
            return self._failed("invalid", typed, source_ip, until, now)
        if user.locked(now):
            assert user.locked_until is not None
            return self._refused("locked", typed, source_ip, user.locked_until, now)
        matches = self.passwords.verify(user.password_hash, password or "")
        if matches and not user.disabled:
            return self._succeeded(user, password, source_ip, now)
        after = self.users.record_login(user.name, lambda b: {
            **b, "login": self.throttle.names.fail(b.get("login"), now)})
        self.throttle.address_failed(source_ip)
        until = after.locked_until if after is not None and after.locked(now) else None
        return self._failed("disabled" if matches else "invalid", typed, source_ip, until, now)

    def _succeeded(self, user: User, password: str, source_ip: str | None, now: datetime) -> LoginResult:
        rehashed = self.passwords.hash(password) if self.passwords.needs_rehash(user.password_hash) else None

        def change(body: dict[str, Any]) -> dict[str, Any]:
            changed = {**body, "login": {"failures": [], "locked_until": None}, "last_login_at": time_text(now)}
            if rehashed is not None and body.get("password_hash") == user.password_hash:  # not changed meanwhile
                changed["password_hash"] = rehashed
            return changed

        current = self.users.record_login(user.name, change) or user
        principal = current.principal()
        emit(self.audit, principal, "login.ok", {"user": current.name, "source_ip": source_ip, "method": self.name})
        return LoginResult("ok", principal, current, must_change_password=current.must_change_password)

    def _failed(self, reason: Reason, typed: str, source_ip: str | None, locked_until: datetime | None,
                now: datetime) -> LoginResult:
        emit(self.audit, None, "login.failed", {"user": typed, "source_ip": source_ip, "reason": reason})
        if locked_until is None:
            return LoginResult(reason)
        emit(self.audit, None, "login.locked", {"user": typed, "source_ip": source_ip,
                                                "until": time_text(locked_until)})
        return LoginResult("locked", retry_after=locked_until, wait_seconds=_seconds(locked_until, now))

    def _refused(self, reason: Reason, typed: str, source_ip: str | None, until: datetime,
                 now: datetime) -> LoginResult:
        emit(self.audit, None, "login.failed", {"user": typed, "source_ip": source_ip, "reason": reason})
        return LoginResult(reason, retry_after=until, wait_seconds=_seconds(until, now))


def _seconds(until: datetime, now: datetime) -> int:
    return max(1, math.ceil((until - now).total_seconds()))
