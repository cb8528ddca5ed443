"""The oversight figures (soc/oversight) on a small seeded store, on SQLite and on the real
OpenSearch: every figure equals a count made here from the seeded data, an agency's user gets
only its agencies' figures, back-filled events are counted apart from MTTD, and the silent-source
check raises one alert per silence.

The store stamps ``event.ingested`` with the time it writes; :func:`ingested_at` moves that
clock for a test (both stores), to seed events stored long ago.
"""

from __future__ import annotations

import contextlib
import types
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from soc.access import Principal
from soc.app import App
from soc.config import Settings
from soc.export.measures import timing_of
from soc.oversight import Oversight, span_of
from soc.oversight.sources import SILENT_RULE, check_silent_sources, source_rows
from soc.store.base import DocQuery, Store
from tests.scope_helpers import A_CHILD, STORE_KINDS, TREE, A, B, close_kind, open_kind

LEVELS = ("critical", "high", "medium", "low", "informational")
AGENCIES = (A, A_CHILD, B, None)
SOC = Principal("soc", frozenset({"analyst"}))
ANA = Principal("ana", frozenset({"analyst"}), agency=A)  # sees A and its child


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@contextlib.contextmanager
def ingested_at(moment: datetime) -> Iterator[None]:
    """Events written inside are stamped as stored at ``moment`` (both stores' write clocks)."""
    import soc.store.search_base as search_base
    import soc.store.sqlite_events as sqlite_events

    saved = (search_base.now_utc, sqlite_events.time)
    search_base.now_utc = lambda: moment  # type: ignore[assignment]
    sqlite_events.time = types.SimpleNamespace(time=lambda: moment.timestamp())  # type: ignore[assignment]
    try:
        yield
    finally:
        search_base.now_utc, sqlite_events.time = saved  # type: ignore[assignment]


def alert_bodies(now: datetime) -> list[dict[str, Any]]:
    """40 alerts over the last 12 days (4 agencies, 5 levels, 3 rules, every status) and one older."""
    out = []
    for i in range(40):
        status = ("closed", "acknowledged", "new", "open", "open")[i % 5]
        body = {"id": f"al-{i:02d}", "kind": "event", "status": status, "agency": AGENCIES[i % 4],
                "rule": {"id": f"r{i % 3}", "title": f"Rule {i % 3} <b>&", "level": LEVELS[i % 5]},
                "first_seen": iso(now - timedelta(hours=7 * i + 1)), "detected_at": iso(now - timedelta(hours=7 * i)),
                "event_ids": [f"ev-{i}"], "event_count": 1, "group": {}, "entities": {}}
        if status == "closed":
            body.update(close_reason="false_positive" if i % 10 == 0 else "true_positive", closed_at=iso(now))
        out.append(body)
    out.append({"id": "al-old", "status": "new", "agency": A, "rule": {"id": "r0", "title": "Rule 0", "level": "high"},
                "first_seen": iso(now - timedelta(days=40)), "event_ids": [], "entities": {}})
    return out


def incident(id_: str, agency: str, first: datetime, discovered: datetime, **more: Any) -> dict[str, Any]:
    body = {"id": id_, "title": f"Incident {id_}", "status": "triage", "severity": "high",
            "incident_type": "unauthorized_access", "agency": agency, "agencies": [agency], "alert_ids": [],
            "first_seen": iso(first), "discovered_at": iso(discovered), "created_at": iso(discovered),
            "updated_at": iso(discovered),
            "history": [{"at": iso(discovered), "actor": "system:detection", "action": "opened", "detail": {}}]}
    body.update(more)
    return body


