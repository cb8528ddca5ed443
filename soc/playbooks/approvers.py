"""Who may decide a playbook approval (``approval.wait``'s ``approvers``).

An approval step may list ``approvers``: user names (``alice`` or ``user:alice``) and roles
(``role:responder``). Whoever decides must hold ``playbooks:approve`` and, when the step lists
any, match one entry: a name matches the principal's user name -- an API or console user, an
API token's user, or a local shell user by login name -- and ``role:NAME`` a role the
principal holds. A local shell principal holds every right through the ``admin`` role but no
other role: a step listing approvers is decided from the shell only by a login named there (or
with ``role:admin``). A step without ``approvers`` may be decided by anyone with the permission.
"""

from __future__ import annotations

from typing import Any

from soc.access import Forbidden, Principal

__all__ = ["approver_entries", "check_approver", "may_approve"]


def approver_entries(approvers: Any) -> list[str]:
    """The ``approvers`` of an approval step as a list of entries: user names, ``user:NAME``
    or ``role:NAME`` (a text may list several, separated by commas or spaces)."""
    if approvers is None or approvers == "":
        return []
    items = approvers.replace(",", " ").split() if isinstance(approvers, str) else list(approvers)
    return [str(item).strip() for item in items if str(item).strip()]


def may_approve(principal: Principal, approvers: Any) -> bool:
    """Whether ``principal`` is among ``approvers``: no entries means anyone who holds
    ``playbooks:approve``; a name (or ``user:NAME``) matches the principal's user name (a local
    shell user's login), ``role:NAME`` a role the principal holds."""
    entries = approver_entries(approvers)
    if not entries:
        return True
    for entry in entries:
        kind, _, name = entry.partition(":")
        if not name:
            kind, name = "user", entry
        if (kind == "role" and name in principal.roles) or (kind == "user" and name == principal.name):
            return True
    return False


def check_approver(principal: Principal, approvers: Any, what: str) -> None:
    """Raise :class:`~soc.access.Forbidden` unless ``principal`` may decide ``what``."""
    principal.require("playbooks:approve")
    if not may_approve(principal, approvers):
        raise Forbidden(f"{principal.label} is not among the approvers of {what} "
                        f"({', '.join(approver_entries(approvers))})")
