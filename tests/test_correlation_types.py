"""The correlation types of issue #15: Sigma's ``value_sum`` and the project's ``beaconing`` and
``first_seen`` (soc.detect.extensions), and the cross-source rules in detections/correlations/.

Each type fires on its positive regression sample and stays silent on the benign sample of the
same shape, on SQLite and on OpenSearch, with the same alert ids on both; a second run records
nothing new. ``first_seen`` is also run as the scheduler runs it -- a window after the history --
so its baseline comes from the store's aggregation (SQL GROUP BY, composite aggregation).
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from soc.catalog import default_catalog
from soc.detect.compiler import CorrelationSpec, RuleSet, compile_rules
from soc.detect.correlate import Point, correlate, first_seen, pair_key
from soc.detect.engine import ALERTS, DetectionEngine
from soc.detect.extensions import rewrite
from soc.detect.rules import load_rules, parse_rule_file
from soc.ingest.normalize import SourceContext
from soc.ingest.reader import FileIngestor
from soc.model import Event
from soc.store.base import Store, Window
from soc.store.sqlite import SQLiteStore
from tests.conftest import ROOT

SAMPLES = ROOT / "detections" / "regression_data" / "correlations"
SUM = "8e2b6a47-1d3c-4f95-b0e8-7c5a2d9f4e13"  # Large Outbound Transfer To One External Address At Night
BEACON = "c41f7d2e-6a38-4b59-8e0d-2f9b1a6c5e74"  # Beaconing To External Address On Unusual Port
FIRST_SEEN = "53857040-7650-4156-bab9-210f1f3ecde0"  # New Login Source For An Administrative Account
SPREAD = "82704c77-b060-4d8e-9cb3-b8f7a925f7a5"  # Brute Force Spread Over Many Sources Against One Account
SPRAY = "e2f2f55f-dad5-4045-86bb-fc1b2028bfee"  # Password Spraying From One Source Across Services
WIN_ADMIN = "baf6cf6e-9086-4773-813d-69986960ce1c"  # Windows Account Created Then Added To A Privileged Group
LINUX_ADMIN = "53bde526-0daa-4a11-ae69-29ae31df1413"  # Linux Account Created Then Added To A Privileged Group
#: rule id -> sample folder, sample file extension, parser
CASES = {
    SUM: ("network_volume_and_beaconing", "log", "auto"),
    BEACON: ("network_volume_and_beaconing", "log", "auto"),
    FIRST_SEEN: ("authentication_spread", "log", "auto"),
    SPREAD: ("authentication_spread", "log", "auto"),
    SPRAY: ("authentication_spread", "log", "auto"),
    WIN_ADMIN: ("account_created_then_admin", "json", "json"),
    LINUX_ADMIN: ("account_created_then_admin", "log", "auto"),
}
ZONE = ZoneInfo("Asia/Ho_Chi_Minh")


# -- helpers ------------------------------------------------------------------------------------
@cache
def ruleset(dialect: str) -> RuleSet:
    return compile_rules(load_rules([ROOT / "detections"]), dialect=dialect)


def read(path: Path, agency: str, fmt: str) -> list[Event]:
    context = SourceContext(source="test", agency_id=agency, agency_name=agency, zone=ZONE)
    return [dict(e) for batch, _ in FileIngestor(context, fmt=fmt).read(path) for e in batch]


def sample_events() -> list[Event]:
    """Every positive and negative sample, each under its own agency (``<rule>-pos``/``-neg``):
    the agency is part of every correlation group, so the samples cannot see each other."""
    events: list[Event] = []
    for rule, (folder, ext, fmt) in CASES.items():
        events += read(SAMPLES / folder / f"{rule}.{ext}", f"{rule[:8]}-pos", fmt)
        events += read(SAMPLES / folder / f"{rule}_negative.{ext}", f"{rule[:8]}-neg", fmt)
    return events


def write(store: Store, events: list[Event]) -> None:
    result = store.write_events([dict(e) for e in events])
    assert not result.rejected and not result.retryable, result
    store.refresh()


def alerts(store: Store) -> dict[str, dict[str, Any]]:
    store.refresh()
    return {d.id: d.body for d in store.iter_all(ALERTS)}


def hunt(store: Store) -> tuple[dict[str, dict[str, Any]], int]:
    """The rules under test over all the data (as ``soc hunt`` and ``soc rules test`` run them):
    the alerts, and how many a second run over the same data created."""
    rules = ruleset(store.dialect)
    engine = DetectionEngine(store, rules)
    chosen = [rules.detections[rule] for rule in CASES]
    first = engine.run_all(chosen, Window(None, None, "@timestamp"))
    assert all(r.error is None for r in first), [(r.rule_id, r.error) for r in first if r.error]
    again = engine.run_all(chosen, Window(None, None, "@timestamp"))
    return alerts(store), sum(len(r.created) for r in again)


def by_case(found: dict[str, dict[str, Any]]) -> dict[tuple[str, str], list[str]]:
    """(rule id, agency) -> sorted alert ids, for the rules under test."""
    out: dict[tuple[str, str], list[str]] = {}
    for alert_id, body in found.items():
        if body["rule"]["id"] in CASES:
            out.setdefault((body["rule"]["id"], body["agency"]), []).append(alert_id)
    return {k: sorted(v) for k, v in out.items()}


def check_cases(found: dict[str, dict[str, Any]]) -> None:
    cases = by_case(found)
    for rule in CASES:
        assert len(cases.get((rule, f"{rule[:8]}-pos"), [])) == 1, (rule, cases)
        assert (rule, f"{rule[:8]}-neg") not in cases, (rule, cases)
    # nothing leaks between samples: each rule fires only on its own positive sample
    assert sorted(cases) == sorted((rule, f"{rule[:8]}-pos") for rule in CASES)


@pytest.fixture(scope="module")
def sqlite_alerts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    store = SQLiteStore(tmp_path_factory.mktemp("types") / "soc.db", numeric_fields=default_catalog().numeric_fields)
    try:
        write(store, sample_events())
        found, again = hunt(store)
    finally:
        store.close()
    assert again == 0
    return found


# -- both stores: positive and benign samples, deterministic ids ---------------------------------
def test_each_type_fires_on_its_positive_sample_and_not_on_the_benign_one_on_sqlite(
        sqlite_alerts: dict[str, dict[str, Any]]) -> None:
    check_cases(sqlite_alerts)
    sums = [a for a in sqlite_alerts.values() if a["rule"]["id"] == SUM]
    assert sums[0]["correlation"]["type"] == "value_sum"
    assert sums[0]["correlation"]["max_in_window"] == 600_007_404  # 4 x 150 MB + 1,234 x (0+1+2+3)
    assert sums[0]["group"] == {"source.ip": "10.10.40.77", "destination.ip": "185.100.87.202"}
    beacon = next(a for a in sqlite_alerts.values() if a["rule"]["id"] == BEACON)["correlation"]
    assert beacon["type"] == "beaconing" and beacon["beats"] == 14
    assert 570 <= beacon["mean_interval_seconds"] <= 630 and beacon["coefficient_of_variation"] <= 0.15
    new = next(a for a in sqlite_alerts.values() if a["rule"]["id"] == FIRST_SEEN)
    assert new["group"] == {"user.name": "quantri", "source.ip": "203.0.113.50"}
    assert new["event_count"] == 1 and new["first_seen"].startswith("2026-11-20T16:40")


@pytest.mark.search
def test_opensearch_gives_the_same_alerts_with_the_same_ids(
        sqlite_alerts: dict[str, dict[str, Any]], opensearch_url: str, unique_name: str) -> None:
    from tests.search_helpers import drop, open_search_store

    store = open_search_store(opensearch_url, unique_name)
    try:
        write(store, sample_events())
        found, again = hunt(store)
    finally:
        drop(store)
    check_cases(found)
    assert again == 0  # a rerun over the same data records nothing new
    assert by_case(found) == by_case(sqlite_alerts)  # same ids on both stores
    for alert_id, body in found.items():
        if body["rule"]["id"] in CASES:
            reference = sqlite_alerts[alert_id]
            assert (body["event_ids"], body["group"], body["correlation"]) == \
                   (reference["event_ids"], reference["group"], reference["correlation"])


def _pre_checked(store: Store) -> tuple[dict[str, list[str]], list[str]]:
    """SUM and BEACON run one by one (as the scheduler runs them, no prefetch) over the samples:
    the agencies they alert for, and the agencies whose matches were read."""
    write(store, sample_events())
    rules = ruleset(store.dialect)
    engine = DetectionEngine(store, rules)
    read_for: list[str] = []
    find = store.find_matches

    def recording(where: Any, datasets: Any, window: Window, fields: Any, limit: int, **kwargs: Any) -> Any:
        found = find(where, datasets, window, fields, limit, **kwargs)
        read_for.extend(sorted({m.agency or "" for m in found}))
        return found

    store.find_matches = recording  # type: ignore[method-assign]
    fired: dict[str, list[str]] = {}
    for rule in (SUM, BEACON):
        result = engine.run(rules.detections[rule], Window(None, None, "@timestamp"))
        assert result.error is None, result.error
    for body in alerts(store).values():
        if body["rule"]["id"] in (SUM, BEACON):
            fired.setdefault(body["rule"]["id"], []).append(body["agency"])
    return fired, read_for


def _check_pre_checked(fired: dict[str, list[str]], read_for: list[str]) -> None:
    assert fired == {SUM: [f"{SUM[:8]}-pos"], BEACON: [f"{BEACON[:8]}-pos"]}
    # the positive samples could qualify, so their matches were read (with everything else)
    assert f"{SUM[:8]}-pos" in read_for and f"{BEACON[:8]}-pos" in read_for


def test_sums_and_beacons_read_no_match_when_the_sqlite_store_rules_them_out(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "soc.db", numeric_fields=default_catalog().numeric_fields)
    try:
        _check_pre_checked(*_pre_checked(store))
        # only the benign samples: the store's sums and counts rule every window out, nothing is read
        clean = SQLiteStore(tmp_path / "clean.db", numeric_fields=default_catalog().numeric_fields)
        try:
            events = [e for e in sample_events() if str(e["organization.id"]).endswith("-neg")]
            write(clean, events)
            rules = ruleset("sqlite")
            calls: list[Window] = []
            find = clean.find_matches
            clean.find_matches = lambda *a, **k: calls.append(a[2]) or find(*a, **k)  # type: ignore[method-assign]
            engine = DetectionEngine(clean, rules)
            assert engine.run(rules.detections[SUM], Window(None, None, "@timestamp")).error is None
            assert calls == []  # at most 500 MB in two adjacent hours: no window can exceed it
            # the benign beacon has as many connections as the real one: the count cannot rule it
            # out, its matches are read and the intervals decide
            assert engine.run(rules.detections[BEACON], Window(None, None, "@timestamp")).error is None
            assert len(calls) == 1
            assert not [a for a in alerts(clean).values() if a["rule"]["id"] in (SUM, BEACON)]
        finally:
            clean.close()
    finally:
        store.close()


@pytest.mark.search
def test_sums_and_beacons_are_pre_checked_on_the_search_store_too(opensearch_url: str, unique_name: str) -> None:
    from tests.search_helpers import drop, open_search_store

    store = open_search_store(opensearch_url, unique_name)
    try:
        fired, read_for = _pre_checked(store)
    finally:
        drop(store)
    _check_pre_checked(fired, read_for)


# -- first_seen as the scheduler runs it: the baseline from the store ---------------------------
def _ssh_ok(day: int, hour: int, user: str, ip: str, pid: int) -> str:
    return f"Nov {day:2d} {hour:02d}:30:00 srv-motcua-01 sshd[{pid}]: Accepted password for {user} from {ip} port 50{pid % 1000:03d} ssh2"


def _scheduled_first_seen(store: Store, tmp_path: Path) -> dict[str, list[dict[str, Any]]]:
    """History Nov 1-16, then a run over the window of Nov 20 only (the history is outside it)."""
    history = [_ssh_ok(d, 8, "quantri", "10.0.10.5", 100 + d) for d in (1, 4, 8, 12, 16)]
    history += [_ssh_ok(10, 9, "quantri", "10.0.10.9", 120)]
    lines = {
        "new-source": [*history, _ssh_ok(20, 23, "quantri", "203.0.113.50", 130)],  # never seen: alert
        "known-source": [*history, _ssh_ok(20, 23, "quantri", "10.0.10.9", 131)],  # seen Nov 10: silent
        # seen on Oct 10 only, 41 days before: new again (the lookback is 30 days)
        "expired-source": [_ssh_ok(10, 8, "quantri", "10.0.20.77", 140).replace("Nov 10", "Oct 10"),
                           *history, _ssh_ok(20, 23, "quantri", "10.0.20.77", 141)],
    }
    events: list[Event] = []
    for agency, text in lines.items():
        path = tmp_path / f"{agency}.log"
        path.write_text("\n".join(text) + "\n")
        events += read(path, agency, "auto")
    write(store, events)
    rules = ruleset(store.dialect)
    engine = DetectionEngine(store, rules)
    start = datetime(2026, 11, 19, 17, 0, tzinfo=UTC).timestamp()  # Nov 20 00:00 in the province
    result = engine.run(rules.detections[FIRST_SEEN], Window(start, start + 86400, "@timestamp"))
    assert result.error is None, result.error
    out: dict[str, list[dict[str, Any]]] = {}
    for body in alerts(store).values():
        if body["rule"]["id"] == FIRST_SEEN:
            out.setdefault(body["agency"], []).append(body)
    return out


def _check_scheduled(found: dict[str, list[dict[str, Any]]]) -> None:
    # the account is known only from the store's history (outside the window): without the
    # baseline nothing would fire; with it, exactly the unseen and the expired sources do
    assert sorted(found) == ["expired-source", "new-source"], found
    assert found["new-source"][0]["group"] == {"user.name": "quantri", "source.ip": "203.0.113.50"}
    assert found["expired-source"][0]["group"] == {"user.name": "quantri", "source.ip": "10.0.20.77"}


def test_first_seen_takes_its_baseline_from_the_sqlite_store(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "soc.db", numeric_fields=default_catalog().numeric_fields)
    try:
        found = _scheduled_first_seen(store, tmp_path)
        buckets = store.aggregate_matches(ruleset("sqlite").detections["94725a8b-4734-42eb-9685-493e9f8d0787"].where,
                                          None, Window(None, None, "@timestamp"), ["user.name", "source.ip"],
                                          agencies=["known-source"])
    finally:
        store.close()
    _check_scheduled(found)
    # one row per (agency, user, address), with the count and the last time
    assert sorted((b.values, b.count) for b in buckets) == [
        (("quantri", "10.0.10.5"), 5), (("quantri", "10.0.10.9"), 2)]


@pytest.mark.search
def test_first_seen_takes_its_baseline_from_the_search_store(
        tmp_path: Path, opensearch_url: str, unique_name: str) -> None:
    from tests.search_helpers import drop, open_search_store

    store = open_search_store(opensearch_url, unique_name)
    try:
        found = _scheduled_first_seen(store, tmp_path)
        buckets = store.aggregate_matches(ruleset("dsl").detections["94725a8b-4734-42eb-9685-493e9f8d0787"].where,
                                          None, Window(None, None, "@timestamp"), ["user.name", "source.ip"],
                                          agencies=["known-source"])
    finally:
        drop(store)
    _check_scheduled(found)
    assert sorted((b.values, b.count) for b in buckets) == [
        (("quantri", "10.0.10.5"), 5), (("quantri", "10.0.10.9"), 2)]


def test_first_seen_on_an_ingest_window_reads_only_the_new_logins_and_the_baseline(tmp_path: Path) -> None:
    """The scheduler's path: a window on ingest time holding only the new login; the history
    was ingested before it and comes back as the store's aggregation, not as matches."""
    store = SQLiteStore(tmp_path / "soc.db", numeric_fields=default_catalog().numeric_fields)
    try:
        old = tmp_path / "old.log"
        old.write_text("\n".join(_ssh_ok(d, 8, "quantri", "10.0.10.5", 100 + d) for d in (1, 4, 8, 12, 16)) + "\n")
        write(store, read(old, "agency-a", "auto"))
        rules = ruleset("sqlite")
        engine = DetectionEngine(store, rules)
        pulled: list[Window] = []
        find = store.find_matches

        def recording(where: Any, datasets: Any, window: Window, *args: Any, **kwargs: Any) -> Any:
            pulled.append(window)
            return find(where, datasets, window, *args, **kwargs)

        store.find_matches = recording  # type: ignore[method-assign]
        start = datetime.now(UTC).timestamp()  # the store stamps event.ingested with the time of writing
        new = tmp_path / "new.log"
        new.write_text(_ssh_ok(20, 23, "quantri", "203.0.113.50", 130) + "\n")
        write(store, read(new, "agency-a", "auto"))
        result = engine.run(rules.detections[FIRST_SEEN], Window(start, datetime.now(UTC).timestamp() + 1,
                                                                  "event.ingested"))
        assert result.error is None, result.error
        found = [a for a in alerts(store).values() if a["rule"]["id"] == FIRST_SEEN]
    finally:
        store.close()
    assert [a["group"] for a in found] == [{"user.name": "quantri", "source.ip": "203.0.113.50"}]
    # matches were read for the ingest window and for the new login's own time, never 30 days back
    event_time = [w for w in pulled if w.field == "@timestamp"]
    assert event_time and all(w.start is not None and w.end is not None and w.end - w.start < 1 for w in event_time)


