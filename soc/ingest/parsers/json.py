"""JSON records: recognisers for known producers, a bounded generic fallback, and
:func:`iter_json_records` for files that hold a JSON array instead of JSON lines.

Recognisers, in order (first match wins): Windows events in any shape (:mod:`.windows`),
Azure Monitor records (:mod:`.azure`), Suricata EVE (:mod:`.suricata`), Zeek
(:mod:`.zeek`). Anything else is ``generic.json``: the document flattened under ``json.*``
(namespaced so a producer's ``host: "x"`` can never collide with ECS ``host.name`` in a
store), with ``message`` and the timestamp taken from the usual keys. A document that is
already ECS (has ``ecs`` or ``@timestamp`` + an ``event`` object) is kept at the top level.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

import orjson

from soc.model import FAILED, PARTIAL, Parsed

from . import azure, suricata, windows, zeek
from ._programs import known_datasets
from ._time import parse_any
from .flatten import flatten

_TIME_KEYS = (
    "@timestamp", "timestamp", "time", "ts", "TimeGenerated", "EventTime", "eventTime", "event_time",
    "datetime", "date", "created_at", "createdAt", "CreationTime", "creationTime", "EdgeStartTimestamp",
    "published", "logtime",
)
_MESSAGE_KEYS = ("message", "msg", "Message", "log", "full_message", "short_message")
_RESERVED = frozenset({"_id", "@timestamp", "event.created", "event.ingested", "event.original", "event.kind", "tags"})


def parse(line: str) -> Parsed:
    """One JSON document (a JSON line, or one element from :func:`iter_json_records`)."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        if "after document" not in str(exc):
            return Parsed(fields={"message": line, "soc.parse.parser": "json"}, status=FAILED, error=f"invalid JSON: {exc}")
        return _concatenated(line, exc)
    return parse_value(obj)


def _concatenated(line: str, exc: orjson.JSONDecodeError) -> Parsed:
    """Several JSON documents on one line (some shippers batch them): the fields come from
    the first document, the event is partial, and the whole line stays in event.original."""
    count = 0
    first: bytes | None = None
    for _, raw in iter_json_records(line):
        count += 1
        first = first or raw
    try:
        parsed = parse_value(orjson.loads(first)) if first else None
    except orjson.JSONDecodeError:
        parsed = None
    if parsed is None:
        return Parsed(fields={"message": line, "soc.parse.parser": "json"}, status=FAILED, error=f"invalid JSON: {exc}")
    parsed.degrade(PARTIAL, f"{count} concatenated JSON documents on one line; fields come from the first")
    return parsed


def parse_value(obj: Any) -> Parsed:
    """An already-decoded JSON value -> Parsed."""
    if not isinstance(obj, dict):
        return _generic({"value": obj})
    for recognise in (windows.recognise, azure.recognise, suricata.recognise, zeek.recognise):
        parsed = recognise(obj)
        if parsed is not None:
            return parsed
    return _generic(obj)


def _find_time(obj: dict[str, Any]) -> tuple[Any, str | None]:
    for node in (obj, *(v for v in obj.values() if isinstance(v, dict))):
        for key in _TIME_KEYS:
            value = node.get(key)
            if value is None or isinstance(value, bool | dict | list):
                continue
            text = str(value)
            ts, year_missing = parse_any(text)
            if ts is not None and not year_missing:
                return ts, text
    return None, None


def _generic(obj: dict[str, Any]) -> Parsed:
    fields: dict[str, Any] = {"soc.parse.parser": "json"}
    is_ecs = "ecs" in obj or "ecs.version" in obj or ("@timestamp" in obj and isinstance(obj.get("event"), dict))
    if is_ecs:
        flat: dict[str, Any] = {}
        truncated = flatten(obj, "", flat)
        for key, value in flat.items():
            if key not in _RESERVED and not key.startswith(("soc.", "organization.")):
                fields[key] = value
        dataset = flat.get("event.dataset")
        fields["event.dataset"] = dataset if isinstance(dataset, str) and dataset in known_datasets() else "generic.json"
    else:
        truncated = flatten(obj, "json.", fields)
        fields["event.dataset"] = "generic.json"
        for key in _MESSAGE_KEYS:
            value = obj.get(key)
            if isinstance(value, str) and value:
                fields["message"] = value
                break
    ts, raw = _find_time(obj)
    parsed = Parsed(fields=fields, timestamp=ts, raw_time=raw)
    if truncated:
        parsed.degrade(PARTIAL, "JSON document larger than the field budget (depth 8, 512 fields); the rest is in event.original")
    return parsed


# ---- JSON arrays as record streams ------------------------------------------------------------

