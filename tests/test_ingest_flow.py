"""The embedded flow (soc.ingest.flow, soc.ingest.sink): a source's batch is acknowledged only
after the store has every event of it; a store that is down holds the source (nothing
acknowledged) and a stop then leaves the batch unacknowledged; documents the store refuses are
dead-lettered, documents it cannot take yet are retried; counts per source."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from soc.agencies import load_agencies
from soc.config import load_settings
from soc.ingest import Record
from soc.ingest.deadletter import DeadLetterFile, read_dead_letters
from soc.ingest.flow import Topology
from soc.ingest.registry import REGISTRY
from soc.ingest.sink import Sink
from soc.ingest.sourcedefs import SourceDefinition
from soc.ingest.sources import Batch, SourceCounters
from soc.ingest.sources.contract import SourceEnv
from soc.model import Event
from soc.retry import Backoff
from soc.store.base import StoreError, WriteResult

FAST = Backoff(base=0.01, factor=1.0, max=0.01)


class FakeSource:
    """Yields the given batches; records what was in the store at each acknowledgement."""

    def __init__(self, batches: list[Batch], store: FakeStore) -> None:
        self.name = "fake"
        self.counters = SourceCounters()
        self._batches = batches
        self.store = store
        self.acked: list[tuple[int, bool]] = []  # (batch number, all its events stored?)
        self.stopped = threading.Event()

    def start(self) -> None: ...

    def batches(self) -> Iterator[Batch]:
        yield from self._batches
        self.stopped.wait(10)

    def ack(self, batch: Batch) -> None:
        stored = all(r.event_id in self.store.docs for r in batch)
        self.acked.append((self._batches.index(batch), stored))

    def stop(self) -> None:
        self.stopped.set()

    def describe(self) -> str:
        return "fake"

    def listening(self) -> list[tuple[str, str, int]]:
        return []


class FakeStore:
    """``write_events`` that fails ``failures`` times, then refuses ``reject`` and asks to retry
    ``busy`` once."""

    def __init__(self, failures: int = 0, reject: set[str] | None = None, busy: set[str] | None = None) -> None:
        self.failures = failures
        self.reject = reject or set()
        self.busy = set(busy or ())
        self.docs: dict[str, Event] = {}
        self.calls = 0

    def write_events(self, events: Sequence[Event]) -> WriteResult:
        self.calls += 1
        if self.failures:
            self.failures -= 1
            raise StoreError("database is locked")
        result = WriteResult()
        for event in events:
            event_id = event["_id"]
            if event_id in self.reject:
                result.rejected.append((event_id, "mapper_parsing_exception"))
            elif event_id in self.busy:
                self.busy.discard(event_id)
                result.retryable.append(event_id)
            elif event_id in self.docs:
                result.existing += 1
            else:
                self.docs[event_id] = event
                result.created += 1
        return result


def _batches(n: int, size: int = 3) -> list[Batch]:
    now = datetime.now(UTC)
    return [Batch([Record(b"<13>Jan  1 00:00:00 host app: line %d.%d" % (b, i), f"id-{b}-{i}", now, f"fake:{b}:{i}")
                   for i in range(size)], key="fake", position=b) for b in range(n)]


def _topology(tmp_path: Path, source: FakeSource, sink: Sink, letters: DeadLetterFile | None = None) -> Topology:
    registry = REGISTRY.copy()
    registry.provide("tail", lambda definition, env: source)
    definition = SourceDefinition(name="fake", type="tail", path="/nonexistent", agency="unknown")
    env = SourceEnv(settings=load_settings(data_dir=tmp_path), agencies=load_agencies(), state_dir=tmp_path)
    return Topology([definition], env, sink, dead_letter=letters, registry=registry, out=lambda line: None)


def _wait(condition, timeout: float = 10.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_batch_is_acknowledged_only_after_the_store_has_it(tmp_path: Path) -> None:
    store = FakeStore(failures=3)  # the store is locked for a while: the source waits
    source = FakeSource(_batches(4), store)
    topology = _topology(tmp_path, source, Sink(store, retry=FAST))  # type: ignore[arg-type]
    topology.start()
    _wait(lambda: len(source.acked) == 4)
    topology.stop(grace=5)
    assert source.acked == [(0, True), (1, True), (2, True), (3, True)]
    assert store.calls == 3 + 4 and len(store.docs) == 12
    counts = topology.counts()["fake"]
    assert (counts["batches"], counts["records"], counts["stored"], counts["parsed"]) == (4, 12, 12, 12)


def test_stopping_while_the_store_is_down_acknowledges_nothing(tmp_path: Path) -> None:
    store = FakeStore(failures=10**9)
    source = FakeSource(_batches(2), store)
    sink = Sink(store, retry=FAST)  # type: ignore[arg-type]
    topology = _topology(tmp_path, source, sink)
    topology.start()
    _wait(lambda: store.calls > 5)
    started = time.monotonic()
    topology.stop(grace=0.3)
    assert time.monotonic() - started < 5
    assert source.acked == [] and not topology.runs[0].thread.is_alive()  # type: ignore[union-attr]


def test_refused_documents_are_dead_lettered_and_busy_ones_retried(tmp_path: Path) -> None:
    store = FakeStore(reject={"id-0-1"}, busy={"id-1-0", "id-1-2"})
    source = FakeSource(_batches(2), store)
    letters = DeadLetterFile(tmp_path / "dead.jsonl")
    sink = Sink(store, dead_letter=letters, retry=FAST)  # type: ignore[arg-type]
    topology = _topology(tmp_path, source, sink, letters)
    topology.start()
    _wait(lambda: len(source.acked) == 2)
    topology.stop(grace=5)
    letters.close()
    (letter,) = read_dead_letters(tmp_path / "dead.jsonl")
    assert letter.event_id == "id-0-1" and letter.reason == "store rejected: mapper_parsing_exception"
    assert letter.raw == b"<13>Jan  1 00:00:00 host app: line 0.1"  # the original text, nothing lost
    assert source.acked == [(0, False), (1, True)]  # batch 0 settled: 2 stored, 1 dead-lettered
    assert len(store.docs) == 5 and dict(sink.counts) == {"stored": 5, "duplicates": 0, "rejected": 1}
    assert topology.counts()["fake"]["dead_lettered"] == 1
