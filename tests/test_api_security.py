"""The HTTP API's locks (issue #10, "Trust", Done when), checked on every route the application
has -- including the ones added after this file was written: each route is found by walking the
application (:func:`soc.web.server.api_routes`) and its permission read from its
:func:`~soc.web.deps.need` dependency.

- no credentials -> 401; a token whose scopes, or a user whose roles, lack the route's
  permission -> 403; no route is public or guarded by a login only unless listed here;
- a session that must change its password may only use ``/auth/me``, ``/auth/password`` and
  ``/auth/logout``;
- a change made with the session cookie needs the session's CSRF token (403 without it or with a
  wrong one); a change made with a token needs none.

Session fixation, login answers, lockout and token revocation and scopes are in
tests/test_api_sessions.py; headers and documentation in tests/test_api_headers.py; filter
injection across agencies in tests/test_api_injection.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from soc.access import PERMISSIONS, ROLES
from soc.app import App
from soc.web.server import AUTHENTICATED, PUBLIC, PUBLIC_PATHS, route_access
from tests.api_helpers import (
    ALL_SCOPES,
    SAFE,
    A,
    add_user,
    bearer,
    call,
    client,
    cookie_header,
    routes,
    session_of,
    token_of,
)

#: the routes any authenticated caller may use (no permission): who am I, log out, change my password
PASSWORD_CHANGE = frozenset({"/api/v1/auth/me", "/api/v1/auth/logout", "/api/v1/auth/password"})
#: ... and one's own API tokens (soc/web/api/tokens.py: a user may manage their own; a token principal
#: needs tokens:admin for that, checked by soc.identity.tokens -- tests/test_api_sessions.py)
AUTH_ONLY = PASSWORD_CHANGE | {"/api/v1/tokens/mine", "/api/v1/tokens/mine/{token_id}/revoke"}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    from tests.api_helpers import settings_for

    with App(settings_for(tmp_path_factory.mktemp("api-security"))) as app:
        add_user(app, "boss", ["admin"])
        add_user(app, "agent", ["agency"], agency=A)
        add_user(app, "newbie", ["admin"], must_change=True)
        yield app


@pytest.fixture(scope="module")
def http(root: App) -> TestClient:
    return client(root)


@pytest.fixture(scope="module")
def web(http: TestClient) -> FastAPI:
    return http.app  # type: ignore[return-value]


def guarded(web: FastAPI) -> list[tuple[str, str, str]]:
    """``(method, path, access)`` of every route that needs credentials."""
    return [(m, p, route_access(r)) for m, p, r in routes(web) if p not in PUBLIC_PATHS]


def test_the_walk_finds_the_api(web: FastAPI) -> None:
    found = {(m, p) for m, p, _ in routes(web)}
    assert {("GET", "/api/v1/health"), ("POST", "/api/v1/auth/login"), ("GET", "/api/v1/auth/me"),
            ("POST", "/api/v1/auth/logout"), ("POST", "/api/v1/auth/password")} <= found


def test_no_route_is_public_or_login_only_by_mistake(web: FastAPI) -> None:
    problems = []
    for method, path, route in routes(web):
        access = route_access(route)
        if access == PUBLIC and path not in PUBLIC_PATHS:
            problems.append(f"{method} {path} needs no credentials: add need(PERMISSION) (or list it in "
                            "soc.web.server.PUBLIC_PATHS if it really holds nothing)")
        elif access == AUTHENTICATED and path not in AUTH_ONLY:
            problems.append(f"{method} {path} needs a login but no permission: add need(PERMISSION)")
        elif access not in (PUBLIC, AUTHENTICATED) and access not in PERMISSIONS and not access.startswith("taxii:"):
            problems.append(f"{method} {path} needs {access!r}, which is no permission (soc.access.PERMISSIONS)")
    assert not problems, "\n".join(problems)


def test_every_route_refuses_a_caller_without_credentials(http: TestClient, web: FastAPI) -> None:
    wrong = []
    for method, path, _ in guarded(web):
        for headers in ({}, bearer("soc_000000000000_not-a-token"), {"Authorization": "Basic Ym9zczpwdw=="},
                        {"Cookie": "soc_session=" + "A" * 43}):
            answer = call(http, method, path, headers)
            if answer.status_code != 401 or not answer.headers["content-type"].startswith("application/problem+json"):
                wrong.append(f"{method} {path} with {sorted(headers) or 'nothing'}: {answer.status_code} "
                             f"{answer.text[:200]}")
            elif "WWW-Authenticate" not in answer.headers:
                wrong.append(f"{method} {path}: 401 without WWW-Authenticate")
    assert not wrong, "\n".join(wrong)


def test_every_route_refuses_a_token_scope_or_a_role_without_its_permission(root: App, http: TestClient,
                                                                          web: FastAPI) -> None:
    # tokens of an admin (every right) narrowed to one permission that is not the route's
    narrow = {scope: token_of(root, "boss", [scope]) for scope in ("agencies:read", "audit:read")}
    agent = session_of(root, "agent")  # role agency: the fewest rights
    wrong, checked = [], 0
    for method, path, access in guarded(web):
        if access == AUTHENTICATED:
            continue
        scope = "audit:read" if access == "agencies:read" else "agencies:read"
        answer = call(http, method, path, bearer(narrow[scope]))
        checked += 1
        if answer.status_code != 403 or access not in answer.json().get("detail", ""):
            wrong.append(f"{method} {path} (needs {access}) with a token scoped {scope}: {answer.status_code} "
                         f"{answer.text[:200]}")
        if access not in ROLES["agency"]:
            answer = call(http, method, path, cookie_header(web, agent, csrf=agent.csrf))
            if answer.status_code != 403:
                wrong.append(f"{method} {path} (needs {access}) by a user of role agency: {answer.status_code} "
                             f"{answer.text[:200]}")
    assert not wrong, "\n".join(wrong)
    assert checked > 0


def test_a_session_that_must_change_its_password_may_do_nothing_else(root: App, http: TestClient,
                                                                    web: FastAPI) -> None:
    session = session_of(root, "newbie")
    assert session.must_change_password
    headers = cookie_header(web, session, csrf=session.csrf)
    wrong = []
    for method, path, _ in guarded(web):
        if path in PASSWORD_CHANGE:
            continue
        answer = call(http, method, path, headers)
        if answer.status_code != 403 or "change your password" not in answer.text:
            wrong.append(f"{method} {path}: {answer.status_code} {answer.text[:200]}")
    assert not wrong, "\n".join(wrong)
    me = http.get("/api/v1/auth/me", headers=headers)
    assert me.status_code == 200 and me.json()["must_change_password"] is True
    assert http.post("/api/v1/auth/logout", headers=headers).json() == {"logged_out": True}


def test_changes_with_the_session_cookie_need_the_csrf_token(root: App, http: TestClient, web: FastAPI) -> None:
    changes = [(m, p) for m, p, _ in guarded(web) if m not in SAFE]
    assert ("POST", "/api/v1/auth/logout") in changes
    wrong = []
    for method, path in changes:
        session = session_of(root, "boss")  # a fresh one: some changes end it (logout)
        for token in (None, "", "wrong", session.csrf[:-1], session.csrf + "x"):
            answer = call(http, method, path, cookie_header(web, session, csrf=token))
            if answer.status_code != 403 or "X-CSRF-Token" not in answer.text:
                wrong.append(f"{method} {path} with CSRF token {token!r}: {answer.status_code} {answer.text[:200]}")
        answer = call(http, method, path, cookie_header(web, session, csrf=session.csrf))
        if answer.status_code in (401, 403) or answer.status_code >= 500:
            wrong.append(f"{method} {path} with the right CSRF token: {answer.status_code} {answer.text[:200]}")
    assert not wrong, "\n".join(wrong)


def test_reads_with_the_session_cookie_need_no_csrf_token(root: App, http: TestClient, web: FastAPI) -> None:
    session = session_of(root, "boss")
    wrong = []
    for method, path, _ in guarded(web):
        if method in SAFE:
            answer = call(http, method, path, cookie_header(web, session))
            if answer.status_code in (401, 403) or answer.status_code >= 500:
                wrong.append(f"{method} {path}: {answer.status_code} {answer.text[:200]}")
    assert not wrong, "\n".join(wrong)


def test_changes_with_a_token_need_no_csrf_token(root: App, http: TestClient, web: FastAPI) -> None:
    secret = token_of(root, "boss", ALL_SCOPES)
    wrong = []
    for method, path, _ in guarded(web):
        if method in SAFE:
            continue
        answer = call(http, method, path, bearer(secret))
        refused = answer.status_code == 403 or answer.status_code >= 500 or (
            answer.status_code == 401 and path != "/api/v1/auth/password")  # a token cannot change a password
        if refused:
            wrong.append(f"{method} {path}: {answer.status_code} {answer.text[:200]}")
    assert not wrong, "\n".join(wrong)
    assert http.post("/api/v1/auth/password", headers=bearer(secret),
                     json={"current": "x", "new": "y"}).status_code == 401


def test_a_session_cookie_from_another_site_is_not_enough(root: App, http: TestClient, web: FastAPI) -> None:
    """What a page of another site can make a browser send: the cookie, a form body, no header."""
    session = session_of(root, "boss")
    name = root.settings.auth.session_cookie
    answer = http.post("/api/v1/auth/logout", headers={"Cookie": f"{name}={session.id}",
                                                       "Origin": "https://evil.example"})
    assert answer.status_code == 403
    assert http.get("/api/v1/auth/me", headers=cookie_header(web, session)).status_code == 200  # still logged in
