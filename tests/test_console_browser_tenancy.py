"""Browser test 2 of the console (issue #11): a user of agency X sees none of agency Y's alerts,
incidents, events, tasks, handovers or dashboard figures -- on the pages, in searches, in the
exports, and when typing Y's URLs (the 404 page, with nothing of Y in the HTML). On both stores,
in Debian's chromium through Playwright at 1366×768.

X is ``xa-a`` (Xã A, with its child ``thon-a``) and Y is ``so-b`` (Sở B) of tests/scope_helpers.py.
Every value of Y's data is distinctive (host names, user names, messages, rule title, titles,
ids), so that any of it appearing anywhere in a page of X's user is a leak; X's own data must
appear on the same pages, so an empty page cannot pass for a scoped one.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from soc.access import Principal
from soc.handover import Handovers
from soc.model import iso
from tests.api_seed_helpers import A, Api, B, api_fixture
from tests.scope_helpers import STORE_KINDS

PASSWORD = "a long test password 1"  # tests/api_seed_helpers.py's users: ana (analyst of A), bob (of B)
X_HOST, Y_HOST = "x-web-01", "y-ledger-db-77"
X_USER, Y_USER = "nguyen.van.x", "tran.thi.yen.koala"
Y_RULE = "Y-only rule PANGOLIN exfiltration"
Y_MESSAGE = "y-secret-marker WOMBAT transfer to 198.51.100.77"
Y_INCIDENT = "Sự cố của Sở B: WOMBAT"
Y_TASK = "Nhiệm vụ của Sở B: QUOKKA"
Y_NOTE = "Giao ca Sở B: PANGOLIN"


def _now() -> datetime:
    return datetime.now(UTC)


def _event(agency: str, i: int, host: str, user: str, message: str) -> dict[str, Any]:
    return {"_id": f"ev-{agency}-{i}", "@timestamp": iso(_now() - timedelta(minutes=40 - i)),
            "event.dataset": "linux.auth", "host.name": host, "user.name": user, "source.ip": f"10.9.{i}.1",
            "organization.id": agency, "message": message, "event.original": message}


def _alert(agency: str, i: int, host: str, user: str, rule: tuple[str, str], event_id: str) -> dict[str, Any]:
    at = _now() - timedelta(minutes=30 - i)
    return {"id": f"al-{agency}-{i:03d}", "kind": "event", "status": "new", "agency": agency,
            "rule": {"id": rule[0], "title": rule[1], "level": "high", "version": 1, "author": "SOC tỉnh",
                     "description": f"{rule[1]} (test)"},
            "first_seen": iso(at), "last_seen": iso(at), "detected_at": iso(at + timedelta(seconds=30)),
            "@timestamp": iso(at), "event_ids": [event_id], "event_count": 1, "group": {}, "group_key": "",
            "entities": {"host.name": [host], "user.name": [user], "source.ip": [f"10.9.{i}.1"]}}


@pytest.fixture(scope="module", params=STORE_KINDS)
def tenants(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    for api in api_fixture(request, tmp_path_factory.mktemp("tenancy"), seeded=False, clock=_now):
        app, store = api.app, api.store
        events = [_event(A, i, X_HOST, X_USER, f"x login ok {i}") for i in range(3)]
        events += [_event(B, i, Y_HOST, Y_USER, f"{Y_MESSAGE} {i}") for i in range(4)]
        assert store.write_events(events).rejected == []
        x_alerts = [_alert(A, i, X_HOST, X_USER, ("r-x", "SSH brute force"), f"ev-{A}-{i}") for i in range(3)]
        y_alerts = [_alert(B, i, Y_HOST, Y_USER, ("r-y", Y_RULE), f"ev-{B}-{i}") for i in range(4)]
        for body in x_alerts + y_alerts:
            assert store.create("alerts", body["id"], body)
        x_incident = app.incidents.open_from_alerts(x_alerts[:2], actor="seed", title="Sự cố của Xã A")
        y_incident = app.incidents.open_from_alerts(y_alerts[:2], actor="seed", title=Y_INCIDENT)
        seed = Principal.local("seed")
        app.acting_as(seed).tasks.create(seed, agency=B, title=Y_TASK, incident_id=y_incident.id)
        app.acting_as(seed).tasks.create(seed, agency=A, title="Nhiệm vụ của Xã A", incident_id=x_incident.id)
        bob = Principal("bob", frozenset({"analyst"}), B)
        handover = Handovers(app.acting_as(bob))
        y_handover = handover.save(handover.window(), note=Y_NOTE, sign=True)
        store.refresh()
        yield {"api": api, "x_alert": x_alerts[0]["id"], "x_incident": x_incident.id,
               "y": {"alert": y_alerts[0]["id"], "incident": y_incident.id, "event": f"ev-{B}-0",
                     "handover": y_handover["id"]},
               "markers": [Y_HOST, Y_USER, Y_RULE, "WOMBAT", "QUOKKA", "PANGOLIN", "198.51.100.77",
                           y_incident.id, *(a["id"] for a in y_alerts), *(f"ev-{B}-{i}" for i in range(4))]}


def _leaks(html: str, markers: list[str]) -> list[str]:
    return [m for m in markers if m.lower() in html.lower()]


def test_a_user_of_agency_x_sees_nothing_of_agency_y(tenants: dict[str, Any], serve_console, browser_page,
                                                     screenshot) -> None:
    api: Api = tenants["api"]
    markers: list[str] = tenants["markers"]
    site = browser_page(serve_console(api.app))
    site.login("ana", PASSWORD)
    page = site.page
    seen: dict[str, str] = {}

    def visit(path: str, *, status: int = 200, extra: tuple[str, ...] = (), asked: str = "") -> str:
        """The page at ``path``; ``asked``: a value of Y typed into the URL (a search echoes it)."""
        answer = site.goto(path)
        assert answer is not None and answer.status == status, f"{path}: {answer.status if answer else None}"
        html = page.content()
        leaked = [m for m in _leaks(html, markers + list(extra)) if not asked or m.lower() not in asked.lower()]
        assert not leaked, f"{path} shows agency Y's {leaked}"
        assert page.evaluate("document.documentElement.scrollWidth") <= 1366, f"{path} is wider than the screen"
        seen[path] = html
        return html

    # X's own data is there ...
    assert X_HOST in visit("/alerts") and "SSH brute force" in seen["/alerts"]
    visit("/alerts?group=agency&group=rule.title&group=host.name")
    assert "SSH brute force" not in visit(f"/alerts?text={Y_HOST}", asked=Y_HOST)
    assert "SSH brute force" not in visit(f"/alerts?host={Y_HOST}", asked=Y_HOST)
    asked = site.goto(f"/alerts?agency={B}")  # another agency's filter: refused or empty, never Y's alerts
    assert asked is not None and asked.status in (200, 400) and not _leaks(page.content(), markers)
    assert X_HOST in visit(f"/alerts/{tenants['x_alert']}")
    assert "Sự cố của Xã A" in visit("/incidents")
    assert "Sự cố của Xã A" in visit(f"/incidents/{tenants['x_incident']}")
    assert X_USER in visit("/events?since=2h")
    assert X_USER not in visit(f"/events?since=2h&text={Y_HOST}", asked=Y_HOST)
    assert X_USER not in visit(f"/events?since=2h&filter=host.name:eq:{Y_HOST}", asked=Y_HOST)
    assert X_USER not in visit(f"/events?since=2h&filter=organization.id:eq:{B}")
    assert "Nhiệm vụ của Xã A" in visit("/tasks")
    visit("/handover")
    assert "SSH brute force" in visit(f"/entities/host/{X_HOST}")
    visit(f"/entities/host/{Y_HOST}", asked=Y_HOST)  # Y's host by name: nothing counted, nothing listed
    visit(f"/entities/user/{Y_USER}", asked=Y_USER)
    # ... and on the overview pages not even Y's name (figures per agency)
    for path in ("/dashboard", "/dashboard/scorecard", "/health"):
        html = visit(path, extra=("Sở B", B))
        if path == "/dashboard":
            assert "Xã A" in html and "SSH brute force" in html  # X's own figures are drawn
            screenshot(page, "tenancy-dashboard-agency-x")
    # ... and typing Y's URLs gives the not-found page with nothing of Y in it
    y = tenants["y"]
    for path, typed in ((f"/alerts/{y['alert']}", y["alert"]), (f"/incidents/{y['incident']}", y["incident"]),
                        (f"/events/{y['event']}", y["event"]), (f"/handover/{y['handover']}", y["handover"]),
                        (f"/handover/{y['handover']}/print", y["handover"])):
        html = visit(path, status=404, asked=typed)  # the id typed is in the page's own links, nothing else
        assert "Không tìm thấy" in html, path
    # the report builder needs reports:write, which an analyst has not: the same refusal for X's and Y's
    own = site.goto(f"/incidents/{tenants['x_incident']}/report/mau03")
    assert own is not None
    visit(f"/incidents/{y['incident']}/report/mau03", status=own.status, asked=y["incident"])
    # the exports hold nothing of Y either
    for path in ("/events/export?since=2h&format=csv", "/dashboard/scorecard.csv"):
        answer = page.request.get(site.base_url + path)
        assert answer.status == 200, path
        assert not _leaks(answer.text(), markers), path
    # the audit trail and administration are not an X user's
    for path in ("/audit", "/admin/users"):
        visit(path, status=403)
    assert site.dialogs == [] and site.errors == []
