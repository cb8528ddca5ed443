"""Helpers for the API tests of playbooks, reports, administration and the audit trail
(tests/test_api_*.py): the application over a real store (SQLite, or a given one such as the
real OpenSearch) with the agency tree of tests/scope_helpers.py, users of any role and agency,
and a client acting as each of them through an API token or a console session."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from soc.access import PERMISSIONS, Principal
from soc.agencies import AgencyTree
from soc.app import App
from soc.config import Settings
from soc.config_auth import AuthSettings
from soc.store.base import Store
from soc.web.deps import CSRF_HEADER
from soc.web.server import API_PREFIX, create_app
from tests.scope_helpers import TREE

#: the cheapest argon2id the settings allow (the tests add many users)
FAST_AUTH = AuthSettings(argon2_time_cost=1, argon2_memory_kib=19456, argon2_parallelism=1)
#: token scopes that leave a user every right of its roles
ALL_SCOPES = sorted({f"{p.split(':', 1)[0]}:*" for p in PERMISSIONS})
PASSWORD = "một mật khẩu đủ dài 42"
SHELL = Principal.local("test-admin")


def app_settings(tmp_path: Path, settings: Settings | None = None) -> Settings:
    """``settings`` (default: plain settings in ``tmp_path``) with the cheap password hashing."""
    base = settings or Settings(data_dir=tmp_path / "data")
    return base.model_copy(update={"auth": FAST_AUTH})


def make_root(tmp_path: Path, settings: Settings | None = None, *, store: Store | None = None,
              tree: AgencyTree = TREE) -> App:
    """The service layer over a SQLite store in ``tmp_path`` (or over ``store``), with ``tree``
    as the agency hierarchy."""
    root = App(app_settings(tmp_path, settings), store_url=f"sqlite:///{tmp_path / 'soc.db'}")
    if store is not None:
        root.__dict__["_base"] = store
    root.__dict__["_agencies"] = tree
    return root


@dataclass
class Api:
    """A client of the application over ``root``: :meth:`as_user` makes a user and answers a
    client acting as them (a token with every scope of the user's roles)."""

    root: App
    client: TestClient = field(init=False)

    def __post_init__(self) -> None:
        self.client = TestClient(create_app(self.root))

    def as_user(self, roles: list[str] | str, agency: str | None = None, name: str | None = None) -> ApiUser:
        name = name or f"u-{uuid.uuid4().hex[:8]}"
        roles = [roles] if isinstance(roles, str) else roles
        self.root.identity.users.add(SHELL, name, roles, agency=agency, password=PASSWORD,
                                     must_change_password=False)
        made = self.root.identity.tokens.create(SHELL, name, "api-test", ALL_SCOPES)
        return ApiUser(self.client, name, {"Authorization": f"Bearer {made.secret}"})

    def logged_in(self, roles: list[str] | str, agency: str | None = None) -> ApiUser:
        """A user logged in to the console (a session cookie and its CSRF token)."""
        name = f"s-{uuid.uuid4().hex[:8]}"
        roles = [roles] if isinstance(roles, str) else roles
        self.root.identity.users.add(SHELL, name, roles, agency=agency, password=PASSWORD,
                                     must_change_password=False)
        client = TestClient(self.client.app)
        answer = client.post(f"{API_PREFIX}/auth/login", json={"name": name, "password": PASSWORD})
        assert answer.status_code == 200, answer.text
        return ApiUser(client, name, {CSRF_HEADER: answer.json()["csrf_token"]})


@dataclass
class ApiUser:
    """Requests as one user: paths are under ``/api/v1``."""

    client: TestClient
    name: str
    headers: dict[str, str]

    def get(self, path: str, **options: Any) -> Any:
        return self.client.get(API_PREFIX + path, headers=self.headers, **options)

    def post(self, path: str, body: Any = None, **options: Any) -> Any:
        return self.client.post(API_PREFIX + path, json=body, headers=self.headers, **options)

    def put(self, path: str, body: Any = None, **options: Any) -> Any:
        return self.client.put(API_PREFIX + path, json=body, headers=self.headers, **options)

    def ok(self, method: str, path: str, body: Any = None, status: int = 200, **options: Any) -> Any:
        """The JSON answer, asserting its status."""
        answer = getattr(self, method)(path, body, **options) if method in ("post", "put") else \
            getattr(self, method)(path, **options)
        assert answer.status_code == status, f"{method.upper()} {path}: {answer.status_code} {answer.text}"
        return answer.json()


def every_page(caller: ApiUser, path: str, limit: int = 2, **params: Any) -> list[Any]:
    """Every item of a list, read page by page (checking that pages never repeat an item)."""
    items: list[Any] = []
    cursor = None
    while True:
        page = caller.ok("get", path, params={**params, "limit": limit, **({"cursor": cursor} if cursor else {})})
        assert len(page["items"]) <= limit
        items += page["items"]
        cursor = page["next"]
        if cursor is None:
            return items
