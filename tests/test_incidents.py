"""Incidents from real alerts: grouping, idempotence, concurrency, lifecycle, merge/split/move,
deadlines and the "serious" test.

The alerts are real: the project's SSH rules (and a one-alert-per-failed-login rule written to a
temporary folder) hunted over loghub's OpenSSH_2k.log. The grouping, idempotence, concurrency
and membership tests run on SQLite and on the real OpenSearch (``-m 'not search'`` skips the
latter); the rest on SQLite.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from soc.detect.compiler import compile_rules
from soc.detect.rules import load_rules
from soc.hunt import run_hunt
from soc.incidents.model import AffectedSystem, ReportRecord
from soc.incidents.service import ALERTS, INCIDENTS, IncidentError, Incidents, allowed_next
from soc.incidents.types import TypeMap, default_type_map
from soc.model import iso
from soc.store.base import Store
from soc.store.sqlite import SQLiteStore
from tests.conftest import ROOT, shared
from tests.search_helpers import drop, open_search_store

BRUTE_FORCE_RULE = ROOT / "detections" / "linux" / "ssh" / "ssh_brute_force.yml"
FAILED_LOGIN_RULE = """\
title: Test SSH Failed Login (one alert per attempt)
id: 5d3c1a2b-0000-4000-8000-00000000f001
status: test
description: one alert per failed SSH login, so a brute force yields many alerts from one source
author: tests
logsource:
    product: linux
    service: sshd
detection:
    selection:
        event.action: ssh_login
        event.outcome: failure
    condition: selection
tags:
    - attack.credential-access
    - attack.t1110
level: medium
"""
MANY = 120  # single-event alerts used by the grouping tests (about 40 ms each on OpenSearch)


# -- real alerts -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def hunted(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """Every alert of the brute-force correlation and of the per-attempt rule over OpenSSH_2k."""
    rules = tmp_path_factory.mktemp("rules")
    (rules / "failed_login.yml").write_text(FAILED_LOGIN_RULE, encoding="utf-8")
    result = run_hunt([shared("loghub", "OpenSSH", "OpenSSH_2k.log")],
                      compile_rules(load_rules([rules, BRUTE_FORCE_RULE])), timezone="UTC", agency="so-tttt")
    assert not result.rule_errors
    return result.alerts


def single(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [a for a in alerts if a["kind"] == "event"]


def correlations(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [a for a in alerts if a["kind"] == "correlation"]


def ip_of(alert: dict[str, Any]) -> str:
    return alert["entities"]["source.ip"][0]


# -- stores ----------------------------------------------------------------------------------------
Opener = Callable[[], Store]


@pytest.fixture(params=["sqlite", pytest.param("opensearch", marks=pytest.mark.search)])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens handles on one fresh store (each like another process); closed afterwards."""
    handles: list[Any] = []
    if request.param == "sqlite":
        def open_() -> Store:
            handles.append(SQLiteStore(tmp_path / "soc.db"))
            return handles[-1]
        yield open_
        for handle in handles:
            handle.close()
    else:
        url, prefix = request.getfixturevalue("opensearch_url"), request.getfixturevalue("unique_name")

        def open_() -> Store:
            handles.append(open_search_store(url, prefix))
            return handles[-1]
        yield open_
        drop(handles[0])
        for handle in handles[1:]:
            handle.close()


@pytest.fixture
def store(opener: Opener) -> Store:
    return opener()


@pytest.fixture
def sqlite(tmp_path: Path) -> Iterator[Store]:
    store = SQLiteStore(tmp_path / "soc.db")
    yield store
    store.close()


def record(store: Store, alerts: list[dict[str, Any]]) -> None:
    for alert in alerts:
        assert store.create(ALERTS, alert["id"], dict(alert))


