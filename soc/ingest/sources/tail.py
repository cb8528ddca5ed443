"""File tail: follow a log file as it grows, across rotations and restarts (poll-based, stdlib).

Usage::

    tail = FileTail("/var/log/auth.log", state_path=data_dir / "tail-auth.json")
    for batch in tail.batches():      # blocks, polling, until tail.stop() (from any thread)
        store(batch)
        tail.ack(batch)               # only now is the position persisted

Delivery guarantee: **at-least-once, idempotent**. The position (file identity, offset) is
written to the JSON state file only by :meth:`FileTail.ack`, atomically; after a crash or a
restart the tail resumes at the last acknowledged batch and re-reads what followed, with the
same event ids, so a create-only store keeps one copy. Acknowledge batches in order.

Ids: ``file_event_id(f"{path}#{instance}.{generation}", offset)``. ``instance`` is random, made
on first start and kept in the state file; ``generation`` goes up by one each time the tail moves
to a new file (rotation) or the file is truncated, so a new file that reuses a name, an inode or
the offsets of an old one never reuses its ids. (Deleting the state file starts a new instance:
the file is re-read from the start as *new* records -- duplicates, never losses.)
``origin = "name:offset"`` where ``name`` is the file actually read (a rotated file's new name).

Rotation:

- **rename** (logrotate ``create``): when the path names another inode, the old file (still
  open) is read to its end, then the new file from offset 0. After a restart, the old inode is
  looked for among the path's siblings (``auth.log.1``, ``auth.log-20240101``...) and finished
  first.
- **copytruncate**: a file shorter than the read position, or whose first bytes changed, was
  truncated; the copy (a sibling with the same first bytes) is read from the position up to its
  end first, so lines written between the last poll and the copy are not lost; then the file
  is read again from 0. Lines written between the copy and the truncation are lost -- that is
  copytruncate's own race; prefer ``create``.
- Compressed rotations (``auth.log.1.gz``) are not followed: use logrotate's ``delaycompress``
  (Debian's default) so the newest rotated file stays plain until the next rotation.

A last line without ``\\n`` is held back until it is complete, or until it has not grown for
``partial_timeout`` seconds (a writer that never finishes it), then delivered as it is (what the
writer appends later becomes a line of its own).
Anything unreadable is counted in ``counters.errors`` and logged, never silently skipped.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from soc.ingest import Record
from soc.ingest.sources.base import (
    DEFAULT_BATCH_SIZE,
    MAX_LINE_BYTES,
    Batch,
    MiB,
    SourceCounters,
    mark_truncated,
)
from soc.ingest.sources.lines import Line, LineSplitter
from soc.ingest.sources.state import load_state, save_state
from soc.model import file_event_id, now_utc

log = logging.getLogger(__name__)

HEAD_BYTES = 256
"""Bytes at the start of a file that identify it (rotation, truncation and restart checks)."""
READ_BYTES = 1 * MiB


def _hash(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=12).hexdigest()


class _Reader:
    """One open file being read: where, which generation, how far."""

    def __init__(self, path: str, gen: int, offset: int, max_line: int) -> None:
        self.fh = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by FileTail
        st = os.fstat(self.fh.fileno())
        self.dev, self.ino = st.st_dev, st.st_ino
        self.name = path
        self.gen = gen
        self.pos = offset
        self.fh.seek(offset)
        self.splitter = LineSplitter(offset, max_line)
        self.head_len, self.head_hash = 0, _hash(b"")
        self.update_head()

    def head_matches(self, head_len: int, head_hash: str) -> bool:
        data = os.pread(self.fh.fileno(), head_len, 0)
        return len(data) == head_len and _hash(data) == head_hash

    def update_head(self) -> None:
        if self.head_len < HEAD_BYTES:
            data = os.pread(self.fh.fileno(), HEAD_BYTES, 0)
            if len(data) > self.head_len:
                self.head_len, self.head_hash = len(data), _hash(data)

    def size(self) -> int:
        return os.fstat(self.fh.fileno()).st_size

    def close(self) -> None:
        self.fh.close()


class FileTail:
    """Follows one file; see the module docstring. ``poll`` and ``batches`` from one thread;
    ``ack`` and ``stop`` from any thread."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        state_path: str | os.PathLike[str],
        *,
        poll_interval: float = 0.25,
        batch_size: int = DEFAULT_BATCH_SIZE,
        partial_timeout: float = 5.0,
        max_line_bytes: int = MAX_LINE_BYTES,
        from_end: bool = False,
        counters: SourceCounters | None = None,
    ) -> None:
        self.path = os.path.abspath(path)
        self.state_path = Path(state_path)
        self.poll_interval = poll_interval
        self.batch_size = batch_size
        self.partial_timeout = partial_timeout
        self.max_line = max_line_bytes
        self.from_end = from_end
        self.counters = counters if counters is not None else SourceCounters()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._cur: _Reader | None = None
        self._draining = False  # _cur is an old file: after its end, go on with self.path
        self._partial: tuple[int, int, float] | None = None  # (offset, length, since)
        self._instance = ""
        self._gen = 0
        self._started = False
        self._open_error: str | None = None

    # -- public API -----------------------------------------------------------------------------
    def batches(self) -> Iterator[Batch]:
        """Batches as the file grows, until :meth:`stop`; each at most ``batch_size`` records."""
        try:
            while not self._stop.is_set():
                got = self.poll()
                yield from got
                if not got:
                    self._stop.wait(self.poll_interval)
        finally:
            self.close()

    def poll(self) -> list[Batch]:
        """Read what is there now (at most about one full batch); never blocks."""
        if not self._started:
            self._start()
        out = _Batches(self.batch_size)
        while True:
            if self._cur is None and not self._open_path(self._gen):
                break
            if not self._draining:
                old, flushed = self._check_truncated()
                if old is not None:
                    self._add_all(out, old, flushed)
                    continue
            cur = self._cur
            assert cur is not None
            lines, eof = self._read(cur)
            self._add_all(out, cur, lines)
            if not eof:
                if out.records >= self.batch_size:
                    break
                continue
            if self._rotated(cur):
                more, _ = self._read(cur)  # late writes to the old file
                last = cur.splitter.flush()
                self._add_all(out, cur, more + ([last] if last else []))
                cur.close()
                self._cur, self._draining, self._partial = None, False, None
                self._gen = cur.gen + 1
                continue
            self._add_all(out, cur, self._partial_line(cur))
            break
        return [b for b in out.batches if b]

    def ack(self, batch: Batch) -> None:
        """Persist ``batch.position``: the batch is stored, a restart resumes after it."""
        if not isinstance(batch.position, dict):
            return
        with self._lock:
            save_state(self.state_path, {**batch.position, "path": self.path})

    def stop(self) -> None:
        """Make :meth:`batches` return after the current poll (call from any thread)."""
        self._stop.set()

    def close(self) -> None:
        if self._cur is not None:
            self._cur.close()
            self._cur = None
        self._started = False

    # -- reading --------------------------------------------------------------------------------
    def _read(self, cur: _Reader) -> tuple[list[Line], bool]:
        try:
            data = cur.fh.read(READ_BYTES)
        except OSError as exc:
            self.counters.error("read_error")
            log.warning("%s: read failed at offset %d: %s", cur.name, cur.pos, exc)
            return [], True
        if not data:
            return [], True
        cur.pos += len(data)
        self.counters.bytes += len(data)
        if cur.head_len < HEAD_BYTES:
            cur.update_head()
        return cur.splitter.feed(data), False

    def _partial_line(self, cur: _Reader) -> list[Line]:
        """The unterminated last line, once it has not grown for ``partial_timeout`` seconds."""
        pending = (cur.splitter.pending_offset, cur.splitter.pending_bytes)
        if not pending[1]:
            self._partial = None
            return []
        now = time.monotonic()
        if self._partial is None or self._partial[:2] != pending:
            self._partial = (*pending, now)
            return []
        if now - self._partial[2] < self.partial_timeout:
            return []
        self._partial = None
        last = cur.splitter.flush()
        return [last] if last else []

    def _add_all(self, out: _Batches, cur: _Reader, lines: list[Line]) -> None:
        for line in lines:
            batch = out.current(cur)
            batch.position = {
                "instance": self._instance, "gen": cur.gen, "dev": cur.dev, "ino": cur.ino,
                "offset": line.end, "head_len": cur.head_len, "head_hash": cur.head_hash,
            }
            if not line.raw:
                self.counters.drop("empty_line")
                continue
            origin = f"{cur.name}:{line.offset}"
            if line.truncated:
                self.counters.truncate("line_too_long")
                origin = mark_truncated(origin, len(line.raw), line.size)
            key = f"{self.path}#{self._instance}.{cur.gen}"
            batch.append(Record(line.raw, file_event_id(key, line.offset), now_utc(), origin))
            out.records += 1
            self.counters.received += 1

    # -- files, rotation, truncation ------------------------------------------------------------
    def _start(self) -> None:
        self._started = True
        state = load_state(self.state_path)
        if state.get("path") not in (None, self.path):
            log.warning("%s: state is for %s; starting over", self.state_path, state.get("path"))
            state = {}
        if not state.get("instance"):
            self._instance, self._gen = uuid.uuid4().hex[:16], 0
            self._open_path(0, at_end=self.from_end)
            self._save_initial(self._cur)
            return
        self._instance, self._gen = str(state["instance"]), int(state["gen"])
        if state.get("ino") is None:  # the file did not exist yet
            return
        offset, hlen, hhash = int(state["offset"]), int(state["head_len"]), str(state["head_hash"])

        def same_file(st: os.stat_result, name: str) -> bool:
            return (st.st_dev, st.st_ino) == (state["dev"], state["ino"]) and st.st_size >= offset

        def copy_of(st: os.stat_result, name: str) -> bool:
            return st.st_size >= offset and _prefix_hash(name, hlen) == hhash

        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            st = None
        if st is not None and same_file(st, self.path) and _prefix_hash(self.path, hlen) == hhash:
            self._cur = _Reader(self.path, self._gen, offset, self.max_line)
            return
        old = self._sibling(same_file) or self._sibling(copy_of)
        if old is not None and _prefix_hash(old, hlen) == hhash:
            self._cur, self._draining = _Reader(old, self._gen, offset, self.max_line), True
            return
        self.counters.error("rotated_unread")
        log.warning("%s: the file read up to offset %d is gone; lines after it may be lost",
                    self.path, offset)
        self._gen += 1

    def _save_initial(self, cur: _Reader | None) -> None:
        """The instance id must survive a crash before the first ack (ids depend on it)."""
        state: dict[str, Any] = {"path": self.path, "instance": self._instance, "gen": 0,
                                 "dev": None, "ino": None, "offset": 0}
        if cur is not None:
            state.update(dev=cur.dev, ino=cur.ino, offset=cur.splitter.pending_offset,
                         head_len=cur.head_len, head_hash=cur.head_hash)
        save_state(self.state_path, state)

    def _open_path(self, gen: int, at_end: bool = False) -> bool:
        try:
            offset = _last_line_end(self.path) if at_end else 0
            self._cur = _Reader(self.path, gen, offset, self.max_line)
        except FileNotFoundError:
            return False
        except OSError as exc:  # permissions, a directory...: retried at every poll
            if self._open_error != str(exc):
                self._open_error = str(exc)
                self.counters.error("open_error")
                log.warning("%s: cannot open for tailing (retrying): %s", self.path, exc)
            return False
        self._open_error = None
        self._draining = False
        return True

    def _rotated(self, cur: _Reader) -> bool:
        """At the end of ``cur``: is there a newer file to go on with?"""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return False  # renamed, not recreated yet: keep reading the old one
        if self._draining:
            return True
        return (st.st_dev, st.st_ino) != (cur.dev, cur.ino)

    def _check_truncated(self) -> tuple[_Reader | None, list[Line]]:
        """Copytruncate: if the file shrank or its first bytes changed, go on with the copy (or
        the file from 0). Returns the old reader and its flushed partial line when switching."""
        cur = self._cur
        assert cur is not None
        if cur.size() >= cur.pos and cur.head_matches(cur.head_len, cur.head_hash):
            return None, []
        resume = cur.splitter.pending_offset
        hlen, hhash = cur.head_len, cur.head_hash
        cur.close()
        self._partial = None
        self._gen = cur.gen + 1
        copy = self._sibling(lambda st, name: st.st_size >= resume
                             and _prefix_hash(name, hlen) == hhash)
        if copy is not None:  # finish the copy first, in the same generation
            self._cur, self._draining = _Reader(copy, cur.gen, resume, self.max_line), True
            return cur, []
        self.counters.error("truncated_unread")
        log.warning("%s: truncated at offset %d and no copy found; unread lines may be lost",
                    self.path, resume)
        last = cur.splitter.flush()
        self._cur = None
        return cur, [last] if last else []

    def _sibling(self, match: Callable[[os.stat_result, str], bool]) -> str | None:
        folder, base = os.path.split(self.path)
        try:
            names = sorted(os.listdir(folder or "."))
        except OSError:
            return None
        for name in names:
            if name == base or not name.startswith(base) or name.endswith((".gz", ".bz2", ".xz")):
                continue
            full = os.path.join(folder, name)
            try:
                st = os.stat(full)
                if os.path.isfile(full) and match(st, full):
                    return full
            except OSError:
                continue
        return None


class _Batches:
    """The batches of one poll: a new one per file/generation and every ``size`` records."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.batches: list[Batch] = []
        self.records = 0
        self._src: tuple[str, int, int] | None = None

    def current(self, cur: _Reader) -> Batch:
        src = (cur.name, cur.gen, cur.ino)
        if src != self._src or len(self.batches[-1]) >= self.size:
            self.batches.append(Batch(key=cur.name))
            self._src = src
        return self.batches[-1]


def _prefix_hash(path: str, n: int) -> str | None:
    try:
        with open(path, "rb") as fh:
            data = fh.read(n)
    except OSError:
        return None
    return _hash(data) if len(data) == n else None


def _last_line_end(path: str) -> int:
    """Offset just past the last ``\\n`` of the file (0 if none in its last MiB)."""
    with open(path, "rb") as fh:
        size = fh.seek(0, os.SEEK_END)
        start = max(0, size - MiB)
        fh.seek(start)
        tail = fh.read()
    nl = tail.rfind(b"\n")
    return start + nl + 1 if nl >= 0 else (size if start == 0 and not tail else start)


def tail_state(state_path: str | os.PathLike[str]) -> dict[str, Any]:
    """The persisted position of a tail (for status pages)."""
    return load_state(Path(state_path))
