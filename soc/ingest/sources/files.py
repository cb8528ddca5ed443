"""File replay: a log file on disk -> :class:`~soc.ingest.sources.base.Batch` es of records.

Delivery guarantee: **at-least-once, idempotent**. Every record's id is deterministic from the
file and the record's place in it, so replaying a file (in full, or from any batch's
``position`` after a crash) yields identical ids and a create-only store keeps one copy. The
reader keeps no state of its own: a caller that needs to resume stores ``batch.position`` after
it has stored the batch and passes it back as ``start_offset`` (:mod:`.inbox` does this).

What a file may be, and what one record is:

- **Lines** (the default): one record per line, ``event_id = file_event_id(realpath, offset)``
  with ``offset`` the byte offset where the line starts, ``origin = "realpath:offset"``. ``\\n``
  and ``\\r\\n`` endings, a last line without a newline, NUL bytes and invalid UTF-8 are all
  handled; bytes are passed through untouched (decoding is the pipeline's job). Empty lines
  carry nothing and produce no record (counted as ``dropped["empty_line"]``). Memory is
  constant: the file is read in 1 MiB chunks, a batch closes at ``batch_size`` records or
  ``batch_bytes`` raw bytes, and a line longer than ``max_line_bytes`` (16 MiB) keeps its first
  16 MiB, marked truncated (see :mod:`.base`). ``position`` is a byte offset.
- **gzip** (detected by its magic bytes, whatever the name): the same, over the *decompressed*
  stream: offsets, ids and ``position`` count decompressed bytes. Resuming re-decompresses from
  the start up to the offset (constant memory, linear time). Concatenated members are read as
  one stream. A stream that is cut short or damaged yields every line decompressed before the
  damage (:class:`_GzipStream` hands over what it has before it reports the error), then raises
  :class:`SourceError` naming the decompressed offset.
- **One JSON array** (the first non-blank byte is ``[`` followed by ``{`` or ``]``, e.g. a
  Suricata ``alerts-only.json``, pretty-printed or not): one record per array element, raw = the
  element as compact JSON bytes (re-serialized: key order, strings and number text kept,
  whitespace gone), ``event_id = record_event_id(realpath, index)``, ``origin =
  "realpath[index]"``, ``position`` = index of the next element. Parsed incrementally (ijson);
  an element bigger than ``max_line_bytes`` (estimated while parsing) keeps what was parsed up
  to the cap (still valid JSON), marked truncated (one JSON string token is held whole by the
  parser, whatever its size). A file that looks like an array but fails before its first
  element is complete is read as lines instead; a failure later raises
  :class:`SourceError` naming the element (the elements before it have been yielded).

Not supported: non-regular files (FIFOs, devices would block; :class:`SourceError`).
"""

from __future__ import annotations

import hashlib
import os
import stat
import zlib
from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, Literal

import ijson
import orjson

from soc.ingest import Record
from soc.ingest.sources.base import (
    DEFAULT_BATCH_BYTES,
    DEFAULT_BATCH_SIZE,
    MAX_LINE_BYTES,
    Batch,
    MiB,
    SourceCounters,
    SourceError,
    mark_truncated,
)
from soc.ingest.sources.lines import LineSplitter
from soc.model import now_utc, record_event_id

CHUNK_BYTES = 1 * MiB
SNIFF_BYTES = 4096
GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"

Format = Literal["auto", "lines", "json-array"]


def read_file(
    path: str | os.PathLike[str],
    *,
    start_offset: int = 0,
    batch_size: int = DEFAULT_BATCH_SIZE,
    batch_bytes: int = DEFAULT_BATCH_BYTES,
    max_line_bytes: int = MAX_LINE_BYTES,
    fmt: Format = "auto",
    id_path: str | None = None,
    counters: SourceCounters | None = None,
) -> Iterator[Batch]:
    """Yield the records of the file at ``path`` in batches (see the module docstring).

    ``start_offset`` resumes from a previous batch's ``position``. ``id_path`` replaces the real
    path in event ids (the inbox uses it to tell apart different files dropped under one name).
    Empty batches are never yielded.
    """
    real = os.path.realpath(path)
    st = os.stat(real)
    if not stat.S_ISREG(st.st_mode):
        raise SourceError(f"{real}: not a regular file; only regular files can be replayed")
    if batch_size < 1 or batch_bytes < 1:
        raise ValueError("batch_size and batch_bytes must be positive")
    counters = counters if counters is not None else SourceCounters()
    is_gzip, head = _sniff(real)
    if fmt == "json-array" or (fmt == "auto" and _looks_like_json_array(head)):
        try:
            yield from _json_batches(real, is_gzip, head, start_offset, batch_size, batch_bytes,
                                     max_line_bytes, id_path or real, counters)
            return
        except _NotAJsonArray:  # raised before any element: the same on every read
            if fmt == "json-array":
                raise SourceError(f"{real}: not a JSON array of records") from None
    yield from _line_batches(real, is_gzip, start_offset, batch_size, batch_bytes,
                             max_line_bytes, id_path or real, counters)


