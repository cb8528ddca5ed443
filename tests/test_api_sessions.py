"""Logging in over the API (issue #10, "Trust", Done when): no session fixation, the same answer
for every kind of wrong login, lockout and its end (with a clock the test moves), logout and
password changes that end sessions, API tokens that stop when revoked or expired and never do
more than their scopes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from soc.app import App
from soc.web.server import route_access
from tests.api_helpers import (
    GOOD,
    ROOT,
    MovingClock,
    add_user,
    bearer,
    call,
    client,
    cookie_header,
    routes,
    session_of,
    settings_for,
    token_of,
)

COOKIE = "soc_session"
LOGIN = "/api/v1/auth/login"


@pytest.fixture
def clock() -> MovingClock:
    return MovingClock()


@pytest.fixture
def root(tmp_path: Path, clock: MovingClock) -> Iterator[App]:
    with App(settings_for(tmp_path), clock=clock) as app:
        add_user(app, "an", ["analyst"], agency="so-tttt")
        add_user(app, "boss", ["admin"])
        yield app


@pytest.fixture
def http(root: App) -> TestClient:
    return client(root)


def login(http: TestClient, name: str = "an", password: str = GOOD, **options: object) -> object:
    return http.post(LOGIN, json={"name": name, "password": password}, **options)  # type: ignore[arg-type]


def set_cookie(answer: object) -> str:
    return answer.headers.get("set-cookie", "")  # type: ignore[attr-defined]


# -- sessions ------------------------------------------------------------------------------------
def test_login_sets_a_new_session_and_never_adopts_one_planted_before(root: App, http: TestClient) -> None:
    planted = "P" * 43  # looks like a session id
    http.cookies.set(COOKIE, planted, domain="testserver.local")
    answer = login(http)
    assert answer.status_code == 200, answer.text
    issued = http.cookies.get(COOKIE)
    assert issued and issued != planted
    cookie = set_cookie(answer).lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie and "secure" not in cookie
    body = answer.json()
    assert body["name"] == "an" and body["csrf_token"] and "agency" in body
    assert client(root).get("/api/v1/auth/me", headers={"Cookie": f"{COOKIE}={planted}"}).status_code == 401
    assert http.get("/api/v1/auth/me").json()["name"] == "an"


def test_an_attackers_own_session_planted_in_a_browser_stays_the_attackers(root: App, http: TestClient) -> None:
    attacker = client(root)
    assert login(attacker, "boss").status_code == 200
    planted = attacker.cookies.get(COOKIE)
    http.cookies.set(COOKIE, planted, domain="testserver.local")  # the victim's browser now carries it
    assert login(http, "an").status_code == 200
    assert http.cookies.get(COOKIE) != planted
    assert http.get("/api/v1/auth/me").json()["name"] == "an"
    assert attacker.get("/api/v1/auth/me").json()["name"] == "boss"  # not upgraded to the victim


def test_logout_ends_the_session_and_the_old_cookie_is_refused(root: App, http: TestClient) -> None:
    csrf = login(http).json()["csrf_token"]
    old = http.cookies.get(COOKIE)
    answer = http.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf})
    assert answer.status_code == 200 and answer.json() == {"logged_out": True}
    assert f'{COOKIE}=""' in set_cookie(answer) or "max-age=0" in set_cookie(answer).lower()
    replay = client(root)
    assert replay.get("/api/v1/auth/me", headers={"Cookie": f"{COOKIE}={old}"}).status_code == 401
    assert replay.post("/api/v1/auth/logout", headers={"Cookie": f"{COOKIE}={old}",
                                                       "X-CSRF-Token": csrf}).status_code == 401


def test_a_password_change_ends_the_old_session_and_starts_a_new_one(root: App, http: TestClient) -> None:
    other = client(root)
    assert login(other).status_code == 200
    csrf = login(http).json()["csrf_token"]
    old = http.cookies.get(COOKIE)
    new = "another horse battery staple"
    answer = http.post("/api/v1/auth/password", json={"current": GOOD, "new": new}, headers={"X-CSRF-Token": csrf})
    assert answer.status_code == 200, answer.text
    assert http.cookies.get(COOKIE) != old and answer.json()["csrf_token"] != csrf
    assert http.get("/api/v1/auth/me").status_code == 200
    assert client(root).get("/api/v1/auth/me", headers={"Cookie": f"{COOKIE}={old}"}).status_code == 401
    assert other.get("/api/v1/auth/me").status_code == 401  # every other session of the user too
    weak = http.post("/api/v1/auth/password", json={"current": new, "new": "short"},
                     headers={"X-CSRF-Token": answer.json()["csrf_token"]})
    assert weak.status_code == 400 and weak.headers["content-type"].startswith("application/problem+json")


def test_a_must_change_password_login_can_change_it_and_then_work(root: App, http: TestClient) -> None:
    created = root.identity.users.add(ROOT, "newbie", ["analyst"])  # a one-time password
    assert created.one_time_password
    body = login(http, "newbie", created.one_time_password).json()
    assert body["must_change_password"] is True
    assert http.get("/api/v1/alerts").status_code == 403
    changed = http.post("/api/v1/auth/password", json={"current": created.one_time_password, "new": GOOD + "!"},
                        headers={"X-CSRF-Token": body["csrf_token"]})
    assert changed.status_code == 200 and changed.json()["must_change_password"] is False
    assert http.get("/api/v1/auth/me").json()["must_change_password"] is False


def test_a_session_expires_when_idle(root: App, http: TestClient, clock: MovingClock) -> None:
    assert login(http).status_code == 200
    clock.advance(minutes=root.settings.auth.session_idle_minutes + 1)
    assert http.get("/api/v1/auth/me").status_code == 401


# -- login answers and lockout -------------------------------------------------------------------
def test_every_wrong_login_gets_the_same_answer(root: App, http: TestClient) -> None:
    add_user(root, "gone", ["analyst"])
    root.identity.users.disable(ROOT, "gone")
    answers = [login(http, "an", "wrong password here"), login(http, "nobody", GOOD), login(http, "gone", GOOD),
               login(http, "", GOOD), login(http, "an", "x" * 2000)]
    assert [a.status_code for a in answers] == [401, 401, 401, 422, 422]
    assert answers[0].json() == answers[1].json() == answers[2].json()
    assert "set-cookie" not in answers[0].headers and not http.cookies


def test_a_login_is_json_only_so_a_form_of_another_site_cannot_log_a_browser_in(http: TestClient) -> None:
    body = json.dumps({"name": "an", "password": GOOD})
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        answer = http.post(LOGIN, content=body, headers={"Content-Type": content_type})
        assert answer.status_code in (415, 422), (content_type, answer.status_code, answer.text)
        assert not http.cookies


@pytest.mark.parametrize("name", ["an", "nobody"])
def test_repeated_failures_lock_the_name_then_it_unlocks(root: App, http: TestClient, clock: MovingClock,
                                                        name: str) -> None:
    limit = root.settings.auth.login_max_failures
    answers = [login(http, name, "wrong password here") for _ in range(limit)]
    assert [a.status_code for a in answers] == [401] * (limit - 1) + [429]
    locked = answers[-1]
    wait = int(locked.headers["Retry-After"])
    assert wait == int(root.settings.auth.lockout_minutes * 60)
    assert locked.json()["detail"] == "too many failed logins: try again in 15 minutes"
    assert locked.headers["content-type"].startswith("application/problem+json")
    clock.advance(minutes=5)
    again = login(http, name, GOOD)  # even the right password waits, and says nothing more
    assert again.status_code == 429 and again.json()["detail"] == "too many failed logins: try again in 10 minutes"
    assert int(again.headers["Retry-After"]) == wait - 300
    clock.advance(seconds=wait - 300 + 1)
    after = login(http, name, GOOD)
    assert after.status_code == (200 if name == "an" else 401)


def test_a_locked_known_name_and_a_locked_unknown_name_answer_alike(root: App, http: TestClient) -> None:
    limit = root.settings.auth.login_max_failures
    known = [login(http, "an", "wrong password here") for _ in range(limit + 1)]
    unknown = [login(http, "nobody", "wrong password here") for _ in range(limit + 1)]
    assert [(a.status_code, a.json(), a.headers.get("Retry-After")) for a in known] == \
        [(a.status_code, a.json(), a.headers.get("Retry-After")) for a in unknown]


# -- API tokens ----------------------------------------------------------------------------------
def test_a_revoked_or_expired_token_or_one_of_a_disabled_user_is_refused(root: App, http: TestClient,
                                                                         clock: MovingClock) -> None:
    secret = token_of(root, "an", ["alerts:read"], "ci")
    me = http.get("/api/v1/auth/me", headers=bearer(secret))
    assert me.status_code == 200 and me.json()["kind"] == "token" and me.json()["permissions"] == ["alerts:read"]
    root.identity.tokens.revoke(ROOT, "ci", "an")
    revoked = http.get("/api/v1/auth/me", headers=bearer(secret))
    assert revoked.status_code == 401 and "revoked" in revoked.json()["detail"]

    short = root.identity.tokens.create(ROOT, "an", "short", ["alerts:read"], lifetime=None).secret
    assert http.get("/api/v1/auth/me", headers=bearer(short)).status_code == 200
    clock.advance(days=root.settings.auth.token_default_days, seconds=1)
    assert http.get("/api/v1/auth/me", headers=bearer(short)).status_code == 401

    fresh = token_of(root, "an", ["alerts:read"], "fresh")
    root.identity.users.disable(ROOT, "an")
    assert http.get("/api/v1/auth/me", headers=bearer(fresh)).status_code == 401


def test_a_token_does_only_what_its_scopes_name(root: App, http: TestClient) -> None:
    """An analyst may write alerts; the analyst's token scoped alerts:read may not -- nor do
    anything else the analyst's roles allow."""
    secret = token_of(root, "an", ["alerts:read"])
    web = http.app
    by_access: dict[str, list[tuple[str, str]]] = {}
    for method, path, route in routes(web):  # type: ignore[arg-type]
        by_access.setdefault(route_access(route), []).append((method, path))
    writes = by_access.get("alerts:write", [])
    assert writes, "the alerts routes are not registered (soc/web/api/__init__.py ROUTERS)"
    for method, path in writes + by_access.get("incidents:write", []) + by_access.get("events:read", []):
        answer = call(http, method, path, bearer(secret))
        assert answer.status_code == 403, (method, path, answer.status_code, answer.text)
        assert "needs" in answer.json()["detail"]
    assert http.get("/api/v1/alerts", headers=bearer(secret)).status_code == 200
    # the same user's session may write alerts (the role allows it): the scope narrowed the token only
    session = session_of(root, "an")
    method, path = writes[0]
    answer = call(http, method, path, cookie_header(web, session, csrf=session.csrf))  # type: ignore[arg-type]
    assert answer.status_code not in (401, 403), answer.text


def test_a_token_cannot_make_itself_a_wider_token(root: App, http: TestClient) -> None:
    secret = token_of(root, "an", ["alerts:read"])
    made = http.post("/api/v1/tokens/mine", headers=bearer(secret), json={"name": "wider", "scopes": ["alerts:*"]})
    assert made.status_code == 403, made.text
    assert [t.name for t in root.identity.tokens.list("an") if t.name == "wider"] == []
