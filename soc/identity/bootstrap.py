"""The first run: on a store with no user at all, ``soc run`` / ``soc serve`` create ``admin``.

The user ``admin`` (role ``admin``) gets a one-time password, shown once on the console through
``out`` -- never logged, never stored but as its hash -- and must change it at the first login.
Creating is create-only on the name, so two services starting at once on a fresh store make one
admin and one of them shows the password. A store with users (any) is left alone.
"""

from __future__ import annotations

from collections.abc import Callable

from soc.access import Principal
from soc.clock import Clock, system_clock
from soc.config import AuthSettings
from soc.identity.hooks import AuditHook, no_audit
from soc.identity.model import UserExists
from soc.identity.passwords import Passwords
from soc.identity.users import Users
from soc.store.base import Store

__all__ = ["FIRST_ADMIN", "ensure_first_admin", "first_admin_banner"]

FIRST_ADMIN = "admin"


def first_admin_banner(password: str) -> str:
    """The lines that show the first admin's one-time password."""
    return (f"first run: created the user '{FIRST_ADMIN}' (role admin) with this one-time password, shown "
            f"only now:\n\n    {password}\n\nlog in with it and choose a new password (it must be changed at the "
            f"first login); `soc users passwd {FIRST_ADMIN}` sets another one.")


def ensure_first_admin(store: Store, out: Callable[[str], None], *, settings: AuthSettings | None = None,
                       clock: Clock = system_clock, audit: AuditHook = no_audit,
                       passwords: Passwords | None = None) -> str | None:
    """Create ``admin`` with a one-time password when the store has no user, and show the
    password with ``out`` (e.g. ``typer.echo``; not a logger). Returns the password, or ``None``
    when there were users already (nothing is created or shown)."""
    users = Users(store, passwords or Passwords.from_settings(settings or AuthSettings()), clock=clock, audit=audit)
    if users.exists_any():
        return None
    try:
        created = users.add(Principal.system("first-run"), FIRST_ADMIN, ["admin"], display_name="Administrator")
    except UserExists:  # another process was first
        return None
    password = created.one_time_password
    assert password is not None
    out(first_admin_banner(password))
    return password
