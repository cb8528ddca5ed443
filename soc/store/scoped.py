"""A store seen through a principal's agency scope (issue #10, item 2): deny by default.

:class:`ScopedStore` implements the whole :class:`~soc.store.base.Store` protocol over another
store. For a principal that sees every agency (``Scope(None)``) it passes everything through
unchanged. For one scoped to some agencies it puts the agency filter *inside* every query it
passes down -- the ``agencies`` argument of the event reads, the
:class:`~soc.store.base.OwnedBy` argument of ``find``/``iter_all`` -- so limits, counts,
pages and group-by buckets are those of the agency's own rows (a scoped ``find(limit=50)``
returns 50 in-scope documents when there are 50), and the agency ids travel as SQL parameters
or ``terms`` values, never as query text.

**Who owns what** is declared here and nowhere else: :data:`EVENT_OWNER` for events and
:data:`OWNERS` (collection -> owner fields) for documents. A document is *visible* when one of
its owner fields -- a string, or a list of strings -- names an agency of the scope. A
collection that is not in :data:`OWNERS` (the ones in :data:`UNOWNED`, and any new one nobody
declared) belongs to no agency: a scoped principal reads nothing from it and may not write it.

**Reads.** ``get`` of an invisible document returns ``None`` (the API answers 404 and never
reveals that it exists); ``find``, ``iter_all`` and the event reads return only visible rows;
``get_events`` leaves out other agencies' events.

**Writes** by a scoped principal raise :class:`~soc.access.Forbidden` unless the document is
visible as stored (when it exists) *and* as it would be after the write, and the write leaves
the agencies outside the scope exactly as they were (an agency user can neither move a
document into or out of its scope, nor share it with or take it from another agency).
``put`` without ``expected_version`` checks the stored document and then writes it with a
compare-and-set on the version it checked (retried a few times when someone else wrote in
between), so the check always applies to what is overwritten. Events may be written only
when every one belongs to the scope; ``purge_events`` is refused.

**Event search** (``search_events``, ``event_histogram``, ``top_values``) takes the same
``agencies`` keyword, which the store intersects with the query's own agencies: a query can
ask for less than the scope, never for more. An event read added to the protocol later gets a
method here that passes ``agencies`` the same way; until then it is *not* reachable through
the view, like any other attribute of the wrapped store (deny by default).

**Document queries** (``query_documents``, ``count_documents``) get the scope's
:class:`~soc.store.base.OwnedBy` (narrowed by a caller's own) like ``find``: pages, totals and
group-by buckets are those of the visible documents; a collection of no agency gives a scoped
principal an empty page and no counts.

``close`` does nothing: the view does not own the store it wraps.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, NoReturn

from soc.access import Forbidden, Principal, Scope
from soc.agencies import AgencyTree
from soc.errors import SocError
from soc.model import Event
from soc.store.base import (
    Bucket,
    Conflict,
    Doc,
    DocPage,
    DocQuery,
    DocWrite,
    EventPage,
    EventQuery,
    Match,
    OwnedBy,
    Store,
    Window,
    WriteResult,
)
from soc.store.doc_query import decode_doc_cursor, group_sizes

__all__ = ["EVENT_OWNER", "OWNERS", "REPORT_OWNER_FIELD", "UNOWNED", "ScopedStore", "owners_of",
           "visible"]

#: the field of an event that names its agency
EVENT_OWNER = "organization.id"
#: the owner field of report snapshots, outbox entries and receipts: the agencies of the
#: incident a report is about (a province-wide summary has none: unscoped principals only)
REPORT_OWNER_FIELD = "owner_agencies"

#: collection -> the body fields that name its agencies (a string or a list of strings each);
#: a document is visible when any of them names an agency of the scope
OWNERS: dict[str, tuple[str, ...]] = {
    "alerts": ("agency",),
    "alert_history": ("agency",),
    "incidents": ("agencies", "agency"),
    "tasks": ("agency",),
    "jobs": ("agency",),  # bulk jobs carry their creator's agency (none: province-wide)
    "report_snapshots": (REPORT_OWNER_FIELD,),
    "report_outbox": (REPORT_OWNER_FIELD,),
    "report_receipts": (REPORT_OWNER_FIELD,),
    "saved_views": ("agency",),  # a user's saved console views: the user's agency (none: province-wide)
    "handovers": ("agency",),  # a shift handover: the outgoing analyst's agency (none: province-wide)
}

#: collections known to belong to no agency: a scoped principal gets nothing from them and may
#: not write them. (Listed for the reader: a collection missing from :data:`OWNERS` is treated
#: the same way, whether it is here or not.)
UNOWNED = frozenset({
    "playbook_runs", "playbook_steps", "playbook_approvals", "rule_state", "exceptions",
    "exceptions_audit", "incident_locks", "users", "sessions", "api_tokens", "login_attempts", "audit",
})

#: how often ``put`` without ``expected_version`` retries when the document changed between
#: the scope check and the write
PUT_ATTEMPTS = 8


def _values(body: Mapping[str, Any], field: str) -> list[Any]:
    """The values of a dotted body field: a list field's elements, a scalar as one, or none."""
    value: Any = body
    for key in field.split("."):
        if not isinstance(value, Mapping):
            return []
        value = value.get(key)
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple, set, frozenset)) else [value]


