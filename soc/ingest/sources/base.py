"""What every source shares: the :class:`Batch` it yields, its :class:`SourceCounters`, and how
a cut-short message is marked.

A batch is a plain ``list`` of :class:`~soc.ingest.Record` (so any consumer that wants a
``list[Record]`` takes it as is) that also says where to resume after it (``position``), whether it
ends its file (``final``), and which pieces of input could not become records (``errors``: pairs of
``(origin, reason)`` the caller dead-letters). Replayable sources (files, tail, inbox) persist a
position only when the caller acknowledges a batch, so a batch is the unit of at-least-once
delivery; ids are deterministic, so a batch delivered twice is stored once.

Truncation marking (until ``Record`` has a field for it): a message longer than a source's hard
cap keeps its first ``cap`` bytes in ``raw`` and its ``origin`` ends with
``" [truncated: kept K of N bytes]"``. :func:`truncated_size` reads that back. Nothing is cut
silently: the source also counts it in ``SourceCounters.truncated``.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any

from soc.errors import SocError
from soc.ingest import Record

KiB = 1024
MiB = 1024 * KiB

DEFAULT_BATCH_SIZE = 5000
"""Records per batch for file-like sources."""

MAX_LINE_BYTES = 16 * MiB
"""Hard cap of one file line or JSON element: longer ones keep their first 16 MiB, marked truncated.
(The pipeline dead-letters anything above its own, lower, message limit; the source only makes sure
memory stays bounded.)"""

DEFAULT_BATCH_BYTES = 32 * MiB
"""A batch is also closed when its raw bytes reach this much, so huge lines cannot pile up."""


class SourceError(SocError):
    """Input a source cannot read any further (not a regular file, broken JSON array, not an
    .evtx...). The message names the input and what is wrong with it."""


class Batch(list[Record]):
    """Records plus the position to resume from once they are stored.

    ``position`` is source-specific and opaque to the caller: a byte offset (file lines, in the
    decompressed stream for gzip), an element index (JSON arrays), a record count (.evtx), or a
    dict (tail: file identity and offset). ``key`` names the input the batch came from.
    ``failed`` (on a final batch) says why the input could not be read to its end -- refused
    (its content is not what its name says) or broken off; ``None`` when it was read to its end,
    which may still have skipped unreadable parts (those are in ``errors``: a *partial* file).
    """

    __slots__ = ("key", "position", "final", "errors", "failed")

    def __init__(
        self,
        records: list[Record] | None = None,
        *,
        key: str = "",
        position: Any = None,
        final: bool = False,
        errors: list[tuple[str, str]] | None = None,
        failed: str | None = None,
    ) -> None:
        super().__init__(records or ())
        self.key = key
        self.position = position
        self.final = final
        self.errors: list[tuple[str, str]] = errors if errors is not None else []
        self.failed = failed

    def __repr__(self) -> str:
        return (
            f"Batch({len(self)} records, key={self.key!r}, position={self.position!r}, "
            f"final={self.final}, errors={len(self.errors)}, failed={self.failed!r})"
        )


@dataclass(slots=True)
class SourceCounters:
    """What a source has seen, for health pages and logs.

    ``received`` records produced, ``bytes`` input bytes consumed (framing included), ``dropped``
    and ``truncated`` count messages by reason (a dropped message produced no record, a truncated
    one produced a record holding only its first bytes), ``errors`` counts input the source
    could not read (corrupt .evtx records, files moved to ``failed/``...).

    Updated by the thread(s) that run the source (through the locked methods when there are
    several), read from any thread; :meth:`snapshot` returns a consistent plain-dict copy.
    """

    received: int = 0
    bytes: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    truncated: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, received: int = 0, nbytes: int = 0) -> None:
        """Count records and input bytes (for sources that count from several threads)."""
        with self._lock:
            self.received += received
            self.bytes += nbytes

    def drop(self, reason: str, n: int = 1) -> None:
        with self._lock:
            self.dropped[reason] = self.dropped.get(reason, 0) + n

    def truncate(self, reason: str, n: int = 1) -> None:
        with self._lock:
            self.truncated[reason] = self.truncated.get(reason, 0) + n

    def error(self, reason: str, n: int = 1) -> None:
        with self._lock:
            self.errors[reason] = self.errors.get(reason, 0) + n

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "received": self.received,
                "bytes": self.bytes,
                "dropped": dict(self.dropped),
                "truncated": dict(self.truncated),
                "errors": dict(self.errors),
            }


_TRUNCATED = re.compile(r" \[truncated: kept (\d+) of (\d+) bytes\]$")


def mark_truncated(origin: str, kept: int, total: int) -> str:
    """``origin`` with the truncation note appended (see the module docstring)."""
    return f"{origin} [truncated: kept {kept} of {total} bytes]"


def truncated_size(record: Record) -> tuple[int, int] | None:
    """``(kept, original)`` byte counts when the source cut ``record.raw`` short, else ``None``."""
    m = _TRUNCATED.search(record.origin)
    return (int(m.group(1)), int(m.group(2))) if m else None