def check_consistent(store: Store) -> dict[str, str]:
    """Every alert an incident lists points back at it, and no alert is in two incidents."""
    store.refresh()
    incidents = {d.id: d.body for d in store.iter_all(INCIDENTS)}
    alerts = {d.id: d.body for d in store.iter_all(ALERTS)}
    owner: dict[str, str] = {}
    for incident_id, incident in incidents.items():
        assert len(incident["alert_ids"]) == len(set(incident["alert_ids"])), incident_id
        for alert_id in incident["alert_ids"]:
            assert alert_id not in owner, f"{alert_id} in {owner.get(alert_id)} and {incident_id}"
            owner[alert_id] = incident_id
            assert alerts[alert_id].get("incident_id") == incident_id
    for alert_id, alert in alerts.items():
        if alert.get("incident_id"):
            assert owner.get(alert_id) == alert["incident_id"], alert_id
    return owner


class Clock:
    def __init__(self, start: datetime):
        self.now = start

    def __call__(self) -> datetime:
        return self.now


# -- grouping and idempotence (both stores) --------------------------------------------------------
def test_brute_force_alerts_from_one_source_become_one_incident(store: Store, hunted: list[dict[str, Any]]) -> None:
    alerts = single(hunted)[:MANY]
    record(store, alerts)
    service = Incidents(store, group_fields=("source.ip",))
    for alert in alerts:  # one call per alert, as a playbook triggered per alert does
        service.open_from_alerts([alert], actor="playbook:brute-force")
    owner = check_consistent(store)
    by_ip: dict[str, set[str]] = {}
    for alert in alerts:
        by_ip.setdefault(ip_of(alert), set()).add(owner[alert["id"]])
    assert all(len(ids) == 1 for ids in by_ip.values()), by_ip  # one incident per source
    assert len(set(owner.values())) == len(by_ip)  # and only one
    top_ip = max(by_ip, key=lambda ip: sum(ip_of(a) == ip for a in alerts))
    incident = service.require(next(iter(by_ip[top_ip])))
    expected = [a["id"] for a in alerts if ip_of(a) == top_ip]
    assert len(expected) >= 10  # many alerts, from one source, in one incident
    assert sorted(incident.alert_ids) == sorted(expected)
    assert incident.entities["source.ip"] == [top_ip]
    assert incident.incident_type == "unauthorized_access"  # credential-access / T1110
    assert incident.severity == "medium"  # the rule's level
    assert incident.agency == "so-tttt" and incident.status == "new"
    assert incident.first_seen == min(a["first_seen"] for a in alerts if ip_of(a) == top_ip)
    assert incident.discovered_at == min(a["detected_at"] for a in alerts if ip_of(a) == top_ip)
    assert [h.action for h in incident.history].count("opened") == 1
    assert incident.history[1].detail["grouped_by"] == [f"source.ip={top_ip}"]


def test_default_grouping_joins_alerts_on_the_attacked_host(store: Store, hunted: list[dict[str, Any]]) -> None:
    """Default entities include host.name: every attack on LabSZ within the window is one incident,
    and a correlation alert joins the incident of the single alerts of its source."""
    alerts = single(hunted)[:30] + correlations(hunted)[:3]
    record(store, alerts)
    service = Incidents(store)
    ids = {service.open_from_alerts([a], actor="pb").id for a in alerts}
    assert len(ids) == 1
    incident = service.require(ids.pop())
    assert len(incident.alert_ids) == len(alerts)
    assert incident.severity == "high"  # raised by the brute-force correlation (level high)
    check_consistent(store)


def test_reopening_returns_the_same_incident(store: Store, hunted: list[dict[str, Any]]) -> None:
    alerts = correlations(hunted)
    record(store, alerts)
    service = Incidents(store)
    first = service.open_from_alerts(alerts, actor="pb")
    again = service.open_from_alerts(list(reversed(alerts)), actor="pb")
    one = service.open_from_alerts(alerts[2:3], actor="someone else")
    assert first.id == again.id == one.id
    stored = service.require(first.id)
    assert sorted(stored.alert_ids) == sorted(a["id"] for a in alerts)
    assert [h.action for h in stored.history] == ["opened"]  # nothing changed, nothing recorded
    store.refresh()
    assert len(store.find(INCIDENTS)) == 1
    check_consistent(store)


