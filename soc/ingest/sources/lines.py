"""Incremental, bounded line splitting with byte offsets: the framing of file replay and tail.

Feed it the bytes of a file in chunks of any size; it returns each complete line with the byte
offset where the line starts, whatever the chunking. A line ends at ``\\n``; one ``\\r`` before it
is removed (``\\r\\n`` files). Every other byte, NUL and invalid UTF-8 included, is passed through
untouched; a line never ends in the middle of a ``\r\n`` however the chunks fall. Memory stays bounded: a line longer than ``max_line`` keeps its first ``max_line``
bytes and the rest is skipped up to the next ``\\n`` (the :class:`Line` says how long it really
was), so a multi-GB file without newlines costs ``max_line`` bytes, not gigabytes.
"""

from __future__ import annotations

from typing import NamedTuple

from soc.ingest.sources.base import MAX_LINE_BYTES


class Line(NamedTuple):
    offset: int
    """Byte offset of the line's first byte."""
    raw: bytes
    """The line without its terminator (at most ``max_line`` bytes)."""
    size: int
    """Length of the whole line without ``\\n`` (``> len(raw)`` when truncated; a removed
    ``\\r`` counts)."""
    end: int
    """Offset just past the line and its terminator: where the next line starts."""
    truncated: bool = False
    """True when ``raw`` holds only the first ``max_line`` bytes of the line."""


class LineSplitter:
    """Splits a byte stream into :class:`Line` s, starting at byte ``offset`` of the stream."""

    __slots__ = ("_buf", "_start", "_max", "_skipped")

    def __init__(self, offset: int = 0, max_line: int = MAX_LINE_BYTES) -> None:
        if max_line < 1:
            raise ValueError("max_line must be at least 1 byte")
        self._buf = b""  # bytes of the unfinished line (at most max_line)
        self._start = offset  # offset of the unfinished line
        self._max = max_line
        self._skipped = 0  # bytes of the unfinished line dropped past max_line

    @property
    def pending_offset(self) -> int:
        """Offset of the first byte not yet returned in a line: where a restart resumes."""
        return self._start

    @property
    def pending_bytes(self) -> int:
        """Length of the unfinished line seen so far."""
        return len(self._buf) + self._skipped

    def feed(self, data: bytes) -> list[Line]:
        """Complete lines in ``data`` (joined to what came before)."""
        out: list[Line] = []
        if not data:
            return out
        first_nl = data.find(b"\n")
        if first_nl < 0:  # still the same line
            self._extend(data)
            return out
        self._extend(data[:first_nl])
        out.append(self._finish(1))
        parts = data[first_nl + 1 :].split(b"\n")
        tail = parts.pop()
        start = self._start
        mx = self._max
        append = out.append
        for part in parts:
            n = len(part)
            end = start + n + 1
            if n > mx:
                append(Line(start, part[:mx], n, end, True))
            elif part[-1:] == b"\r":
                append(Line(start, part[:-1], n, end))
            else:
                append(Line(start, part, n, end))
            start = end
        self._start = start
        self._extend(tail)
        return out

    def flush(self) -> Line | None:
        """The unfinished line as a line (end of file, or a writer that never finished it)."""
        if not self._buf and not self._skipped:
            return None
        return self._finish(0)

    def _extend(self, data: bytes) -> None:
        if self._skipped:
            self._skipped += len(data)
            return
        room = self._max - len(self._buf)
        if len(data) <= room:
            self._buf += data
        else:
            self._buf += data[:room]
            self._skipped = len(data) - room

    def _finish(self, terminator: int) -> Line:
        raw = self._buf
        size = len(raw) + self._skipped
        truncated = self._skipped > 0
        if not truncated and raw[-1:] == b"\r":
            raw = raw[:-1]
        end = self._start + size + terminator
        line = Line(self._start, raw, size, end, truncated)
        self._buf = b""
        self._skipped = 0
        self._start = end
        return line