def seed(store: Store, now: datetime) -> dict[str, Any]:
    """Alerts, incidents and events; returns what the figures must be."""
    for body in alert_bodies(now):
        assert store.create("alerts", body["id"], body)
    d2, d3 = now - timedelta(days=2), now - timedelta(days=3)
    incidents = [
        # prompt, acknowledged after 30 min by a person, response ended after 5 h
        incident("i1", A, d2 - timedelta(minutes=10), d2, status="resolved", response_ended_at=iso(d2 + timedelta(hours=5)),
                 history=[{"at": iso(d2), "actor": "system:detection", "action": "opened", "detail": {}},
                          {"at": iso(d2 + timedelta(minutes=20)), "actor": "playbook:bf/1", "action": "assign", "detail": {}},
                          {"at": iso(d2 + timedelta(minutes=30)), "actor": "ana", "action": "assign", "detail": {}}]),
        # prompt, opened by a person
        incident("i2", B, d3 - timedelta(minutes=20), d3, incident_type="malware",
                 history=[{"at": iso(d3), "actor": "bob", "action": "opened", "detail": {}}]),
        # replayed old logs: the first event happened 233 days ago and was stored now
        incident("i3", A, now - timedelta(days=233), now - timedelta(days=1), alert_ids=["al-bf"]),
        # detected late, and its first event is no longer stored
        incident("i4", A_CHILD, now - timedelta(days=10), now - timedelta(days=8), alert_ids=["al-gone"]),
        # detected two days after its event, which was stored promptly: a slow detection, counted
        incident("i5", B, now - timedelta(days=6), now - timedelta(days=4), alert_ids=["al-slow"]),
        incident("i6", B, d3, d3 + timedelta(minutes=5), merged_into="i2"),  # merged: not counted
        incident("i7", A, d3, d3 + timedelta(minutes=1), verdict="false_positive", status="closed"),
        # nine days old, no report: the initial report (Mẫu 03) is overdue
        incident("i8", B, now - timedelta(days=9, minutes=5), now - timedelta(days=9)),
    ]
    for body in incidents:
        assert store.create("incidents", body["id"], body)
    for alert_id, incident_id, first, event_id in (("al-bf", "i3", now - timedelta(days=233), "ev-old"),
                                                   ("al-gone", "i4", now - timedelta(days=10), "ev-gone"),
                                                   ("al-slow", "i5", now - timedelta(days=6), "ev-slow")):
        assert store.create("alerts", alert_id, {
            "id": alert_id, "status": "open", "agency": next(i["agency"] for i in incidents if i["id"] == incident_id),
            "incident_id": incident_id, "rule": {"id": "r9", "title": "Replayed", "level": "low"},
            "first_seen": iso(first), "event_ids": [event_id], "entities": {}})
    assert store.write_events([{"_id": "ev-old", "@timestamp": iso(now - timedelta(days=233)), "organization.id": A,
                                "soc.source": "fw-a", "message": "old"}]).created == 1
    with ingested_at(now - timedelta(days=6) + timedelta(minutes=2)):
        assert store.write_events([{"_id": "ev-slow", "@timestamp": iso(now - timedelta(days=6)),
                                    "organization.id": B, "soc.source": "sys-b", "message": "slow"}]).created == 1
    store.refresh()
    return {"incidents": incidents}


