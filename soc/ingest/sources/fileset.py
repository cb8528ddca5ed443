"""A file, or the files under a folder, read in place -- once, or again whenever they change.

Usage::

    files = FileSet("/srv/share/evtx", state_path, suffixes=(".evtx",), follow=True)
    for batch in files.batches():     # until files.stop() (follow), or once through (no follow)
        store(batch)
        files.ack(batch)              # only now is the progress persisted

This is the reader behind the ``file`` source type (read a file or a folder once: replay of
exported logs) and the ``evtx`` source type (watch a folder -- a share where Windows admins drop
``.evtx`` exports -- and ingest each new or changed file). Unlike the drop folder
(:mod:`.inbox`), files are **never moved or deleted**: the folder may be a read-only share that
its owners manage. Progress lives in a JSON state file instead (``realpath -> size, mtime,
fingerprint, position, done``), written by :meth:`FileSet.ack` only:

- a file is read when it is new, or its size or modification time differ from when it was last
  read to its end; with ``follow`` it is first observed unchanged for ``settle_seconds`` (of this
  process's monotonic clock; a copy still in progress is not read half-way);
- lines, gzip and JSON arrays resume at their last acknowledged position while the file starts
  with the same bytes as when it was first read (its first 64 KiB, or all of it if it was
  smaller: a log that grew is read from where it stopped, the new lines only); different first
  bytes are a different file under the same name, read from the start with its own ids
  (``file_event_id(f"{realpath}#{fingerprint}", offset)``, as the inbox does);
- ``.evtx`` files are read from the start each time they change (an export may have been
  rewritten whole: a grown log, or a circular log that dropped its oldest chunks); their ids are
  ``record_event_id(f"{realpath}@{time created}", event record id)`` (:class:`.evtx.EvtxReader`
  ``time_ids``), so the records of an earlier export are answered "already there" by the
  create-only store, and a log that was cleared (its record numbers start again) gets new ids.

A file whose content is not what its name says (:mod:`.content`) is refused: its only batch is
final with ``failed`` and the reason in ``errors``; acknowledging it records the refusal, so it is
not tried again until it changes. So is a file broken off part-way (a corrupt gzip stream, a broken
JSON array): the records before the damage are delivered first.

Delivery guarantee: **at-least-once, idempotent** (deterministic ids; progress saved on ack).
Acknowledge batches in order, from the thread that iterates.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from soc.ingest.sources.base import DEFAULT_BATCH_SIZE, Batch, SourceCounters, SourceError
from soc.ingest.sources.content import file_kind, read_input
from soc.ingest.sources.inbox import FINGERPRINT_BYTES, SKIP_SUFFIXES, fingerprint
from soc.ingest.sources.state import load_state, save_state

log = logging.getLogger(__name__)


class FileSet:
    """See the module docstring. ``path`` is a file or a folder (searched recursively; names
    starting with ``.`` and partial copies such as ``*.part`` are skipped). ``suffixes`` keeps
    only files with those endings (case-insensitive); empty: every file."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        state_path: str | os.PathLike[str],
        *,
        suffixes: tuple[str, ...] = (),
        follow: bool = False,
        settle_seconds: float = 0.0,
        poll_interval: float = 2.0,
        batch_size: int = DEFAULT_BATCH_SIZE,
        counters: SourceCounters | None = None,
    ) -> None:
        self.path = Path(path).absolute()
        self.state_path = Path(state_path)
        self.suffixes = tuple(s.lower() for s in suffixes)
        self.follow = follow
        self.settle_seconds = settle_seconds
        self.poll_interval = poll_interval
        self.batch_size = batch_size
        self.counters = counters if counters is not None else SourceCounters()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._reading: dict[str, dict[str, Any]] = {}  # key -> what to record on ack
        self._watch: dict[str, tuple[tuple[int, int], float]] = {}  # key -> (signature, first seen)
        self._missing_logged = False

    # -- public API -----------------------------------------------------------------------------
    def batches(self) -> Iterator[Batch]:
        """Batches of every file to read; with ``follow`` keep watching until :meth:`stop`."""
        while not self._stop.is_set():
            settling = False
            for path, signature, ready in self._candidates():
                if self._stop.is_set():
                    return
                if not ready:
                    settling = True
                    continue
                yield from self._file(path, signature)
            if not self.follow and not settling:
                return
            self._stop.wait(self.poll_interval if self.follow else min(self.poll_interval, 0.2))

    def ack(self, batch: Batch) -> None:
        """The batch is stored: remember how far its file was read (and, at its end, that it was)."""
        with self._lock:
            entry = self._reading.get(batch.key)
            if entry is None:
                return
            state = load_state(self.state_path)
            entry = {**entry, "position": batch.position, "done": batch.final}
            if batch.final:
                entry["failed"] = batch.failed
                del self._reading[batch.key]
            state[batch.key] = entry
            save_state(self.state_path, state)

    def stop(self) -> None:
        self._stop.set()

    def files(self) -> list[Path]:
        """The files this set covers now (sorted)."""
        if self.path.is_file():
            return [self.path] if self._wanted(self.path.name) else []
        found = []
        for folder, dirs, names in os.walk(self.path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            found += [Path(folder) / n for n in names if self._wanted(n)]
        return sorted(found)

    # -- internals ------------------------------------------------------------------------------
    def _wanted(self, name: str) -> bool:
        if name.startswith(".") or name.endswith(SKIP_SUFFIXES):
            return False
        return not self.suffixes or name.lower().endswith(self.suffixes)

    def _candidates(self) -> Iterator[tuple[Path, tuple[int, int], bool]]:
        """(file, signature, settled) for the files not read to their end in this signature."""
        if not self.path.exists():
            if not self._missing_logged:
                log.warning("%s: does not exist (yet); %s", self.path,
                            "waiting for it" if self.follow else "nothing to read")
                self._missing_logged = True
            return
        self._missing_logged = False
        state = load_state(self.state_path)
        now = time.monotonic()
        present = set()
        for path in self.files():
            try:
                st = path.stat()
            except OSError:
                continue  # vanished meanwhile
            key = os.path.realpath(path)
            present.add(key)
            signature = (st.st_size, st.st_mtime_ns)
            entry = state.get(key) or {}
            if entry.get("done") and tuple(entry.get("signature") or ()) == signature:
                continue
            seen = self._watch.get(key)
            if seen is None or seen[0] != signature:
                seen = self._watch[key] = (signature, now)
            yield path, signature, now - seen[1] >= self.settle_seconds
        for gone in self._watch.keys() - present:
            del self._watch[gone]

    def _file(self, path: Path, signature: tuple[int, int]) -> Iterator[Batch]:
        key = os.path.realpath(path)
        entry = load_state(self.state_path).get(key) or {}
        record: dict[str, Any] = {"signature": list(signature)}
        self._reading[key] = record
        prev: Batch | None = None
        start: Any = 0
        failed = None
        try:
            kind = file_kind(path)
            if kind == "evtx":
                id_path = key  # ids from the record number and its time: see the module docstring
                if tuple(entry.get("signature") or ()) == signature and not entry.get("done"):
                    start = entry.get("position") or 0  # interrupted, unchanged since: resume
            else:
                fp, size, position = entry.get("fingerprint"), entry.get("fingerprint_bytes"), entry.get("position")
                if isinstance(size, int) and fingerprint(path, size) == fp and isinstance(position, int) \
                        and position <= signature[0]:
                    start = position  # the same file (grown, or interrupted): go on
                else:
                    size = min(signature[0], FINGERPRINT_BYTES)
                    fp = fingerprint(path, size)
                record.update(fingerprint=fp, fingerprint_bytes=size)
                id_path = f"{key}#{fp}"
            log.info("%s: reading from position %s", key, start)
            for batch in read_input(path, start=start, batch_size=self.batch_size, id_path=id_path,
                                    counters=self.counters, evtx_time_ids=True):
                batch.key = key
                if prev is not None:
                    yield prev
                prev = batch
        except (SourceError, OSError, ValueError) as exc:
            failed = str(exc)
            self.counters.error("failed_file")
            log.warning("%s: %s", key, exc)
        final = prev if prev is not None else Batch(key=key, position=start)
        final.final = True
        if failed is not None:
            final.failed = failed
            final.errors.append((f"{key}:{final.position}", failed))
        yield final
