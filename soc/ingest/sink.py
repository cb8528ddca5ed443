"""The sink of the embedded flow: event batches into the store, for every source alike.

:meth:`Sink.write` returns only when every event of the batch has a final outcome -- created,
already there (a replay: ids are deterministic and writes create-only) or rejected by the store
(then dead-lettered with the store's reason and the event's original text) -- so the caller may
acknowledge the source batch right after it. While the store is locked, down or overloaded the
write is retried with backoff (:data:`STORE_RETRY`); the source is held meanwhile (nothing is
acknowledged, a listener pushes back on its senders). Only :meth:`Sink.abandon` (the service is
stopping and gave up waiting) makes a pending write raise :class:`SinkStopped`: the batch is then
not acknowledged, and a replayable source reads it again at the next start.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence

from soc.errors import SocError
from soc.ingest import Record
from soc.ingest.deadletter import DeadLetterWriter
from soc.model import Event, now_utc
from soc.retry import Backoff, retrying
from soc.store.base import Store, WriteResult

__all__ = ["STORE_RETRY", "Sink", "SinkStopped"]

STORE_RETRY = Backoff(base=0.5, factor=2.0, max=30.0)


class SinkStopped(SocError):
    """The sink was abandoned while the store was not accepting a batch (it is not stored)."""


class _NotAll(Exception):
    """Some documents are still to be retried (store overloaded)."""


class Sink:
    """Writes event batches to ``store``; thread-safe; counts ``stored``, ``duplicates``,
    ``rejected`` (dead-lettered) in :attr:`counts`."""

    def __init__(self, store: Store, *, dead_letter: DeadLetterWriter | None = None,
                 retry: Backoff = STORE_RETRY) -> None:
        self.store = store
        self.dead_letter = dead_letter
        self.retry = retry
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self._abandon = threading.Event()

    def write(self, events: Sequence[Event]) -> WriteResult:
        """Store ``events``; returns the total outcome (see the module docstring)."""
        total = WriteResult()
        if not events:
            return total
        pending = {e["_id"]: e for e in events}

        def attempt() -> None:
            result = self.store.write_events(list(pending.values()))
            total.created += result.created
            total.existing += result.existing
            keep = set(result.retryable)
            for event_id, reason in result.rejected:
                total.rejected.append((event_id, reason))
                self._reject(pending.get(event_id), event_id, reason)
            for event_id in list(pending):
                if event_id not in keep:
                    del pending[event_id]
            if pending:
                raise _NotAll(f"{len(pending)} documents not accepted yet (store overloaded)")

        try:
            retrying(attempt, self.retry, what="store write", stop=self._abandon)
        except Exception as error:
            if self._abandon.is_set():
                raise SinkStopped(f"{len(pending)} events not stored (stopping while the store refuses them: "
                                  f"{error})") from error
            raise
        with self.lock:
            self.counts["stored"] += total.created
            self.counts["duplicates"] += total.existing
            self.counts["rejected"] += len(total.rejected)
        return total

    def _reject(self, event: Event | None, event_id: str, reason: str) -> None:
        if self.dead_letter is None:
            return
        original = (event or {}).get("event.original") or (event or {}).get("message") or ""
        origin = str((event or {}).get("log.file.path") or (event or {}).get("soc.source") or "store")
        self.dead_letter.write(f"store rejected: {reason}",
                               Record(str(original).encode("utf-8", "surrogatepass"), event_id, now_utc(), origin))

    def abandon(self) -> None:
        """Make a write that is waiting for the store give up (raise :class:`SinkStopped`)."""
        self._abandon.set()
