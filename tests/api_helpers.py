"""Helpers for the HTTP API tests (tests/test_api_*.py; no tests here): an :class:`~soc.app.App`
over a temporary SQLite store (or the session's OpenSearch) with a cheap password hash, the web
application over it, users, sessions, tokens, and requests to every route with dummy path
values.

Agencies are the project's (``ingest/agencies.yml``): :data:`A` and :data:`B` are two departments
of the province, neither above the other.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from soc.access import PERMISSIONS, Principal
from soc.app import App
from soc.config import Settings
from soc.config_auth import AuthSettings
from soc.identity.sessions import Session
from soc.web.server import ApiRoute, api_routes, create_app
from tests.search_helpers import drop, store_url

A, B = "so-tttt", "so-tc"
ROOT = Principal.local("tester")
GOOD = "correct horse battery staple"
START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
#: every resource with ``RESOURCE:*`` (a token with these scopes may do what its user may)
ALL_SCOPES = sorted({f"{p.split(':', 1)[0]}:*" for p in PERMISSIONS})
SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


class MovingClock:
    """A clock the test moves by hand."""

    def __init__(self, at: datetime = START) -> None:
        self.now = at

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def settings_for(folder: Path, **overrides: Any) -> Settings:
    """Settings with the data in ``folder`` and the cheapest argon2id the settings allow."""
    auth = AuthSettings(argon2_time_cost=1, argon2_memory_kib=19456, argon2_parallelism=1)
    return Settings(data_dir=folder, auth=auth, **overrides)


def open_app(kind: str, request: pytest.FixtureRequest, folder: Path, clock: Any = None) -> App:
    """An App over a fresh store of ``kind`` (``sqlite`` or ``opensearch``)."""
    options: dict[str, Any] = {"clock": clock} if clock is not None else {}
    if kind == "sqlite":
        return App(settings_for(folder), **options)
    url = request.getfixturevalue("opensearch_url")
    return App(settings_for(folder), store_url=store_url(url),
               store_options={"prefix": f"t-api-{uuid.uuid4().hex[:10]}", "replicas": 0}, **options)


def close_app(app: App) -> None:
    from soc.store.search import SearchStore

    store = app.base_store
    if isinstance(store, SearchStore):
        drop(store)
    else:
        app.close()


def app_fixture(kind: str, request: pytest.FixtureRequest, folder: Path, clock: Any = None) -> Iterator[App]:
    app = open_app(kind, request, folder, clock)
    try:
        yield app
    finally:
        close_app(app)


def client(root: App, *, tls: bool = False) -> TestClient:
    """A client of the web application over ``root`` (bugs answer 500 instead of raising)."""
    return TestClient(create_app(root, tls=tls), raise_server_exceptions=False,
                      base_url="https://testserver" if tls else "http://testserver")


def add_user(root: App, name: str, roles: list[str], *, agency: str | None = None,
             must_change: bool = False) -> None:
    root.identity.users.add(ROOT, name, roles, agency=agency, password=GOOD, must_change_password=must_change)


def session_of(root: App, name: str) -> Session:
    """A new session of ``name`` (as a login would start it)."""
    user = root.identity.users.require(name)
    return root.identity.sessions.create(user)


def token_of(root: App, name: str, scopes: list[str], token: str | None = None) -> str:
    """A new API token of ``name`` with ``scopes``; returns the secret."""
    return root.identity.tokens.create(ROOT, name, token or f"t{uuid.uuid4().hex[:8]}", scopes).secret


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def cookie_header(app: FastAPI, session: Session, *, csrf: str | None = None) -> dict[str, str]:
    """Headers that present ``session``'s cookie (and ``csrf`` as the CSRF token)."""
    from soc.web.deps import CSRF_HEADER

    name = ("__Host-" if app.state.tls else "") + app.state.root.settings.auth.session_cookie
    headers = {"Cookie": f"{name}={session.id}"}
    if csrf is not None:
        headers[CSRF_HEADER] = csrf
    return headers


def routes(app: FastAPI) -> list[tuple[str, str, ApiRoute]]:
    """``(method, path, route)`` of every API route and method."""
    return [(method, route.path, route) for route in api_routes(app) for method in sorted(route.methods or ())]


def concrete(path: str, value: str = "x") -> str:
    """``path`` with every ``{parameter}`` replaced by ``value``."""
    return re.sub(r"\{[^}]+\}", value, path)


def call(http: TestClient, method: str, path: str, headers: dict[str, str] | None = None,
         **options: Any) -> Any:
    """One request to ``path`` with dummy path values."""
    return http.request(method, concrete(path), headers=headers or {}, **options)