def test_concurrent_openers_open_one_incident(opener: Opener, hunted: list[dict[str, Any]]) -> None:
    """Eight workers (each with its own store handle, like processes) open incidents for the same
    burst at once, in different orders and subsets: one incident holds every alert."""
    store = opener()
    alerts = single(hunted)
    top_ip = max({ip_of(a) for a in alerts}, key=lambda ip: sum(ip_of(a) == ip for a in alerts))
    burst = [a for a in alerts if ip_of(a) == top_ip][:40]
    record(store, burst)
    services = [Incidents(opener(), group_fields=("source.ip",)) for _ in range(8)]
    barrier = threading.Barrier(len(services))
    errors: list[BaseException] = []
    opened: list[str] = []

    def work(number: int, service: Incidents) -> None:
        rng = random.Random(number)
        mine = burst[:] if number % 2 else rng.sample(burst, len(burst) // 2)
        rng.shuffle(mine)
        try:
            barrier.wait()
            if number % 4 == 3:
                for alert in mine[:10]:
                    opened.append(service.open_from_alerts([alert], actor=f"w{number}").id)
            else:
                opened.append(service.open_from_alerts(mine, actor=f"w{number}").id)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(n, s)) for n, s in enumerate(services)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert len(set(opened)) == 1
    store.refresh()
    incidents = store.find(INCIDENTS)
    assert len(incidents) == 1
    assert sorted(incidents[0].body["alert_ids"]) == sorted(a["id"] for a in burst)
    check_consistent(store)


def test_concurrent_changes_are_all_kept(opener: Opener, hunted: list[dict[str, Any]]) -> None:
    store = opener()
    record(store, correlations(hunted)[:1])
    incident = Incidents(store).open_from_alerts(correlations(hunted)[:1], actor="pb")
    services = [Incidents(opener()) for _ in range(4)]
    errors: list[BaseException] = []

    def work(number: int, service: Incidents) -> None:
        try:
            for n in range(5):
                service.add_note(incident.id, f"note {number}.{n}", actor=f"analyst{number}")
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=work, args=(n, s)) for n, s in enumerate(services)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    final = Incidents(store).require(incident.id)
    assert sorted(n.text for n in final.notes) == sorted(f"note {a}.{b}" for a in range(4) for b in range(5))
    assert [h.action for h in final.history].count("note") == 20


def test_merge_split_move_keep_alerts_consistent(store: Store, hunted: list[dict[str, Any]]) -> None:
    alerts = single(hunted)[:MANY]
    record(store, alerts)
    service = Incidents(store, group_fields=("source.ip",))
    for alert in alerts:
        service.open_from_alerts([alert], actor="pb")
    owner = check_consistent(store)
    by_incident: dict[str, list[str]] = {}
    for alert_id, incident_id in owner.items():
        by_incident.setdefault(incident_id, []).append(alert_id)
    big, small, *_rest = sorted(by_incident, key=lambda i: -len(by_incident[i]))

    moved = by_incident[big][:2]
    target = service.move_alerts(moved, big, small, actor="analyst")
    assert set(moved) <= set(target.alert_ids)
    assert not set(moved) & set(service.require(big).alert_ids)
    assert check_consistent(store)[moved[0]] == small

    part = by_incident[big][2:5]
    new = service.split(big, part, actor="analyst", title="second wave")
    assert sorted(new.alert_ids) == sorted(part) and new.title == "second wave"
    assert service.split(big, part, actor="analyst").id == new.id  # repeating the split changes nothing
    assert check_consistent(store)[part[0]] == new.id
    rest = service.require(big)
    assert rest.history[-1].action == "split" and rest.history[-1].detail["to"] == new.id

    merged = service.merge(big, [small, new.id], actor="lead")
    assert sorted(merged.alert_ids) == sorted(by_incident[big] + by_incident[small])
    for gone in (small, new.id):
        source = service.require(gone)
        assert source.merged_into == big and source.status == "closed" and source.alert_ids == []
        assert source.overdue(datetime.now(UTC) + timedelta(days=30)) == []  # no report owed twice
    owner = check_consistent(store)
    assert {owner[a] for a in by_incident[small] + part} == {big}
    with pytest.raises(IncidentError, match="merged into"):
        service.transition(small, "triage", actor="x")
    # a later burst from the source of a merged incident joins the surviving incident
    again = service.open_from_alerts([{**alerts[0], "id": "late-alert", "incident_id": small}], actor="pb")
    assert again.id == big
    assert check_consistent(store)["late-alert"] == big


