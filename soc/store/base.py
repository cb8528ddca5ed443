"""The store protocol: one interface, an embedded SQLite implementation and a search-engine one.

Nothing above the store knows which implementation it has. The protocol has two halves:

**Events** -- high volume, written in batches, create-only by deterministic id (a replayed batch
writes nothing new), stamped with ``event.ingested`` by the store at write time, searched by
compiled detection rules over an ingest-time or event-time window.

**Documents** -- everything else (alerts, rule state and leases, incidents, exceptions, playbook
runs, report snapshots, the outbox) lives in named *collections* of JSON documents with a
version number. ``create`` is create-only (returns ``False`` when the id exists: this is what
makes alerts and playbook runs idempotent); ``put`` with ``expected_version`` is a
compare-and-set that raises :class:`Conflict` when someone else wrote first (this is what
makes scheduler leases safe across processes).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from soc.errors import SocError
from soc.model import Event


class StoreError(SocError):
    """A store could not do what was asked; the message says what to check."""


class StoreMissing(StoreError):
    """Opened with ``create=False`` and the store does not exist yet (nothing was created)."""


class Conflict(StoreError):
    """A compare-and-set lost: the document changed since it was read."""


@dataclass(frozen=True, slots=True)
class Window:
    """A half-open time range ``[start, end)`` in epoch seconds on ``field``.

    ``field`` is ``"event.ingested"`` (scheduled runs: watermarks are on ingest time) or
    ``"@timestamp"`` (event time: correlation context, hunts). ``ingested_before`` optionally
    also bounds ingest time, so a run never sees data that arrived after its end.
    """

    start: float | None = None
    end: float | None = None
    field: str = "event.ingested"
    ingested_before: float | None = None


@dataclass(slots=True)
class WriteResult:
    """Outcome of writing a batch: how many were new, already present, or rejected (with why)."""

    created: int = 0
    existing: int = 0
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (event id, reason)
    retryable: list[str] = field(default_factory=list)  # ids to retry (store overloaded)


@dataclass(slots=True)
class Doc:
    id: str
    version: int
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Match:
    """One event a rule matched: id, event time (epoch seconds), agency and requested fields."""

    id: str
    ts: float
    agency: str | None
    fields: dict[str, Any]


@runtime_checkable
class Store(Protocol):
    """What every store implements. See the module docstring for the guarantees."""

    #: the query dialect compiled rules must provide for this store: "sqlite" or "dsl"
    dialect: str

    # -- events ------------------------------------------------------------------------------
    def write_events(self, events: Sequence[Event]) -> WriteResult: ...

    def find_matches(
        self,
        where: Any,
        datasets: Sequence[str] | None,
        window: Window,
        fields: Sequence[str],
        limit: int,
    ) -> list[Match]:
        """Events in ``window`` of the given datasets satisfying the compiled predicate ``where``
        (dialect-specific), oldest first, at most ``limit``."""
        ...

    def find_matches_many(
        self,
        wheres: Sequence[Any],
        datasets: Sequence[str] | None,
        window: Window,
        fields: Sequence[str],
        limit: int,
    ) -> list[list[Match]]:
        """:meth:`find_matches` for several predicates over the same datasets and window, in one
        pass over the data (hunts evaluate hundreds of rules this way): one list per predicate,
        each at most ``limit`` long."""
        ...

    def count_matches(self, where: Any, datasets: Sequence[str] | None, window: Window) -> int:
        """How many events :meth:`find_matches` would return without a limit."""
        ...

    def get_events(self, ids: Sequence[str]) -> list[Event]: ...

    def count_events(self, window: Window | None = None, group_by: str | None = None) -> dict[str, int]:
        """Event counts in a window, in total (key ``""``) or per value of ``group_by``."""
        ...

    def prepare_fields(self, fields: Iterable[str]) -> None:
        """Make sure the store can query these fields (columns, mappings)."""
        ...

    def purge_events(self, older_than: float) -> int: ...

    # -- documents ---------------------------------------------------------------------------
    def create(self, collection: str, id: str, body: dict[str, Any]) -> bool: ...

    def get(self, collection: str, id: str) -> Doc | None: ...

    def put(
        self, collection: str, id: str, body: dict[str, Any], expected_version: int | None = None
    ) -> int:
        """Write a document. With ``expected_version`` (0 = must not exist) it is a
        compare-and-set and raises :class:`Conflict` on a lost race. Returns the new version."""
        ...

    def delete(self, collection: str, id: str) -> bool: ...

    def find(
        self,
        collection: str,
        where: dict[str, Any] | None = None,
        *,
        time_field: str | None = None,
        start: str | None = None,
        end: str | None = None,
        sort: str | None = None,
        descending: bool = False,
        limit: int = 1000,
    ) -> list[Doc]:
        """Documents whose fields equal ``where`` (a list value means any of), optionally with
        ``time_field`` (ISO text) in ``[start, end)``, sorted by ``sort``."""
        ...

    def iter_all(self, collection: str) -> Iterator[Doc]: ...

    def refresh(self) -> None:
        """Make recent writes visible to searches (a no-op where writes are visible at once)."""
        ...

    def close(self) -> None: ...
