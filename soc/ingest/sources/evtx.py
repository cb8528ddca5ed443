"""Windows event log files (``.evtx``) -> batches of records, through the ``evtx`` library
(pyevtx-rs, the Rust parser).

One record per event record: ``raw`` is the library's JSON rendering of the record, compact
UTF-8 (``{"Event": {"#attributes": ..., "System": {...}, "EventData": {...}}}``; XML attributes
under ``"#attributes"``), ``event_id = record_event_id(realpath, event_record_id)`` with the
record number from the record header, ``origin = "realpath#event_record_id"``.

Delivery guarantee: **at-least-once, idempotent**, like file replay: ids are deterministic, so a
re-read stores nothing twice. ``batch.position`` counts the records read so far (corrupt ones
excluded); pass it back as ``start`` to resume.

Corrupt input never stops the file: a chunk or record the library cannot parse is skipped and
reported in ``batch.errors`` (and :attr:`EvtxReader.errors`) as ``(origin, reason)`` for the
caller to dead-letter, and counted in ``counters.errors``. So is a **truncated** file: one
shorter than the chunks its file header declares (a copy cut short) -- the library reads the
chunks that are there and would say nothing of the rest. Only a file that is not an .evtx at all
(bad file header) raises :class:`SourceError`.

``time_ids=True`` puts the record's creation time into its id as well
(``record_event_id(f"{id_path}@{timestamp}", event_record_id)``): for a file exported again and
again under one name (a grown export holds the same records, with the same ids; a log that was
cleared starts its record numbers again, with new times, so new ids). Records are read in file order (``threads=1`` by
default so that one reader uses one core; raise it for large archives).
"""

from __future__ import annotations

import bisect
import os
import re
import struct
from collections.abc import Iterator
from typing import Any

import evtx as pyevtx

from soc.ingest import Record
from soc.ingest.sources.base import DEFAULT_BATCH_SIZE, Batch, SourceCounters, SourceError
from soc.model import now_utc, record_event_id

EVTX_MAGIC = b"ElfFile\x00"
MAX_CONSECUTIVE_ERRORS = 10_000
"""A file this broken is abandoned with one more error entry (the parser makes no progress)."""

CHUNK_SIZE = 0x10000
FIRST_CHUNK = 0x1000
HEADER_CHUNK_COUNT = 42  # offset of the file header's chunk count (u16)
_WHERE = re.compile(r"(record|chunk) number (\d+)")


def declared_ranges(path: str | os.PathLike[str]) -> list[tuple[int, int]]:
    """``(first, last)`` event record ids declared by each readable chunk header, sorted."""
    ranges = []
    with open(path, "rb") as fh:
        fh.seek(FIRST_CHUNK)
        while len(head := fh.read(40)) == 40:
            if head[:8] == b"ElfChnk\x00":
                first, last = struct.unpack_from("<QQ", head, 24)
                if 0 < first <= last and last - first < 1_000_000:
                    ranges.append((first, last))
            fh.seek(CHUNK_SIZE - 40, os.SEEK_CUR)
    return sorted(ranges)


def declared_chunks(path: str | os.PathLike[str]) -> int:
    """The number of chunks the file header declares (0 if the header is cut short)."""
    with open(path, "rb") as fh:
        head = fh.read(HEADER_CHUNK_COUNT + 2)
    return struct.unpack_from("<H", head, HEADER_CHUNK_COUNT)[0] if len(head) == HEADER_CHUNK_COUNT + 2 else 0