def owners_of(collection: str, body: Mapping[str, Any] | None) -> frozenset[str]:
    """The agencies a document of ``collection`` belongs to (none for an unowned collection)."""
    if body is None:
        return frozenset()
    return frozenset(v for field in OWNERS.get(collection, ()) for v in _values(body, field)
                     if isinstance(v, str))


def visible(scope: Scope, collection: str, body: Mapping[str, Any]) -> bool:
    """Whether a principal with ``scope`` may see this document of ``collection``."""
    if scope.agencies is None:
        return True
    return collection in OWNERS and not owners_of(collection, body).isdisjoint(scope.agencies)


class ScopedStore:
    """``store`` as a principal with ``scope`` may see and change it (see the module docstring)."""

    def __init__(self, store: Store, scope: Scope):
        self._store = store
        self._scope = scope
        self._agencies: frozenset[str] | None = None if scope.agencies is None else frozenset(scope.agencies)
        self.dialect = store.dialect

    @classmethod
    def for_principal(cls, store: Store, principal: Principal, tree: AgencyTree) -> ScopedStore:
        """The view of ``principal``: its agency and everything below it, or every agency."""
        return cls(store, principal.scope(tree))

    @property
    def scope(self) -> Scope:
        """The agencies this view shows."""
        return self._scope

    def __repr__(self) -> str:
        shown = "every agency" if self._agencies is None else ", ".join(sorted(self._agencies))
        return f"ScopedStore({self._store!r}, {shown})"

    # -- helpers -----------------------------------------------------------------------------
    def _filter(self) -> dict[str, Any]:
        """The keyword arguments that narrow an event read (none for an unscoped view, so the
        wrapped store sees exactly the call it would have seen without the view)."""
        return {} if self._agencies is None else {"agencies": self._agencies}

    def _owned_by(self, collection: str) -> OwnedBy | None:
        """The document filter of a scoped view; None when the collection has no owner."""
        fields = OWNERS.get(collection)
        if fields is None or self._agencies is None:
            return None
        return OwnedBy(fields, self._agencies)

    def _refuse(self, what: str, collection: str, id: str) -> Forbidden:
        return Forbidden(f"may not {what} {collection}/{id}: it is outside the agency scope")

    def _check_new(self, what: str, collection: str, id: str, after: Mapping[str, Any] | None) -> None:
        """Refuse a scoped write to a collection of no agency, or of a body outside the scope
        (checked before the stored document is read)."""
        if collection not in OWNERS:
            raise Forbidden(f"may not {what} {collection}/{id}: {collection} belongs to no agency "
                            "(only principals that see every agency may change it)")
        if after is not None and not visible(self._scope, collection, after):
            raise self._refuse(what, collection, id)

    def _check_write(self, what: str, collection: str, id: str, before: Mapping[str, Any] | None,
                     after: Mapping[str, Any] | None) -> None:
        """Refuse a scoped write unless the document is visible before (when stored) and after
        (unless deleted) and its agencies outside the scope stay the same."""
        mine = self._agencies or frozenset()
        self._check_new(what, collection, id, after)
        if before is not None and not visible(self._scope, collection, before):
            raise self._refuse(what, collection, id)
        if owners_of(collection, before) - mine != owners_of(collection, after) - mine:
            raise self._refuse(what, collection, id)

    # -- events ------------------------------------------------------------------------------
    def write_events(self, events: Sequence[Event]) -> WriteResult:
        if self._agencies is not None:
            for event in events:
                if event.get(EVENT_OWNER) not in self._agencies:
                    raise Forbidden(f"may not write event {event.get('_id')!r}: its agency "
                                    f"{event.get(EVENT_OWNER)!r} is outside the agency scope")
        return self._store.write_events(events)

    def find_matches(self, where: Any, datasets: Sequence[str] | None, window: Window, fields: Sequence[str],
                     limit: int, *, agencies: Collection[str] | None = None) -> list[Match]:
        return self._store.find_matches(where, datasets, window, fields, limit, **self._narrow(agencies))

    def find_matches_many(self, wheres: Sequence[Any], datasets: Sequence[str] | None, window: Window,
                          fields: Sequence[str], limit: int, *,
                          agencies: Collection[str] | None = None) -> list[list[Match]]:
        return self._store.find_matches_many(wheres, datasets, window, fields, limit, **self._narrow(agencies))

    def count_matches(self, where: Any, datasets: Sequence[str] | None, window: Window, *,
                      agencies: Collection[str] | None = None) -> int:
        return self._store.count_matches(where, datasets, window, **self._narrow(agencies))

    def aggregate_matches(self, where: Any, datasets: Sequence[str] | None, window: Window,
                          group_by: Sequence[str], *, sum_field: str | None = None,
                          bucket_seconds: int | None = None,
                          agencies: Collection[str] | None = None) -> list[Bucket]:
        return self._store.aggregate_matches(where, datasets, window, group_by, sum_field=sum_field,
                                             bucket_seconds=bucket_seconds, **self._narrow(agencies))

    def get_events(self, ids: Sequence[str], *, agencies: Collection[str] | None = None) -> list[Event]:
        return self._store.get_events(ids, **self._narrow(agencies))

    def count_events(self, window: Window | None = None, group_by: str | None = None, *,
                     agencies: Collection[str] | None = None) -> dict[str, int]:
        return self._store.count_events(window, group_by, **self._narrow(agencies))

    def _narrow(self, agencies: Collection[str] | None) -> dict[str, Any]:
        """The filter of an event read: the scope, narrowed further by the caller's own
        ``agencies`` (a caller can ask for less than its scope, never for more)."""
        if agencies is None:
            return self._filter()
        wanted = frozenset(agencies)
        return {"agencies": wanted if self._agencies is None else wanted & self._agencies}

    def search_events(self, query: EventQuery, *, agencies: Collection[str] | None = None) -> EventPage:
        return self._store.search_events(query, **self._narrow(agencies))

    def event_histogram(self, query: EventQuery, interval: str, *, zone: str = "UTC",
                        agencies: Collection[str] | None = None) -> list[tuple[datetime, int]]:
        return self._store.event_histogram(query, interval, zone=zone, **self._narrow(agencies))

    def top_values(self, query: EventQuery, field: str, size: int = 10, *,
                   agencies: Collection[str] | None = None) -> list[tuple[Any, int]]:
        return self._store.top_values(query, field, size, **self._narrow(agencies))

    def __getattr__(self, name: str) -> NoReturn:
        """Nothing else of the wrapped store is reachable through the view."""
        raise AttributeError(f"{type(self).__name__} has no {name!r}: a read that is not scoped here is not "
                             "reachable through the view (add it to soc/store/scoped.py)")

    def prepare_fields(self, fields: Iterable[str]) -> None:
        self._store.prepare_fields(fields)

    def purge_events(self, older_than: float) -> int:
        if self._agencies is not None:
            raise Forbidden("may not purge events: only principals that see every agency may")
        return self._store.purge_events(older_than)

    # -- documents ---------------------------------------------------------------------------
    def create(self, collection: str, id: str, body: dict[str, Any]) -> bool:
        if self._agencies is None:
            return self._store.create(collection, id, body)
        self._check_new("create", collection, id, body)
        stored = self._store.get(collection, id)
        self._check_write("create", collection, id, stored.body if stored else None, body)
        if stored is not None:  # create-only: nothing to write
            return False
        return self._store.create(collection, id, body)

    def create_documents(self, collection: str, docs: Sequence[tuple[str, dict[str, Any]]]
                         ) -> list[bool | SocError]:
        """Unscoped: the wrapped store's bulk write. Scoped: :meth:`create` of each document
        (each needs its stored version checked), a refusal being that document's error."""
        if self._agencies is None:
            return self._store.create_documents(collection, docs)
        results: list[bool | SocError] = []
        for id_, body in docs:
            try:
                results.append(self.create(collection, id_, body))
            except SocError as error:
                results.append(error)
        return results

    def put_documents(self, collection: str, writes: Sequence[DocWrite]) -> list[int | SocError]:
        """Unscoped: the wrapped store's bulk write. Scoped: :meth:`put` of each write."""
        if self._agencies is None:
            return self._store.put_documents(collection, writes)
        results: list[int | SocError] = []
        for write in writes:
            try:
                results.append(self.put(collection, write.id, write.body, write.expected_version))
            except SocError as error:
                results.append(error)
        return results

    def get(self, collection: str, id: str) -> Doc | None:
        if self._agencies is not None and collection not in OWNERS:
            return None
        doc = self._store.get(collection, id)
        if doc is None or not visible(self._scope, collection, doc.body):
            return None
        return doc

    def put(self, collection: str, id: str, body: dict[str, Any], expected_version: int | None = None) -> int:
        if self._agencies is None:
            return self._store.put(collection, id, body, expected_version)
        self._check_new("write", collection, id, body)
        for _ in range(PUT_ATTEMPTS):
            stored = self._store.get(collection, id)
            self._check_write("write", collection, id, stored.body if stored else None, body)
            current = stored.version if stored else 0
            if expected_version is not None and expected_version != current:
                raise Conflict(f"{collection}/{id}: expected version {expected_version}, found another")
            try:
                return self._store.put(collection, id, body, current)
            except Conflict:
                if expected_version is not None:
                    raise
        raise Conflict(f"{collection}/{id}: changed {PUT_ATTEMPTS} times while being written; try again")

    def delete(self, collection: str, id: str) -> bool:
        if self._agencies is None:
            return self._store.delete(collection, id)
        self._check_new("delete", collection, id, None)
        stored = self._store.get(collection, id)
        if stored is None:
            return False
        self._check_write("delete", collection, id, stored.body, None)
        return self._store.delete(collection, id)

    def find(self, collection: str, where: dict[str, Any] | None = None, *, time_field: str | None = None,
             start: str | None = None, end: str | None = None, sort: str | None = None,
             descending: bool = False, limit: int = 1000, owned_by: OwnedBy | None = None) -> list[Doc]:
        options: dict[str, Any] = {"time_field": time_field, "start": start, "end": end, "sort": sort,
                                   "descending": descending, "limit": limit}
        mine = self._owned_by(collection)
        if self._agencies is not None:
            if mine is None:
                return []
            options["owned_by"] = _narrow_owned(mine, owned_by)
        elif owned_by is not None:
            options["owned_by"] = owned_by
        return self._store.find(collection, where, **options)

    def iter_all(self, collection: str, *, owned_by: OwnedBy | None = None) -> Iterator[Doc]:
        if self._agencies is None:
            if owned_by is None:
                return self._store.iter_all(collection)
            return self._store.iter_all(collection, owned_by=owned_by)
        mine = self._owned_by(collection)
        if mine is None:
            return iter(())
        return self._store.iter_all(collection, owned_by=_narrow_owned(mine, owned_by))

    def _doc_scope(self, query: DocQuery, owned_by: OwnedBy | None) -> tuple[bool, dict[str, Any]]:
        """Whether a document query can see anything, and its ``owned_by`` keyword (the scope,
        narrowed by a caller's own filter; none for an unscoped view without one)."""
        if self._agencies is None:
            return True, ({} if owned_by is None else {"owned_by": owned_by})
        if query.cursor:  # a bad cursor is refused whatever the scope
            decode_doc_cursor(query, self.dialect)
        mine = self._owned_by(query.collection)
        if mine is None:
            return False, {}
        return True, {"owned_by": _narrow_owned(mine, owned_by)}

    def query_documents(self, query: DocQuery, *, owned_by: OwnedBy | None = None) -> DocPage:
        visible_, options = self._doc_scope(query, owned_by)
        if not visible_:
            return DocPage([], None, 0)
        return self._store.query_documents(query, **options)

    def count_documents(self, query: DocQuery, group_by: Sequence[str] = (), *, size: int | Sequence[int] = 100,
                        owned_by: OwnedBy | None = None) -> list[tuple[tuple[Any, ...], int]]:
        visible_, options = self._doc_scope(query, owned_by)
        if not visible_:
            group_sizes(group_by, size)  # invalid arguments are refused whatever the scope
            return [] if group_by else [((), 0)]
        return self._store.count_documents(query, group_by, size=size, **options)

    def refresh(self) -> None:
        self._store.refresh()

    def close(self) -> None:
        """Nothing: the view does not own the store it wraps (close that one)."""


def _narrow_owned(mine: OwnedBy, theirs: OwnedBy | None) -> OwnedBy:
    """The scope's document filter, narrowed by a caller's own filter on the same fields (a
    caller's filter on other fields cannot be combined in one :class:`OwnedBy` and is refused)."""
    if theirs is None:
        return mine
    if set(theirs.fields) != set(mine.fields):
        raise Forbidden(f"an owner filter on {', '.join(theirs.fields)} cannot be combined with the agency "
                        f"scope (on {', '.join(mine.fields)})")
    return OwnedBy(mine.fields, mine.agencies & theirs.agencies)