def test_window_closed_incidents_and_agencies_limit_grouping(store: Store, hunted: list[dict[str, Any]]) -> None:
    base = correlations(hunted)[0]
    start = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)

    def at(alert_id: str, hours: float, agency: str = "so-tttt") -> dict[str, Any]:
        moment = iso(start + timedelta(hours=hours))
        return {**base, "id": alert_id, "first_seen": moment, "last_seen": moment, "detected_at": moment,
                "agency": agency}

    service = Incidents(store, group_fields=("source.ip",), group_window_hours=24)
    first = service.open_from_alerts([at("w0", 0)], actor="pb")
    assert service.open_from_alerts([at("w1", 20)], actor="pb").id == first.id  # within 24 h
    assert service.open_from_alerts([at("w2", 50)], actor="pb").id != first.id  # 30 h after the last one
    assert service.open_from_alerts([at("w3", 21, "ubnd-huyen")], actor="pb").id != first.id  # other agency
    service.transition(first.id, "resolved", actor="analyst")
    assert service.open_from_alerts([at("w4", 22)], actor="pb").id != first.id  # resolved: not joined
    check_consistent(store)


# -- lifecycle, fields, deadlines (SQLite) ----------------------------------------------------------
@pytest.fixture
def one(sqlite: Store, hunted: list[dict[str, Any]]) -> tuple[Incidents, str, Clock]:
    alerts = correlations(hunted)[:2]
    record(sqlite, alerts)
    clock = Clock(datetime(2026, 12, 1, 2, 0, tzinfo=UTC))
    service = Incidents(sqlite, clock=clock)
    incident = service.open_from_alerts(alerts, actor="playbook:brute-force")
    return service, incident.id, clock


def test_lifecycle_is_validated_and_recorded(one: tuple[Incidents, str, Clock]) -> None:
    service, incident_id, clock = one
    with pytest.raises(IncidentError, match="already new"):
        service.transition(incident_id, "new", actor="a")
    with pytest.raises(IncidentError, match="unknown status"):
        service.transition(incident_id, "done", actor="a")
    clock.now += timedelta(minutes=5)
    service.transition(incident_id, "triage", actor="an.nguyen")
    service.assign(incident_id, "an.nguyen", actor="lead")
    clock.now += timedelta(hours=1)
    service.transition(incident_id, "contained", actor="an.nguyen", note="blocked at the firewall")
    with pytest.raises(IncidentError, match="contained: it can go to triage, resolved, closed, not new"):
        service.transition(incident_id, "new", actor="a")
    clock.now += timedelta(hours=2)
    resolved = service.transition(incident_id, "resolved", actor="an.nguyen")
    assert resolved.response_ended_at == iso(clock.now) and resolved.closed_at is None
    clock.now += timedelta(days=1)
    closed = service.transition(incident_id, "closed", actor="lead")
    assert closed.closed_at == iso(clock.now)
    reopened = service.transition(incident_id, "triage", actor="lead", note="attacker came back")
    assert reopened.closed_at is None and reopened.response_ended_at == resolved.response_ended_at
    history = [(h.actor, h.action, h.detail.get("from"), h.detail.get("to")) for h in reopened.history]
    assert history == [
        ("playbook:brute-force", "opened", None, None),
        ("an.nguyen", "status", "new", "triage"),
        ("lead", "assign", "", "an.nguyen"),
        ("an.nguyen", "status", "triage", "contained"),
        ("an.nguyen", "status", "contained", "resolved"),
        ("lead", "status", "resolved", "closed"),
        ("lead", "status", "closed", "triage"),
    ]
    assert [n.text for n in reopened.notes] == ["blocked at the firewall", "attacker came back"]
    assert all(h.at for h in reopened.history)
    assert allowed_next("new") == ["triage", "contained", "resolved", "closed"]
    service.set_verdict(incident_id, "true_positive", actor="lead")
    with pytest.raises(IncidentError, match="unknown verdict"):
        service.set_verdict(incident_id, "maybe", actor="lead")
    assert service.require(incident_id).verdict == "true_positive"


