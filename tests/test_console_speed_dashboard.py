"""The hourly totals of the alerts in the embedded store (:mod:`soc.store.sqlite_doc_rollups`):
the dashboard's counts of a time range -- in total, per level, status or agency, in an agency's
scope or not -- answered from them equal the counts of the alerts themselves, whatever the range's
ends (whole hours or not, open), after alerts change status or are deleted; an alert whose time
is written otherwise turns them off; and a month's counts read the totals, not the alerts."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from soc.model import iso
from soc.store import sqlite_doc_query
from soc.store.base import DocQuery, OwnedBy
from soc.store.sqlite import SQLiteStore
from tests.test_store_doc_plans import plans

START = datetime(2026, 12, 1, 17, 0, tzinfo=UTC)  # midnight in Asia/Ho_Chi_Minh
AGENCIES = ("xa-a", "xa-b", "so-c", None)
LEVELS = ("critical", "high", "medium", "low")
STATUSES = ("new", "acknowledged", "closed")


def _alerts(n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        body: dict[str, Any] = {"id": f"a{i:04d}", "status": rng.choice(STATUSES), "rule": {"id": f"r{i % 7}",
                                "level": rng.choice(LEVELS)},
                                "first_seen": iso(START + timedelta(seconds=rng.randrange(3 * 86400)))}
        agency = rng.choice(AGENCIES)
        if agency is not None:
            body["agency"] = agency
        if i % 50 == 7:
            del body["first_seen"]  # no time: never in a range
        out.append(body)
    return out


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    made = SQLiteStore(tmp_path / "soc.db")
    for body in _alerts(400, 1):
        made.create("alerts", body["id"], body)
    yield made
    made.close()


def _in_range(body: dict[str, Any], start: str | None, end: str | None) -> bool:
    moment = body.get("first_seen")
    return moment is not None and (start is None or moment >= start) and (end is None or moment < end)


def _oracle(store: SQLiteStore, start: str | None, end: str | None, group: str | None,
            where: dict[str, list[str]], agencies: set[str] | None) -> Counter[Any]:
    """The counts read from the alerts themselves."""
    counts: Counter[Any] = Counter()
    for doc in store.iter_all("alerts"):
        body = doc.body
        values = {"agency": body.get("agency"), "rule.level": body["rule"]["level"], "status": body["status"],
                  "rule.id": body["rule"]["id"]}
        if not _in_range(body, start, end) or any(values[k] not in v for k, v in where.items()):
            continue
        if agencies is not None and values["agency"] not in agencies:
            continue
        key = values[group] if group else None
        if group and key is None:
            continue
        counts[key] += 1
    return counts


def _ranges() -> list[tuple[str | None, str | None]]:
    hour = timedelta(hours=1)
    return [(iso(START), iso(START + timedelta(days=3))),                       # whole days
            (iso(START + 5 * hour), iso(START + 29 * hour)),                    # a day of whole hours
            (iso(START + timedelta(minutes=37)), iso(START + timedelta(hours=30, minutes=5, seconds=3))),
            (iso(START + timedelta(minutes=10)), iso(START + timedelta(minutes=50))),  # inside one hour
            (None, iso(START + 40 * hour)), (iso(START + timedelta(hours=20, minutes=1)), None)]


def _query(start: str | None, end: str | None, where: dict[str, list[str]]) -> DocQuery:
    filters: list[Any] = [("first_seen", "range", (start, end))]
    filters += [(k, "in", v) for k, v in where.items()]
    return DocQuery("alerts", filters=tuple(filters), size=1)


CASES = [(None, {}, None), ("rule.level", {}, None), ("status", {}, None), ("agency", {}, None),
         ("rule.level", {"status": ["new", "acknowledged"]}, None), (None, {"agency": ["xa-a"]}, None),
         ("status", {}, {"xa-a", "so-c"}), ("rule.level", {"rule.level": ["high", "low"]}, {"xa-b"}),
         ("agency", {"status": ["closed"]}, {"xa-a", "xa-b"}), ("rule.id", {}, None),
         ("rule.id", {"rule.id": ["r1", "r2", "r3"]}, None), (None, {"rule.id": ["r4"]}, None),
         ("rule.id", {}, {"xa-a"}), ("rule.id", {"status": ["new"]}, None)]  # the last two: not from the totals


def _check_all(store: SQLiteStore, used: list[Any]) -> None:
    for start, end in _ranges():
        for group, where, agencies in CASES:
            owned = OwnedBy(("agency",), frozenset(agencies)) if agencies else None
            found = store.count_documents(_query(start, end, where), (group,) if group else (), size=10,
                                          owned_by=owned)
            expected = _oracle(store, start, end, group, where, agencies)
            if group:
                assert dict((k[0], n) for k, n in found) == dict(expected), (start, end, group, where, agencies)
                assert [n for _, n in found] == sorted(expected.values(), reverse=True)
            else:
                assert found == [((), expected[None])], (start, end, where, agencies)
    assert used, "the totals answered none of the counts"


@pytest.fixture()
def used(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The answers the hourly totals gave."""
    answers: list[Any] = []
    original = sqlite_doc_query.rollup_counts

    def counting(*args: Any) -> Any:
        answer = original(*args)
        if answer is not None:
            answers.append(answer)
        return answer

    monkeypatch.setattr(sqlite_doc_query, "rollup_counts", counting)
    return answers


