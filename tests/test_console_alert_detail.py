"""The alert page of the console (``/alerts/{id}``) without a browser: the rule with its author
credited (DRL 1.1), ATT&CK links, the matched fields of the event highlighted, pivots to the
events, alerts and page of each host, user and address; the triage forms (through the alert
workflow, recorded under the user's name); the entity page; and another agency's alert, event
or entity data answered as not found.

The data is real: ``auth.log`` of the shared elastic examples ingested for agency A and the
project's rules run over it, plus a few events and an alert of agency B."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape

from soc.app import App
from soc.hunt import ingest_files
from soc.model import iso
from soc.store.base import Window
from soc.web.server import create_app
from tests.api_fixtures import PASSWORD, SHELL, make_root
from tests.conftest import shared
from tests.scope_helpers import A, B

BRUTE_FORCE = "SSH Brute Force From One Source"


@dataclass
class Seeded:
    root: App
    alerts: dict[str, dict[str, Any]]  # rule title -> one alert of A
    b_alert: dict[str, Any]
    b_event: str
    extra: dict[str, str]  # name -> event id of A


def login(root: App, name: str, roles: list[str], agency: str | None = None) -> TestClient:
    """A console client logged in as a new user ``name``."""
    root.identity.users.add(SHELL, name, roles, agency=agency, password=PASSWORD, must_change_password=False)
    client = TestClient(create_app(root))
    answer = client.post("/login", data={"name": name, "password": PASSWORD, "next": "/alerts"},
                         follow_redirects=False)
    assert answer.status_code == 303, answer.text
    return client


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "no form with a CSRF token on the page"
    return found.group(1)


def event(event_id: str, agency: str, minutes_ago: float, now: Any, **fields: Any) -> dict[str, Any]:
    body = {"_id": event_id, "@timestamp": iso(now - timedelta(minutes=minutes_ago)), "event.dataset": "linux.auth",
            "organization.id": agency, "host.name": fields.pop("host", f"host-{agency}")}
    body.update(fields)
    return body


def seed(tmp_path: Path) -> Seeded:
    """auth.log for agency A with the project's rules run over it; recent events of A (one in
    Vietnamese, one that a spreadsheet would run as a formula) and of B; an alert of B."""
    root = make_root(tmp_path)
    store = root.base_store
    ingest_files(store, [shared("elastic-examples", "suspicious_login_activity", "data", "auth.log")], fmt="auto",
                 timezone="UTC", agency=A, progress=False)
    engine = root.detection_engine()
    engine.run_all(root.detections, Window(None, None, "@timestamp"))
    engine.flush()
    alerts: dict[str, dict[str, Any]] = {}
    for doc in store.iter_all("alerts"):
        alerts.setdefault(doc.body["rule"]["title"], doc.body)
    now = root.clock()
    extra = {"vietnamese": "ev-a-vi", "formula": "ev-a-formula", "recent": "ev-a-recent"}
    result = store.write_events([
        event("ev-a-vi", A, 30, now, message="Đăng nhập thất bại cho người dùng Đức", **{"user.name": "đức"}),
        event("ev-a-formula", A, 20, now, host="-2+3+cmd|' /C calc'!A0",
              message="=HYPERLINK(\"http://evil.example/\",\"bấm\")",
              **{"user.name": "+cmd|' /C calc'!A0", "source.ip": "10.1.2.3", "event.action": "@SUM(A1:A9)"}),
        event("ev-a-recent", A, 10, now, message="Accepted password for admin from 10.1.2.3",
              **{"user.name": "admin", "source.ip": "10.1.2.3"}),
        event("ev-b-1", B, 15, now, host="host-secret-b", message="secret of agency B: Đăng nhập",
              **{"user.name": "admin", "source.ip": "10.1.2.3"}),
    ])
    assert not result.rejected
    rule = alerts[BRUTE_FORCE]["rule"]
    b_alert = {**alerts[BRUTE_FORCE], "id": "alert-of-b", "agency": B, "event_ids": ["ev-b-1"], "event_count": 1,
               "entities": {"host.name": ["host-secret-b"], "source.ip": ["10.1.2.3"]}, "group": {},
               "rule": {**rule}, "first_seen": iso(now - timedelta(minutes=15)),
               "last_seen": iso(now - timedelta(minutes=15)), "message": "B's own alert"}
    assert store.create("alerts", b_alert["id"], b_alert)
    return Seeded(root, alerts, b_alert, "ev-b-1", extra)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    data = seed(tmp_path_factory.mktemp("console-alert"))
    yield data
    data.root.close()


@pytest.fixture(scope="module")
def analyst(seeded: Seeded) -> TestClient:
    """An analyst of agency A."""
    return login(seeded.root, "an", ["analyst"], A)


# -- the page ----------------------------------------------------------------------------------
def test_the_rule_is_shown_with_its_author_credited_and_its_attack_links(seeded: Seeded, analyst: TestClient) -> None:
    alert = seeded.alerts[BRUTE_FORCE]
    page = analyst.get(f"/alerts/{alert['id']}")
    assert page.status_code == 200
    html = page.text
    assert "<html lang=\"vi\">" in html and "Quy tắc" in html  # Vietnamese by default
    assert BRUTE_FORCE in html and str(escape(alert["rule"]["description"].split("\n")[0])) in html
    assert "Quy tắc do SOC project viết" in html and ">DRL 1.1</a>" in html
    assert "detections/linux/ssh/ssh_brute_force.yml" in html  # the rule's source
    assert 'href="https://attack.mitre.org/techniques/T1110/001/"' in html
    assert 'href="https://attack.mitre.org/tactics/TA0006/"' in html  # credential-access
    for line in alert["rule"]["falsepositives"]:
        assert str(escape(line)) in html
    assert "07/" in html or "/2026" in html  # Vietnamese dates
    assert "Asia/Ho_Chi_Minh" in html or "UTC" in html  # the zone is shown


def test_the_fields_the_rule_matched_are_marked_in_the_event_and_its_raw_line(seeded: Seeded,
                                                                               analyst: TestClient) -> None:
    alert = seeded.alerts[BRUTE_FORCE]
    html = analyst.get(f"/alerts/{alert['id']}").text
    address = alert["entities"]["source.ip"][0]
    matched = re.findall(r'<tr class="matched[^"]*">\s*<th scope="row" class="mono">([^<]+)<', html)
    assert {m.strip() for m in matched} == {"event.action", "event.outcome", "source.ip"}
    raw = re.search(r'<pre class="raw" id="raw-event">(.*?)</pre>', html, re.S)
    assert raw and f"<mark>{address}</mark>" in raw.group(1)  # the correlation's key found in the raw line
    assert "<mark>failure</mark>" in html and "<mark>ssh_login</mark>" in html
    # a keyword rule: the matched part of the raw line itself
    tampering = seeded.alerts["Log Or Audit Tampering Command On Linux"]
    html = analyst.get(f"/alerts/{tampering['id']}").text
    raw = re.search(r'<pre class="raw" id="raw-event">(.*?)</pre>', html, re.S)
    assert raw and "<mark>auditctl -D</mark>" in raw.group(1)


def test_pivots_link_the_events_around_the_alert_every_alert_and_the_entity_page(seeded: Seeded,
                                                                                 analyst: TestClient) -> None:
    alert = seeded.alerts[BRUTE_FORCE]
    address, host = alert["entities"]["source.ip"][0], alert["entities"]["host.name"][0]
    html = analyst.get(f"/alerts/{alert['id']}?minutes=60").text
    links = re.findall(r'href="([^"]+)"', html)
    pivots = [link.replace("&amp;", "&") for link in links]
    assert f"/alerts?source_ip={address}" in pivots and f"/alerts?host={host}" in pivots
    assert f"/entities/ip/{address}" in pivots and f"/entities/host/{host}" in pivots
    events = [p for p in pivots if p.startswith("/events?filter=source.ip%3Aeq%3A")]
    assert events, pivots
    # ±60 minutes around first and last seen, in the analyst's wall clock
    since = re.search(r"since=([^&]+)", events[0]).group(1).replace("%3A", ":")
    until = re.search(r"until=([^&]+)", events[0]).group(1).replace("%3A", ":")
    from datetime import datetime
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(seeded.root.settings.timezone)
    first = datetime.fromisoformat(alert["first_seen"].replace("Z", "+00:00"))
    last = datetime.fromisoformat(alert["last_seen"].replace("Z", "+00:00"))
    assert datetime.fromisoformat(since).replace(tzinfo=zone) == (first - timedelta(minutes=60)).replace(microsecond=0)
    assert datetime.fromisoformat(until).replace(tzinfo=zone) == (last + timedelta(minutes=60)).replace(microsecond=0)
    # the pivot finds the alert's own events
    found = analyst.get(events[0])
    assert found.status_code == 200 and any(f"/events/{e}" in found.text for e in alert["event_ids"])


def test_another_agency_s_alert_event_and_entities_are_not_found(seeded: Seeded, analyst: TestClient) -> None:
    for path in (f"/alerts/{seeded.b_alert['id']}", f"/events/{seeded.b_event}", "/alerts/no-such-alert",
                 "/events/no-such-event"):
        answer = analyst.get(path)
        assert answer.status_code == 404, path
        assert "Không tìm thấy" in answer.text
        assert "host-secret-b" not in answer.text and "B&#39;s own alert" not in answer.text
    entity = analyst.get("/entities/host/host-secret-b")
    assert entity.status_code == 200 and "alert-of-b" not in entity.text and "Không có cảnh báo nào" in entity.text
    mine = analyst.get("/entities/ip/10.1.2.3").text
    assert "alert-of-b" not in mine
    b_user = login(seeded.root, "bao", ["analyst"], B)
    assert b_user.get(f"/alerts/{seeded.b_alert['id']}").status_code == 200
    assert b_user.get(f"/alerts/{seeded.alerts[BRUTE_FORCE]['id']}").status_code == 404


def test_a_reader_sees_no_triage_forms_and_cannot_post_them(seeded: Seeded) -> None:
    reader = login(seeded.root, "ro", ["reporter"], A)
    alert = seeded.alerts["SSH Slow Brute Force"]
    html = reader.get(f"/alerts/{alert['id']}").text
    assert "/acknowledge" not in html and "Xử lý" not in html
    refused = reader.post(f"/alerts/{alert['id']}/acknowledge", data={"csrf_token": csrf_of(
        reader.get("/account/password").text)})
    assert refused.status_code == 403
    assert seeded.root.alerts.get(SHELL, alert["id"])["status"] in ("new", "open")


# -- triage ------------------------------------------------------------------------------------
def test_triage_forms_change_the_alert_through_the_workflow_under_the_user_s_name(seeded: Seeded,
                                                                                  analyst: TestClient) -> None:
    alert = seeded.alerts["SSH Password Spraying"]
    path = f"/alerts/{alert['id']}"
    csrf = csrf_of(analyst.get(path).text)
    assert analyst.post(f"{path}/acknowledge", data={"note": "đang xem"}).status_code == 403  # no CSRF token
    answer = analyst.post(f"{path}/acknowledge", data={"csrf_token": csrf, "note": "đang xem"}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == path
    assert analyst.post(f"{path}/assign", data={"csrf_token": csrf, "assignee": "lan"}).status_code == 200
    refused = analyst.post(f"{path}/close", data={"csrf_token": csrf, "reason": "other"})
    assert refused.status_code == 400 and "Thay đổi bị từ chối" in refused.text and "note" in refused.text
    closed = analyst.post(f"{path}/close", data={"csrf_token": csrf, "reason": "false_positive", "note": "máy quét <b>"})
    assert closed.status_code == 200
    html = closed.text
    assert "Cảnh báo nhầm" in html and "máy quét &lt;b&gt;" in html and "Mở lại" in html
    stored = seeded.root.alerts.get(SHELL, alert["id"])
    assert stored["status"] == "closed" and stored["close_reason"] == "false_positive"
    assert stored["assignee"] == "lan" and stored["acknowledged_by"] == "an"
    history = seeded.root.alerts.history(SHELL, alert["id"])
    assert [(h["action"], h["actor"]) for h in history] == [("ack", "an"), ("assign", "an"), ("close", "an")]
    assert analyst.post(f"{path}/reopen", data={"csrf_token": csrf}).status_code == 200
    assert seeded.root.alerts.get(SHELL, alert["id"])["status"] == "open"
    audited = [r for r in seeded.root.audit.records() if r.target and str(r.target.id).startswith(alert["id"])]
    assert len(audited) >= 4 and {r.actor.name for r in audited} == {"an"}


def test_triage_of_another_agency_s_alert_is_not_found(seeded: Seeded, analyst: TestClient) -> None:
    csrf = csrf_of(analyst.get(f"/alerts/{seeded.alerts[BRUTE_FORCE]['id']}").text)
    answer = analyst.post(f"/alerts/{seeded.b_alert['id']}/acknowledge", data={"csrf_token": csrf})
    assert answer.status_code == 404
    assert seeded.root.base_store.get("alerts", seeded.b_alert["id"]).body["status"] in ("new", "open")


# -- the entity page ---------------------------------------------------------------------------
def test_the_entity_page_lists_its_alerts_and_counts_its_events(seeded: Seeded, analyst: TestClient) -> None:
    alert = seeded.alerts[BRUTE_FORCE]
    host = alert["entities"]["host.name"][0]
    newest = max((d.body for d in seeded.root.base_store.iter_all("alerts") if d.body.get("agency") == A
                  and host in (d.body.get("entities") or {}).get("host.name", [])),
                 key=lambda a: (a["first_seen"], a["id"]))
    html = analyst.get(f"/entities/host/{quote(host)}").text
    assert f"/alerts/{newest['id']}" in html and f"/alerts?host={host}" in html
    ip = analyst.get("/entities/ip/10.1.2.3").text
    # two recent events of A name 10.1.2.3 as source (B's event is not counted)
    counts = re.search(r"<td class=\"mono\">source.ip</td>\s*<td class=\"num\"><a [^>]+>(\d+)</a>", ip)
    assert counts and counts.group(1) == "2"
    assert analyst.get("/entities/ip/not-an-ip").status_code == 400
    assert analyst.get("/entities/planet/earth").status_code == 404
