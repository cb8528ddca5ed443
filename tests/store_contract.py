"""The store contract: one test suite every :class:`soc.store.base.Store` must pass.

Subclass :class:`StoreContract` (``tests/test_store_contract.py`` does it for SQLite and the
real OpenSearch) and provide two fixtures:

``store``      a fresh, empty store for one test;
``big_store``  a store holding :data:`BIG` events written once per test class (paging).

and :attr:`StoreContract.PREDICATES`: the store dialect's spelling of each entry of
:data:`PREDICATE_NAMES` (the same condition as SQL text for SQLite, as a DSL clause for
OpenSearch/Elasticsearch), so every dialect proves the same behaviour -- notably Sigma's
case-insensitive equality and substring matching.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pytest

from soc.model import Event, iso
from soc.store.base import Conflict, DocWrite, Store, StoreError, Window

#: events in the paging fixture: more than one 10,000-hit search page
BIG = 12_000
BIG_DAY = datetime(2025, 3, 3, tzinfo=UTC)
DAY1 = datetime(2025, 3, 1, 8, 0, 0, tzinfo=UTC)
DAY2 = datetime(2025, 3, 2, 8, 0, 0, tzinfo=UTC)

#: name -> ids of :func:`sample_events` the predicate must select (within dataset linux.sshd)
PREDICATE_NAMES: dict[str, set[str]] = {
    # stored "root" and "Root": Sigma equality is case-insensitive
    "user_equals_ROOT": {"ev-1", "ev-2"},
    # stored "Failed password for ...": Sigma contains is case-insensitive
    "message_contains_Failed_PASSWORD": {"ev-1", "ev-2", "ev-3"},
    "source_ip_equals": {"ev-1", "ev-3"},
    "status_at_least_500": {"ev-5", "ev-6"},
}


#: a predicate selecting every event, per dialect
EVERYTHING: dict[str, Any] = {"sqlite": "1 = 1", "dsl": {"match_all": {}}}


def sample_events() -> list[Event]:
    """Seven events over two days and two datasets, in no particular order."""
    t = DAY1
    base = {"event.dataset": "linux.sshd", "organization.id": "agency-a", "host.name": "srv1"}
    return [
        {**base, "_id": "ev-2", "@timestamp": iso(t + timedelta(seconds=5)), "user.name": "Root",
         "message": "FAILED PASSWORD for Root from 10.1.2.4 port 22 ssh2", "source.ip": "10.1.2.4"},
        {**base, "_id": "ev-1", "@timestamp": iso(t), "user.name": "root",
         "message": "Failed password for root from 10.1.2.3 port 22 ssh2", "source.ip": "10.1.2.3",
         "source.port": 50022, "process.pid": 2211, "tags": ["ssh", "auth"]},
        {**base, "_id": "ev-3", "@timestamp": iso(t + timedelta(seconds=5)), "user.name": "alice",
         "message": "Failed password for alice from 10.1.2.3 port 22 ssh2", "source.ip": "10.1.2.3"},
        {**base, "_id": "ev-4", "@timestamp": iso(t + timedelta(seconds=9)), "user.name": "bob",
         "message": "Accepted publickey for bob from 10.9.9.9 port 22 ssh2", "source.ip": "10.9.9.9"},
        {**base, "_id": "ev-5", "@timestamp": iso(DAY2), "http.response.status_code": 503,
         "message": "rootkit probe", "user.name": "ROOTED"},
        {**base, "_id": "ev-6", "@timestamp": iso(DAY2 + timedelta(seconds=1)), "http.response.status_code": 500},
        {"_id": "web-1", "@timestamp": iso(DAY2), "event.dataset": "web.access", "organization.id": "agency-b",
         "user.name": "root", "message": "GET /login Failed password", "source.ip": "10.1.2.3",
         "http.response.status_code": 500},
    ]


def ingest_window(store: Store, events: Sequence[Event]) -> tuple[Window, float, float]:
    """Write ``events`` and return an ingest-time window covering exactly that write."""
    before = time.time() - 1.0  # stored ingest times are whole milliseconds (rounded down)
    result = store.write_events(events)
    assert result.created == len(events), result
    after = time.time() + 1.0
    store.refresh()
    return Window(before, after, "event.ingested"), before, after


def big_events() -> list[Event]:
    """:data:`BIG` small events on one day, three per second, ids not in time order."""
    return [{"_id": f"big-{(i * 7919) % BIG:05d}", "@timestamp": iso(BIG_DAY + timedelta(seconds=i // 3)),
             "event.dataset": "linux.sshd", "organization.id": "agency-a", "source.port": i,
             "message": f"Connection closed by 10.0.{i % 250}.{i % 7} port {i}"} for i in range(BIG)]


def ids(matches: Sequence[Any]) -> list[str]:
    return [m.id for m in matches]


class StoreContract:
    """The behaviour both stores promise. Not collected itself (no ``Test`` prefix)."""

    #: the dialect's spelling of every name in PREDICATE_NAMES
    PREDICATES: ClassVar[dict[str, Any]] = {}
    #: fields a rule reads (SQLite needs them prepared as columns; a no-op elsewhere)
    RULE_FIELDS = ("user.name", "message", "source.ip", "http.response.status_code", "host.name",
                   "source.port", "process.pid", "tags")

    # -- events: writing -------------------------------------------------------------------------
    def test_create_only_writes_are_idempotent(self, store: Store) -> None:
        events = sample_events()
        first = store.write_events(events)
        second = store.write_events(events)
        store.refresh()
        assert (first.created, first.existing, first.rejected, first.retryable) == (7, 0, [], [])
        assert (second.created, second.existing, second.rejected, second.retryable) == (0, 7, [], [])
        assert store.count_events() == {"": 7}

    def test_event_ingested_is_set_once_per_batch(self, store: Store) -> None:
        _, before, after = ingest_window(store, sample_events())
        got = store.get_events([e["_id"] for e in sample_events()])
        stamps = {e["event.ingested"] for e in got}
        assert len(stamps) == 1
        stamp = datetime.fromisoformat(stamps.pop().replace("Z", "+00:00"))
        assert stamp.tzinfo is not None and before <= stamp.timestamp() <= after

    def test_an_event_without_a_usable_time_is_rejected_with_a_reason(self, store: Store) -> None:
        good = sample_events()[0]
        result = store.write_events([{"_id": "bad-1", "message": "no time"},
                                     {"_id": "bad-2", "@timestamp": "yesterday", "message": "x"}, good])
        assert result.created == 1
        assert [r[0] for r in result.rejected] == ["bad-1", "bad-2"]
        assert all(reason for _, reason in result.rejected)

    # -- events: windows and predicates ----------------------------------------------------------
    def test_windows_on_ingest_time_and_event_time(self, store: Store) -> None:
        window, before, after = ingest_window(store, sample_events())
        sshd = ["linux.sshd"]
        # ingest time: everything just written, although the events are from 2025
        assert ids(store.find_matches(None, sshd, window, [], 100)) == \
            ["ev-1", "ev-2", "ev-3", "ev-4", "ev-5", "ev-6"]
        assert store.find_matches(None, sshd, Window(after, after + 60), [], 100) == []
        assert store.find_matches(None, sshd, Window(before - 60, before), [], 100) == []
        # ingested_before bounds ingest time as well
        assert store.find_matches(None, sshd, Window(before, after, ingested_before=before), [], 100) == []
        # event time: [DAY1, DAY1 + 6 s) and the whole of DAY2, across the day boundary
        t1 = DAY1.timestamp()
        assert ids(store.find_matches(None, sshd, Window(t1, t1 + 6, "@timestamp"), [], 100)) == \
            ["ev-1", "ev-2", "ev-3"]
        assert ids(store.find_matches(None, sshd, Window(t1 + 5, t1 + 5.001, "@timestamp"), [], 100)) == \
            ["ev-2", "ev-3"]
        assert ids(store.find_matches(None, sshd, Window(t1 + 1, DAY2.timestamp() + 1, "@timestamp"), [], 100)) \
            == ["ev-2", "ev-3", "ev-4", "ev-5"]
        assert store.count_matches(None, sshd, Window(t1, None, "@timestamp")) == 6
        assert store.count_matches(None, None, Window(None, DAY2.timestamp(), "@timestamp")) == 4

    @pytest.mark.parametrize("name", sorted(PREDICATE_NAMES))
    def test_compiled_predicates(self, store: Store, name: str) -> None:
        window, _, _ = ingest_window(store, sample_events())
        store.prepare_fields(self.RULE_FIELDS)
        where = self.PREDICATES[name]
        found = store.find_matches(where, ["linux.sshd"], window, ["user.name"], 100)
        assert set(ids(found)) == PREDICATE_NAMES[name]
        assert store.count_matches(where, ["linux.sshd"], window) == len(PREDICATE_NAMES[name])
        # without the dataset filter the web event joins wherever it satisfies the predicate
        everywhere = set(ids(store.find_matches(where, None, window, [], 100)))
        assert everywhere - PREDICATE_NAMES[name] <= {"web-1"}

    def test_datasets_filter(self, store: Store) -> None:
        window, _, _ = ingest_window(store, sample_events())
        assert ids(store.find_matches(None, ["web.access"], window, [], 100)) == ["web-1"]
        assert len(store.find_matches(None, ["web.access", "linux.sshd"], window, [], 100)) == 7
        assert store.find_matches(None, [], window, [], 100) == []
        assert store.count_matches(None, [], window) == 0
        assert store.find_matches(None, ["no.such"], window, [], 100) == []

    def test_requested_fields_come_back(self, store: Store) -> None:
        window, _, _ = ingest_window(store, sample_events())
        store.prepare_fields(self.RULE_FIELDS)
        # (no list-valued field here: SQLite returns lists as JSON text in Match.fields)
        wanted = ["user.name", "source.ip", "source.port", "process.pid", "host.name", "url.path"]
        (match,) = store.find_matches(None, ["linux.sshd"], Window(DAY1.timestamp(), DAY1.timestamp() + 1,
                                                                   "@timestamp"), wanted, 10)
        assert match.id == "ev-1"
        assert match.ts == pytest.approx(DAY1.timestamp(), abs=1e-3)
        assert match.agency == "agency-a"
        assert match.fields == {"user.name": "root", "source.ip": "10.1.2.3", "source.port": 50022,
                                "process.pid": 2211, "host.name": "srv1", "url.path": None}
        assert len(store.find_matches(None, None, window, wanted, 100)) == 7

    def test_limit_and_order(self, store: Store) -> None:
        assert store.find_matches(None, None, Window(), [], 50_000) == []  # nothing stored yet
        assert store.count_matches(None, None, Window()) == 0
        window, _, _ = ingest_window(store, sample_events())
        everything = store.find_matches(None, None, window, [], 100)
        # oldest first; equal times by id
        assert ids(everything) == ["ev-1", "ev-2", "ev-3", "ev-4", "ev-5", "web-1", "ev-6"]
        assert [m.ts for m in everything] == sorted(m.ts for m in everything)
        assert ids(store.find_matches(None, None, window, [], 3)) == ["ev-1", "ev-2", "ev-3"]
        assert store.find_matches(None, None, window, [], 0) == []
        assert store.count_matches(None, None, window) == 7

    # -- events: many predicates in one pass (rule batches, hunts) ---------------------------------
    def test_find_matches_many_equals_one_query_per_predicate(self, store: Store) -> None:
        window, _, _ = ingest_window(store, sample_events())
        store.prepare_fields(self.RULE_FIELDS)
        names = sorted(PREDICATE_NAMES)
        wheres = [self.PREDICATES[n] for n in names]
        wanted = ["user.name", "source.ip"]
        for datasets in (["linux.sshd"], None, ["linux.sshd", "web.access"]):
            for limit in (100, 2, 1):
                many = store.find_matches_many(wheres, datasets, window, wanted, limit)
                assert len(many) == len(wheres)
                for name, where, found in zip(names, wheres, many, strict=True):
                    alone = store.find_matches(where, datasets, window, wanted, limit)
                    assert ids(found) == ids(alone), (name, datasets, limit)
                    assert [(m.ts, m.agency, m.fields) for m in found] == \
                        [(m.ts, m.agency, m.fields) for m in alone]
        # sshd only, no limit reached: exactly the contract's selections
        many = store.find_matches_many(wheres, ["linux.sshd"], window, [], 100)
        assert [set(ids(m)) for m in many] == [PREDICATE_NAMES[n] for n in names]
        # the same predicate twice, event-time window, empty dataset list, zero limit
        t1 = DAY1.timestamp()
        twice = store.find_matches_many([wheres[0], wheres[0]], ["linux.sshd"],
                                        Window(t1, t1 + 6, "@timestamp"), [], 10)
        assert ids(twice[0]) == ids(twice[1]) == ids(store.find_matches(
            wheres[0], ["linux.sshd"], Window(t1, t1 + 6, "@timestamp"), [], 10))
        assert store.find_matches_many(wheres, [], window, [], 10) == [[] for _ in wheres]
        assert store.find_matches_many(wheres, None, window, [], 0) == [[] for _ in wheres]
        assert store.find_matches_many([], None, window, [], 10) == []
        assert store.find_matches_many(wheres, None, Window(0, 1), [], 10) == [[] for _ in wheres]

    def test_find_matches_many_limits_are_per_predicate(self, store: Store) -> None:
        """A predicate matching many events must not use up the budget of another."""
        events = [{"_id": f"noise-{i:03d}", "@timestamp": iso(DAY1 - timedelta(minutes=i)),
                   "event.dataset": "linux.sshd", "organization.id": "agency-a", "user.name": "root",
                   "message": "session opened"} for i in range(150)]
        window, _, _ = ingest_window(store, events + sample_events())
        store.prepare_fields(self.RULE_FIELDS)
        busy, rare = self.PREDICATES["user_equals_ROOT"], self.PREDICATES["status_at_least_500"]
        root, status = store.find_matches_many([busy, rare], ["linux.sshd"], window, ["user.name"], 5)
        assert ids(root) == [f"noise-{i:03d}" for i in range(149, 144, -1)]  # the oldest five
        assert ids(status) == ["ev-5", "ev-6"]
        root, status = store.find_matches_many([busy, rare], ["linux.sshd"], window, [], 1000)
        assert len(root) == 152 and ids(status) == ["ev-5", "ev-6"]

    # -- events: paging beyond one search page ---------------------------------------------------
    def test_paging_beyond_ten_thousand(self, big_store: Store) -> None:
        window = Window(BIG_DAY.timestamp(), BIG_DAY.timestamp() + 86400, "@timestamp")
        found = big_store.find_matches(None, ["linux.sshd"], window, ["source.port"], BIG + 10)
        assert len(found) == BIG
        assert len(set(ids(found))) == BIG
        keys = [(m.ts, m.id) for m in found]
        assert keys == sorted(keys)
        assert {m.fields["source.port"] for m in found} == set(range(BIG))
        first = big_store.find_matches(None, ["linux.sshd"], window, [], 10_500)
        assert ids(first) == ids(found)[:10_500]
        assert big_store.count_matches(None, ["linux.sshd"], window) == BIG
        ingest = Window(0, time.time() + 60)
        assert len(big_store.find_matches(None, None, ingest, [], 2 * BIG)) == BIG

    def test_find_matches_many_pages_beyond_ten_thousand(self, big_store: Store) -> None:
        window = Window(BIG_DAY.timestamp(), BIG_DAY.timestamp() + 86400, "@timestamp")
        everything = EVERYTHING[big_store.dialect]
        full = ids(big_store.find_matches(None, ["linux.sshd"], window, [], BIG + 10))
        a, b = big_store.find_matches_many([everything, everything], ["linux.sshd"], window,
                                           ["source.port"], BIG + 10)
        assert ids(a) == ids(b) == full
        assert {m.fields["source.port"] for m in a} == set(range(BIG))
        (first,) = big_store.find_matches_many([everything], ["linux.sshd"], window, [], 10_500)
        assert ids(first) == full[:10_500]

    # -- events: counting and reading back -------------------------------------------------------
    def test_count_events(self, store: Store) -> None:
        window, _, _ = ingest_window(store, sample_events())
        assert store.count_events() == {"": 7}
        assert store.count_events(window) == {"": 7}
        assert store.count_events(Window(None, DAY2.timestamp(), "@timestamp")) == {"": 4}
        assert store.count_events(window, group_by="event.dataset") == {"linux.sshd": 6, "web.access": 1}
        assert store.count_events(group_by="organization.id") == {"agency-a": 6, "agency-b": 1}
        by_status = store.count_events(group_by="http.response.status_code")
        assert (by_status["500"], by_status["503"]) == (2, 1)

    def test_aggregate_matches(self, store: Store) -> None:
        """One row per agency and group-by values (first_seen baselines, issue #15)."""
        window, _, _ = ingest_window(store, sample_events())
        store.prepare_fields(self.RULE_FIELDS)
        t1 = DAY1.timestamp()
        got = {(b.agency, b.values): (b.count, b.first, b.last)
               for b in store.aggregate_matches(None, ["linux.sshd"], window, ["source.ip"])}
        assert got == {("agency-a", ("10.1.2.3",)): (2, pytest.approx(t1, abs=1e-3), pytest.approx(t1 + 5, abs=1e-3)),
                       ("agency-a", ("10.1.2.4",)): (1, pytest.approx(t1 + 5, abs=1e-3), pytest.approx(t1 + 5, abs=1e-3)),
                       ("agency-a", ("10.9.9.9",)): (1, pytest.approx(t1 + 9, abs=1e-3), pytest.approx(t1 + 9, abs=1e-3)),
                       ("agency-a", (None,)): (2, pytest.approx(DAY2.timestamp(), abs=1e-3),
                                               pytest.approx(DAY2.timestamp() + 1, abs=1e-3))}
        # the predicate, the agency filter and several fields; text may come back lowercased, so
        # values differing only in case may be one group or two: compare case-insensitively
        pairs: dict[tuple[Any, ...], int] = {}
        for b in store.aggregate_matches(self.PREDICATES["user_equals_ROOT"], None, window,
                                         ["user.name", "source.ip"]):
            key = (b.agency, str(b.values[0]).lower(), b.values[1])
            pairs[key] = pairs.get(key, 0) + b.count
        assert pairs == {("agency-a", "root", "10.1.2.3"): 1, ("agency-a", "root", "10.1.2.4"): 1,
                         ("agency-b", "root", "10.1.2.3"): 1}
        assert [(b.agency, b.count) for b in store.aggregate_matches(None, None, window, ["source.ip"],
                                                                     agencies=["agency-b"])] == [("agency-b", 1)]
        assert store.aggregate_matches(None, [], window, ["source.ip"]) == []
        # sums of a numeric field per event-time bucket (value_sum and beaconing pre-checks)
        day = 86400
        got = {(b.values, b.bucket): (b.count, b.total)
               for b in store.aggregate_matches(None, ["linux.sshd"], window, ["host.name"],
                                                sum_field="http.response.status_code", bucket_seconds=day)}
        assert got == {(("srv1",), DAY1.timestamp() // day * day): (4, 0.0),
                       (("srv1",), DAY2.timestamp() // day * day): (2, 1003.0)}

    def test_get_events_round_trip(self, store: Store) -> None:
        events = sample_events()
        ingest_window(store, events)
        wanted = ["web-1", "ev-1", "missing", "ev-5"]
        got = store.get_events(wanted)
        assert [e["_id"] for e in got] == ["web-1", "ev-1", "ev-5"]
        by_id = {e["_id"]: e for e in events}
        for event in got:
            stamp = event.pop("event.ingested")
            assert isinstance(stamp, str) and stamp.endswith("Z")
            assert event == by_id[event["_id"]]
        assert store.get_events([]) == []

    def test_purge_events(self, store: Store) -> None:
        ingest_window(store, sample_events())
        # everything before DAY2 08:00:00.5: DAY1's four, and ev-5 and web-1 at DAY2 08:00:00
        assert store.purge_events(DAY2.timestamp() + 0.5) == 6
        store.refresh()
        assert store.count_events() == {"": 1}
        assert [e["_id"] for e in store.get_events(["ev-1", "ev-6"])] == ["ev-6"]
        assert store.purge_events(DAY1.timestamp()) == 0

    # -- documents -------------------------------------------------------------------------------
    def test_documents_create_get_delete(self, store: Store) -> None:
        body = {"rule": {"id": "r1", "title": "SSH brute force"}, "status": "new", "count": 3}
        assert store.create("alerts", "a1", body) is True
        assert store.create("alerts", "a1", {"other": True}) is False
        doc = store.get("alerts", "a1")
        assert doc is not None and doc.id == "a1" and doc.body == body and doc.version > 0
        assert store.get("alerts", "nope") is None
        assert store.get("no_such_collection", "a1") is None
        assert store.get("incidents", "a1") is None  # collections are separate
        assert store.delete("alerts", "a1") is True
        assert store.delete("alerts", "a1") is False
        assert store.get("alerts", "a1") is None

    def test_documents_compare_and_set(self, store: Store) -> None:
        v0 = store.put("rule_state", "r1", {"owner": None})
        assert v0 > 0
        mine = store.get("rule_state", "r1")
        assert mine is not None and mine.version == v0
        v1 = store.put("rule_state", "r1", {"owner": "me"}, expected_version=mine.version)
        assert v1 > v0
        with pytest.raises(Conflict):  # someone else's stale read loses
            store.put("rule_state", "r1", {"owner": "them"}, expected_version=mine.version)
        with pytest.raises(Conflict):  # 0 = must not exist yet
            store.put("rule_state", "r1", {"owner": "them"}, expected_version=0)
        got = store.get("rule_state", "r1")
        assert got is not None and got.body == {"owner": "me"} and got.version == v1
        v2 = store.put("rule_state", "r1", {"owner": "anyone"})  # unconditional
        assert v2 > v1
        fresh = store.put("rule_state", "r2", {"owner": "me"}, expected_version=0)
        assert fresh > 0 and store.get("rule_state", "r2") is not None
        # a deleted document never matches its old version
        store.delete("rule_state", "r2")
        with pytest.raises(Conflict):
            store.put("rule_state", "r2", {"owner": "late"}, expected_version=fresh)

    def test_documents_find(self, store: Store) -> None:
        for i, (rule, first_seen, status) in enumerate([
            ("r1", "2025-03-01T08:00:00.000Z", "new"),
            ("r1", "2025-03-01T09:00:00.000Z", "closed"),
            ("r2", "2025-03-01T10:00:00.000Z", "new"),
            ("r1", "2025-03-02T08:00:00.000Z", "new"),
        ]):
            store.create("alerts", f"a{i}", {"rule": {"id": rule, "level": "high"}, "first_seen": first_seen,
                                             "status": status, "group_key": f"agency=a|user=u{i}",
                                             "event_count": i, "agency": None})
        store.create("incidents", "i1", {"rule": {"id": "r1"}})
        # no refresh: a store reads its own writes
        found = store.find("alerts", {"rule.id": "r1"}, sort="first_seen")
        assert [d.id for d in found] == ["a0", "a1", "a3"]
        assert all(d.version > 0 and d.body["rule"]["id"] == "r1" for d in found)
        assert [d.id for d in store.find("alerts", {"rule.id": "r1", "status": "new"})] == ["a0", "a3"]
        assert [d.id for d in store.find("alerts", {"status": ["closed", "gone"]})] == ["a1"]
        assert store.find("alerts", {"status": []}) == []
        assert store.find("alerts", {"rule.id": "R1"}) == []  # document matches are exact
        assert [d.id for d in store.find("alerts", {"group_key": "agency=a|user=u2"})] == ["a2"]
        assert len(store.find("alerts", {"agency": None})) == 4
        window = store.find("alerts", None, time_field="first_seen", start="2025-03-01T08:30:00.000Z",
                            end="2025-03-02T00:00:00.000Z", sort="first_seen", descending=True)
        assert [d.id for d in window] == ["a2", "a1"]
        latest = store.find("alerts", {"rule.id": "r1"}, time_field="first_seen",
                            start="2025-03-01T00:00:00.000Z", sort="first_seen", descending=True, limit=1)
        assert [d.id for d in latest] == ["a3"]
        assert [d.id for d in store.find("alerts", sort="event_count", descending=True, limit=2)] == ["a3", "a2"]
        assert store.find("no_such_collection", {"rule.id": "r1"}) == []
        doc = store.get("alerts", "a1")
        assert doc is not None
        store.put("alerts", "a1", dict(doc.body, status="new"), expected_version=doc.version)
        assert [d.id for d in store.find("alerts", {"status": "new"}, sort="first_seen")] == ["a0", "a1", "a2", "a3"]

    def test_documents_iter_all(self, store: Store) -> None:
        for i in range(25):
            store.create("rule_state", f"r{i:02d}", {"n": i})
        store.create("alerts", "x", {"n": -1})
        docs = list(store.iter_all("rule_state"))
        assert sorted(d.id for d in docs) == [f"r{i:02d}" for i in range(25)]
        assert {d.body["n"] for d in docs} == set(range(25))
        assert list(store.iter_all("empty_collection")) == []

    # -- documents in bulk -------------------------------------------------------------------------
    def test_bulk_create_is_create_per_document(self, store: Store) -> None:
        assert store.create("incidents", "i1", {"n": 1})
        docs = [("i0", {"n": 0}), ("i1", {"n": -1}), ("i2", {"n": 2}), ("i2", {"n": -2})]
        assert store.create_documents("incidents", docs) == [True, False, True, False]
        # the same documents as single creates would have left, readable without a refresh
        assert {d.id: d.body for d in store.find("incidents", sort="n")} == {"i0": {"n": 0}, "i1": {"n": 1},
                                                                              "i2": {"n": 2}}
        for id_ in ("i0", "i2"):
            doc = store.get("incidents", id_)
            assert doc is not None and doc.version > 0
            assert store.put("incidents", id_, {"n": 9}, expected_version=doc.version) > doc.version
        assert store.create_documents("incidents", docs) == [False] * 4  # a retry writes nothing
        assert store.create_documents("incidents", []) == []

    def test_bulk_create_reports_a_failed_document_and_writes_the_others(self, store: Store) -> None:
        results = store.create_documents("incidents", [("a", {"n": 1}), ("b", {"bad": object()}), ("c", {"n": 3})])
        assert results[0] is True and results[2] is True
        assert isinstance(results[1], StoreError) and "incidents/b" in str(results[1])
        assert store.get("incidents", "b") is None
        assert [d.id for d in store.find("incidents", sort="n")] == ["a", "c"]

    def test_bulk_put_is_put_per_write(self, store: Store) -> None:
        v_a = store.put("rule_state", "a", {"n": 0})
        v_gone = store.put("rule_state", "gone", {"n": 0})
        store.delete("rule_state", "gone")
        results = store.put_documents("rule_state", [
            DocWrite("a", {"n": 1}, expected_version=v_a),     # compare-and-set that wins
            DocWrite("b", {"n": 1}, expected_version=0),       # must not exist: new
            DocWrite("c", {"n": 1}),                           # unconditional
            DocWrite("a", {"n": 2}, expected_version=v_a),     # stale after the first write of a
            DocWrite("b", {"n": 2}, expected_version=0),       # exists by now
            DocWrite("gone", {"n": 1}, expected_version=v_gone),  # deleted: its old version never matches
            DocWrite("c", {"n": 2}),                           # writes of one id apply in order
            DocWrite("x", {"bad": object()}),                  # that write's own error
        ])
        assert all(isinstance(r, int) for r in (results[0], results[1], results[2], results[6]))
        assert all(isinstance(r, Conflict) for r in (results[3], results[4], results[5]))
        assert isinstance(results[7], StoreError) and not isinstance(results[7], Conflict)
        assert results[0] > v_a and results[6] > results[2]
        got = {id_: store.get("rule_state", id_) for id_ in ("a", "b", "c", "gone", "x")}
        assert {k: (d.body if d else None) for k, d in got.items()} == {
            "a": {"n": 1}, "b": {"n": 1}, "c": {"n": 2}, "gone": None, "x": None}
        # the versions are those of the documents: a single compare-and-set takes them
        assert [got[k].version for k in ("a", "b", "c")] == [results[0], results[1], results[6]]  # type: ignore[union-attr]
        assert store.put("rule_state", "a", {"n": 3}, expected_version=results[0]) > results[0]  # type: ignore[operator]
        # a retry of the batch's compare-and-sets changes nothing
        again = store.put_documents("rule_state", [DocWrite("a", {"n": 1}, expected_version=v_a),
                                                   DocWrite("b", {"n": 1}, expected_version=0)])
        assert all(isinstance(r, Conflict) for r in again)
        doc_a = store.get("rule_state", "a")
        assert doc_a is not None and doc_a.body == {"n": 3}
        assert store.put_documents("rule_state", []) == []