# -- the window logic itself ----------------------------------------------------------------------
def _spec(kind: str, **kw: Any) -> CorrelationSpec:
    base: dict[str, Any] = {"type": kind, "rules": ("r",), "group_by": ("source.ip",), "timespan": 3600.0,
                            "op": "gte", "count": 5.0}
    return CorrelationSpec(**(base | kw))


def _points(times: list[float], **fields: Any) -> list[Point]:
    return [Point(t, "r", "a", {"source.ip": "10.0.0.1", **fields}, (f"e{i}",)) for i, t in enumerate(times)]


def test_beaconing_needs_regular_intervals_and_merges_duplicate_connections() -> None:
    spec = _spec("beaconing", options={"jitter": 0.1, "min_interval": 5.0})
    regular = [600.0 * i + (7 if i % 2 else -7) for i in range(8)]
    assert len(correlate(spec, _points(regular)).episodes) == 1
    # the same count at irregular times: silent
    assert correlate(spec, _points([0, 50, 700, 720, 2000, 2100, 3000, 3500])).episodes == []
    # each beacon opening two sessions a second apart is still one beat per interval
    doubled = sorted([*regular, *(t + 1 for t in regular)])
    result = correlate(spec, _points(doubled))
    assert len(result.episodes) == 1 and result.episodes[0].details["beats"] == 8
    # and without merging them the intervals alternate 1 s / 599 s: not regular
    assert correlate(_spec("beaconing", options={"jitter": 0.1, "min_interval": 0.0}), _points(doubled)).episodes == []
    # too few connections in the window: silent, however regular
    assert correlate(spec, _points(regular[:4])).episodes == []