def _sniff(real: str) -> tuple[bool, bytes]:
    with open(real, "rb") as fh:
        magic = fh.read(2)
    with _open(real, magic == GZIP_MAGIC) as fh:
        try:
            head = fh.read(SNIFF_BYTES)
        except (OSError, EOFError, zlib.error):
            head = b""  # reported with its offset when read for real
    return magic == GZIP_MAGIC, head


def _open(real: str, is_gzip: bool) -> IO[bytes]:
    return _GzipStream(real) if is_gzip else open(real, "rb")  # type: ignore[return-value]


class _GzipStream:
    """A gzip file read as its decompressed stream (members concatenated), like ``gzip.open``
    but without losing what was decompressed before a damaged or missing part: ``read`` returns
    those bytes first and raises (``EOFError`` for a stream cut short, ``zlib.error`` or
    ``OSError`` for damage) only when nothing decompressed is left. ``seek`` goes forward only
    (reading and discarding), which is all resuming needs."""

    RAW_CHUNK = 64 * 1024

    def __init__(self, real: str) -> None:
        self._fh = open(real, "rb")  # noqa: SIM115 - closed by close()
        self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._buf = bytearray()
        self._pos = 0
        self._error: BaseException | None = None
        self._done = False

    def _fill(self, n: int) -> None:
        while len(self._buf) < n and not self._done:
            raw = self._fh.read(self.RAW_CHUNK)
            if not raw:
                self._done = True
                if not self._d.eof:
                    self._error = EOFError("Compressed file ended before the end-of-stream marker was reached")
                return
            try:
                while raw:
                    if self._d.eof:  # the next member of a concatenated file
                        if raw[:2] != GZIP_MAGIC:
                            raise OSError("not a gzip member after decompressed offset "
                                          f"{self._pos + len(self._buf)}")
                        self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
                    self._buf += self._d.decompress(raw)
                    raw = self._d.unused_data
            except (zlib.error, OSError) as exc:
                self._error, self._done = exc, True

    def read(self, n: int = -1) -> bytes:
        want = n if n >= 0 else 1 << 62
        self._fill(want)
        if not self._buf and self._error is not None:
            raise self._error
        out = bytes(self._buf[:want])
        del self._buf[:want]
        self._pos += len(out)
        return out

    def seek(self, offset: int) -> int:
        if offset < self._pos:
            raise OSError(f"cannot seek back to {offset} in a gzip stream at {self._pos}")
        while self._pos < offset:
            if not self.read(min(CHUNK_BYTES, offset - self._pos)):
                raise EOFError(f"the decompressed stream ends at {self._pos}, before offset {offset}")
        return self._pos

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> _GzipStream:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _looks_like_json_array(head: bytes) -> bool:
    text = head.removeprefix(UTF8_BOM).lstrip(b" \t\r\n")
    if not text.startswith(b"["):
        return False
    rest = text[1:].lstrip(b" \t\r\n")
    return rest[:1] in (b"{", b"]") or (not rest and len(head) == SNIFF_BYTES)


def _line_batches(
    real: str,
    is_gzip: bool,
    start: int,
    batch_size: int,
    batch_bytes: int,
    max_line: int,
    id_path: str,
    counters: SourceCounters,
) -> Iterator[Batch]:
    splitter = LineSplitter(start, max_line)
    event_id = _file_event_ids(id_path)
    batch = Batch(key=real, position=start)
    size = 0
    with _open(real, is_gzip) as fh:
        try:
            fh.seek(start)
        except (OSError, EOFError, zlib.error) as exc:
            raise SourceError(f"{real}: cannot reach offset {start}: {exc}") from exc
        while True:
            try:
                chunk = fh.read(CHUNK_BYTES)
            except (OSError, EOFError, zlib.error) as exc:
                if batch:
                    counters.received += len(batch)
                    yield batch
                raise SourceError(
                    f"{real}: corrupt or truncated gzip data after decompressed offset "
                    f"{splitter.pending_offset}: {exc}"
                ) from exc
            if chunk:
                counters.bytes += len(chunk)
                lines = splitter.feed(chunk)
            else:
                last = splitter.flush()
                lines = [last] if last is not None else []
            received = now_utc()
            append = batch.append
            for offset, raw, line_size, end, truncated in lines:
                if raw:
                    if truncated:
                        append(_line_record(real, event_id, offset, raw, line_size, received, counters))
                    else:  # _line_record inlined: the common case
                        append(Record(raw, event_id(offset), received, f"{real}:{offset}"))
                    size += len(raw)
                else:
                    counters.drop("empty_line")
                if size >= batch_bytes or len(batch) >= batch_size:
                    batch.position = end
                    counters.received += len(batch)
                    yield batch
                    batch = Batch(key=real, position=end)
                    append = batch.append
                    size = 0
            if lines:
                batch.position = lines[-1].end
            if not chunk:
                break
    if batch:
        counters.received += len(batch)
        yield batch


