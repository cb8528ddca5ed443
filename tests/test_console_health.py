"""The health page without a browser: rule health (failing first, suppressed counts), sources
per agency with silent ones flagged, the dead-letter file with its replay (only with
``sources:replay``, audited, idempotent), nothing of other agencies for an agency's user, and
no Kafka section when Kafka is not used."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from soc.app import App
from soc.ingest import Record
from soc.ingest.deadletter import DeadLetterFile
from soc.web.server import create_app
from tests.api_fixtures import PASSWORD, SHELL, make_root
from tests.scope_helpers import A, B
from tests.test_oversight import ingested_at, iso

HOSTILE = "<script>alert(1)</script>\"><img src=x onerror=alert(1)>"
LINE = b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8"


@pytest.fixture
def root(tmp_path: Path) -> Iterator[App]:
    app = make_root(tmp_path)
    store, now = app.base_store, app.clock()
    store.put("rule_state", "r-ok", {"rule_id": "r-ok", "title": "SSH brute force", "runs": 42, "last_run": now.timestamp(),
                                     "last_duration": 0.031, "last_hits": 2, "last_matches": 9, "total_alerts": 120,
                                     "last_suppressed": 3, "last_suppressed_by": [{"exception": "ex-1", "count": 3}]})
    store.put("rule_state", "r-bad", {"rule_id": "r-bad", "title": "Broken " + HOSTILE, "runs": 5,
                                      "last_run": now.timestamp(), "last_error": "no such column: " + HOSTILE,
                                      "consecutive_errors": 5})
    with ingested_at(now - timedelta(hours=2)):
        store.write_events([{"_id": "b1", "@timestamp": iso(now), "organization.id": B, "soc.source": "fw-b",
                             "message": "x"}])
    store.write_events([{"_id": "a1", "@timestamp": iso(now), "organization.id": A, "soc.source": HOSTILE,
                         "message": "y"}])
    store.refresh()
    with DeadLetterFile(app.settings.dead_letter_dir / "ingest.jsonl") as letters:
        letters.write("oversized (80000 bytes > 65536)", Record(LINE, "dl-1", now, "udp 10.0.0.5:514", "10.0.0.5"))
        letters.write("source: cannot read " + HOSTILE, Record(b"", "", now, "/var/log/x"))
    yield app
    app.close()


def login(root: App, name: str, roles: list[str], agency: str | None = None) -> TestClient:
    root.identity.users.add(SHELL, name, roles, agency=agency, password=PASSWORD, must_change_password=False)
    client = TestClient(create_app(root))
    assert client.post("/login", data={"name": name, "password": PASSWORD, "next": "/health"},
                       follow_redirects=False).status_code == 303
    return client


def csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def test_health_page_shows_rules_sources_and_dead_letters_as_text(root: App) -> None:
    client = login(root, "minh", ["analyst"])
    page = client.get("/health")
    assert page.status_code == 200
    html = page.text
    assert "Quy tắc đang lỗi" in html and "Nguồn nhật ký theo đơn vị" in html and "Bản ghi lỗi" in html
    assert html.index("Broken") < html.index("SSH brute force")  # failing first
    assert "<script>alert(1)" not in html and "<img src=x" not in html and "&lt;script&gt;" in html
    assert re.search(r"ngừng gửi</span>", html)  # B's fw-b: nothing for two hours
    assert "oversized" in html and "2 bản ghi dịch vụ không lưu được" in html
    assert "mymachine su" in html  # the record's first characters, as text
    assert 'action="/health/dead-letters/replay"' not in html  # an analyst may not replay
    assert 'id="kafka"' not in html and "Độ trễ Kafka" not in html  # Kafka is not used here
    only = client.get("/health?rules=failing").text
    assert "Broken" in only and "SSH brute force" not in only


def test_replay_needs_the_permission_and_is_audited_and_idempotent(root: App) -> None:
    analyst = login(root, "minh", ["analyst"])
    token = csrf(analyst.get("/health").text)  # the logout form's token: a valid one, not the right permission
    refused = analyst.post("/health/dead-letters/replay", data={"source": "syslog", "csrf_token": token},
                           follow_redirects=False)
    assert refused.status_code == 403
    admin = login(root, "boss", ["admin"])
    html = admin.get("/health").text
    assert 'action="/health/dead-letters/replay"' in html and '<option value="syslog">' in html
    done = admin.post("/health/dead-letters/replay", data={"source": "syslog", "kind": "", "csrf_token": csrf(html)},
                      follow_redirects=False)
    assert done.status_code == 303 and "created=1" in done.headers["location"] and "no_bytes=1" in done.headers["location"]
    assert "1 sự kiện được lưu" in admin.get(done.headers["location"]).text
    (event,) = root.base_store.get_events(["dl-1"])
    assert event["host.name"] == "mymachine" and "lonvick" in event["message"]  # parsed by the syslog parser
    again = admin.post("/health/dead-letters/replay", data={"source": "syslog", "csrf_token": csrf(html)},
                       follow_redirects=False)
    assert "created=0" in again.headers["location"] and "existing=1" in again.headers["location"]
    records = [r for r in root.audit.records() if r.action == "deadletters.replay"]
    assert len(records) == 2 and all("boss" in str(r.actor) for r in records)
    assert "minh" not in " ".join(str(r.actor) for r in records)
    assert admin.post("/health/dead-letters/replay", data={"source": "no-such", "csrf_token": csrf(html)}
                      ).status_code == 404
    # the file is never changed by a replay
    assert len((root.settings.dead_letter_dir / "ingest.jsonl").read_text().splitlines()) == 2


def test_agency_user_sees_only_its_sources_and_no_dead_letters(root: App) -> None:
    client = login(root, "ana", ["analyst"], agency=A)
    html = client.get("/health").text
    assert "fw-b" not in html and "Sở B" not in html
    assert "Xã A" in html and "&lt;script&gt;" in html  # A's own source, its name as text
    assert "Bản ghi lỗi" not in html and "mymachine" not in html
    assert "SSH brute force" not in html  # rule state belongs to no agency
    token = csrf(html)
    assert client.post("/health/dead-letters/replay", data={"source": "syslog", "csrf_token": token}).status_code == 403
    agency_role = login(root, "it-a", ["agency"], agency=A)
    assert agency_role.get("/health").status_code == 403  # no rules:read


def test_threat_intel_feeds_are_shown_to_province_wide_readers_only(root: App) -> None:
    """A feed's last poll, indicators taken and last error (its text from a remote server: shown
    as text); an agency's analyst sees no feed (indicators are province-wide)."""
    poller = root.intel_poller()
    poller.record("hand-list", {"new": 7, "updated": 0}, kind="list")
    root.base_store.put("intel_feeds", "national", {"name": "national", "kind": "taxii", "polls": 3, "consecutive_errors": 2,
                                                    "last_poll": "2026-12-07T01:00:00Z", "last_error": "HTTPError: " + HOSTILE,
                                                    "total_taken": 40})
    html = login(root, "minh", ["analyst"]).get("/health").text
    assert 'id="intel-feeds"' in html and "Nguồn tin tình báo mối đe dọa" in html
    assert "hand-list" in html and "national" in html and "1 nguồn tin lỗi ở lần lấy gần nhất." in html
    assert "2 lần lấy lỗi:" in html and "<script>alert(1)" not in html and "HTTPError: &lt;script&gt;" in html
    agency = login(root, "ana", ["analyst"], agency=A).get("/health").text
    assert 'id="intel-feeds"' not in agency and "national" not in agency


@pytest.mark.kafka
def test_kafka_lag_is_shown_when_kafka_is_used(tmp_path: Path, kafka_bootstrap: str, unique_name: str) -> None:
    """With a ``kafka:`` section the page asks the real broker for the group's lag and the
    dead-letter count (a topic with three records nobody consumed: lag 3)."""
    from kafka import KafkaProducer

    from soc.config import KafkaSettings, Settings

    topic = unique_name
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    for n in range(3):
        producer.send(topic, f"<13>Dec  7 10:00:0{n} host x: line {n}".encode())
    producer.flush()
    producer.close()
    settings = Settings(data_dir=tmp_path / "data", kafka=KafkaSettings(bootstrap=kafka_bootstrap, topic=topic,
                                                                        group=f"{topic}-g", dead_letter_topic=f"{topic}-dlq"))
    app = make_root(tmp_path, settings)
    client = login(app, "boss", ["admin"])
    html = client.get("/health").text
    assert 'id="kafka"' in html and "Độ trễ Kafka" in html
    assert f"Nhóm {topic}-g: 3 bản ghi chưa được lưu" in html
    app.close()
