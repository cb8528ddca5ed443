"""The administration pages (/admin): users (add with roles and agency scope, one-time password
shown once, disable, enable, reset the password, roles and scope), roles, agency scopes and API
tokens (secret shown once, revoke) -- through the identity service acting as the logged-in
administrator, every change in the audit trail under their name; nobody else gets in."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from soc.app import App
from soc.web.server import create_app
from tests.api_fixtures import PASSWORD, SHELL, make_root
from tests.scope_helpers import A, B


class Console:
    """A browser-less console session of one user (form login, the page's CSRF token)."""

    def __init__(self, root: App, name: str, roles: list[str], agency: str | None = None,
                 password: str = PASSWORD, create: bool = True) -> None:
        if create:
            root.identity.users.add(SHELL, name, roles, agency=agency, password=password, must_change_password=False)
        self.root, self.name = root, name
        self.client = TestClient(create_app(root), raise_server_exceptions=False)
        answer = self.client.post("/login", data={"name": name, "password": password, "next": "/alerts"},
                                  follow_redirects=False)
        assert answer.status_code == 303, answer.text
        self.location = answer.headers["location"]
        self.csrf = ""

    def get(self, path: str, **options: Any) -> Any:
        answer = self.client.get(path, **options)
        found = re.search(r'name="csrf_token" value="([^"]+)"', answer.text)
        if found:
            self.csrf = found.group(1)
        return answer

    def post(self, path: str, data: dict[str, Any] | None = None, *, csrf: bool = True, **options: Any) -> Any:
        if csrf and not self.csrf:
            self.get("/account/password")
        body = {**(data or {}), **({"csrf_token": self.csrf} if csrf else {})}
        return self.client.post(path, data=body, **options)


def shown_once(html: str, element: str) -> str:
    found = re.search(rf'id="{element}">([^<]+)<', html)
    assert found, f"no #{element} on the page"
    return found.group(1)


def audit_actions(root: App, actor: str) -> list[str]:
    root.base_store.refresh()
    return [r.action for r in root.audit.page(actors=[actor], limit=200).records]


@pytest.fixture
def root(tmp_path: Path) -> App:
    return make_root(tmp_path)


@pytest.fixture
def admin(root: App) -> Console:
    return Console(root, "quantri", ["admin"])


def test_an_administrator_adds_a_user_whose_one_time_password_is_shown_once(root: App, admin: Console) -> None:
    page = admin.get("/admin/users")
    assert page.status_code == 200 and "Thêm người dùng" in page.text and "Người dùng" in page.text
    answer = admin.post("/admin/users", {"name": "Lan", "display_name": "Nguyễn Thị <b>Lan</b>",
                                         "roles": ["analyst", "reporter"], "agency": A, "email": "lan@xa-a.gov.vn"})
    assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
    once = shown_once(answer.text, "one-time-password")
    assert "Nguyễn Thị &lt;b&gt;Lan&lt;/b&gt;" in answer.text and "<b>Lan</b>" not in answer.text
    user = root.identity.users.require("lan")
    assert (user.roles, user.agency, user.must_change_password) == (("analyst", "reporter"), A, True)
    assert once not in admin.get("/admin/users").text and once not in admin.get("/admin/users/lan").text
    lan = Console(root, "lan", [], password=once, create=False)
    assert lan.location == "/account/password"  # the one-time password must be changed first
    assert "user.added" in audit_actions(root, "quantri")


@pytest.mark.parametrize(("form", "says"), [
    ({"name": "bad name!", "roles": ["analyst"]}, "invalid user name"),
    ({"name": "an", "roles": []}, "at least one role"),
    ({"name": "an", "roles": ["wizard"]}, "unknown role"),
    ({"name": "an", "roles": ["analyst"], "agency": "nowhere"}, "unknown agency"),
])
def test_a_refused_user_is_not_added_and_the_form_says_why(root: App, admin: Console, form: dict[str, Any],
                                                           says: str) -> None:
    answer = admin.post("/admin/users", form)
    assert answer.status_code == 400 and says in answer.text and "Chưa thực hiện được" in answer.text
    assert root.identity.users.get("an") is None


def test_roles_scope_disable_enable_and_password_reset(root: App, admin: Console) -> None:
    lan = Console(root, "lan", ["analyst"], agency=A)
    assert lan.get("/account/password").status_code == 200
    answer = admin.post("/admin/users/lan/roles", {"roles": ["analyst", "responder"], "agency": B},
                        follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/admin/users/lan?done=roles"
    assert root.identity.users.require("lan").agency == B
    assert "/login" in lan.get("/account/password", follow_redirects=False).headers["location"]  # session ended
    page = admin.get("/admin/users/lan?done=roles").text
    assert "Sở B" in page and "responder" in page
    admin.post("/admin/users/lan/roles", {"roles": ["analyst"], "agency": ""})
    assert root.identity.users.require("lan").agency is None  # every agency
    assert admin.post("/admin/users/lan/disable", follow_redirects=False).status_code == 303
    assert root.identity.users.require("lan").disabled
    assert TestClient(create_app(root)).post("/login", data={"name": "lan", "password": PASSWORD},
                                             follow_redirects=False).status_code == 401
    admin.post("/admin/users/lan/enable")
    assert not root.identity.users.require("lan").disabled
    reset = admin.post("/admin/users/lan/password")
    once = shown_once(reset.text, "one-time-password")
    assert reset.headers["cache-control"] == "no-store"
    assert root.identity.authenticate("lan", PASSWORD, None).ok is False
    assert root.identity.authenticate("lan", once, None).ok
    refused = admin.post("/admin/users/quantri/disable")
    assert refused.status_code == 400 and "Bạn không thể vô hiệu hóa tài khoản của chính mình" in refused.text
    actions = audit_actions(root, "quantri")
    for action in ("user.roles_changed", "user.disabled", "user.enabled", "user.password_changed"):
        assert action in actions


def test_tokens_are_created_with_their_secret_shown_once_and_revoked(root: App, admin: Console) -> None:
    Console(root, "bot", ["analyst"], agency=A)
    answer = admin.post("/admin/tokens", {"user": "bot", "name": "siem-sync", "scopes": ["alerts:*"],
                                          "lifetime": "30d"})
    assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
    secret = shown_once(answer.text, "token-secret")
    api = TestClient(create_app(root))
    assert api.get("/api/v1/alerts", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    assert api.get("/api/v1/events", headers={"Authorization": f"Bearer {secret}"}).status_code == 403  # scope
    listing = admin.get("/admin/tokens?user=bot").text
    assert "siem-sync" in listing and secret not in listing
    token = root.identity.tokens.find("siem-sync", "bot")
    assert admin.post(f"/admin/tokens/{token.id}/revoke", follow_redirects=False).status_code == 303
    assert api.get("/api/v1/alerts", headers={"Authorization": f"Bearer {secret}"}).status_code == 401
    assert "đã thu hồi" in admin.get("/admin/users/bot").text
    bad = admin.post("/admin/tokens", {"user": "bot", "name": "x", "scopes": [], "lifetime": "30d"})
    assert bad.status_code == 400 and "scope" in bad.text
    assert {"token.created", "token.revoked"} <= set(audit_actions(root, "quantri"))


def test_roles_and_agency_scopes_pages(root: App, admin: Console) -> None:
    Console(root, "ana", ["analyst"], agency=A)
    roles = admin.get("/admin/roles").text
    assert "quản lý người dùng, vai trò và phạm vi đơn vị" in roles and "users:admin" in roles
    scopes = admin.get("/admin/agencies").text
    assert "Xã A" in scopes and 'href="/admin/users/ana"' in scopes


@pytest.mark.parametrize("roles", [["analyst"], ["auditor"], ["responder", "reporter"]])
def test_nobody_but_an_administrator_gets_in(root: App, roles: list[str]) -> None:
    other = Console(root, "khac", roles)
    for path in ("/admin", "/admin/users", "/admin/users/khac", "/admin/roles", "/admin/agencies", "/admin/tokens"):
        answer = other.get(path, follow_redirects=False)
        assert answer.status_code == 403 and "Bạn không có quyền" in answer.text, path
    answer = other.post("/admin/users", {"name": "ke-gian", "roles": ["admin"]})
    assert answer.status_code == 403 and root.identity.users.get("ke-gian") is None
    assert other.post("/admin/users/khac/roles", {"roles": ["admin"]}).status_code == 403
    assert root.identity.users.require("khac").roles == tuple(roles)


def test_a_form_without_the_session_s_csrf_token_is_refused(root: App, admin: Console) -> None:
    answer = admin.post("/admin/users", {"name": "csrf", "roles": ["admin"]}, csrf=False)
    assert answer.status_code == 403 and root.identity.users.get("csrf") is None
    anonymous = TestClient(create_app(root)).get("/admin/users", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")
