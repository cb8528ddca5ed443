"""Drop folder: every file placed in ``inbox/`` is ingested once, then moved out of the way.

Usage::

    inbox = Inbox(settings.inbox)
    for batch in inbox.batches(follow=True):   # until inbox.stop()
        store(batch)
        inbox.ack(batch)                        # persists progress; the last batch moves the file

Lifecycle of a file: it is picked up once it has not changed for ``settle_seconds`` (copy files
in under a name starting with ``.`` or ending in ``.part``/``.tmp`` and rename them when
complete to be safe). "Not changed" is observed, not computed from the file's modification time:
the size and mtime must stay the same across polls for ``settle_seconds`` of this process's
monotonic clock, so a drop folder on a network share whose server clock is ahead or behind
(files from the "future", or already "old" while still being copied) settles all the same. A
one-pass read (``follow=False``) waits for the files present to settle, then reads them. Then it is read by its content (:mod:`.content`): :func:`.files.read_file` (lines, gzip,
JSON array) or :class:`.evtx.EvtxReader` (``.evtx``, by its header); a file whose content is not
what its name says (a ``.evtx`` without the EVTX header, a ``.gz`` that is not gzip) is refused
unread. Its last batch comes with ``final=True`` (and ``failed`` saying why when it was refused or
broken off; the reason is also in the batch's ``errors``, for the dead-letter file). When that batch
is acknowledged the file moves to ``inbox/done/``, or, if it could not be read to its end, to
``inbox/failed/`` next to ``NAME.error.txt`` saying why (the records before the failure have been
delivered; put the fixed file back into ``inbox/`` to retry). A damaged .evtx whose unreadable
chunks were skipped was read to its end: it goes to ``done/``, its skipped parts are in the final
batches' ``errors``.

Delivery guarantee: **at-least-once, idempotent**. Progress is written to a state file
(``inbox/.state.json``) only by :meth:`Inbox.ack`; after a restart a partly ingested file
resumes at its last acknowledged batch. Ids come from the file's content, not only its name:
``file_event_id(f"{realpath}#{fingerprint}", offset)`` (``record_event_id`` for JSON arrays and
.evtx) with ``fingerprint`` a hash of the file's first 64 KiB, so the same file dropped twice
yields the same ids (stored once), while a different file dropped later under the same name
gets its own. A file whose final batch was offered but not acknowledged is offered again after a
restart (not again in the same run). Acknowledge batches in order.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from soc.ingest.sources.base import DEFAULT_BATCH_SIZE, Batch, SourceCounters, SourceError
from soc.ingest.sources.content import read_input
from soc.ingest.sources.state import load_state, save_state

log = logging.getLogger(__name__)

FINGERPRINT_BYTES = 64 * 1024
SKIP_SUFFIXES = (".part", ".tmp", ".partial", ".crdownload", ".swp")


def fingerprint(path: str | os.PathLike[str], size: int = FINGERPRINT_BYTES) -> str:
    """Hash of the file's first ``size`` bytes (64 KiB): its identity in event ids and in the
    state file."""
    with open(path, "rb") as fh:
        return hashlib.blake2b(fh.read(size), digest_size=10).hexdigest()


class Inbox:
    """A drop folder; see the module docstring. Iterate from one thread; ``ack`` and ``stop``
    from any thread."""

    def __init__(
        self,
        folder: str | os.PathLike[str],
        *,
        state_path: str | os.PathLike[str] | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        settle_seconds: float = 2.0,
        poll_interval: float = 1.0,
        counters: SourceCounters | None = None,
        **read_options: Any,
    ) -> None:
        self.folder = Path(folder).resolve()
        self.done = self.folder / "done"
        self.failed = self.folder / "failed"
        self.state_path = Path(state_path) if state_path else self.folder / ".state.json"
        self.batch_size = batch_size
        self.settle_seconds = settle_seconds
        self.poll_interval = poll_interval
        self.counters = counters if counters is not None else SourceCounters()
        self.read_options = read_options
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._offered: set[tuple[str, str]] = set()  # (name, fingerprint) offered in this run
        self._errors: dict[str, str] = {}  # key -> why the file could not be read to its end
        self._fingerprints: dict[str, str] = {}  # key -> fingerprint of files in progress
        #: name -> ((size, mtime_ns), monotonic time that signature was first seen)
        self._watch: dict[str, tuple[tuple[int, int], float]] = {}
        self._settling = 0  # files seen in the last scan that have not settled yet

    def pending(self) -> list[Path]:
        """Files ready to be ingested (unchanged for ``settle_seconds``), oldest first."""
        now = time.monotonic()
        found: list[tuple[int, str, Path]] = []
        try:
            entries = list(os.scandir(self.folder))
        except FileNotFoundError:
            return []
        present: set[str] = set()
        self._settling = 0
        for entry in entries:
            name = entry.name
            if name.startswith(".") or name.endswith(SKIP_SUFFIXES) or not entry.is_file():
                continue
            try:
                st = entry.stat()
            except FileNotFoundError:
                continue  # vanished meanwhile
            present.add(name)
            signature = (st.st_size, st.st_mtime_ns)
            seen = self._watch.get(name)
            if seen is None or seen[0] != signature:
                seen = self._watch[name] = (signature, now)
            if now - seen[1] >= self.settle_seconds:
                found.append((st.st_mtime_ns, name, Path(entry.path)))
            else:
                self._settling += 1
        for gone in self._watch.keys() - present:
            del self._watch[gone]
        return [p for _, _, p in sorted(found)]

    def batches(self, *, follow: bool = False) -> Iterator[Batch]:
        """Batches of every pending file; with ``follow`` keep watching until :meth:`stop`."""
        self.folder.mkdir(parents=True, exist_ok=True)
        while not self._stop.is_set():
            offered = False
            for path in self.pending():
                if self._stop.is_set():
                    return
                try:
                    fp = fingerprint(path)
                except OSError:
                    continue  # vanished meanwhile
                if (path.name, fp) in self._offered:
                    continue
                self._offered.add((path.name, fp))
                offered = True
                yield from self._file(path, fp)
            if not follow and not self._settling:
                return
            if not offered:
                self._stop.wait(self.poll_interval)

    def ack(self, batch: Batch) -> None:
        """The batch is stored: remember the position; after the final batch move the file."""
        key = batch.key
        with self._lock:
            fp = self._fingerprints.get(key)
            if fp is None:
                return
            state = load_state(self.state_path)
            name = os.path.basename(key)
            if not batch.final:
                state[name] = {"fingerprint": fp, "position": batch.position}
                save_state(self.state_path, state)
                return
            error = self._errors.pop(key, None)
            self._fingerprints.pop(key, None)
            self._move(Path(key), error)
            state.pop(name, None)
            save_state(self.state_path, state)

    def stop(self) -> None:
        self._stop.set()

    # -- internals ------------------------------------------------------------------------------
    def _file(self, path: Path, fp: str) -> Iterator[Batch]:
        key = str(path.resolve())
        entry = load_state(self.state_path).get(path.name)
        start = entry["position"] if entry and entry.get("fingerprint") == fp else 0
        self._fingerprints[key] = fp
        id_path = f"{key}#{fp}"
        log.info("inbox: reading %s from position %s", path.name, start)
        prev: Batch | None = None
        try:
            source = read_input(path, start=start, batch_size=self.batch_size, id_path=id_path,
                                counters=self.counters, **self.read_options)
            for batch in source:
                batch.key = key
                if prev is not None:
                    yield prev
                prev = batch
        except (SourceError, OSError, ValueError) as exc:
            where = prev.position if prev is not None else start
            self._errors[key] = f"{exc}"
            self.counters.error("failed_file")
            log.warning("inbox: %s failed at position %s: %s", path.name, where, exc)
        final = prev if prev is not None else Batch(key=key, position=start)
        final.final = True
        if key in self._errors:
            final.failed = self._errors[key]
            final.errors.append((f"{key}:{final.position}", self._errors[key]))
        yield final

    def _move(self, path: Path, error: str | None) -> None:
        target_dir = self.failed if error else self.done
        target_dir.mkdir(parents=True, exist_ok=True)
        target = _free_name(target_dir / path.name)
        try:
            shutil.move(str(path), str(target))
        except FileNotFoundError:
            log.warning("inbox: %s vanished before it could be moved", path)
            return
        if error:
            note = target.with_name(target.name + ".error.txt")
            note.write_text(
                f"file: {path.name}\n"
                f"failed at: {datetime.now(UTC).isoformat(timespec='seconds')}\n"
                f"error: {error}\n\n"
                "Records before the error (if any) were ingested. Fix the file and move it back "
                "into the inbox folder to ingest it again (records already stored are not "
                "duplicated).\n",
                encoding="utf-8",
            )
        log.info("inbox: %s -> %s", path.name, target)


def _free_name(target: Path) -> Path:
    n = 1
    candidate = target
    while candidate.exists():
        candidate = target.with_name(f"{target.name}.{n}")
        n += 1
    return candidate