_SCAN = re.compile(r'[\[\]{}",]')
_STRING_END = re.compile(r'[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_SCALAR_END = re.compile(r"[,\]\n]")
_CHUNK = 1 << 20


def _chunks(source: str | bytes | IO[str] | IO[bytes] | Iterable[str | bytes]) -> Iterator[str]:
    """Text chunks from text, bytes, a text/binary stream or an iterable of either.

    Bytes are decoded with ``surrogateescape`` so invalid UTF-8 survives the round trip
    back to the exact bytes in :func:`iter_json_records`.
    """
    if isinstance(source, str):
        yield source
        return
    if isinstance(source, bytes | bytearray):
        yield bytes(source).decode("utf-8", "surrogateescape")
        return
    read = getattr(source, "read", None)
    parts: Iterable[str | bytes] = _read_all(read) if read else source  # type: ignore[assignment]
    decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
    for part in parts:
        yield part if isinstance(part, str) else decoder.decode(part)
    tail = decoder.decode(b"", final=True)
    if tail:
        yield tail


def _read_all(read: Callable[[int], str | bytes]) -> Iterator[str | bytes]:
    while True:
        part = read(_CHUNK)
        if not part:
            return
        yield part


def iter_json_records(source: str | bytes | IO[str] | IO[bytes] | Iterable[str | bytes]) -> Iterator[tuple[int, bytes]]:
    """Yield ``(index, raw)`` for each record of a JSON file, streaming.

    - a top-level array yields each element (``[{...}, {...}]``, pretty-printed or not);
    - top-level objects (one document, or JSON lines / concatenated JSON) yield themselves;
    - text that is not JSON at the top level yields one record per line, and an unfinished
      element at end of input is yielded as it is, so nothing is lost (the parser then
      reports it as invalid JSON).

    ``raw`` is the element's exact text, encoded as UTF-8 (invalid input bytes are returned
    unchanged), ready for ``Record.raw``; ``index`` counts records from 0 and is what
    :func:`soc.model.record_event_id` expects. Memory stays bounded by the largest element.
    """
    buf = ""
    pos = 0  # scan position in buf
    start = -1  # start of the current record in buf, -1 when between records
    depth = 0  # bracket depth inside the current record
    in_array = False  # inside a top-level array whose elements are the records
    index = 0
    chunks = _chunks(source)
    exhausted = False

    def more() -> bool:
        nonlocal buf, pos, start, exhausted
        if exhausted:
            return False
        try:
            chunk = next(chunks)
        except StopIteration:
            exhausted = True
            return False
        keep = start if start >= 0 else pos
        buf = buf[keep:] + chunk
        pos -= keep
        if start >= 0:
            start = 0
        return True

    def emit(end: int) -> bytes:
        text = buf[start:end].strip()
        return text.encode("utf-8", "surrogateescape")

    while True:
        if start < 0:
            # between records: skip whitespace and separators, find the next record start
            while True:
                while pos < len(buf) and buf[pos] in " \t\r\n,\ufeff":
                    pos += 1
                if pos < len(buf) or not more():
                    break
            if pos >= len(buf):
                return
            ch = buf[pos]
            if ch == "]" and in_array:
                in_array = False
                pos += 1
                continue
            if ch == "[" and not in_array and depth == 0:
                in_array = True
                pos += 1
                continue
            start = pos
            if ch not in "{[\"":
                # a scalar element or non-JSON text: up to the next separator / end of line
                while True:
                    stop = _scalar_end(buf, pos, in_array)
                    if stop >= 0 or not more():
                        break
                end = stop if stop >= 0 else len(buf)
                raw = emit(end)
                if raw:
                    yield index, raw
                    index += 1
                start, pos = -1, end
                continue
        m = _SCAN.search(buf, pos)
        if m is None:
            pos = len(buf)
            if not more():
                raw = emit(len(buf))
                if raw:
                    yield index, raw
                return
            continue
        ch = m.group()
        pos = m.end()
        if ch == '"':
            while True:
                s = _STRING_END.match(buf, pos)
                if s is not None:
                    pos = s.end()
                    break
                if not more():
                    yield index, emit(len(buf))
                    return
            if depth == 0:  # a top-level string element is a record of its own
                yield index, emit(pos)
                index += 1
                start = -1
            continue
        if ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
            if depth <= 0:
                yield index, emit(pos)
                index += 1
                start, depth = -1, 0


def _scalar_end(buf: str, pos: int, in_array: bool) -> int:
    """End of a scalar record starting at ``pos``: before ``,``/``]`` in an array, else at
    end of line. -1 when the buffer ends first."""
    if in_array:
        m = _SCALAR_END.search(buf, pos)
        return m.start() if m else -1
    end = buf.find("\n", pos)
    return end
