"""Helpers of the alert queue's tests (tests/test_console_alerts*.py): the seeded service layer of
tests/api_seed_helpers.py, a console client logged in (form login, session cookie) as one of its
users, and readers of the queue page's rows, groups and notices."""

from __future__ import annotations

import html
import re
from typing import Any

from fastapi.testclient import TestClient

from tests.api_seed_helpers import Api

PASSWORD = "a long test password 1"  # the password of tests/api_seed_helpers.py's users


def console(api: Api, user: str) -> TestClient:
    """A console client logged in as ``user`` (one of tests/api_seed_helpers.USERS)."""
    client = TestClient(api["soc"].app, raise_server_exceptions=False)
    answer = client.post("/login", data={"name": user, "password": PASSWORD, "next": "/alerts"}, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    return client


def csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "no CSRF token on the page"
    return found.group(1)


def row_ids(page: str) -> list[str]:
    """The alert ids of the queue's rows, in order."""
    return [html.unescape(i) for i in re.findall(r'<tr class="alert-row" data-id="([^"]+)"', page)]


def total(page: str) -> int:
    """The "N alerts match" count of the page."""
    found = re.search(r'id="total">([\d.,]+)', page)
    assert found, "no total on the page"
    return int(found.group(1).replace(".", "").replace(",", ""))


def groups(page: str) -> list[tuple[int, str, int, str]]:
    """The group rows: (depth, shown value, count, the query string of the group's link)."""
    out = []
    for depth, value, count, query in re.findall(
            r'<tr class="group depth-(\d)">\s*<td class="group-value"><span class="group-field">[^<]*</span>\s*(.*?)</td>\s*'
            r'<td class="num">([\d.,]+)</td>\s*<td class="group-actions">\s*<a href="/alerts\?([^"]*)">', page, re.S):
        shown = html.unescape(re.sub(r"<[^>]+>", "", value)).strip()
        out.append((int(depth), shown, int(count.replace(".", "").replace(",", "")), html.unescape(query)))
    return out


def post_bulk(client: TestClient, page: str, **form: Any) -> Any:
    """Post the queue's bulk form (as the page's buttons do) and answer the redirect."""
    data = {"csrf_token": csrf(page), "back": "/alerts", "q": "", **form}
    return client.post("/alerts-queue/bulk", data=data, follow_redirects=False)


def statuses(api: Api, ids: list[str]) -> dict[str, str]:
    found = {}
    for alert_id in ids:
        doc = api.store.get("alerts", alert_id)
        assert doc is not None
        status = doc.body.get("status") or "open"
        found[alert_id] = "open" if status == "new" else status
    return found