def test_value_sum_slides_over_the_window_and_ignores_non_numbers() -> None:
    spec = _spec("value_sum", op="gt", count=100.0, value_field="source.bytes", timespan=60.0)
    points = [Point(0, "r", "a", {"source.ip": "x", "source.bytes": 60}, ("a",)),
              Point(60, "r", "a", {"source.ip": "x", "source.bytes": "41"}, ("b",)),  # ends exactly at t+60
              Point(61, "r", "a", {"source.ip": "x", "source.bytes": "n/a"}, ("c",))]
    result = correlate(spec, points)
    assert [(e.start, e.end, e.metric) for e in result.episodes] == [(0, 60, 101.0)]
    assert correlate(spec, points[1:]).episodes == []


def test_first_seen_needs_a_known_entity_and_forgets_after_the_timespan() -> None:
    spec = _spec("first_seen", value_field="user.name", group_by=("host.name",), timespan=100.0,
                 options={"known_entities_only": True})

    def p(t: float, user: str) -> Point:
        return Point(t, "r", "a", {"host.name": "H", "user.name": user}, (f"{t}",))

    # first event of the host: no baseline, silent; a new user then alerts, once
    result = first_seen(spec, [p(0, "alice"), p(10, "bob"), p(20, "BOB"), p(200, "alice")])
    assert [(e.start, e.group_values["user.name"]) for e in result.episodes] == [(10, "bob")]
    # alice last seen at 0 is outside the 100 s before 200, and the host was seen at 20: new
    history = {pair_key("a", ["h"], "alice"): (0.0, 0.0), pair_key("a", ["h"], "carol"): (140.0, 140.0)}
    result = first_seen(spec, [p(150, "carol"), p(200, "alice")], history=history)
    assert [e.group_values["user.name"] for e in result.episodes] == ["alice"]
    # min_history: the host's baseline must be at least 50 s old (seen since 140: not at 150, yes at 200)
    settling = _spec("first_seen", value_field="user.name", group_by=("host.name",), timespan=100.0,
                     options={"known_entities_only": True, "min_history": 50.0})
    history = {pair_key("a", ["h"], "carol"): (140.0, 140.0)}
    result = first_seen(settling, [p(150, "dave"), p(200, "erin")], history=history)
    assert [e.group_values["user.name"] for e in result.episodes] == ["erin"]
    # without known_entities_only the first event of an entity alerts too
    loose = _spec("first_seen", value_field="user.name", group_by=("host.name",), timespan=100.0,
                  options={"known_entities_only": False})
    assert len(first_seen(loose, [p(0, "alice")]).episodes) == 1


