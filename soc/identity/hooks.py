"""The audit seam of the identity services: what they report and to whom.

The services call an :data:`AuditHook` with the actor (``None`` for an anonymous failed
login), an action name from :data:`ACTIONS` and details (never a password, session id or token
secret). The default, :func:`no_audit`, drops them; the composition root wires the hook to the
audit trail.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from soc.access import Principal

__all__ = ["ACTIONS", "AuditHook", "emit", "no_audit"]

log = logging.getLogger(__name__)

AuditHook = Callable[[Principal | None, str, dict[str, Any]], None]
"""``hook(actor, action, details)``: called after the action happened (or was refused)."""

#: every action the identity services report, with what it means
ACTIONS: dict[str, str] = {
    "login.ok": "a user logged in (details: user, source_ip, method)",
    "login.failed": "a login was refused (actor None; details: user as typed, source_ip, reason: "
                    "invalid, disabled, locked, throttled)",
    "login.locked": "failed logins locked a user name (actor None; details: user, source_ip, until)",
    "logout": "a user ended their session",
    "session.expired": "a session ended by the idle or absolute timeout (details: reason)",
    "user.added": "a user was added (details: user, roles, agency)",
    "user.disabled": "a user was disabled (their sessions end)",
    "user.enabled": "a user was enabled again",
    "user.password_changed": "a password was set or changed (details: user, by: self | admin, one_time)",
    "user.roles_changed": "a user's roles or agency changed (details: user, roles, agency, before)",
    "token.created": "an API token was created (details: user, token, id, scopes, expires_at)",
    "token.revoked": "an API token was revoked (details: user, token, id)",
}


def no_audit(actor: Principal | None, action: str, details: dict[str, Any]) -> None:
    """The default hook: records nothing."""


def emit(hook: AuditHook, actor: Principal | None, action: str, details: dict[str, Any]) -> None:
    """Call ``hook``; a failing hook is logged and never undoes or blocks the action (the
    audit trail reports its own failures)."""
    try:
        hook(actor, action, details)
    except Exception:  # noqa: BLE001 -- the login must not depend on the hook
        log.exception("audit hook failed for %s", action)