def truncation(path: str | os.PathLike[str]) -> str | None:
    """Why the file is shorter than its header says, or None (a file may be longer: a log not
    closed cleanly has more chunks than its header counts)."""
    size = os.path.getsize(path)
    chunks = declared_chunks(path)
    expected = FIRST_CHUNK + chunks * CHUNK_SIZE
    if size >= expected:
        return None
    whole = max(0, (size - FIRST_CHUNK) // CHUNK_SIZE)
    return (f"truncated: the file header declares {chunks} chunks ({expected} bytes) but the file has "
            f"{size} bytes; {chunks - whole} chunk(s) are missing or cut short and their records cannot "
            "be read (copy the complete file again)")


def is_evtx(path: str | os.PathLike[str]) -> bool:
    """True when the file starts with the .evtx file header signature."""
    with open(path, "rb") as fh:
        return fh.read(len(EVTX_MAGIC)) == EVTX_MAGIC


class EvtxReader:
    """Reads one .evtx file. Iterate :meth:`batches` once; ``errors`` lists what was skipped.

    ``id_path`` replaces the real path in event ids (see :func:`.files.read_file`)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        threads: int = 1,
        id_path: str | None = None,
        counters: SourceCounters | None = None,
        time_ids: bool = False,
    ) -> None:
        self.path = os.path.realpath(path)
        self.id_path = id_path or self.path
        self.time_ids = time_ids
        self.batch_size = batch_size
        self.threads = threads
        self.counters = counters if counters is not None else SourceCounters()
        self.errors: list[tuple[str, str]] = []
        self._current = Batch()

    def batches(self, *, start: int = 0) -> Iterator[Batch]:
        """Batches of records, skipping the first ``start`` good records (a resume position)."""
        if not is_evtx(self.path):
            raise SourceError(f"{self.path}: not a Windows .evtx file (no 'ElfFile' header)")
        try:
            parser = pyevtx.PyEvtxParser(
                self.path, number_of_threads=self.threads, indent=False
            )
            records = parser.records_json()
        except (OSError, RuntimeError, ValueError) as exc:
            raise SourceError(f"{self.path}: cannot open as .evtx: {exc}") from exc
        self.counters.bytes += os.path.getsize(self.path)
        count = 0
        batch = self._current = Batch(key=self.path, position=start)
        for item in self._iterate(records):
            count += 1
            if count <= start:
                continue
            batch.append(self._record(item))
            batch.position = count
            if len(batch) >= self.batch_size:
                self.counters.received += len(batch)
                yield batch
                batch = self._current = Batch(key=self.path, position=count)
        if batch or batch.errors:
            self.counters.received += len(batch)
            yield batch

    def _iterate(self, records: Any) -> Iterator[dict[str, Any]]:
        """The library's records; errors go into the current batch's ``errors``. Records that
        chunk headers declare but the library neither returned nor reported (it stops a chunk
        silently at a zeroed record header) are reported at the end."""
        ranges = declared_ranges(self.path)
        starts = [first for first, _ in ranges]
        seen = [0] * len(ranges)

        def account(rid: Any) -> None:
            if isinstance(rid, int) and (i := bisect.bisect_right(starts, rid) - 1) >= 0 \
                    and rid <= ranges[i][1]:
                seen[i] += 1

        last_id: int | None = None
        consecutive = 0
        while True:
            try:
                item = next(records)
            except StopIteration:
                break
            except Exception as exc:  # the library raises RuntimeError per broken record/chunk
                consecutive += 1
                m = _WHERE.search(str(exc))
                if m and m.group(1) == "record":
                    account(int(m.group(2)))
                self._error(self._where(str(exc), last_id), str(exc))
                if consecutive >= MAX_CONSECUTIVE_ERRORS:
                    self._error(self.path, "too many consecutive errors; rest of file skipped")
                    return
                continue
            consecutive = 0
            if not isinstance(item, dict) or "data" not in item:
                self._error(self._where("", last_id), f"unexpected item {type(item)!r}")
                continue
            last_id = item.get("event_record_id")
            account(last_id)
            yield item
        for (first, last), got in zip(ranges, seen, strict=True):
            if got < last - first + 1:
                self._error(
                    f"{self.path}#records {first}-{last}",
                    f"{last - first + 1 - got} of the {last - first + 1} records this chunk "
                    "declares were not returned by the parser (damaged record header?)",
                )
        cut = truncation(self.path)
        if cut is not None:
            self._error(f"{self.path}#end", cut)

    def _record(self, item: dict[str, Any]) -> Record:
        rid = item.get("event_record_id")
        data = item["data"]
        raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
        id_path = f"{self.id_path}@{item.get('timestamp')}" if self.time_ids else self.id_path
        return Record(raw, record_event_id(id_path, rid), now_utc(), f"{self.path}#{rid}")

    def _where(self, message: str, last_id: int | None) -> str:
        m = _WHERE.search(message)
        if m:
            return f"{self.path}#{m.group(1)} {m.group(2)}"
        return f"{self.path}#after record {last_id}" if last_id is not None else self.path

    def _error(self, origin: str, reason: str) -> None:
        self._current.errors.append((origin, reason))
        self.errors.append((origin, reason))
        self.counters.error("corrupt_evtx")


def read_evtx(
    path: str | os.PathLike[str], *, start: int = 0, **kwargs: Any
) -> Iterator[Batch]:
    """Shorthand for ``EvtxReader(path, **kwargs).batches(start=start)``."""
    return EvtxReader(path, **kwargs).batches(start=start)