def test_counts_from_the_totals_equal_the_alerts_counts(store: SQLiteStore, used: list[Any]) -> None:
    _check_all(store, used)


def test_the_totals_follow_changes_and_deletions(store: SQLiteStore, used: list[Any]) -> None:
    rng = random.Random(2)
    for doc in list(store.iter_all("alerts"))[:120]:
        body = dict(doc.body)
        if rng.random() < 0.3:
            assert store.delete("alerts", doc.id)
            continue
        body["status"] = rng.choice(STATUSES)
        if rng.random() < 0.3:
            body["first_seen"] = iso(START + timedelta(seconds=rng.randrange(3 * 86400)))
        if rng.random() < 0.2:
            body["agency"] = rng.choice(AGENCIES[:3])
        store.put("alerts", doc.id, body)
    _check_all(store, used)


def test_an_alert_timed_otherwise_turns_the_totals_off(store: SQLiteStore, used: list[Any]) -> None:
    store.create("alerts", "odd", {"id": "odd", "status": "new", "rule": {"id": "r1", "level": "high"},
                                   "first_seen": "2026-12-02T03:04:05Z", "agency": "xa-a"})
    query = _query(iso(START), iso(START + timedelta(days=3)), {})
    assert store.count_documents(query)[0][1] == _oracle(store, iso(START), iso(START + timedelta(days=3)), None,
                                                         {}, None)[None]
    assert not used
    store.delete("alerts", "odd")
    store.count_documents(query)
    assert used  # on again once no alert is timed otherwise


def test_a_month_per_level_reads_the_totals_not_the_alerts(store: SQLiteStore) -> None:
    query = _query(iso(START), iso(START + timedelta(days=30)), {})
    for owned in (None, OwnedBy(("agency",), frozenset({"xa-a"}))):
        seen = plans(store, lambda o=owned: store.count_documents(query, ("rule.level",), size=10, owned_by=o))
        assert seen and all("doc_fields_alerts" not in p for p in seen), seen
        assert any("doc_hours_alerts" in p for p in seen), seen


