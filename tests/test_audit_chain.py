"""The audit trail on SQLite and the real OpenSearch: one gap-free chain with many writing
threads and processes, the documented canonical hash, appending without reading the chain, and
``verify`` catching an edited, a deleted and a reordered record, the newest records removed
and records rewritten with recomputed hashes (against checkpoints)."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from soc.access import Principal
from soc.audit import (
    AUDIT,
    GENESIS,
    AuditError,
    AuditTrail,
    Checkpoint,
    append_checkpoint,
    parse_checkpoint,
    read_checkpoints,
    record_hash,
    verify,
)
from soc.audit.record import seq_id
from soc.clock import fixed_clock
from soc.store import open_store
from soc.store.base import Store

AT = datetime(2026, 12, 7, 1, 30, tzinfo=UTC)
ALICE = Principal(name="alice", roles=frozenset({"analyst"}), agency="so-yte", kind="token", token="ci")


@pytest.fixture(params=["sqlite", pytest.param("opensearch", marks=pytest.mark.search)])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, dict[str, Any], Store]]:
    """(store URL, opening options, a store) on SQLite and on the real OpenSearch."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'soc.db'}"
        store = open_store(url)
        yield url, {}, store
        store.close()
        return
    from tests.search_helpers import drop, open_search_store, store_url

    http, prefix = request.getfixturevalue("opensearch_url"), request.getfixturevalue("unique_name")
    search = open_search_store(http, prefix)
    yield store_url(http), {"prefix": prefix, "replicas": 0}, search
    drop(search)


@pytest.fixture
def store(target: tuple[str, dict[str, Any], Store]) -> Store:
    return target[2]


def _append(url: str, options: dict[str, Any], writer: str, count: int) -> None:
    """A writing process: its own store connection and trail."""
    store = open_store(url, **options)
    try:
        trail = AuditTrail(store)
        for n in range(count):
            trail.record(writer, "test.append", ("things", f"{writer}-{n}"), {"n": n})
    finally:
        store.close()


def _assert_one_chain(store: Store, expected: Counter[str]) -> None:
    result = verify(store)
    assert result.ok, result.summary()
    assert result.records == result.head.seq == sum(expected.values())
    seen = Counter(r.target.id for r in AuditTrail(store).records() if r.target)
    assert seen == expected  # every append exactly once
    assert [r.seq for r in AuditTrail(store).records()] == list(range(1, result.records + 1))


def test_threads_append_to_one_chain(store: Store) -> None:
    shared = AuditTrail(store)
    threads, per = 8, 15

    def work(i: int) -> None:
        trail = shared if i % 2 else AuditTrail(store)  # own instances race through the store
        for n in range(per):
            trail.record(f"worker-{i}", "test.append", ("things", f"t{i}-{n}"))

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    _assert_one_chain(store, Counter({f"t{i}-{n}": 1 for i in range(threads) for n in range(per)}))


def test_processes_append_to_one_chain(target: tuple[str, dict[str, Any], Store]) -> None:
    url, options, store = target
    AuditTrail(store).record("setup", "test.start")  # the processes start on an existing chain
    context = multiprocessing.get_context("spawn")
    procs, per = 4, 20
    processes = [context.Process(target=_append, args=(url, options, f"p{i}", per)) for i in range(procs)]
    for p in processes:
        p.start()
    for p in processes:
        p.join(120)
        assert p.exitcode == 0
    expected = Counter({f"p{i}-{n}": 1 for i in range(procs) for n in range(per)})
    result = verify(store)
    assert result.ok and result.records == procs * per + 1, result.summary()
    seen = Counter(r.target.id for r in AuditTrail(store).records() if r.target)
    assert seen == expected


