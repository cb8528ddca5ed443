"""Sessions and API tokens (issue #10, item 1) on SQLite and on the real OpenSearch: a login
always gets a fresh session id, a presented id is never adopted, sessions end when idle, after
their absolute lifetime, on logout and when their user is disabled or gets a new password or
roles; CSRF tokens; API tokens are stored as digests, narrowed by scopes to at most their
user's rights, and stop at expiry, revocation and when their user is disabled."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from soc.access import Forbidden
from soc.identity.bootstrap import ensure_first_admin
from soc.identity.model import (
    ATTEMPTS,
    SESSIONS,
    TOKENS,
    USERS,
    IdentityError,
    PasswordRejected,
    TokenNotFound,
)
from soc.identity.service import Identity
from soc.identity.sessions import COOKIE_ATTRIBUTES, check_csrf, cookie_name, csrf_token
from soc.identity.tokens import parse_lifetime
from soc.store.base import Store
from soc.store.sqlite import SQLiteStore
from tests.search_helpers import drop, open_search_store
from tests.test_identity import (
    ADMIN,
    GOOD,
    START,
    AuditLog,
    MovingClock,
    agency_tree,
    cheap_passwords,
    make_identity,
)

COLLECTIONS = (USERS, SESSIONS, TOKENS, ATTEMPTS)


@pytest.fixture(params=["sqlite", pytest.param("opensearch", marks=pytest.mark.search)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        sqlite = SQLiteStore(tmp_path / "soc.db")
        yield sqlite
        sqlite.close()
        return
    search = open_search_store(request.getfixturevalue("opensearch_url"), request.getfixturevalue("unique_name"))
    yield search
    drop(search)


@pytest.fixture
def clock() -> MovingClock:
    return MovingClock()


@pytest.fixture
def audit() -> AuditLog:
    return AuditLog()


@pytest.fixture
def ids(store: Store, clock: MovingClock, audit: AuditLog) -> Identity:
    identity = make_identity(store, clock, audit, session_idle_minutes=30, session_absolute_hours=12)
    identity.users.add(ADMIN, "an", ["analyst"], password=GOOD)
    identity.users.add(ADMIN, "yte", ["agency"], agency="so-yte", password=GOOD)
    return identity


def stored_text(store: Store) -> str:
    """Every document of the identity collections, as one text."""
    store.refresh()
    return json.dumps([d.body for c in COLLECTIONS for d in store.iter_all(c)], ensure_ascii=False)


# -- the first run ----------------------------------------------------------------------------------
def test_first_run_admin_once(store: Store, clock: MovingClock) -> None:
    shown: list[str] = []
    password = ensure_first_admin(store, shown.append, clock=clock, passwords=cheap_passwords())
    assert password is not None and len(shown) == 1
    assert ensure_first_admin(store, shown.append, clock=clock, passwords=cheap_passwords()) is None
    ids = make_identity(store, clock)
    result, session = ids.login("admin", password, "127.0.0.1")
    assert result.ok and result.must_change_password and session is not None and session.must_change_password
    assert password not in stored_text(store) and len(shown) == 1


# -- sessions ----------------------------------------------------------------------------------------
def test_login_starts_a_session_whose_lookup_gives_the_principal(ids: Identity) -> None:
    result, session = ids.login("an", GOOD, "10.0.0.1")
    assert result.ok and session is not None and len(session.id) >= 43
    found = ids.session(session.id)
    assert found is not None and found.principal == result.principal and found.user == "an"
    assert ids.sessions.principal(session.id) == result.principal
    assert found.expires_at == START + timedelta(minutes=30)
    assert session.id not in stored_text(ids.store)  # only its digest is stored
    failed, none = ids.login("an", "wrong password!", "10.0.0.1")
    assert not failed.ok and none is None


def test_no_session_fixation(ids: Identity) -> None:
    chosen = secrets.token_urlsafe(32)  # an id an attacker planted in the victim's browser
    assert ids.session(chosen) is None and ids.sessions.principal(chosen) is None
    _, first = ids.login("an", GOOD, "10.0.0.1")
    _, second = ids.login("an", GOOD, "10.0.0.1")
    assert first and second and len({chosen, first.id, second.id}) == 3  # every login: a fresh id
    assert ids.session(chosen) is None
    for junk in ("", "short", "x" * 500, "../../etc", None):
        assert ids.session(junk) is None
    rotated = ids.sessions.rotate(first.id)
    assert rotated is not None and rotated.id != first.id and rotated.csrf != first.csrf
    assert ids.session(first.id) is None and ids.session(rotated.id) is not None
    assert rotated.created_at == first.created_at  # the absolute timeout still counts from the login


def test_idle_timeout(ids: Identity, clock: MovingClock, audit: AuditLog) -> None:
    _, session = ids.login("an", GOOD, "10.0.0.1")
    assert session is not None
    for _ in range(3):  # used every 29 minutes: alive
        clock.advance(minutes=29)
        assert ids.session(session.id) is not None
    clock.advance(minutes=30)
    assert ids.session(session.id) is None
    assert ("an", "session.expired", {"user": "an", "reason": "idle"}) in audit.records


def test_absolute_timeout(ids: Identity, clock: MovingClock, audit: AuditLog) -> None:
    _, session = ids.login("an", GOOD, "10.0.0.1")
    assert session is not None
    for _ in range(35):  # 11 h 40 min of steady use
        clock.advance(minutes=20)
        assert ids.session(session.id) is not None
    clock.advance(minutes=20)
    assert ids.session(session.id) is None
    assert ("an", "session.expired", {"user": "an", "reason": "absolute"}) in audit.records


def test_logout(ids: Identity, audit: AuditLog) -> None:
    _, session = ids.login("an", GOOD, "10.0.0.1")
    assert session is not None
    assert ids.logout(session.id) and ids.session(session.id) is None
    assert not ids.logout(session.id)
    assert ("an", "logout", {"user": "an"}) in audit.records


@pytest.mark.parametrize("change", ["disable", "password", "own password", "roles"])
def test_disabling_or_new_credentials_end_the_sessions(ids: Identity, change: str) -> None:
    _, session = ids.login("an", GOOD, "10.0.0.1")
    _, other = ids.login("yte", GOOD, "10.0.0.2")
    assert session is not None and other is not None
    if change == "disable":
        ids.users.disable(ADMIN, "an")
    elif change == "password":
        ids.users.set_password(ADMIN, "an", GOOD + "-new")
    elif change == "own password":
        ids.users.change_own_password("an", GOOD, GOOD + "-new")
    else:
        ids.users.set_roles(ADMIN, "an", ["analyst", "responder"])
    assert ids.session(session.id) is None
    assert ids.session(other.id) is not None  # other users keep theirs
    if change == "disable":
        ids.users.enable(ADMIN, "an")
        assert ids.session(session.id) is None  # enabling again revives nothing


def test_changing_the_password_rotates_the_session(ids: Identity, clock: MovingClock) -> None:
    ids.users.set_password(ADMIN, "an", GOOD)
    _, session = ids.login("an", GOOD, "10.0.0.1")
    _, elsewhere = ids.login("an", GOOD, "10.0.0.2")
    assert session is not None and elsewhere is not None
    refused, none = ids.change_password(session, "not the password", "a new good passphrase", "10.0.0.1")
    assert refused.reason == "invalid" and none is None and ids.session(session.id) is not None
    result, new = ids.change_password(session, GOOD, "a new good passphrase", "10.0.0.1")
    assert result.ok and new is not None and new.id != session.id and not new.must_change_password
    assert ids.session(session.id) is None and ids.session(elsewhere.id) is None and ids.session(new.id) is not None
    with pytest.raises(PasswordRejected):
        ids.change_password(new, "a new good passphrase", "short", "10.0.0.1")


def test_a_session_follows_the_users_current_agency(ids: Identity) -> None:
    _, session = ids.login("yte", GOOD, "10.0.0.1")
    assert session is not None and session.principal.agency == "so-yte"
    assert session.principal.scope(agency_tree()).agencies == {"so-yte", "benh-vien", "so-cu"}
    assert not session.principal.can("alerts:write")


def test_csrf_tokens(ids: Identity) -> None:
    _, session = ids.login("an", GOOD, "10.0.0.1")
    _, other = ids.login("an", GOOD, "10.0.0.1")
    assert session is not None and other is not None
    token = csrf_token(session)
    assert len(token) >= 43 and token != session.id
    looked_up = ids.session(session.id)
    assert check_csrf(looked_up, token)
    assert not check_csrf(looked_up, csrf_token(other)) and not check_csrf(looked_up, "")
    assert not check_csrf(looked_up, None) and not check_csrf(None, token) and not check_csrf(looked_up, token + "é")


def test_cookie_name_and_attributes() -> None:
    assert cookie_name() == "soc_session" and cookie_name("soc_session", tls=True) == "__Host-soc_session"
    assert COOKIE_ATTRIBUTES == {"httponly": True, "samesite": "strict", "path": "/"}


def test_expired_sessions_are_purged(ids: Identity, clock: MovingClock) -> None:
    for _ in range(3):
        ids.login("an", GOOD, "10.0.0.1")
    clock.advance(minutes=31)
    assert ids.purge()["sessions"] == 3
    ids.store.refresh()
    assert list(ids.store.iter_all(SESSIONS)) == []


# -- API tokens --------------------------------------------------------------------------------------
def test_a_token_is_shown_once_and_stored_as_a_digest(ids: Identity, audit: AuditLog) -> None:
    created = ids.tokens.create(ADMIN, "an", "ci", ["alerts:read"])
    secret = created.secret
    assert secret.startswith(f"soc_{created.token.id}_") and created.token.prefix in secret
    assert secret not in stored_text(ids.store) and secret not in repr(created)
    assert secret.split("_", 2)[2] not in stored_text(ids.store)
    principal = ids.resolve_token(secret)
    assert principal is not None and (principal.name, principal.kind, principal.token) == ("an", "token", "ci")
    assert principal.label == "an (token ci)"
    assert ("local:root", "token.created", {"user": "an", "token": "ci", "id": created.token.id,
                                            "scopes": ["alerts:read"],
                                            "expires_at": "2026-05-31T08:00:00.000Z"}) in audit.records
    assert ids.resolve_token(secret[:-1] + ("A" if secret[-1] != "A" else "B")) is None  # same id, other secret
    assert ids.resolve_token("soc_000000000000_" + "a" * 43) is None and ids.resolve_token("") is None
    assert ids.resolve_token(None) is None


def test_scopes_narrow_a_token_to_at_most_its_users_rights(ids: Identity) -> None:
    analyst = ids.resolve_token(ids.tokens.create(ADMIN, "an", "read", ["alerts:read"]).secret)
    assert analyst is not None and analyst.can("alerts:read") and not analyst.can("alerts:write")
    with pytest.raises(Forbidden):
        analyst.require("alerts:write")
    agency = ids.resolve_token(ids.tokens.create(ADMIN, "yte", "reports", ["reports:*", "users:admin"]).secret)
    assert agency is not None and agency.can("reports:read")
    assert not agency.can("reports:write") and not agency.can("reports:send") and not agency.can("users:admin")
    assert agency.scope(agency_tree()).agencies == {"so-yte", "benh-vien", "so-cu"}
    taxii = ids.resolve_token(ids.tokens.create(ADMIN, "an", "feed", ["taxii:iocs:read"]).secret)
    assert taxii is not None and taxii.can("taxii:iocs:read") and not taxii.can("taxii:iocs:write")
    assert not taxii.can("alerts:read")
    with pytest.raises(IdentityError, match="unknown token scope"):
        ids.tokens.create(ADMIN, "an", "bad", ["alerts:delete"])
    with pytest.raises(IdentityError, match="at least one --scope"):
        ids.tokens.create(ADMIN, "an", "none", [])


def test_tokens_expire(ids: Identity, clock: MovingClock) -> None:
    secret = ids.tokens.create(ADMIN, "an", "short", ["alerts:read"], parse_lifetime("12h")).secret
    default = ids.tokens.create(ADMIN, "an", "default", ["alerts:read"])
    assert default.token.expires_at == START + timedelta(days=90)
    clock.advance(hours=11, minutes=59)
    assert ids.resolve_token(secret) is not None
    clock.advance(minutes=1)
    assert ids.resolve_token(secret) is None and ids.resolve_token(default.secret) is not None
    assert {t.name: t.status(clock()) for t in ids.tokens.list("an")} == {"short": "expired", "default": "active"}
    with pytest.raises(IdentityError, match="at most 366 days"):
        ids.tokens.create(ADMIN, "an", "long", ["alerts:read"], parse_lifetime("400d"))
    assert parse_lifetime("2w") == timedelta(days=14)
    for bad in ("never", "0d", "5m", "soon"):
        with pytest.raises(IdentityError):
            parse_lifetime(bad)


def test_revoked_tokens_stop(ids: Identity, audit: AuditLog) -> None:
    first = ids.tokens.create(ADMIN, "an", "ci", ["alerts:read"])
    second = ids.tokens.create(ADMIN, "an", "other", ["alerts:read"])
    with pytest.raises(IdentityError, match="live token 'ci' already"):
        ids.tokens.create(ADMIN, "an", "ci", ["alerts:read"])
    revoked = ids.tokens.revoke(ADMIN, "ci", "an")
    assert revoked.revoked_at is not None and ids.resolve_token(first.secret) is None
    assert ("local:root", "token.revoked", {"user": "an", "token": "ci", "id": first.token.id}) in audit.records
    ids.tokens.revoke(ADMIN, second.token.prefix)  # by its prefix (or id)
    assert ids.resolve_token(second.secret) is None
    again = ids.tokens.create(ADMIN, "an", "ci", ["alerts:read"])  # the name is free again
    assert ids.resolve_token(again.secret) is not None
    with pytest.raises(TokenNotFound):
        ids.tokens.revoke(ADMIN, "nope")


def test_a_disabled_users_tokens_stop(ids: Identity) -> None:
    secret = ids.tokens.create(ADMIN, "an", "ci", ["alerts:read"]).secret
    ids.users.disable(ADMIN, "an")
    assert ids.resolve_token(secret) is None
    with pytest.raises(IdentityError, match="disabled"):
        ids.tokens.create(ADMIN, "an", "new", ["alerts:read"])
    ids.users.enable(ADMIN, "an")
    assert ids.resolve_token(secret) is not None


def test_a_token_follows_its_users_current_roles(ids: Identity) -> None:
    secret = ids.tokens.create(ADMIN, "an", "ci", ["alerts:*"]).secret
    ids.users.set_roles(ADMIN, "an", ["auditor"])
    principal = ids.resolve_token(secret)
    assert principal is not None and principal.can("alerts:read") and not principal.can("alerts:write")


def test_users_manage_their_own_tokens_only(ids: Identity) -> None:
    an = ids.users.require("an").principal()
    own = ids.tokens.create(an, "an", "mine", ["alerts:read"])
    with pytest.raises(Forbidden, match="tokens:admin"):
        ids.tokens.create(an, "yte", "theirs", ["alerts:read"])
    theirs = ids.tokens.create(ADMIN, "yte", "theirs", ["alerts:read"])
    with pytest.raises(Forbidden):
        ids.tokens.revoke(an, theirs.token.id)
    ids.tokens.revoke(an, own.token.id)
    token_principal = ids.resolve_token(theirs.secret)
    assert token_principal is not None
    with pytest.raises(Forbidden):  # a token does not make tokens
        ids.tokens.create(token_principal, "yte", "more", ["alerts:read"])


def test_last_use_is_recorded_at_most_every_few_minutes(ids: Identity, clock: MovingClock) -> None:
    created = ids.tokens.create(ADMIN, "an", "ci", ["alerts:read"])
    assert ids.tokens.find(created.token.id).last_used_at is None
    ids.resolve_token(created.secret)
    assert ids.tokens.find(created.token.id).last_used_at == START
    clock.advance(minutes=1)
    ids.resolve_token(created.secret)
    assert ids.tokens.find(created.token.id).last_used_at == START
    clock.advance(minutes=5)
    ids.resolve_token(created.secret)
    assert ids.tokens.find(created.token.id).last_used_at == clock()
