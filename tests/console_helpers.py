"""Helpers for the console tests of incidents, reports, playbooks and tasks
(tests/test_console_incidents*.py, test_console_playbooks.py, test_console_tasks.py): a console
user logged in through the login form, whose forms carry the CSRF token read from the page as a
browser would."""

from __future__ import annotations

import html
import re
import uuid
from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient

from soc.app import App
from soc.web.server import create_app
from tests.api_fixtures import PASSWORD, SHELL

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class ConsoleUser:
    """A browser-like client of the console, logged in as ``name``."""

    client: TestClient
    name: str
    csrf: str = ""

    def get(self, path: str, **options: Any) -> Any:
        answer = self.client.get(path, **options)
        found = CSRF.search(answer.text)
        if found:
            self.csrf = html.unescape(found.group(1))
        return answer

    def post(self, path: str, data: dict[str, Any] | list[tuple[str, str]] | None = None, *,
             csrf: bool = True, **options: Any) -> Any:
        """Post a form (with the page's CSRF token, like the hidden field); redirects are not
        followed, so the test sees where a form leads."""
        if not self.csrf:
            self.get("/account/password")
        fields = list(data.items()) if isinstance(data, dict) else list(data or [])
        form: dict[str, list[str]] = {}
        for key, value in fields:
            form.setdefault(key, []).extend(value if isinstance(value, list) else [value])
        if csrf:
            form["csrf_token"] = [self.csrf]
        return self.client.post(path, data=form, follow_redirects=False, **options)


def console_user(root: App, roles: list[str] | str, agency: str | None = None, name: str | None = None,
                 email: str | None = None) -> ConsoleUser:
    """A user with ``roles`` (and ``agency``) logged in to the console through its login form."""
    name = name or f"c-{uuid.uuid4().hex[:8]}"
    root.identity.users.add(SHELL, name, [roles] if isinstance(roles, str) else roles, agency=agency,
                            password=PASSWORD, must_change_password=False, email=email)
    client = TestClient(create_app(root))
    answer = client.post("/login", data={"name": name, "password": PASSWORD, "next": "/incidents"},
                         follow_redirects=False)
    assert answer.status_code == 303, answer.text
    user = ConsoleUser(client, name)
    user.get("/account/password")
    assert user.csrf
    return user


def audit_actions(root: App, actor: str) -> list[tuple[str, str | None]]:
    """``(action, target)`` of every audit record made by ``actor``, oldest first."""
    root.base_store.refresh()
    return [(r.action, str(r.target) if r.target else None) for r in root.audit.records() if r.actor.name == actor]
