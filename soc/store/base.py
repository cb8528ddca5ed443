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
makes scheduler leases safe across processes). ``create_documents``/``put_documents`` do the
same for many documents in one transaction or bulk request (a feed page of indicators, a TAXII
envelope), with each document's outcome reported on its own.

**Agency filters** -- the methods that read events take ``agencies``: only events whose
``organization.id`` is one of them (``None``: no filter; empty: nothing); ``find``,
``iter_all``, ``query_documents`` and ``count_documents`` take ``owned_by`` (:class:`OwnedBy`).
Both are applied inside the query the store runs, so limits, counts, pages and group-by buckets are those of the filtered rows, and the
agency ids travel as query parameters or terms, never as query text.
:class:`soc.store.scoped.ScopedStore` fills them in from a principal's agency scope.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from soc.errors import SocError
from soc.model import Event
from soc.store.doc_query import DocFilter as DocFilter  # document queries: re-exported here
from soc.store.doc_query import DocPage as DocPage
from soc.store.doc_query import DocQuery as DocQuery
from soc.store.event_query import EventPage as EventPage  # event search: re-exported here
from soc.store.event_query import EventQuery as EventQuery
from soc.store.event_query import FieldFilter as FieldFilter


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
class DocWrite:
    """One write of :meth:`Store.put_documents`: what ``put(collection, id, body,
    expected_version)`` would write (``expected_version``: None overwrites, 0 must not exist,
    a version is a compare-and-set)."""

    id: str
    body: dict[str, Any]
    expected_version: int | None = None


@dataclass(frozen=True, slots=True)
class Match:
    """One event a rule matched: id, event time (epoch seconds), agency and requested fields."""

    id: str
    ts: float
    agency: str | None
    fields: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Bucket:
    """One group of :meth:`Store.aggregate_matches`: the agency and the group-by values (None
    where an event lacks the field), how many events, the first and last event time, the sum of
    ``sum_field`` (values that are no numbers add nothing) and the start of the time bucket."""

    agency: str | None
    values: tuple[Any, ...]
    count: int
    first: float
    last: float
    total: float = 0.0
    bucket: float | None = None


