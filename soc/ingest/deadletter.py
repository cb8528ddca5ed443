"""Dead letters: records the pipeline could not turn into a stored event, kept with the reason
and their exact bytes so they can be replayed after a fix.

A dead-letter file is JSON lines, one object per record::

    {"reason": "oversized (70000 bytes > 65536)", "origin": "udp 10.0.0.5:514",
     "event_id": "...", "received": "2024-03-01T10:00:00.000Z", "peer": "10.0.0.5",
     "raw_b64": "<exact bytes, base64>", "raw_preview": "<first 200 characters>"}

``raw_b64`` is the truth; ``raw_preview`` is only for people reading the file. Replaying a
dead letter (:meth:`DeadLetter.to_record`) gives back a :class:`Record` with the same
``event_id``, so a replay after a fix is idempotent in the store.

Writes are serialised by a lock (listeners and workers may share one file) and appended
with ``O_APPEND``; :meth:`DeadLetterFile.flush` and :meth:`DeadLetterFile.close` fsync, so a
closed file survives a power cut. :func:`read_dead_letters` skips a torn last line left by
a crash (and any other unreadable line, counting them in ``skipped``).
"""

from __future__ import annotations

import base64
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Protocol

import orjson

from soc.ingest import Record
from soc.model import iso, parse_iso

log = logging.getLogger(__name__)
PREVIEW_CHARS = 200


class DeadLetterWriter(Protocol):
    """Where the pipeline puts a record it cannot store (a :class:`DeadLetterFile`, or the Kafka
    worker's stand-in that publishes to the dead-letter topic)."""

    def write(self, reason: str, record: Record) -> None: ...


@dataclass(slots=True)
class DeadLetter:
    """One dead-lettered record as read back from a file."""

    reason: str
    origin: str
    event_id: str
    received: str
    raw: bytes
    raw_preview: str
    peer: str | None = None

    def to_record(self) -> Record:
        """The original record, for replay through the pipeline."""
        return Record(raw=self.raw, event_id=self.event_id, received=parse_iso(self.received), origin=self.origin, peer=self.peer)


class DeadLetterFile:
    """Append-only JSON-lines dead-letter file; safe to share between threads."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.count = 0
        self._lock = threading.Lock()
        self._fd: int | None = None

    def _open(self) -> int:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        return self._fd

    def write(self, reason: str, record: Record) -> None:
        """Append one record with the reason it was dead-lettered."""
        preview = record.raw[: PREVIEW_CHARS * 4].decode("utf-8", "replace")[:PREVIEW_CHARS]
        line = orjson.dumps(
            {
                "reason": reason,
                "origin": record.origin,
                "event_id": record.event_id,
                "received": iso(record.received) if record.received.tzinfo else record.received.isoformat(),
                "peer": record.peer,
                "raw_b64": base64.b64encode(record.raw).decode("ascii"),
                "raw_preview": preview,
            }
        ) + b"\n"
        with self._lock:
            fd = self._open()
            view = memoryview(line)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            self.count += 1

    def flush(self) -> None:
        """Make everything written so far durable (fsync)."""
        with self._lock:
            if self._fd is not None:
                os.fsync(self._fd)

    def close(self) -> None:
        """fsync and close; the object may be written to again (it reopens)."""
        with self._lock:
            if self._fd is not None:
                os.fsync(self._fd)
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> DeadLetterFile:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


class _Reader:
    def __init__(self) -> None:
        self.skipped = 0


def read_dead_letters(path: str | Path, stats: _Reader | None = None) -> Iterator[DeadLetter]:
    """Yield the dead letters of a file in order. Unreadable lines are skipped (and counted
    in ``stats.skipped`` when a :func:`reader_stats` object is passed)."""
    with open(path, "rb") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                item = orjson.loads(line)
                yield DeadLetter(
                    reason=str(item["reason"]),
                    origin=str(item["origin"]),
                    event_id=str(item["event_id"]),
                    received=str(item["received"]),
                    raw=base64.b64decode(item["raw_b64"], validate=True),
                    raw_preview=str(item.get("raw_preview", "")),
                    peer=item.get("peer"),
                )
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                log.warning("%s:%d: unreadable dead letter skipped (%s)", path, number, exc)
                if stats is not None:
                    stats.skipped += 1


def reader_stats() -> _Reader:
    """A counter object for :func:`read_dead_letters` (``.skipped``)."""
    return _Reader()
