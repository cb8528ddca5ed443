"""Dead letters on the health page: what the embedded service could not store, and replaying
it after a fix; the Kafka path's consumer lag and dead-letter topic when Kafka is used.

**The embedded service's file** (``<data_dir>/dead-letter/ingest.jsonl``, :mod:`soc.ingest.deadletter`)
is read, never changed: the count, the reasons, the newest letters. **Replay** runs each letter
with bytes through the pipeline of a source definition the operator picks (its parser, agency
and zone -- a file shared by every source does not say which one received a record), with the
settings of now (a larger ``syslog.max_message_bytes``, an agency added...), and writes the
events through the store it is given: the user's audited store, so the replay is in the audit
trail under the user's name. Event ids are the letters' own, so a second replay writes nothing
new; a letter that fails again is counted with its reason and stays in the file. Letters
without bytes (a source's read error) have nothing to replay.

**Kafka** (``soc kafka worker``) is used when the settings have a ``kafka:`` section or a source
definition of type ``kafka``: its group's lag and dead-letter count come from the broker
(:func:`soc.kafka.status.group_status`), its dead-letter topic is replayed by
:func:`soc.kafka.replay.replay` (the same as ``soc kafka dlq replay``).
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from soc.agencies import AgencyTree
from soc.ingest import Record
from soc.ingest.deadletter import DeadLetter, read_dead_letters, reader_stats
from soc.ingest.pipeline import build_pipeline
from soc.ingest.sourcedefs import SourceDefinition, context_for
from soc.store.base import Store

__all__ = ["FileLetters", "Replayed", "kafka_status", "kafka_used", "reason_kind", "replay_file", "replay_kafka",
           "file_letters"]

LATEST = 50
BATCH = 500


def reason_kind(reason: str) -> str:
    """The kind of a reason, for counting: ``oversized``, ``store rejected``, ``source``..."""
    for mark in (":", " ("):
        if mark in reason:
            reason = reason.split(mark, 1)[0]
    return reason.strip() or "?"


@dataclass
class FileLetters:
    path: Path
    exists: bool
    total: int = 0
    skipped: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)
    latest: list[DeadLetter] = field(default_factory=list)  # newest first


def file_letters(path: Path, latest: int = LATEST) -> FileLetters:
    """What the dead-letter file holds (read once, start to end)."""
    found = FileLetters(path, path.is_file())
    if not found.exists:
        return found
    stats = reader_stats()
    newest: deque[DeadLetter] = deque(maxlen=latest)
    for letter in read_dead_letters(path, stats):
        found.total += 1
        found.by_kind[reason_kind(letter.reason)] += 1
        newest.append(letter)
    found.skipped = stats.skipped
    found.latest = list(reversed(newest))
    return found


@dataclass
class Replayed:
    read: int = 0
    replayed: int = 0
    created: int = 0
    existing: int = 0
    no_bytes: int = 0
    still_failing: list[tuple[str, str]] = field(default_factory=list)  # (origin, reason)

    def as_dict(self) -> dict[str, Any]:
        return {"read": self.read, "replayed": self.replayed, "created": self.created, "existing": self.existing,
                "no_bytes": self.no_bytes, "still_failing": len(self.still_failing)}


class _Failures:
    """The dead-letter writer of a replay: what fails again is counted, not written anywhere."""

    def __init__(self, out: Replayed) -> None:
        self.out = out

    def write(self, reason: str, record: Record) -> None:
        self.out.still_failing.append((record.origin, reason))


def _batches(path: Path, kind: str | None, out: Replayed) -> Iterator[list[Record]]:
    batch: list[Record] = []
    for letter in read_dead_letters(path):
        out.read += 1
        if kind is not None and reason_kind(letter.reason) != kind:
            continue
        if not letter.raw:
            out.no_bytes += 1
            continue
        batch.append(letter.to_record())
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def replay_file(path: Path, source: SourceDefinition, store: Store, agencies: AgencyTree, *,
                max_message_bytes: int, kind: str | None = None) -> Replayed:
    """Replay the file's letters (of one reason ``kind``, or all) through ``source``'s pipeline
    into ``store``."""
    out = Replayed()
    if not path.is_file():
        return out
    pipeline = build_pipeline(context_for(source, agencies), source.format, max_message_bytes=max_message_bytes,
                              dead_letter=_Failures(out))
    for batch in _batches(path, kind, out):
        out.replayed += len(batch)
        events = pipeline.process(batch)
        if events:
            result = store.write_events(events)
            out.created += result.created
            out.existing += result.existing
            out.still_failing += [(event_id, f"store rejected: {why}") for event_id, why in result.rejected]
    return out


# -- Kafka ------------------------------------------------------------------------------------------
def kafka_used(settings: Any, sources: list[SourceDefinition]) -> bool:
    return bool(settings.kafka.model_fields_set) or any(s.type == "kafka" for s in sources)


def kafka_status(settings: Any) -> Any:
    """The consumer group's lag and the dead-letter count, from the broker (raises when it
    cannot be reached: the page says why)."""
    from soc.kafka.config import security_options
    from soc.kafka.status import group_status

    k = settings.kafka
    return group_status(k.bootstrap, k.group, [k.topic], k.dead_letter_topic,
                        security=security_options(k, k.bootstrap))


def replay_kafka(settings: Any) -> dict[str, Any]:
    """``soc kafka dlq replay`` with the settings of now: the counts."""
    from soc.kafka.config import WorkerConfig
    from soc.kafka.deadletters import read_dead_letters as read_topic
    from soc.kafka.replay import replay

    config = WorkerConfig.from_settings(settings)
    letters = read_topic(config.bootstrap, settings.kafka.dead_letter_topic, security=config.security)
    return replay(letters, config).as_dict()