@dataclass(frozen=True, slots=True)
class OwnedBy:
    """A document filter: documents where any of ``fields`` (dotted body fields) holds one of
    ``agencies`` -- the field a string equal to one, or a list with one among its elements.
    No agencies: nothing matches."""

    fields: tuple[str, ...]
    agencies: frozenset[str]


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
        *,
        agencies: Collection[str] | None = None,
    ) -> list[Match]:
        """Events in ``window`` of the given datasets (and ``agencies``, see the module
        docstring) satisfying the compiled predicate ``where`` (dialect-specific), oldest
        first, at most ``limit``."""
        ...

    def find_matches_many(
        self,
        wheres: Sequence[Any],
        datasets: Sequence[str] | None,
        window: Window,
        fields: Sequence[str],
        limit: int,
        *,
        agencies: Collection[str] | None = None,
    ) -> list[list[Match]]:
        """:meth:`find_matches` for several predicates over the same datasets and window, in one
        pass over the data (hunts evaluate hundreds of rules this way): one list per predicate,
        each at most ``limit`` long."""
        ...

    def count_matches(self, where: Any, datasets: Sequence[str] | None, window: Window, *,
                      agencies: Collection[str] | None = None) -> int:
        """How many events :meth:`find_matches` would return without a limit."""
        ...

    def aggregate_matches(self, where: Any, datasets: Sequence[str] | None, window: Window,
                          group_by: Sequence[str], *, sum_field: str | None = None,
                          bucket_seconds: int | None = None,
                          agencies: Collection[str] | None = None) -> list[Bucket]:
        """The events :meth:`find_matches` would return (all of them), grouped by agency and the
        values of ``group_by`` -- and with ``bucket_seconds`` by event-time bucket, aligned on
        multiples of it since the epoch -- aggregated in the store (one row per group, not per
        event), with the sum of the numeric ``sum_field``: in no particular order. Text values
        may come back as stored or lowercased (the search engine's keywords are lowercased):
        callers compare them case-insensitively."""
        ...

    def get_events(self, ids: Sequence[str], *, agencies: Collection[str] | None = None) -> list[Event]:
        """The events with these ids (of ``agencies``), in the order of ``ids``; unknown ids are left out."""
        ...

    def count_events(self, window: Window | None = None, group_by: str | None = None, *,
                     agencies: Collection[str] | None = None) -> dict[str, int]:
        """Event counts in a window (of ``agencies``), in total (key ``""``) or per value of
        ``group_by``."""
        ...

    # -- event search (soc.store.event_query: operators, limits, cursor) ------------------------
    def search_events(self, query: EventQuery, *, agencies: Collection[str] | None = None) -> EventPage:
        """One page of the events matching ``query`` (and ``agencies``, narrowing the query's
        own), in ``@timestamp`` then id order, with the cursor of the next page and the total.
        Invalid input (a field name, a value, a cursor) raises :class:`ValueError`."""
        ...

    def event_histogram(self, query: EventQuery, interval: str, *, zone: str = "UTC",
                        agencies: Collection[str] | None = None) -> list[tuple[datetime, int]]:
        """How many events match ``query`` per ``interval`` (``1m``, ``5m``, ``1h``, ``1d``) of
        ``@timestamp``, buckets aligned in ``zone`` (an IANA name), oldest first: ``(bucket
        start as an aware datetime in the zone, count)``, empty buckets left out. The counts add
        up to the query's total; the query's cursor, order and size do not apply."""
        ...

    def top_values(self, query: EventQuery, field: str, size: int = 10, *,
                   agencies: Collection[str] | None = None) -> list[tuple[Any, int]]:
        """The ``size`` most frequent values of ``field`` among the events matching ``query``:
        ``(value, events with it)``, most frequent first, ties by value. Text values come back
        lowercased (they are compared case-insensitively), store-owned keys as stored."""
        ...

    def prepare_fields(self, fields: Iterable[str]) -> None:
        """Make sure the store can query these fields (columns, mappings)."""
        ...

    def purge_events(self, older_than: float) -> int: ...

    # -- documents ---------------------------------------------------------------------------
    def create(self, collection: str, id: str, body: dict[str, Any]) -> bool: ...

    def get(self, collection: str, id: str) -> Doc | None: ...

    def create_documents(self, collection: str, docs: Sequence[tuple[str, dict[str, Any]]]
                         ) -> list[bool | SocError]:
        """:meth:`create` of each ``(id, body)`` in one request or transaction (one bulk
        request per few thousand on a search store): per document, in order, ``True``
        (created), ``False`` (the id exists -- also a second one of the same id in ``docs``) or
        the error that refused it. The batch is not atomic: the others are written all the same,
        and a retry of the whole batch is safe (what exists is reported ``False``)."""
        ...

    def put_documents(self, collection: str, writes: Sequence[DocWrite]) -> list[int | SocError]:
        """:meth:`put` of each write, in order, in one request or transaction: per write the
        new version, :class:`Conflict` (a lost compare-and-set, as ``put`` would raise) or the
        error that refused it; the others are written all the same. Writes of one id apply in
        order."""
        ...

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
        owned_by: OwnedBy | None = None,
    ) -> list[Doc]:
        """Documents whose fields equal ``where`` (a list value means any of), optionally with
        ``time_field`` (ISO text) in ``[start, end)`` and owned as ``owned_by`` says, sorted by
        ``sort``."""
        ...

    def iter_all(self, collection: str, *, owned_by: OwnedBy | None = None) -> Iterator[Doc]: ...

    # -- document queries (soc.store.doc_query: operators, sort, cursor, group-by) ---------------
    def query_documents(self, query: DocQuery, *, owned_by: OwnedBy | None = None) -> DocPage:
        """One page of the documents of ``query.collection`` matching ``query`` (and
        ``owned_by``), in the query's sort order then id, with the cursor of the next page and
        the total (exact up to ``query.track_total``). Invalid input (a field name, a value, a
        cursor) raises :class:`ValueError`."""
        ...

    def count_documents(self, query: DocQuery, group_by: Sequence[str] = (), *,
                        size: int | Sequence[int] = 100,
                        owned_by: OwnedBy | None = None) -> list[tuple[tuple[Any, ...], int]]:
        """How many documents match ``query`` (and ``owned_by``; the query's sort, size and
        cursor do not apply): ``[((), total)]`` without ``group_by``, else per combination of
        the values of up to three fields, nested -- each level's ``size`` (one for all levels,
        or one per level) biggest groups within each group of the level above, biggest first,
        ties by value: ``[((value, ...), count), ...]``. A document counts under each value of a
        list field; more than 65,535 groups in all is a :class:`ValueError`."""
        ...

    def refresh(self) -> None:
        """Make recent writes visible to searches (a no-op where writes are visible at once)."""
        ...

    def close(self) -> None: ...