# -- loading the extensions ---------------------------------------------------------------------
BASE = """title: base
id: 11111111-1111-4111-8111-111111111111
name: base_rule
logsource: {product: linux, service: sshd}
detection: {sel: {event.action: ssh_login}, condition: sel}
---
"""


def _compile(tmp_path: Path, correlation: str) -> Any:
    path = tmp_path / "rule.yml"
    path.write_text(BASE + "title: corr\nid: 22222222-2222-4222-8222-222222222222\ncorrelation:\n" + correlation)
    return compile_rules(load_rules([path])).detections["22222222-2222-4222-8222-222222222222"]


def test_project_types_are_loaded_past_pysigma_and_checked(tmp_path: Path) -> None:
    beacon = ("  type: beaconing\n  rules: [base_rule]\n  group-by: [source.ip]\n  timespan: 6h\n"
              "  condition: {gte: 12}\n  jitter: '15%'\n")
    detection = _compile(tmp_path, beacon)
    assert not detection.report.errors and detection.correlation.type == "beaconing"
    assert detection.correlation.options == {"jitter": 0.15, "min_interval": 1.0}
    assert detection.correlation.count == 12 and detection.correlation.timespan == 6 * 3600
    # pySigma alone refuses the type: that is why the loader rewrites it
    raw = parse_rule_file(tmp_path / "x.yml", (BASE + "title: corr\nid: 22222222-2222-4222-8222-222222222222\n"
                                               "correlation:\n" + beacon).encode())
    assert all(not hasattr(r, "error") for r in raw)
    import yaml
    from sigma.collection import SigmaCollection
    docs = list(yaml.safe_load_all(BASE + "title: c\nid: 33333333-3333-4333-8333-333333333333\ncorrelation:\n" + beacon))
    assert SigmaCollection.from_dicts(docs, collect_errors=True).rules[1].errors
    assert rewrite(docs[0]) is docs[0]  # documents without an extension are untouched
    # wrong keys are reported on the rule, not raised
    assert "does not know" in _compile(tmp_path, beacon + "  jiter: 0.1\n").report.errors[0]
    assert "jitter must be" in _compile(tmp_path, beacon.replace("'15%'", "lots")).report.errors[0]
    # sum is Sigma's value_sum; first_seen reads its field
    summed = _compile(tmp_path, "  type: sum\n  rules: [base_rule]\n  group-by: [source.ip]\n  timespan: 1h\n"
                                "  condition: {field: source.bytes, gt: 1000}\n")
    assert summed.correlation.type == "value_sum" and summed.correlation.value_field == "source.bytes"
    new = _compile(tmp_path, "  type: first_seen\n  rules: [base_rule]\n  group-by: [user.name]\n"
                             "  timespan: 30d\n  field: source.ip\n")
    assert new.correlation.type == "first_seen" and new.correlation.value_field == "source.ip"
    assert new.correlation.options == {"known_entities_only": True, "min_history": 0.0}
    assert "needs field" in _compile(tmp_path, "  type: first_seen\n  rules: [base_rule]\n"
                                               "  group-by: [user.name]\n  timespan: 30d\n").report.errors[0]

