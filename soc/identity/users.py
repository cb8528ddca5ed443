"""Local users (collection ``users``, id = the lowercased name): add, list, disable, enable,
passwords and roles.

Every change is made by an actor (:class:`soc.access.Principal`) who needs ``users:admin``,
except a user changing their own password (who must give the current one). Disabling a user, a
new password and new roles or agency end the user's sessions: the user's ``session_epoch``
grows, which every session lookup checks (:mod:`soc.identity.sessions`), and their session
documents are deleted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from soc.access import Principal, check_role
from soc.agencies import AgencyTree
from soc.clock import Clock, system_clock
from soc.identity.hooks import AuditHook, emit, no_audit
from soc.identity.model import (
    SESSIONS,
    USERS,
    IdentityError,
    PasswordRejected,
    User,
    UserExists,
    UserNotFound,
    check_name,
    time_text,
    update,
)
from soc.identity.passwords import Passwords, generate_password
from soc.store.base import Store

__all__ = ["NewPassword", "Users"]


@dataclass(frozen=True)
class NewPassword:
    """The outcome of adding a user or setting a password: the user and, when soc made up the
    password, that one-time password (to be shown once, never stored or logged)."""

    user: User
    one_time_password: str | None = None


class Users:
    """The user directory over the store."""

    def __init__(self, store: Store, passwords: Passwords, *, agencies: Callable[[], AgencyTree] | None = None,
                 clock: Clock = system_clock, audit: AuditHook = no_audit) -> None:
        self.store, self.passwords, self.clock, self.audit = store, passwords, clock, audit
        self._agencies = agencies

    # -- reading ----------------------------------------------------------------------------------
    def get(self, name: str) -> User | None:
        """The user called ``name`` (any case), or ``None`` (also for a name that is no valid name)."""
        try:
            doc = self.store.get(USERS, check_name(name))
        except IdentityError:
            return None
        return User.from_body(doc.body) if doc is not None else None

    def require(self, name: str) -> User:
        found = self.get(name)
        if found is None:
            raise UserNotFound(f"no user {name!r}: `soc users list` shows them")
        return found

    def list(self) -> list[User]:
        """Every user, by name."""
        return sorted((User.from_body(d.body) for d in self.store.iter_all(USERS)), key=lambda u: u.name)

    def exists_any(self) -> bool:
        """Whether any user exists (first run: none)."""
        return bool(self.store.find(USERS, limit=1))

    # -- changing ---------------------------------------------------------------------------------
    def add(self, actor: Principal, name: str, roles: Iterable[str], *, agency: str | None = None,
            email: str | None = None, display_name: str | None = None, password: str | None = None,
            must_change_password: bool | None = None) -> NewPassword:
        """Add a user. Without ``password`` a one-time password is made up (returned once) and
        the user must change it at first login; ``must_change_password`` overrides that."""
        actor.require("users:admin")
        name = check_name(name)
        checked_roles = self._roles(roles)
        agency = self._agency(agency)
        generated = password is None
        password = generate_password() if password is None else password
        self.passwords.check(password, name)
        now = time_text(self.clock())
        body = {"name": name, "display_name": (display_name or "").strip(), "roles": checked_roles,
                "agency": agency, "email": _email(email), "disabled": False,
                "must_change_password": generated if must_change_password is None else must_change_password,
                "password_hash": self.passwords.hash(password), "created_at": now, "updated_at": now,
                "password_changed_at": now, "last_login_at": None, "created_by": actor.label,
                "login": {"failures": [], "locked_until": None}, "session_epoch": 0}
        if not self.store.create(USERS, name, body):
            raise UserExists(f"user {name!r} exists already")
        emit(self.audit, actor, "user.added", {"user": name, "roles": checked_roles, "agency": agency})
        return NewPassword(User.from_body(body), password if generated else None)

    def disable(self, actor: Principal, name: str) -> User:
        """Disable a user: no login, no session, no API token works until enabled again."""
        actor.require("users:admin")
        user = self._change(name, lambda b: {**b, "disabled": True, "session_epoch": b.get("session_epoch", 0) + 1})
        self.end_sessions(user.name)
        emit(self.audit, actor, "user.disabled", {"user": user.name})
        return user

    def enable(self, actor: Principal, name: str) -> User:
        """Enable a user again (and clear a lockout)."""
        actor.require("users:admin")
        user = self._change(name, lambda b: {**b, "disabled": False, "login": {"failures": [], "locked_until": None}})
        emit(self.audit, actor, "user.enabled", {"user": user.name})
        return user

    def set_password(self, actor: Principal, name: str, password: str | None = None, *,
                     must_change_password: bool | None = None) -> NewPassword:
        """An administrator sets a user's password (``None``: a one-time password is made up and
        must be changed at the next login). The user's sessions end."""
        actor.require("users:admin")
        user = self.require(name)
        generated = password is None
        password = generate_password() if password is None else password
        self.passwords.check(password, user.name)
        must = generated if must_change_password is None else must_change_password
        changed = self._new_password(user.name, password, must)
        emit(self.audit, actor, "user.password_changed", {"user": user.name, "by": "admin", "one_time": generated})
        return NewPassword(changed, password if generated else None)

    def change_own_password(self, name: str, current: str, new: str) -> User:
        """A user changes their own password, proving the current one. Raises
        :class:`PasswordRejected` when the current password is wrong or the new one fails the
        policy or equals the current one. Every session of the user ends (the web layer then
        issues a new one)."""
        user = self.require(name)
        if user.disabled or not self.passwords.verify(user.password_hash, current):
            raise PasswordRejected("the current password is wrong")
        self.passwords.check(new, user.name)
        if new == current:
            raise PasswordRejected("the new password must differ from the current one")
        changed = self._new_password(user.name, new, False)
        emit(self.audit, changed.principal(), "user.password_changed", {"user": user.name, "by": "self",
                                                                        "one_time": False})
        return changed

    def set_roles(self, actor: Principal, name: str, roles: Iterable[str] | None = None, *,
                  agency: str | None = None, clear_agency: bool = False) -> User:
        """Change a user's roles and/or agency scope; their sessions end (privilege change)."""
        actor.require("users:admin")
        before = self.require(name)
        new_roles = self._roles(roles) if roles is not None else list(before.roles)
        new_agency = None if clear_agency else (self._agency(agency) if agency is not None else before.agency)
        if new_roles == list(before.roles) and new_agency == before.agency:
            return before
        user = self._change(name, lambda b: {**b, "roles": new_roles, "agency": new_agency,
                                             "session_epoch": b.get("session_epoch", 0) + 1})
        self.end_sessions(user.name)
        emit(self.audit, actor, "user.roles_changed", {
            "user": user.name, "roles": new_roles, "agency": new_agency,
            "before": {"roles": list(before.roles), "agency": before.agency}})
        return user

    def end_sessions(self, name: str) -> int:
        """Delete every session document of the user (lookups refuse them anyway once the
        user's ``session_epoch`` has grown)."""
        ended = 0
        for doc in self.store.find(SESSIONS, {"user": name}, limit=10_000):
            ended += self.store.delete(SESSIONS, doc.id)
        return ended

    # -- helpers ----------------------------------------------------------------------------------
    def _new_password(self, name: str, password: str, must_change: bool) -> User:
        hashed = self.passwords.hash(password)
        now = time_text(self.clock())
        user = self._change(name, lambda b: {
            **b, "password_hash": hashed, "password_changed_at": now, "must_change_password": must_change,
            "login": {"failures": [], "locked_until": None}, "session_epoch": b.get("session_epoch", 0) + 1})
        self.end_sessions(name)
        return user

    def _change(self, name: str, change: Callable[[dict[str, Any]], dict[str, Any]]) -> User:
        key = self.require(name).name
        now = time_text(self.clock())

        def apply(body: dict[str, Any] | None) -> dict[str, Any]:
            if body is None:
                raise UserNotFound(f"no user {key!r}")
            return {**change(body), "updated_at": now}

        written = update(self.store, USERS, key, apply)
        assert written is not None
        return User.from_body(written)

    def record_login(self, name: str, change: Callable[[dict[str, Any]], dict[str, Any] | None]) -> User | None:
        """Apply a login outcome (counters, lockout, rehash) to the user document; ``None`` when
        the user is gone or ``change`` writes nothing."""
        written = update(self.store, USERS, name, lambda b: change(b) if b is not None else None)
        return User.from_body(written) if written is not None else None

    @staticmethod
    def _roles(roles: Iterable[str]) -> list[str]:
        checked = []
        for role in roles:
            try:
                role = check_role(role.strip().lower())
            except ValueError as error:
                raise IdentityError(str(error)) from None
            if role not in checked:
                checked.append(role)
        if not checked:
            raise IdentityError("give a user at least one role (--role): admin, analyst, responder, reporter, "
                                "auditor or agency")
        return checked

    def _agency(self, agency: str | None) -> str | None:
        if agency is None or not agency.strip():
            return None
        agency = agency.strip()
        tree = self._tree()
        found = tree.get(agency)
        if found is None or agency == tree.unknown.id:
            known = ", ".join(sorted(a.id for a in tree if not a.merged_into)) or "none"
            raise IdentityError(f"unknown agency {agency!r}: use an id of ingest/agencies.yml (known: {known})")
        if found.merged_into:
            raise IdentityError(f"agency {agency!r} was merged into {tree.current(agency)!r}: use that one")
        return agency

    def _tree(self) -> AgencyTree:
        if self._agencies is None:
            from soc.agencies import load_agencies

            self._agencies = load_agencies
        return self._agencies()


def _email(email: str | None) -> str | None:
    if email is None or not email.strip():
        return None
    email = email.strip()
    if "@" not in email or any(c.isspace() for c in email) or len(email) > 254:
        raise IdentityError(f"invalid e-mail address {email!r}")
    return email

