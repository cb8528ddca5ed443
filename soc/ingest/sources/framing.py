"""RFC 6587 framing of syslog over a TCP (or TLS) byte stream, auto-detected per message.

At the start of each frame the framer looks at the first bytes:

- one to nine ASCII digits followed by a space: **octet counting** (``<len> <msg>``, RFC 6587
  3.4.1, the RFC 5425 TLS framing): the next ``len`` bytes are the message;
- anything else (normally ``<``, the PRI of a syslog message): **non-transparent framing**
  (3.4.2): the message runs to the next ``\\n``; one ``\\r`` before it is removed.

So a sender may mix both on one connection. A line that merely begins with digits and a space
(``"5 apples"``) is, per the RFC's ambiguity, read as octet counted, exactly as rsyslog does.

Framing removed: an octet-counted message keeps its bytes except one trailing ``\\n`` (or
``\\r\\n``) that some senders count into the length. Empty frames (blank lines, ``0 ``) carry
nothing; they are counted (``dropped["empty"]``), not returned.

Bounded memory, nothing silent: a message longer than ``max_message`` bytes keeps its first
``max_message`` bytes and the rest is discarded as it arrives; the frame comes back with
``truncated_from`` = its real length and ``reason = "too_long"``. At end of stream a pending
non-transparent line is a complete message (the connection closed it); a pending octet-counted
frame that is shorter than announced comes back with ``reason = "incomplete"``. Any byte stream,
split into chunks in any way, produces the same frames, and the framer never raises.
"""

from __future__ import annotations

from typing import NamedTuple

MAX_COUNT_DIGITS = 9


class Frame(NamedTuple):
    raw: bytes
    truncated_from: int | None = None
    """The message's real length when ``raw`` holds only its first bytes."""
    reason: str | None = None
    """``too_long`` | ``incomplete`` for a cut frame."""


_LINE, _COUNTED, _START = 0, 1, 2


class SyslogFramer:
    """Incremental RFC 6587 framer for one connection (not thread-safe; one per connection)."""

    __slots__ = ("_max", "_buf", "_mode", "_want", "_seen", "_skipping", "empty")

    def __init__(self, max_message: int = 65536) -> None:
        if max_message < 1:
            raise ValueError("max_message must be at least 1 byte")
        self._max = max_message
        self._buf = bytearray()  # undecided frame start, or the kept bytes of the current frame
        self._mode = _START
        self._want = 0  # octet counting: announced length
        self._seen = 0  # bytes of the current frame seen (kept + discarded)
        self._skipping = False  # current frame exceeded max_message: discarding the rest
        self.empty = 0  # empty frames skipped

    @property
    def pending(self) -> int:
        """Bytes of an unfinished frame held in memory."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Frame]:
        out: list[Frame] = []
        view = memoryview(data)
        i, n = 0, len(data)
        while i < n:
            if self._mode == _START:
                i = self._start(view, i, n)
            elif self._mode == _COUNTED:
                i = self._counted(view, i, n, out)
            else:
                i = self._line(data, i, n, out)
        return out

    def close(self) -> list[Frame]:
        """End of stream: whatever is pending becomes a frame."""
        out: list[Frame] = []
        if self._mode == _START and self._buf:  # digits only: a line
            self._mode, self._seen = _LINE, len(self._buf)
            self._skipping = self._seen > self._max
            del self._buf[self._max :]
        if self._mode == _LINE:
            if self._seen:
                self._emit_line(out)
        elif self._mode == _COUNTED:
            out.append(Frame(bytes(self._buf), self._want, "incomplete"))
        self._reset()
        return out

    # -- states -----------------------------------------------------------------------------
    def _start(self, view: memoryview, i: int, n: int) -> int:
        """Decide the framing of a new frame from its first bytes (held in ``_buf``)."""
        buf = self._buf
        while i < n:
            c = view[i]
            if 48 <= c <= 57 and len(buf) < MAX_COUNT_DIGITS:
                buf.append(c)
                i += 1
                continue
            if c == 32 and buf:  # "<digits> ": octet counting
                self._want = int(buf)
                buf.clear()
                i += 1
                if self._want == 0:
                    self.empty += 1
                    return i
                self._mode, self._seen, self._skipping = _COUNTED, 0, False
                return i
            # not a count: the digits (if any) are the start of a line
            self._mode, self._seen, self._skipping = _LINE, len(buf), len(buf) > self._max
            if self._skipping:
                del buf[self._max :]
            return i
        return i

    def _counted(self, view: memoryview, i: int, n: int, out: list[Frame]) -> int:
        take = min(n - i, self._want - self._seen)
        room = self._max - len(self._buf)
        if room > 0:
            self._buf += view[i : i + min(take, room)]
        self._seen += take
        i += take
        if self._seen == self._want:
            raw = bytes(self._buf)
            if self._want > self._max:
                out.append(Frame(raw, self._want, "too_long"))
            else:
                if raw.endswith(b"\n"):
                    raw = raw[:-2] if raw.endswith(b"\r\n") else raw[:-1]
                if raw:
                    out.append(Frame(raw))
                else:
                    self.empty += 1
            self._reset()
        return i

    def _line(self, data: bytes, i: int, n: int, out: list[Frame]) -> int:
        nl = data.find(b"\n", i)
        end = n if nl < 0 else nl
        chunk = end - i
        room = self._max - len(self._buf)
        if not self._skipping:
            if chunk <= room:
                self._buf += data[i:end]
            else:
                self._buf += data[i : i + room]
                self._skipping = True
        self._seen += chunk
        if nl < 0:
            return n
        self._emit_line(out)
        self._reset()
        return nl + 1

    def _emit_line(self, out: list[Frame]) -> None:
        if self._skipping:
            out.append(Frame(bytes(self._buf), self._seen, "too_long"))
            return
        raw = bytes(self._buf)
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        if raw:
            out.append(Frame(raw))
        else:
            self.empty += 1

    def _reset(self) -> None:
        self._buf.clear()
        self._mode, self._want, self._seen, self._skipping = _START, 0, 0, False