def test_records_carry_who_what_when_where_and_the_documented_hash(store: Store) -> None:
    trail = AuditTrail(store, clock=fixed_clock(AT))
    first = trail.record(ALICE, "alert.status", ("alerts", "a-1"),
                         {"status": {"old": "new", "new": "acknowledged"}, "note": "Đã xác minh " + "x" * 600},
                         ip="10.0.5.20", user_agent="Mozilla/5.0")
    second = trail.record("scheduler", "summary.build")
    third = trail.record(None, "login.failed", ("users", "mallory"), {"reason": "invalid"})
    assert (first.seq, second.seq, third.seq) == (1, 2, 3)
    assert first.body["actor"] == {"label": "alice (token ci)", "kind": "token", "name": "alice", "agency": "so-yte"}
    assert first.at == "2026-12-07T01:30:00.000Z" and first.ip == "10.0.5.20"
    assert first.details["status"] == {"old": "new", "new": "acknowledged"}
    assert first.details["note"].startswith("Đã xác minh") and first.details["note"].endswith("(612 characters)")
    assert second.actor.label == "system:scheduler" and second.target is None
    assert third.actor.label == "anonymous"
    assert first.prev == GENESIS and second.prev == first.hash and third.prev == second.hash
    for seq in (1, 2, 3):
        stored = store.get(AUDIT, seq_id(seq))
        assert stored is not None
        body = stored.body
        # the canonical form of docs/audit.md, computed here independently
        text = json.dumps({k: v for k, v in body.items() if k != "hash"}, sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False, allow_nan=False)
        assert hashlib.sha256(text.encode("utf-8")).hexdigest() == body["hash"] == record_hash(body)
    with pytest.raises(AuditError):
        trail.record(ALICE, "no spaces allowed")


class _Counting:
    """A store that counts the calls made to it."""

    def __init__(self, store: Store) -> None:
        self.store, self.calls = store, Counter[str]()

    def __getattr__(self, name: str) -> Any:
        self.calls[name] += 1
        return getattr(self.store, name)


def test_appending_does_not_read_the_chain(store: Store) -> None:
    filler = AuditTrail(store)
    for n in range(30):
        filler.record("filler", "test.fill", ("things", str(n)))
    counting = _Counting(store)
    trail = AuditTrail(counting)  # type: ignore[arg-type]
    for _ in range(10):
        trail.record("writer", "test.append")
    assert counting.calls["iter_all"] == 0
    assert counting.calls["find"] <= 1  # the head, once
    assert counting.calls["create"] == 10 and counting.calls["get"] <= 2
    filler.record("filler", "test.fill")  # another writer moves the head: read forward, no search
    counting.calls.clear()
    assert trail.record("writer", "test.append").seq == 42
    assert counting.calls["find"] == counting.calls["iter_all"] == 0
    assert verify(store).ok


def _chain(store: Store, count: int = 10) -> AuditTrail:
    trail = AuditTrail(store, clock=fixed_clock(AT))
    for n in range(1, count + 1):
        trail.record(ALICE if n % 2 else "scheduler", "incident.update", ("incidents", f"INC-{n}"),
                     {"severity": {"old": "low", "new": "high"}})
    return trail


def _body(store: Store, seq: int) -> dict[str, Any]:
    doc = store.get(AUDIT, seq_id(seq))
    assert doc is not None
    return doc.body


def test_an_intact_chain_verifies(store: Store) -> None:
    assert verify(store).ok and verify(store).records == 0  # empty
    _chain(store)
    result = verify(store)
    assert result.ok and result.records == 10 and result.head.seq == 10, result.summary()
    assert result.summary().startswith("OK: 10 records, chain intact")


def test_verify_names_an_edited_record(store: Store) -> None:
    _chain(store)
    body = _body(store, 4)
    body["actor"] = {**body["actor"], "label": "someone else"}
    store.put(AUDIT, seq_id(4), body)  # straight into the store, hash left as it was
    result = verify(store)
    assert not result.ok and result.problem_count == 1
    assert result.first is not None and (result.first.seq, result.first.kind) == (4, "edited")
    assert "record 4 was edited" in result.summary()