@pytest.fixture(params=STORE_KINDS)
def root(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[App]:
    store = open_kind(request.param, request, tmp_path)
    app = App(Settings(data_dir=tmp_path / "data", timezone="Asia/Ho_Chi_Minh"), rule_dirs=[tmp_path])
    app.__dict__["_base"] = store
    app.__dict__["_agencies"] = TREE
    try:
        yield app
    finally:
        close_kind(store)


def in_range(body: dict[str, Any], start: datetime, visible: set[str | None]) -> bool:
    return body["agency"] in visible and body["first_seen"] >= iso(start) and body["id"] != "al-old"


def test_dashboard_figures_match_an_independent_count(root: App) -> None:
    now = root.clock()
    seeded = seed(root.base_store, now)["incidents"]
    for principal, visible in ((SOC, set(AGENCIES)), (ANA, {A, A_CHILD})):
        view = root.acting_as(principal)
        span = span_of("30d", None, root.settings.zone, root.clock())
        d = Oversight(view).dashboard(span)
        alerts = [a for a in alert_bodies(now) if in_range(a, span.start, visible)]
        extra = [a for a in ("al-bf", "al-gone", "al-slow") if root.base_store.get("alerts", a).body["agency"] in visible
                 and root.base_store.get("alerts", a).body["first_seen"] >= iso(span.start)]
        assert d.alerts_total == len(alerts) + len(extra)
        levels = Counter(a["rule"]["level"] for a in alerts) + Counter("low" for _ in extra)
        assert {k: sum(v) for k, v in d.levels.items()} == dict(levels)
        assert sum(len(v) for v in d.levels.values()) == len(d.levels) * len(span.buckets)
        assert {a: n for a, _name, n in d.by_agency} == dict(
            Counter(a["agency"] for a in alerts) + Counter(root.base_store.get("alerts", x).body["agency"] for x in extra))
        if principal is ANA:
            assert {a for a, _n, _c in d.by_agency} <= {A, A_CHILD}
        top = {rid: n for rid, _title, n in d.top_rules}
        assert top["r0"] == sum(1 for a in alerts if a["rule"]["id"] == "r0")
        assert {rid: title for rid, title, _n in d.top_rules}["r1"] == "Rule 1 <b>&"
        # incidents: open = not closed, not merged
        open_ = Counter(i["agency"] for i in seeded if i["agency"] in visible and i.get("status") != "closed"
                        and not i.get("merged_into"))
        assert {a: n for a, _name, n in d.open_incidents} == dict(open_)
        t = d.times
        if principal is SOC:
            # MTTD over i1 (10 min), i2 (20), i5 (2 days, stored promptly), i8 (5); i3 back-filled, i4 unknown
            assert (t.mttd.count, t.backfilled, t.unknown) == (4, 1, 1)
            assert t.mttd.minutes()[0] == 15.0
            assert t.mttd.minutes()[1] == round((10 + 20 + 2 * 1440 + 5) / 4, 2)
            assert t.backfill_delay.count == 1 and t.backfill_delay.hours()[0] > 233 * 24 - 1
            # MTTA: i1 30 min (the playbook's assignment does not count), i2 0, i7 none; the rest untouched
            assert t.mtta.count == 2 and t.mtta.minutes()[0] == 15.0
            assert t.mttr.count == 1 and t.mttr.hours()[0] == 5.0
            assert d.facts.overdue_total >= 1 and any(r.report.incident_id == "i8" and r.report.overdue
                                                       for r in d.facts.due)
        else:
            assert (t.mttd.count, t.backfilled, t.unknown) == (1, 1, 1)  # i1; i3 back-filled; i4 (A's child)
            assert all(r.agency in (A, A_CHILD) for r in d.facts.due)
            assert all(r.report.incident_id not in ("i2", "i5", "i8") for r in d.facts.due)


def test_scorecard_per_agency(root: App) -> None:
    now = root.clock()
    seed(root.base_store, now)
    with ingested_at(now - timedelta(hours=3)):  # a source of A that went quiet three hours ago
        root.base_store.write_events([{"_id": "ev-quiet", "@timestamp": iso(now - timedelta(hours=3)),
                                       "organization.id": A, "soc.source": "dns-a", "message": "x"}])
    root.base_store.refresh()
    span = span_of("30d", None, root.settings.zone, root.clock())  # after the events were stored
    rows = {r.agency: r for r in Oversight(root.acting_as(SOC)).scorecard(span)}
    assert [a for a in rows if a in TREE] == [a.id for a in _tree_order()]
    alerts = [a for a in alert_bodies(now) if in_range(a, span.start, set(AGENCIES))]
    closed = Counter(a["agency"] for a in alerts if a["status"] == "closed")
    fps = Counter(a["agency"] for a in alerts if a.get("close_reason") == "false_positive")
    for agency in (A, A_CHILD, B):
        assert (rows[agency].closed, rows[agency].false_positives) == (closed[agency], fps[agency])
        assert rows[agency].fp_rate == (fps[agency] / closed[agency] if closed[agency] else None)
    # A: fw-a (stored now) connected, dns-a silent; B's sys-b was stored six days ago: in the range, silent
    assert (rows[A].sources, rows[A].silent) == (2, 1)
    assert (rows[B].sources, rows[B].silent) == (1, 1)
    assert rows[A].incidents == 3 and rows[A].by_type == Counter({"unauthorized_access": 3})  # i1 i3 i7
    assert rows[B].incidents == 3 and rows[B].by_type["malware"] == 1  # i2 i5 i8 (i6 merged)
    assert rows[B].overdue >= 1
    assert rows[A].times.backfilled == 1 and rows[A].times.mttd.count == 1
    scoped = {r.agency for r in Oversight(root.acting_as(ANA)).scorecard(span)}
    assert B not in scoped and None not in scoped and {A, A_CHILD} <= scoped


def _tree_order() -> list[Any]:
    order: list[Any] = []

    def walk(parent: str | None) -> None:
        for agency in TREE:
            if (agency.merged_into or agency.parent) == parent:
                order.append(agency)
                walk(agency.id)
    walk(None)
    return order


def test_silent_source_check_raises_one_alert_per_silence(root: App) -> None:
    store, now = root.base_store, root.clock()
    quiet = now - timedelta(hours=2)
    with ingested_at(quiet):
        store.write_events([{"_id": "q1", "@timestamp": iso(now - timedelta(hours=2)), "organization.id": B,
                             "soc.source": "fw-b", "message": "x"}])
    store.write_events([{"_id": "q2", "@timestamp": iso(now), "organization.id": A, "soc.source": "fw-a",
                         "message": "y"}, {"_id": "q3", "@timestamp": iso(now), "soc.source": "fw-x", "message": "z"}])
    store.refresh()
    now = root.clock()  # after the events were stored
    rows = source_rows(store, TREE, end=now, window_hours=24, silent_minutes=60, everything=True)
    assert [(r.agency, r.source, r.silent) for r in rows] == [(B, "fw-b", True), (None, "fw-x", False),
                                                              (A, "fw-a", False)]
    assert rows[1].last_event_at is not None  # the newest event of a source of no agency
    assert (rows[0].last_ingested_at, rows[0].events, rows[0].per_hour) == (iso(quiet), 1, round(1 / 24, 2))
    created = check_silent_sources(store, TREE, now=now, window_hours=24, silent_minutes=60)
    assert [(a["agency"], a["group"], a["rule"]["id"]) for a in created] == [(B, {"soc.source": "fw-b"},
                                                                              SILENT_RULE["id"])]
    store.refresh()
    assert check_silent_sources(store, TREE, now=now + timedelta(minutes=15), window_hours=24, silent_minutes=60) == []
    page = store.query_documents(DocQuery("alerts", filters=(("rule.id", "equals", SILENT_RULE["id"]),)))
    assert page.total == 1 and page.docs[0].body["agency"] == B
    # through A's scoped store, B's silent source does not exist
    scoped = root.acting_as(ANA).store
    assert [r.agency for r in source_rows(scoped, TREE, end=now, window_hours=24, silent_minutes=60)] == [A]


def test_timing_rules() -> None:
    """The classification without a store: detection within the threshold is prompt without a
    look-up; a late one is prompt or back-filled by its first event's storing delay."""
    now = datetime(2026, 12, 7, tzinfo=UTC)
    body = {"id": "x", "first_seen": iso(now - timedelta(hours=30)), "discovered_at": iso(now)}
    day = 24 * 3600.0
    assert timing_of(body, threshold=day).detect_class == "unknown"
    assert timing_of(body, threshold=day, ingest_delay=60, looked_up=True).detect_class == "prompt"
    assert timing_of(body, threshold=day, ingest_delay=29 * 3600, looked_up=True).detect_class == "backfilled"
    assert timing_of({**body, "first_seen": iso(now - timedelta(hours=1))}, threshold=day).detect_class == "prompt"
    assert timing_of({**body, "verdict": "benign"}, threshold=day).detect_class is None
    assert timing_of({**body, "merged_into": "y"}, threshold=day).detect is None
