"""Who is acting, what they may do, and which agencies' data they may see.

A :class:`Principal` is the authenticated actor of every request and command: a user (password
and session), an API token (which carries at most its user's rights, narrowed by its scopes), a
shell user on the server (``local``: whoever can run ``soc`` there can read the store's files
anyway, so the shell has every right and is recorded under the OS login), or the service itself
(``system``: the scheduler, playbooks).

**Deny by default.** A permission is ``resource:action`` (``alerts:write``). A role grants a
fixed set (:data:`ROLES`); a principal may hold several roles; a token's scopes narrow what its
user may do (``alerts:read``, ``reports:*``). Nothing is allowed that no role grants.

**Agency scope.** A principal with an ``agency`` sees that agency and every agency below it in
``ingest/agencies.yml`` (:meth:`soc.agencies.AgencyTree.below`), whatever its roles; one without
sees every agency. The scope is enforced where queries are built (the scoped store), never only
in a route or a template.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from soc.agencies import AgencyTree
from soc.errors import SocError

__all__ = ["PERMISSIONS", "ROLES", "Forbidden", "Principal", "Scope", "check_role", "check_scopes"]

Kind = Literal["user", "token", "local", "system"]

#: every permission, with what it allows
PERMISSIONS: dict[str, str] = {
    "events:read": "search stored events",
    "events:export": "export event search results (CSV/JSON)",
    "alerts:read": "list and read alerts",
    "alerts:write": "acknowledge, assign, close and reopen alerts (also in bulk)",
    "incidents:read": "list and read incidents and their timelines",
    "incidents:write": "open, update, merge and split incidents",
    "incidents:comment": "add notes to incidents",
    "exceptions:read": "list detection exceptions",
    "exceptions:write": "add and disable detection exceptions",
    "intel:read": "list threat-intel feeds, their status and the indicators",
    "intel:write": "add and revoke indicators, poll feeds, run the retro-hunt",
    "playbooks:read": "list playbooks and their runs",
    "playbooks:run": "run playbooks by hand (and dry runs)",
    "playbooks:approve": "approve or reject a playbook step that waits for approval",
    "reports:read": "list and download reports and receipts",
    "reports:write": "build, preview and sign reports",
    "reports:send": "send reports to their recipients",
    "tasks:read": "list remediation tasks",
    "tasks:write": "send remediation tasks to agencies",
    "tasks:respond": "acknowledge remediation tasks and mark them done",
    "rules:read": "rule and source health",
    "sources:replay": "replay dead letters (records that could not be stored) after a fix",
    "agencies:read": "the agency hierarchy",
    "audit:read": "read, verify and export the audit trail",
    "users:admin": "manage users, roles and agency scopes",
    "tokens:admin": "create and revoke API tokens of any user",
}
_READ = frozenset(p for p in PERMISSIONS if p.endswith(":read"))

#: what each role may do (a principal holding several roles has the union)
ROLES: dict[str, frozenset[str]] = {
    "admin": frozenset(PERMISSIONS),
    "analyst": frozenset({
        "events:read", "events:export", "alerts:read", "alerts:write", "incidents:read", "incidents:write",
        "incidents:comment", "exceptions:read", "exceptions:write", "playbooks:read", "reports:read",
        "tasks:read", "tasks:write", "rules:read", "agencies:read", "intel:read", "intel:write"}),
    "responder": frozenset({
        "events:read", "alerts:read", "incidents:read", "incidents:write", "incidents:comment",
        "playbooks:read", "playbooks:run", "playbooks:approve", "reports:read", "tasks:read", "tasks:write",
        "rules:read", "agencies:read"}),
    "reporter": frozenset({
        "events:read", "alerts:read", "incidents:read", "incidents:comment", "reports:read", "reports:write",
        "reports:send", "tasks:read", "agencies:read"}),
    "auditor": _READ,
    "agency": frozenset({
        "events:read", "alerts:read", "incidents:read", "incidents:comment", "reports:read", "tasks:read",
        "tasks:respond", "agencies:read"}),
}


class Forbidden(SocError, PermissionError):
    """The principal may not do this (a role or token scope is missing)."""


def check_role(name: str) -> str:
    """``name`` when it is a role, else a :class:`ValueError` listing the roles."""
    if name not in ROLES:
        raise ValueError(f"unknown role {name!r}: use one of {', '.join(ROLES)}")
    return name


def check_scopes(scopes: Iterable[str]) -> frozenset[str]:
    """Token scopes: permissions, ``resource:*``, or ``taxii:COLLECTION:read|write``."""
    resources = {p.split(":", 1)[0] for p in PERMISSIONS}
    checked = set()
    for scope in scopes:
        parts = scope.split(":")
        if scope in PERMISSIONS or (len(parts) == 2 and parts[1] == "*" and parts[0] in resources) or (
                len(parts) == 3 and parts[0] == "taxii" and parts[1] and parts[2] in ("read", "write")):
            checked.add(scope)
        else:
            raise ValueError(f"unknown token scope {scope!r}: use a permission ({', '.join(sorted(PERMISSIONS))}), "
                             "RESOURCE:* or taxii:COLLECTION:read|write")
    return frozenset(checked)


@dataclass(frozen=True)
class Scope:
    """The agencies whose data a principal may see; ``agencies=None`` means every agency."""

    agencies: frozenset[str] | None = None

    @property
    def everything(self) -> bool:
        return self.agencies is None

    def allows(self, agency_id: str | None) -> bool:
        """Whether data owned by ``agency_id`` is visible (data with no agency: only to
        principals that see everything)."""
        return self.agencies is None or (agency_id is not None and agency_id in self.agencies)

    def allows_any(self, agency_ids: Iterable[str | None]) -> bool:
        return self.agencies is None or any(a in self.agencies for a in agency_ids if a is not None)


@dataclass(frozen=True)
class Principal:
    """The actor of a request or command. ``name`` is the user name (the token's user for a
    token; the OS login for ``local``; the component for ``system``)."""

    name: str
    roles: frozenset[str] = frozenset()
    agency: str | None = None
    kind: Kind = "user"
    token: str | None = None  # the token's name, for a token principal
    token_scopes: frozenset[str] | None = None  # None: no narrowing (not a token)

    @classmethod
    def local(cls, login: str) -> Principal:
        """A shell user on the server: every right, recorded as ``local:LOGIN``."""
        return cls(name=login, roles=frozenset({"admin"}), kind="local")

    @classmethod
    def system(cls, component: str) -> Principal:
        """The service acting on its own (scheduler, playbook runner)."""
        return cls(name=component, roles=frozenset({"admin"}), kind="system")

    @property
    def label(self) -> str:
        """How the audit trail and histories name the actor: ``alice``, ``alice (token ci)``,
        ``local:root``, ``system:scheduler``."""
        if self.kind == "token":
            return f"{self.name} (token {self.token})"
        if self.kind in ("local", "system"):
            return f"{self.kind}:{self.name}"
        return self.name

    @property
    def permissions(self) -> frozenset[str]:
        granted = frozenset().union(*(ROLES.get(r, frozenset()) for r in self.roles))
        if self.token_scopes is None:
            return granted
        return frozenset(p for p in granted if self._scoped(p))

    def _scoped(self, permission: str) -> bool:
        scopes = self.token_scopes or frozenset()
        return permission in scopes or f"{permission.split(':', 1)[0]}:*" in scopes

    def can(self, permission: str) -> bool:
        if permission.startswith("taxii:"):  # per-collection rights come from token scopes only
            return self.token_scopes is not None and permission in self.token_scopes
        return permission in self.permissions

    def require(self, permission: str) -> None:
        if not self.can(permission):
            raise Forbidden(f"{self.label} may not {PERMISSIONS.get(permission, permission)} "
                            f"(needs {permission})")

    def scope(self, tree: AgencyTree) -> Scope:
        """The agencies this principal may see: its agency and everything below it, or all."""
        return Scope(None) if self.agency is None else Scope(tree.below(self.agency))
