"""Identities (issue #10, item 1): password hashing and policy, users, the first-run admin,
login (same answer for a wrong password, an unknown name and a disabled user), lockout per
user name and throttling per source address, with a clock the tests move.

Everything here runs on SQLite; sessions and tokens run on SQLite and OpenSearch
(tests/test_identity_sessions.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from soc.access import Forbidden, Principal
from soc.agencies import Agency, AgencyTree
from soc.config import AuthSettings
from soc.identity.bootstrap import ensure_first_admin
from soc.identity.hooks import ACTIONS
from soc.identity.login import WRONG, IdentityProvider
from soc.identity.model import USERS, IdentityError, PasswordRejected, UserExists
from soc.identity.passwords import Passwords
from soc.identity.service import Identity
from soc.identity.throttle import address_key
from soc.store.base import Store
from soc.store.sqlite import SQLiteStore

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
ADMIN = Principal.local("root")
GOOD = "correct horse battery staple"


class MovingClock:
    """A clock the test moves by hand."""

    def __init__(self, at: datetime = START) -> None:
        self.now = at

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class AuditLog:
    """An audit hook that keeps what it was told."""

    def __init__(self) -> None:
        self.records: list[tuple[str | None, str, dict[str, Any]]] = []

    def __call__(self, actor: Principal | None, action: str, details: dict[str, Any]) -> None:
        assert action in ACTIONS, action
        self.records.append((actor.label if actor else None, action, details))

    def actions(self) -> list[str]:
        return [a for _, a, _ in self.records]


def cheap_passwords(**options: Any) -> Passwords:
    """argon2id with the smallest cost (the tests hash a lot)."""
    return Passwords(**{"time_cost": 1, "memory_kib": 8, "parallelism": 1, **options})


def agency_tree() -> AgencyTree:
    return AgencyTree((Agency(id="tinh", name="UBND tỉnh", level="province"),
                       Agency(id="so-yte", name="Sở Y tế", level="department", parent="tinh"),
                       Agency(id="benh-vien", name="Bệnh viện tỉnh", parent="so-yte"),
                       Agency(id="so-cu", name="Sở cũ", parent="tinh", merged_into="so-yte")),
                      Agency(id="unknown", name="Chưa xác định"))


def make_identity(store: Store, clock: MovingClock | None = None, audit: AuditLog | None = None,
                  **settings: Any) -> Identity:
    auth = AuthSettings(**settings)
    return Identity(store, auth, agencies=agency_tree, clock=clock or MovingClock(), audit=audit or AuditLog(),
                    passwords=cheap_passwords(min_length=auth.password_min_length))


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    store = SQLiteStore(tmp_path / "soc.db")
    yield store
    store.close()


@pytest.fixture
def clock() -> MovingClock:
    return MovingClock()


@pytest.fixture
def audit() -> AuditLog:
    return AuditLog()


@pytest.fixture
def ids(sqlite_store: Store, clock: MovingClock, audit: AuditLog) -> Identity:
    return make_identity(sqlite_store, clock, audit)


# -- passwords ---------------------------------------------------------------------------------------
def test_hashes_are_argon2id_salted_and_verified() -> None:
    passwords = cheap_passwords()
    first, second = passwords.hash(GOOD), passwords.hash(GOOD)
    assert first.startswith("$argon2id$") and first != second  # salted
    assert passwords.verify(first, GOOD) and not passwords.verify(first, GOOD + "x")
    assert not passwords.verify("not a hash", GOOD) and not passwords.verify("", GOOD)
    assert not passwords.needs_rehash(first)
    assert Passwords.from_settings(AuthSettings()).hasher.memory_cost == 65536  # the default cost


def test_a_hash_made_with_other_parameters_is_redone_at_login(sqlite_store: Store, clock: MovingClock) -> None:
    old = Identity(sqlite_store, AuthSettings(), agencies=agency_tree, clock=clock, passwords=cheap_passwords())
    old.users.add(ADMIN, "an", ["analyst"], password=GOOD)
    before = old.users.require("an").password_hash
    new = Identity(sqlite_store, AuthSettings(), agencies=agency_tree, clock=clock,
                   passwords=cheap_passwords(time_cost=2))
    assert new.passwords.needs_rehash(before)
    assert new.authenticate("an", GOOD, "10.0.0.1").ok
    after = new.users.require("an").password_hash
    assert after != before and "t=2" in after and not new.passwords.needs_rehash(after)
    assert new.authenticate("an", GOOD, "10.0.0.1").ok  # the new hash verifies


def test_the_password_policy(ids: Identity) -> None:
    with pytest.raises(PasswordRejected, match="at least 12"):
        ids.users.add(ADMIN, "an", ["analyst"], password="short-pw")
    with pytest.raises(PasswordRejected, match="user name"):
        ids.users.add(ADMIN, "nguyenvanan01", ["analyst"], password="NguyenVanAn01")
    with pytest.raises(PasswordRejected, match="too long"):
        ids.users.add(ADMIN, "an", ["analyst"], password="x" * 2000)
    assert ids.users.get("an") is None and ids.users.get("nguyenvanan01") is None
    longer = make_identity(ids.store, password_min_length=16)
    with pytest.raises(PasswordRejected, match="at least 16"):
        longer.users.add(ADMIN, "an", ["analyst"], password="fifteen-chars-x")


# -- users -------------------------------------------------------------------------------------------
def test_add_users_with_roles_agency_and_a_one_time_password(ids: Identity, audit: AuditLog) -> None:
    added = ids.users.add(ADMIN, "An", ["analyst", "responder"], email="an@soc.example.vn", display_name="Nguyễn An")
    assert added.one_time_password and len(added.one_time_password) >= 20
    user = added.user
    assert (user.name, user.roles, user.agency, user.must_change_password) == ("an", ("analyst", "responder"),
                                                                              None, True)
    assert ids.authenticate("AN", added.one_time_password, "10.0.0.1").must_change_password
    agency_user = ids.users.add(ADMIN, "yte", ["agency"], agency="so-yte", password=GOOD).user
    assert agency_user.agency == "so-yte" and not agency_user.must_change_password
    assert agency_user.principal().scope(agency_tree()).agencies == {"so-yte", "benh-vien", "so-cu"}
    assert ("local:root", "user.added", {"user": "an", "roles": ["analyst", "responder"], "agency": None}) in audit.records
    with pytest.raises(UserExists):
        ids.users.add(ADMIN, "an", ["analyst"])
    for bad, message in ((dict(roles=["boss"]), "unknown role 'boss'"), (dict(roles=[]), "at least one role"),
                         (dict(roles=["agency"], agency="so-gd"), "unknown agency 'so-gd'"),
                         (dict(roles=["agency"], agency="so-cu"), "merged into 'so-yte'"),
                         (dict(roles=["analyst"], email="not-an-address"), "invalid e-mail")):
        with pytest.raises(IdentityError, match=message):
            ids.users.add(ADMIN, "other", **bad)  # type: ignore[arg-type]
    with pytest.raises(IdentityError, match="invalid user name"):
        ids.users.add(ADMIN, "bad name!", ["analyst"])
    assert [u.name for u in ids.users.list()] == ["an", "yte"]


def test_only_users_admins_manage_users(ids: Identity) -> None:
    ids.users.add(ADMIN, "an", ["analyst"], password=GOOD)
    analyst = ids.users.require("an").principal()
    with pytest.raises(Forbidden, match="users:admin"):
        ids.users.add(analyst, "eve", ["admin"], password=GOOD)
    with pytest.raises(Forbidden):
        ids.users.set_roles(analyst, "an", ["admin"])
    with pytest.raises(Forbidden):
        ids.users.set_password(analyst, "an", GOOD + "!")


def test_listing_shows_no_password_hash(ids: Identity) -> None:
    ids.users.add(ADMIN, "an", ["analyst"], password=GOOD)
    shown = ids.users.require("an").public(START)
    assert "password_hash" not in shown and not any("argon2" in str(v) for v in shown.values())
    assert "argon2" not in repr(ids.users.require("an"))


def test_change_own_password_needs_the_current_one(ids: Identity, audit: AuditLog) -> None:
    one_time = ids.users.add(ADMIN, "an", ["analyst"]).one_time_password
    assert one_time
    with pytest.raises(PasswordRejected, match="current password is wrong"):
        ids.users.change_own_password("an", "wrong-wrong-wrong", GOOD)
    with pytest.raises(PasswordRejected, match="must differ"):
        ids.users.change_own_password("an", one_time, one_time)
    user = ids.users.change_own_password("an", one_time, GOOD)
    assert not user.must_change_password
    assert not ids.authenticate("an", one_time, "10.0.0.1").ok and ids.authenticate("an", GOOD, "10.0.0.1").ok
    assert ("an", "user.password_changed", {"user": "an", "by": "self", "one_time": False}) in audit.records


def test_admin_sets_a_password_and_the_user_must_change_it(ids: Identity) -> None:
    ids.users.add(ADMIN, "an", ["analyst"], password=GOOD)
    new = ids.users.set_password(ADMIN, "an")
    assert new.one_time_password and new.user.must_change_password
    assert not ids.authenticate("an", GOOD, "10.0.0.1").ok
    assert ids.authenticate("an", new.one_time_password, "10.0.0.1").must_change_password


# -- the first run -----------------------------------------------------------------------------------
def test_first_run_creates_admin_once(sqlite_store: Store, clock: MovingClock) -> None:
    shown: list[str] = []
    password = ensure_first_admin(sqlite_store, shown.append, clock=clock, passwords=cheap_passwords())
    assert password and len(shown) == 1 and password in shown[0] and "admin" in shown[0]
    ids = make_identity(sqlite_store, clock)
    admin = ids.users.require("admin")
    assert admin.roles == ("admin",) and admin.must_change_password and admin.password_hash != password
    result = ids.authenticate("admin", password, "127.0.0.1")
    assert result.ok and result.must_change_password and result.principal is not None
    assert result.principal.can("users:admin")
    assert ensure_first_admin(sqlite_store, shown.append, passwords=cheap_passwords()) is None  # never again
    assert len(shown) == 1 and len(ids.users.list()) == 1
    assert not any(password in str(doc.body) for doc in sqlite_store.iter_all(USERS))


def test_first_run_leaves_a_store_with_users_alone(ids: Identity) -> None:
    ids.users.add(ADMIN, "an", ["analyst"], password=GOOD)
    shown: list[str] = []
    assert ensure_first_admin(ids.store, shown.append, passwords=cheap_passwords()) is None
    assert shown == [] and ids.users.get("admin") is None


# -- login -------------------------------------------------------------------------------------------
def test_login_ok_wrong_and_unknown_give_the_same_answer(ids: Identity, audit: AuditLog) -> None:
    assert isinstance(ids.provider, IdentityProvider)
    ids.users.add(ADMIN, "an", ["analyst"], agency=None, password=GOOD)
    ok = ids.authenticate("an", GOOD, "10.0.0.1")
    assert ok.ok and ok.principal == Principal("an", frozenset({"analyst"}), None, "user")
    wrong = ids.authenticate("an", "not the password", "10.0.0.1")
    unknown = ids.authenticate("nobody", "not the password", "10.0.0.1")
    ids.users.disable(ADMIN, "an")
    disabled = ids.authenticate("an", GOOD, "10.0.0.1")
    assert wrong.message == unknown.message == disabled.message == WRONG
    assert (wrong.principal, unknown.principal, disabled.principal) == (None, None, None)
    assert (wrong.reason, unknown.reason, disabled.reason) == ("invalid", "invalid", "disabled")
    failed = [d for actor, a, d in audit.records if a == "login.failed"]
    assert [d["user"] for d in failed] == ["an", "nobody", "an"] and all(not any(
        GOOD in str(v) or "not the password" in str(v) for v in d.values()) for d in failed)
    assert [a for a in audit.actions() if a.startswith("login")] == ["login.ok"] + ["login.failed"] * 3
    assert ids.users.require("an").last_login_at == START


def test_an_unknown_name_costs_a_password_verification(ids: Identity, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(ids.passwords, "dummy_verify", lambda password: calls.append(password))
    ids.authenticate("nobody", "a password", "10.0.0.1")
    assert calls == ["a password"]


def test_lockout_after_n_failures_and_unlock_after_m_minutes(sqlite_store: Store, clock: MovingClock,
                                                             audit: AuditLog) -> None:
    ids = make_identity(sqlite_store, clock, audit, login_max_failures=3, lockout_minutes=15)
    ids.users.add(ADMIN, "an", ["analyst"], password=GOOD)
    assert [ids.authenticate("an", "wrong password!", f"10.0.0.{i}").reason for i in range(3)] == [
        "invalid", "invalid", "locked"]
    locked = ids.authenticate("an", GOOD, "10.0.0.9")  # the right password does not help now
    assert locked.reason == "locked" and locked.retry_after == START + timedelta(minutes=15)
    assert locked.message == "too many failed logins: try again in 15 minutes"
    assert ids.users.require("an").locked(clock())
    assert "login.locked" in audit.actions()
    clock.advance(minutes=14, seconds=59)
    assert ids.authenticate("an", GOOD, "10.0.0.9").reason == "locked"
    clock.advance(seconds=1)
    assert ids.authenticate("an", GOOD, "10.0.0.9").ok
    assert ids.users.require("an").login_failures == 0


def test_failures_outside_the_window_and_a_success_reset_the_count(sqlite_store: Store, clock: MovingClock) -> None:
    ids = make_identity(sqlite_store, clock, login_max_failures=3, login_window_minutes=10)
    ids.users.add(ADMIN, "an", ["analyst"], password=GOOD)
    for _ in range(2):
        ids.authenticate("an", "wrong password!", "10.0.0.1")
    assert ids.authenticate("an", GOOD, "10.0.0.1").ok  # a success clears the count
    for _ in range(2):
        ids.authenticate("an", "wrong password!", "10.0.0.1")
    clock.advance(minutes=11)  # those two left the window
    assert ids.authenticate("an", "wrong password!", "10.0.0.1").reason == "invalid"
    assert ids.authenticate("an", GOOD, "10.0.0.1").ok


def test_unknown_names_lock_the_same_way(sqlite_store: Store, clock: MovingClock) -> None:
    ids = make_identity(sqlite_store, clock, login_max_failures=3)
    ids.users.add(ADMIN, "an", ["analyst"], password=GOOD)
    known = [ids.authenticate("an", "wrong password!", "10.0.0.1") for _ in range(4)]
    unknown = [ids.authenticate("ghost", "wrong password!", "10.0.0.1") for _ in range(4)]
    assert [(r.reason, r.message) for r in known] == [(r.reason, r.message) for r in unknown]
    assert known[-1].reason == "locked"


def test_the_per_address_throttle_is_a_sliding_window(sqlite_store: Store, clock: MovingClock) -> None:
    ids = make_identity(sqlite_store, clock, address_max_failures=4, address_window_minutes=10, login_max_failures=100)
    ids.users.add(ADMIN, "an", ["analyst"], password=GOOD)
    for i in range(4):  # spraying many names from one address
        assert ids.authenticate(f"user{i}", "wrong password!", "203.0.113.7").reason == "invalid"
        clock.advance(minutes=1)
    throttled = ids.authenticate("an", GOOD, "203.0.113.7")  # even a right password must wait
    assert throttled.reason == "throttled" and throttled.retry_after == START + timedelta(minutes=10)
    assert throttled.message.startswith("too many failed logins")
    assert ids.authenticate("an", GOOD, "203.0.113.8").ok  # another address is not held back
    clock.advance(minutes=6)  # the first failure left the window: one more try
    assert ids.authenticate("an", GOOD, "203.0.113.7").ok
    assert ids.authenticate("x", "wrong password!", "203.0.113.7").reason == "invalid"
    assert ids.authenticate("an", GOOD, "203.0.113.7").reason == "throttled"  # a success does not reset it


def test_ipv6_addresses_are_throttled_by_their_64() -> None:
    assert address_key("2001:db8:1:2::1") == address_key("2001:db8:1:2:ffff::9") == "ip:2001:db8:1:2::/64"
    assert address_key("::ffff:10.0.0.1") == address_key("10.0.0.1") == "ip:10.0.0.1"
    assert address_key("not an address").startswith("ip:")


def test_counters_that_hold_nothing_back_are_purged(sqlite_store: Store, clock: MovingClock) -> None:
    ids = make_identity(sqlite_store, clock)
    ids.authenticate("ghost", "wrong password!", "10.0.0.1")
    assert ids.purge()["login_attempts"] == 0
    clock.advance(minutes=16)
    assert ids.purge()["login_attempts"] == 2  # the name's and the address's counters
