"""Console pages without a browser: errors on console paths are pages in the user's language
(the API keeps answering problem documents), and they say nothing of other agencies' objects."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from soc.web.server import create_app
from tests.api_fixtures import PASSWORD, SHELL, make_root


def logged_in(tmp_path: Path, roles: list[str]) -> TestClient:
    root = make_root(tmp_path)
    root.identity.users.add(SHELL, "minh", roles, password=PASSWORD, must_change_password=False)
    client = TestClient(create_app(root))
    answer = client.post("/login", data={"name": "minh", "password": PASSWORD, "next": "/alerts"},
                         follow_redirects=False)
    assert answer.status_code == 303, answer.text
    return client


def test_an_unknown_console_page_is_a_vietnamese_page_not_a_problem_document(tmp_path: Path) -> None:
    client = logged_in(tmp_path, ["analyst"])
    answer = client.get("/no-such-page")
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("text/html")
    assert "Không tìm thấy" in answer.text and "minh" in answer.text
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    api = client.get("/api/v1/no-such-thing")
    assert api.status_code == 404 and api.headers["content-type"].startswith("application/problem+json")


def test_a_console_page_without_a_session_sends_to_the_login_page(tmp_path: Path) -> None:
    client = TestClient(create_app(make_root(tmp_path)))
    answer = client.get("/account/password?x=1", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=/account/password%3Fx%3D1"