def test_the_trend_per_bucket_equals_summarizing_every_incident_per_bucket() -> None:
    """The MTTD/MTTA/MTTR trend summarizes per bucket only the incidents discovered or ended in
    it; the figures are those of summarizing every incident for each bucket."""
    from types import SimpleNamespace
    from zoneinfo import ZoneInfo

    from soc.export.measures import Timing, summarize
    from soc.oversight import Oversight, span_of
    from soc.oversight.incident_facts import IncidentFacts

    rng = random.Random(3)
    now = START + timedelta(days=30, hours=5)
    timings = []
    for i in range(300):
        found = now - timedelta(days=rng.uniform(0, 40))
        ended = found + timedelta(hours=rng.uniform(0, 300)) if rng.random() < 0.7 else None
        timings.append(Timing(f"i{i}", "xa-a", found if rng.random() < 0.95 else None,
                              detect=rng.uniform(0, 9000), detect_class=rng.choice(("prompt", "backfilled", "unknown")),
                              ingest_delay=rng.uniform(0, 90000), acknowledge=rng.choice((None, rng.uniform(0, 900))),
                              respond=rng.uniform(0, 90000) if ended else None, response_ended_at=ended,
                              counts=rng.random() < 0.9))
    facts = IncidentFacts()
    facts.timings = timings
    oversight = Oversight.__new__(Oversight)
    oversight.settings = SimpleNamespace(backfill_hours=24.0)
    for since in ("30d", "7d", "48h"):
        span = span_of(since, None, ZoneInfo("Asia/Ho_Chi_Minh"), now)
        trend = oversight._trend(facts, span)
        every = [summarize(timings, start=b.start, end=b.end, threshold_hours=24.0) for b in span.buckets]
        assert trend.mttd == tuple(f.mttd.minutes()[0] for f in every)
        assert trend.mtta == tuple(f.mtta.minutes()[0] for f in every)
        assert trend.mttr == tuple(f.mttr.hours()[0] for f in every)
        assert any(v is not None for v in trend.mttd) and any(v is not None for v in trend.mttr)


GROUPINGS = [(), ("agency",), ("rule.id",), ("status",), ("agency", "rule.id"), ("rule.id", "status"),
             ("rule.level", "agency"), ("status", "rule.level"), ("agency", "rule.id", "status")]


@pytest.mark.parametrize("fields", GROUPINGS)
def test_totals_answer_exactly_as_the_field_table_does(store: SQLiteStore, fields: tuple[str, ...], used: list[Any],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The same groups, counts and order (biggest first, ties by value; nested), with and without
    a time range, filters and an agency's scope -- after changes; sizes that cut groups."""
    rng = random.Random(len(fields))
    for doc in list(store.iter_all("alerts"))[:60]:
        if rng.random() < 0.3:
            store.delete("alerts", doc.id)
        else:
            store.put("alerts", doc.id, {**doc.body, "status": rng.choice(STATUSES)})
    queries = [DocQuery("alerts"), DocQuery("alerts", filters=(("status", "in", ["new", "acknowledged"]),)),
               DocQuery("alerts", filters=(("status", "equals", "NEW"), ("rule.id", "in", ["r1", "r2", "r5"]))),
               _query(iso(START + timedelta(minutes=7)), iso(START + timedelta(days=2, hours=3)), {})]
    answers = []
    for query in queries:
        for owned in (None, OwnedBy(("agency",), frozenset({"xa-a", "so-c"}))):
            for size in ((10, 3, 2), (2, 2, 1)):
                sizes = size[:len(fields)] if fields else 10
                answers.append(store.count_documents(query, fields, size=sizes or 10, owned_by=owned))
    from_totals = len(used)
    monkeypatch.setattr(sqlite_doc_query, "rollup_counts", lambda *args: None)
    expected = []
    for query in queries:
        for owned in (None, OwnedBy(("agency",), frozenset({"xa-a", "so-c"}))):
            for size in ((10, 3, 2), (2, 2, 1)):
                sizes = size[:len(fields)] if fields else 10
                expected.append(store.count_documents(query, fields, size=sizes or 10, owned_by=owned))
    assert from_totals >= len(answers) // 2  # every count without a time range (and the range's, ungrouped...)
    assert answers == expected


def test_the_queues_counts_without_a_time_range_read_the_totals(store: SQLiteStore) -> None:
    query = DocQuery("alerts", filters=(("status", "in", ["new", "acknowledged"]),))
    seen = plans(store, lambda: store.count_documents(query, ("agency", "rule.id"), size=(50, 20)))
    assert seen and all("doc_fields_alerts" not in p for p in seen) and any("doc_totals_alerts" in p for p in seen)