def test_verify_names_a_deleted_record(store: Store) -> None:
    _chain(store)
    assert store.delete(AUDIT, seq_id(5))
    result = verify(store)
    assert result.first is not None and (result.first.seq, result.first.kind) == (5, "missing")
    assert result.problem_count == 1 and "record 5 is missing" in result.summary()


def test_verify_names_reordered_records(store: Store) -> None:
    _chain(store)
    third, seventh = _body(store, 3), _body(store, 7)
    store.put(AUDIT, seq_id(3), seventh)
    store.put(AUDIT, seq_id(7), third)
    result = verify(store)
    assert [(p.seq, p.kind) for p in result.problems] == [(3, "reordered"), (7, "reordered")]
    assert "record 3 holds the body of record 7" in result.summary()


def test_a_checkpoint_shows_the_newest_records_removed(store: Store, tmp_path: Path) -> None:
    trail = _chain(store)
    path = tmp_path / "audit-checkpoints.jsonl"
    append_checkpoint(path, trail.head(), taken_at="2026-12-07T02:00:00.000Z", by="local:root")
    (checkpoint,), problems = read_checkpoints(path)
    assert problems == [] and checkpoint.seq == 10 and verify(store, [checkpoint]).ok
    store.delete(AUDIT, seq_id(10))
    store.delete(AUDIT, seq_id(9))
    assert verify(store).ok  # the chain alone cannot tell ...
    result = verify(store, [checkpoint])  # ... the checkpoint can
    assert result.first is not None and (result.first.seq, result.first.kind) == (9, "removed")
    assert "records 9 to 10 were removed" in result.summary() and str(path) in result.summary()
    # appending again does not hide it: record 9 is then another record than the checkpoint's
    AuditTrail(store).record("scheduler", "test.after")
    AuditTrail(store).record("scheduler", "test.after")
    again = verify(store, [checkpoint])
    assert again.first is not None and (again.first.seq, again.first.kind) == (10, "rewritten")


def test_a_checkpoint_shows_records_rewritten_with_recomputed_hashes(store: Store) -> None:
    trail = _chain(store)
    kept = parse_checkpoint(f"{trail.head().seq}:{trail.head().hash}")
    prev = _body(store, 5)["hash"]
    for seq in range(6, 11):  # a forger who knows the format rewrites the tail consistently
        body = _body(store, seq)
        if seq == 6:
            body["action"] = "incident.view"
        body["prev"] = prev
        body["hash"] = prev = record_hash(body)
        store.put(AUDIT, seq_id(seq), body)
    assert verify(store).ok
    result = verify(store, [kept])
    assert result.first is not None and (result.first.seq, result.first.kind) == (10, "rewritten")


def test_checkpoint_input_and_file_problems(tmp_path: Path) -> None:
    with pytest.raises(AuditError):
        parse_checkpoint("12:not-a-hash")
    line = json.dumps({"seq": 3, "hash": "a" * 64, "at": None})
    assert parse_checkpoint(line) == Checkpoint(3, "a" * 64, None, "the checkpoint given")
    path = tmp_path / "cp.jsonl"
    path.write_text(line + "\n{broken\n", encoding="utf-8")
    found, problems = read_checkpoints(path)
    assert len(found) == 1 and len(problems) == 1 and f"{path}:2" in problems[0]
    assert read_checkpoints(tmp_path / "absent.jsonl") == ([], [])


def test_a_record_planted_far_ahead_is_one_gap(store: Store) -> None:
    _chain(store, 3)
    planted = {**_body(store, 3), "seq": 10_000}
    store.create(AUDIT, seq_id(10_000), planted)
    store.create(AUDIT, "not-a-record", {"x": 1})
    result = verify(store)
    kinds = [(p.seq, p.kind) for p in result.problems]
    assert (4, "missing") in kinds and (None, "malformed") in kinds and result.problem_count == 3
    assert "records 4 to 9999 are missing" in " ".join(p.message for p in result.problems)