def _file_event_ids(id_path: str) -> Callable[[int], str]:
    """``offset -> file_event_id(id_path, offset)``, hashing the part common to the file once
    (the digest is over the concatenated parts, so a copy of the hash state fed the common
    prefix gives the same id; a test checks)."""
    base = hashlib.blake2b(digest_size=16)
    base.update(b"file\x1f" + id_path.encode("utf-8", "surrogatepass") + b"\x1f")

    def event_id(offset: int) -> str:
        digest = base.copy()
        digest.update(b"%d\x1f" % offset)
        return digest.hexdigest()

    return event_id


def _line_record(
    real: str, event_id: Callable[[int], str], offset: int, raw: bytes, truncated_from: int,
    received: datetime, counters: SourceCounters,
) -> Record:
    origin = f"{real}:{offset}"
    if truncated_from:
        counters.truncate("line_too_long")
        origin = mark_truncated(origin, len(raw), truncated_from)
    return Record(raw, event_id(offset), received, origin)


class _NotAJsonArray(Exception):
    pass


def _json_batches(
    real: str,
    is_gzip: bool,
    head: bytes,
    start: int,
    batch_size: int,
    batch_bytes: int,
    max_bytes: int,
    id_path: str,
    counters: SourceCounters,
) -> Iterator[Batch]:
    index = 0
    batch = Batch(key=real, position=start)
    size = 0
    with _open(real, is_gzip) as fh:
        if head.startswith(UTF8_BOM):
            fh.seek(len(UTF8_BOM))
        counting = _CountingReader(fh)
        try:
            for value, estimate, truncated in _elements(counting, max_bytes):
                if index >= start:
                    raw = _compact(value)
                    origin = f"{real}[{index}]"
                    if truncated:
                        counters.truncate("element_too_big")
                        origin = mark_truncated(origin, len(raw), estimate)
                    batch.append(Record(raw, record_event_id(id_path, index), now_utc(), origin))
                    size += len(raw)
                index += 1
                batch.position = max(index, start)
                if len(batch) >= batch_size or size >= batch_bytes:
                    counters.received += len(batch)
                    counters.bytes += counting.take()
                    yield batch
                    batch = Batch(key=real, position=index)
                    size = 0
        except (ijson.JSONError, OSError, EOFError, zlib.error) as exc:
            if index == 0 and not isinstance(exc, OSError | EOFError | zlib.error):
                raise _NotAJsonArray from exc
            if batch:
                counters.received += len(batch)
                yield batch
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise SourceError(
                f"{real}: invalid JSON array after element {index} (0-based): {reason}"
            ) from exc
    counters.bytes += counting.take()
    if batch:
        counters.received += len(batch)
        yield batch


def _elements(fh: IO[bytes], max_bytes: int) -> Iterator[tuple[Any, int, bool]]:
    """Top-level array elements as ``(value, estimated_json_size, truncated)``; memory per
    element is bounded by ``max_bytes`` (roughly) however big the element is."""
    depth = 0
    builder: ijson.ObjectBuilder | None = None
    size = 0
    truncated = False
    for event, value in ijson.basic_parse(fh, buf_size=64 * 1024):
        if depth == 0:
            if event != "start_array":
                raise ijson.JSONError("the top-level value is not an array")
            depth = 1
            continue
        if depth == 1 and event == "end_array":
            depth = 0
            continue
        if builder is None:
            builder, size, truncated = ijson.ObjectBuilder(), 0, False
        if event == "start_map" or event == "start_array":
            depth += 1
        elif event == "end_map" or event == "end_array":
            depth -= 1
        size += len(value) + 3 if isinstance(value, str) else 6
        if not truncated:
            if size > max_bytes:
                truncated = True
            else:
                builder.event(event, value)
        if depth == 1:
            yield builder.value, size, truncated
            builder = None


def _compact(value: Any) -> bytes:
    """Compact JSON; numbers keep their text (ijson gives ``Decimal`` for non-integers).

    The copy matters: orjson's result keeps its over-allocated write buffer (~8x the size for
    1 KB documents), which a batch of 5,000 elements would hold on to."""
    try:
        raw = orjson.dumps(value, default=_number_text)
    except TypeError:  # integers beyond 64 bits
        raw = orjson.dumps(_big_ints(value), default=_number_text)
    return bytes(memoryview(raw))


def _number_text(value: Any) -> Any:
    if isinstance(value, Decimal):
        return orjson.Fragment(str(value))
    raise TypeError(f"cannot serialize {type(value).__name__}")


def _big_ints(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _big_ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_big_ints(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
        return orjson.Fragment(str(value))
    return value


class _CountingReader:
    """Counts the bytes ijson pulls from the file (for ``SourceCounters.bytes``)."""

    def __init__(self, fh: IO[bytes]) -> None:
        self._fh = fh
        self._n = 0

    def read(self, n: int = -1) -> bytes:
        data = self._fh.read(n)
        self._n += len(data)
        return data

    def take(self) -> int:
        n, self._n = self._n, 0
        return n


def iter_records(path: str | Path, **kwargs: Any) -> Iterator[Record]:
    """Every record of :func:`read_file`, one at a time (convenience for tools and tests)."""
    for batch in read_file(path, **kwargs):
        yield from batch
