"""The identity services put together over one store: what the composition root builds once
and the front doors (``soc users``, ``soc tokens``, the web console, the HTTP API) call.

::

    identity = Identity(app.store, settings.auth, audit=trail_hook)
    result, session = identity.login("an", password, "10.0.0.5")    # web console login
    principal = identity.sessions.principal(cookie_value)           # each request
    principal = identity.resolve_token(bearer)                      # API requests
"""

from __future__ import annotations

from collections.abc import Callable

from soc.access import Principal
from soc.agencies import AgencyTree
from soc.clock import Clock, system_clock
from soc.config import AuthSettings
from soc.identity.bootstrap import ensure_first_admin
from soc.identity.hooks import AuditHook, no_audit
from soc.identity.login import LocalIdentityProvider, LoginResult
from soc.identity.passwords import Passwords
from soc.identity.sessions import Session, Sessions
from soc.identity.throttle import LoginThrottle
from soc.identity.tokens import Tokens
from soc.identity.users import Users
from soc.store.base import Store

__all__ = ["Identity"]


class Identity:
    """Users, login, sessions and API tokens over ``store`` with the ``auth:`` settings.

    ``agencies`` returns the agency tree user scopes are checked against (default: the
    project's ``ingest/agencies.yml``, read when needed); ``audit`` receives every login,
    logout, expiry and change (:mod:`soc.identity.hooks`); ``passwords`` replaces the hasher
    made from the settings (tests use a cheap one)."""

    def __init__(self, store: Store, settings: AuthSettings | None = None, *,
                 agencies: Callable[[], AgencyTree] | None = None, clock: Clock = system_clock,
                 audit: AuditHook = no_audit, passwords: Passwords | None = None) -> None:
        self.settings = settings or AuthSettings()
        self.store, self.clock, self.audit = store, clock, audit
        self.passwords = passwords or Passwords.from_settings(self.settings)
        self.users = Users(store, self.passwords, agencies=agencies, clock=clock, audit=audit)
        self.throttle = LoginThrottle(store, self.settings, clock)
        self.provider = LocalIdentityProvider(self.users, self.passwords, self.throttle, clock=clock, audit=audit)
        self.sessions = Sessions(store, self.users, self.settings, clock=clock, audit=audit)
        self.tokens = Tokens(store, self.users, self.settings, clock=clock, audit=audit)

    def authenticate(self, name: str, password: str, source_ip: str | None) -> LoginResult:
        """Check a login (see :mod:`soc.identity.login`); starts no session."""
        return self.provider.authenticate(name, password, source_ip)

    def login(self, name: str, password: str, source_ip: str | None) -> tuple[LoginResult, Session | None]:
        """Check a login and, when it is good, start a new session (always a fresh id)."""
        result = self.authenticate(name, password, source_ip)
        if not result.ok or result.user is None:
            return result, None
        return result, self.sessions.create(result.user, source_ip=source_ip)

    def change_password(self, session: Session, current: str, new: str,
                        source_ip: str | None) -> tuple[LoginResult, Session | None]:
        """A logged-in user changes their password. The current password is checked like a login
        (throttled, counted, locked the same way); then every session of the user ends and a new
        one is returned (the old id stops working). Raises
        :class:`~soc.identity.model.PasswordRejected` when the new password fails the policy."""
        result = self.authenticate(session.user, current, source_ip)
        if not result.ok:
            return result, None
        user = self.users.change_own_password(session.user, current, new)
        return result, self.sessions.create(user, source_ip=source_ip)

    def session(self, session_id: str | None) -> Session | None:
        """The live session of a cookie value, or ``None``."""
        return self.sessions.lookup(session_id)

    def logout(self, session_id: str | None) -> bool:
        return self.sessions.logout(session_id)

    def resolve_token(self, secret: str | None) -> Principal | None:
        """The principal an API token acts as, or ``None``."""
        return self.tokens.resolve(secret)

    def ensure_first_admin(self, out: Callable[[str], None]) -> str | None:
        """See :func:`soc.identity.bootstrap.ensure_first_admin`."""
        return ensure_first_admin(self.store, out, clock=self.clock, audit=self.audit, passwords=self.passwords)

    def purge(self) -> dict[str, int]:
        """Delete expired sessions and login counters that hold nothing back (a periodic job)."""
        return {"sessions": self.sessions.purge(), "login_attempts": self.throttle.purge()}