def test_deadlines_and_overdue_reports(one: tuple[Incidents, str, Clock]) -> None:
    service, incident_id, clock = one
    incident = service.require(incident_id)
    discovered = datetime.fromisoformat(incident.discovered_at.replace("Z", "+00:00"))
    assert incident.notify_due == iso(discovered + timedelta(days=5))
    assert incident.closing_due is None
    assert incident.overdue(discovered + timedelta(days=5) - timedelta(seconds=1)) == []
    assert incident.overdue(discovered + timedelta(days=5, seconds=1)) == ["initial"]
    # the stored document carries the computed deadlines, for searches and reports
    assert service.store.get(INCIDENTS, incident_id).body["notify_due"] == incident.notify_due

    service.record_report(incident_id, ReportRecord(kind="initial", report_no="01/BC-SOC", built_at=iso(clock.now)),
                          actor="export")
    late = discovered + timedelta(days=6)
    assert service.require(incident_id).overdue(late) == ["initial"]  # built is not delivered
    service.record_report(incident_id, ReportRecord(kind="initial", report_no="01/BC-SOC", built_at=iso(clock.now),
                                                    delivered_at=iso(clock.now)), actor="outbox")
    incident = service.require(incident_id)
    assert len(incident.reports) == 1 and incident.overdue(late) == []

    clock.now = discovered + timedelta(days=2)
    resolved = service.transition(incident_id, "resolved", actor="analyst")
    assert resolved.closing_due == iso(clock.now + timedelta(days=5))
    assert resolved.overdue(clock.now + timedelta(days=5, minutes=1)) == ["closing"]
    fp = service.set_verdict(incident_id, "false_positive", actor="lead")
    assert fp.overdue(clock.now + timedelta(days=30)) == []


def test_serious_test_decision_05(one: tuple[Incidents, str, Clock]) -> None:
    service, incident_id, _clock = one
    assert not service.require(incident_id).serious
    level3 = service.update(incident_id, actor="a", impacts=["service_interrupted"],
                            affected_systems=[AffectedSystem(name="Cổng thông tin điện tử tỉnh", level=3)])
    assert not level3.serious  # an impact, but a level-3 system
    level4 = service.update(incident_id, actor="a", impacts=[],
                            affected_systems=[{"name": "Hệ thống một cửa điện tử", "level": 4}])
    assert not level4.serious  # a level-4 system, but no impact
    serious = service.update(incident_id, actor="a", impacts=["secret_data_exposure"])
    assert serious.serious
    assert service.store.get(INCIDENTS, incident_id).body["serious"] is True
    critical = service.update(incident_id, actor="a", affected_systems=[
        {"name": "Trung tâm dữ liệu", "level": 2, "national_critical": True}])
    assert critical.serious
    with pytest.raises(IncidentError, match="unknown impacts"):
        service.update(incident_id, actor="a", impacts=["bad_day"])
    with pytest.raises(IncidentError, match="level"):
        service.update(incident_id, actor="a", affected_systems=[{"name": "x", "level": 9}])
    with pytest.raises(IncidentError, match="cannot update status"):
        service.update(incident_id, actor="a", status="closed")
    edit = serious.history[-1]
    assert edit.action == "edit" and edit.detail["impacts"] == {"from": [], "to": ["secret_data_exposure"]}


