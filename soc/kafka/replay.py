"""``soc kafka dlq replay``: re-ingest dead letters after a fix, idempotently.

Each dead letter is turned back into its original record -- same topic, partition, offset,
timestamp, key, value and headers -- and run through the same inspection, pipeline and store
write as the worker (with the settings of *this* run: a larger ``max_message_bytes``,
``invalid_utf8="store"``, an agency added to ``ingest/agencies.yml``, a fixed mapping...). So a
replayed record gets the event id its original coordinates give, and replaying twice, or
replaying a record the worker stored after all, writes nothing new (409 -> ``existing``).

Replay reads the dead-letter topic without a consumer group and never deletes or re-publishes
anything: what still fails is reported with its reason and stays in the topic for the next try.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from soc.agencies import AgencyTree, load_agencies
from soc.kafka import deadletters as dl
from soc.kafka.worker import IngestWorker, WorkerConfig


@dataclass
class _Rec:
    """The original record, rebuilt from a dead letter (the shape the worker reads)."""

    topic: str
    partition: int
    offset: int
    timestamp: int | None
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]


@dataclass
class ReplayResult:
    read: int = 0
    created: int = 0
    existing: int = 0
    still_failing: list[tuple[str, str]] = field(default_factory=list)  # (coordinates, reason)
    event_ids: list[str] = field(default_factory=list)  # of the stored (created or existing) ones

    def as_dict(self) -> dict[str, Any]:
        return {"read": self.read, "created": self.created, "existing": self.existing,
                "still_failing": [{"coordinates": c, "reason": r} for c, r in self.still_failing]}


class _Collector(IngestWorker):
    """The worker's processing and writing, fed from dead letters, with failures collected
    instead of re-published."""

    def _publish_dead(self) -> None:
        for letter, tp in self.batch.dead:
            self.failed.append((str(letter.coordinates), letter.reason))  # type: ignore[attr-defined]
            self.failed_ids.add(letter.event_id)  # type: ignore[attr-defined]
            self.batch.open[tp].discard(letter.coordinates.offset)
        self.batch.dead = []

    def _commit(self) -> None:  # nothing to commit: the dead-letter topic is read without a group
        pass

    def _wait(self) -> None:
        import time

        self._failures += 1
        time.sleep(self.backoff.delay(self._failures))


def replay(letters: Iterable[dl.DeadLetter], config: WorkerConfig, *, agencies: AgencyTree | None = None,
           batch_size: int = 2000, max_retry_seconds: float = 120.0) -> ReplayResult:
    """Re-ingest ``letters`` with ``config`` (its store, limits and policies)."""
    import time

    worker = _Collector(config, agencies=agencies or load_agencies())
    worker.backoff = replace(worker.backoff, jitter=0.0)  # one replaying process: nothing to spread
    worker.failed = []  # type: ignore[attr-defined]
    worker.failed_ids = set()  # type: ignore[attr-defined]
    result = ReplayResult()
    worker.consumer = None

    def flush(chunk: list[_Rec]) -> None:
        by_tp: dict[tuple[str, int], list[_Rec]] = {}
        for rec in chunk:
            by_tp.setdefault((rec.topic, rec.partition), []).append(rec)
        for tp, records in by_tp.items():
            records.sort(key=lambda r: r.offset)
            worker._take(tp, records)
        ids = list(worker.batch.events)
        started = time.monotonic()
        before = (worker.metrics.stored, worker.metrics.existing)
        worker._stopping = False
        while True:
            worker._attempt()
            if not worker.batch.unsettled():
                break
            if time.monotonic() - started > max_retry_seconds:
                for offsets in worker.batch.open.values():
                    for _ in offsets:
                        worker.failed.append(("?", "store kept failing during the replay"))  # type: ignore[attr-defined]
                break
            worker._wait()
        result.created += worker.metrics.stored - before[0]
        result.existing += worker.metrics.existing - before[1]
        result.event_ids.extend(i for i in ids if i not in worker.failed_ids)  # type: ignore[attr-defined]
        worker.batch.reset()

    chunk: list[_Rec] = []
    seen: set[tuple[str, int, int]] = set()
    try:
        for letter in letters:
            c = letter.coordinates
            if (c.topic, c.partition, c.offset) in seen:  # published twice (a crash before the commit)
                continue
            seen.add((c.topic, c.partition, c.offset))
            result.read += 1
            chunk.append(_Rec(c.topic, c.partition, c.offset, letter.timestamp_ms, letter.key, letter.value,
                              letter.headers))
            if len(chunk) >= batch_size:
                flush(chunk)
                chunk = []
        if chunk:
            flush(chunk)
    finally:
        worker.store.close()
    result.still_failing = list(worker.failed)  # type: ignore[attr-defined]
    return result