def test_pinned_fields_survive_later_alerts(sqlite: Store, hunted: list[dict[str, Any]]) -> None:
    alerts = single(hunted)[:3]
    bf = correlations(hunted)[0]
    record(sqlite, [*alerts, bf])
    service = Incidents(sqlite)
    incident = service.open_from_alerts(alerts[:1], actor="pb")
    assert incident.severity == "medium"
    service.update(incident.id, actor="lead", severity="low", title="Known scanner")
    after = service.open_from_alerts([alerts[1], bf], actor="pb")
    assert after.id == incident.id
    assert (after.severity, after.title) == ("low", "Known scanner")  # an analyst's choice stays
    assert set(after.pinned) == {"severity", "title"}
    fresh = Incidents(sqlite).open_from_alerts([{**bf, "id": "other", "agency": "elsewhere"}], actor="pb",
                                               severity="critical", incident_type="defacement")
    assert (fresh.severity, fresh.incident_type) == ("critical", "defacement")


def test_type_mapping_is_data() -> None:
    types = default_type_map()

    def kind(*tags: str) -> str:
        return types.type_of_rule({"id": "x", "tags": list(tags)})

    assert kind("attack.credential_access", "attack.t1110.001") == "unauthorized_access"
    assert kind("attack.initial-access", "attack.t1190") == "unauthorized_access"
    assert kind("attack.persistence", "attack.t1505.003") == "malware"  # web shell
    assert kind("attack.discovery", "attack.t1046") == "scan"
    assert kind("attack.impact", "attack.t1486") == "ransomware"
    assert kind("attack.impact", "attack.t1491.001") == "defacement"
    assert kind("attack.t1498") == "dos"
    assert kind() == "other"
    assert types.best(["scan", "unauthorized_access", "defacement"]) == "defacement"
    with pytest.raises(ValueError, match="not one of"):
        TypeMap.load(_write(ROOT, "mappings: [{type: hacking, tags: [x]}]"))


def _write(_root: Path, text: str) -> Path:
    import tempfile

    handle = tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False, encoding="utf-8")
    handle.write(text)
    handle.close()
    return Path(handle.name)


def test_errors_name_the_input(sqlite: Store, hunted: list[dict[str, Any]]) -> None:
    service = Incidents(sqlite)
    with pytest.raises(IncidentError, match="no incident 'inc-nope'"):
        service.transition("inc-nope", "triage", actor="a")
    with pytest.raises(IncidentError, match="no alerts"):
        service.open_from_alerts([], actor="a")
    alerts = correlations(hunted)[:2]
    record(sqlite, alerts)
    a = service.open_from_alerts(alerts[:1], actor="a")
    b = Incidents(sqlite, group_fields=("user.name",)).open_from_alerts(
        [{**alerts[1], "entities": {}, "group": {}, "id": "lonely"}], actor="a")
    assert a.id != b.id
    with pytest.raises(IncidentError, match="already in another incident"):
        service.attach(b.id, [alerts[0]["id"]], actor="a")
    with pytest.raises(IncidentError, match="not in incident"):
        service.move_alerts([alerts[0]["id"]], b.id, a.id, actor="a")
    with pytest.raises(IncidentError, match="every alert"):
        service.split(a.id, a.alert_ids, actor="a")


def test_membership_lease_blocks_renews_and_expires(sqlite: Store, hunted: list[dict[str, Any]]) -> None:
    import time

    from soc.incidents.lease import LOCKS, _Lease, _renew

    alerts = correlations(hunted)[:1]
    record(sqlite, alerts)
    sqlite.put(LOCKS, "membership", {"owner": "a-process-that-died", "until": time.time() - 1})
    assert Incidents(sqlite).open_from_alerts(alerts, actor="pb")  # an expired lease is taken over
    with _Lease(sqlite, "membership", lease=0.6):
        with pytest.raises(IncidentError, match="busy"):
            with _Lease(sqlite, "membership", wait=0.3):
                pass
        time.sleep(0.5)
        _renew()  # a long operation keeps its lease
        with pytest.raises(IncidentError, match="busy"):
            with _Lease(sqlite, "membership", wait=0.3):
                pass
    with _Lease(sqlite, "membership", wait=0.3):  # released on exit
        pass
