"""Lists of documents (alerts, incidents, tasks, jobs) in keyset pages of the store's document
queries, in either order, with filters the store cannot express; and the ``since``/``until``
query parameters of every list.

The answer is :class:`soc.web.api.paging.Page` (``{"items", "next", "total", "total_exact"}``).
A :class:`DocList` names a collection, the filters the store applies
(:meth:`~soc.store.base.Store.query_documents`, inside the caller's agency scope, which the
store adds), the field the list is sorted on (``[since, until)`` selects on the same field), the
order, optionally ``alternatives`` -- filters of which a document must match one (an entity in
either of two places: :mod:`soc.web.api.doc_union` reads a store query per alternative and
merges them) -- and ``keep``, a test of each document for what the store cannot express (free
text over many fields, without case and diacritics). A list may also carry its free ``text``
(folded) with ``text_keep``, the test without it: a store that keeps the alerts' folded text
(:data:`soc.store.sqlite_doc_text.TEXT_DIALECTS`: SQLite's FTS5 table) looks for the text
itself -- the page and its total are then index lookups -- and ``text_keep`` tests the rest;
on another store ``keep`` tests everything (:func:`for_store`).

**Pages** are the store's keyset pages (sort field, then id; ``next`` is the store's cursor):
documents added between two requests never shift a page or repeat one. With ``keep`` the list
reads store pages until the page is full and ends it right after its last item; it reads at most
:data:`MAX_SCAN` documents for one page, so a page of a very selective ``keep`` can come back
short, with a ``next`` cursor where the reading stopped.

**Totals** are the store's count (exact up to :data:`TRACK_TOTAL`; with ``alternatives``, by
inclusion and exclusion); with ``keep`` they are counted by reading up to :data:`COUNT_LIMIT`
documents (``total_exact`` false beyond).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import tzinfo
from typing import Any

from fastapi import Query

from soc.clock import Clock
from soc.store.base import Doc, DocQuery, Store
from soc.store.sqlite_doc_text import ALERT_TEXT, TEXT_DIALECTS
from soc.timeexpr import FORMS, TimeRange, resolve_range
from soc.web.api.doc_union import union_count, union_docs, union_page
from soc.web.api.paging import Page

__all__ = ["BATCH", "COUNT_LIMIT", "MAX_SCAN", "TRACK_TOTAL", "DocList", "Since", "Until", "doc_page", "for_store",
           "iter_docs", "time_range", "where_filters"]

#: documents counted at most for a list's total when a ``keep`` test applies
COUNT_LIMIT = 10_000
#: the store counts up to this many documents for a list's total
TRACK_TOTAL = 100_000
#: documents read at most to fill one page (a selective ``keep`` can leave a page short)
MAX_SCAN = 20_000
#: documents read per store request when a ``keep`` test applies
BATCH = 500

Since = Query(None, max_length=64, description=f"from this time on: {FORMS}")
Until = Query(None, max_length=64, description="before this time (the same forms as since)")


def time_range(since: str | None, until: str | None, zone: tzinfo, clock: Clock) -> TimeRange:
    """``since``/``until`` parameters in the analyst's ``zone`` at ``clock``'s now (400 when
    a form is wrong or ``since`` is not before ``until``)."""
    return resolve_range(since, until, zone, clock())


def where_filters(where: Mapping[str, Any] | None) -> list[tuple[str, str, Any]]:
    """Exact-value conditions (``{field: value or [values]}``, as ``store.find`` takes them) as
    document query filters."""
    return [(name, "in", list(value)) if isinstance(value, (list, tuple, set, frozenset)) else (name, "equals", value)
            for name, value in (where or {}).items()]


@dataclass(frozen=True)
class DocList:
    """What to list (see the module docstring)."""

    collection: str
    where: Mapping[str, Any] | None
    sort: str
    descending: bool = True
    window: TimeRange = TimeRange()
    keep: Callable[[dict[str, Any]], bool] | None = None
    alternatives: tuple[tuple[str, str, Any], ...] = ()
    #: the folded free text (``None``: none), the test of ``keep`` without it, and whether the
    #: store looks for the text (set by :func:`for_store`)
    text: str | None = None
    text_keep: Callable[[dict[str, Any]], bool] | None = None
    text_in_store: bool = False

    def query(self, *, size: int, cursor: str | None = None, track_total: int = TRACK_TOTAL) -> DocQuery:
        """The store's query for one page."""
        filters = where_filters(self.where)
        since, until = self.window.bounds()
        if since is not None or until is not None:
            filters.append((self.sort, "range", (since, until)))
        text = self.text if self.text_in_store and self.text else None
        return DocQuery(self.collection, filters=tuple(filters), sort=(self.sort,),
                        order="desc" if self.descending else "asc", size=size, cursor=cursor,
                        track_total=track_total, text=text, text_fields=(ALERT_TEXT,) if text else ())


def for_store(store: Store, spec: DocList) -> DocList:
    """``spec`` as ``store`` answers it: its free text looked for by the store when the store keeps
    the folded text (then only ``text_keep`` is tested on each document), else by ``keep``."""
    if spec.text is None or spec.text_in_store or getattr(store, "dialect", None) not in TEXT_DIALECTS:
        return spec
    return replace(spec, keep=spec.text_keep, text_in_store=True)


def iter_docs(store: Store, spec: DocList, *, batch: int = BATCH) -> Iterator[Doc]:
    """Every document of ``spec``'s store query in the list's order (``keep`` not applied; the
    free text applied where the store looks for it)."""
    spec = for_store(store, spec)
    if spec.alternatives:
        yield from union_docs(store, _maker(spec), spec.alternatives, batch=batch)
        return
    cursor: str | None = None
    while True:
        page = store.query_documents(spec.query(size=batch, cursor=cursor, track_total=1))
        yield from page.docs
        if page.cursor is None:
            return
        cursor = page.cursor


def count_docs(store: Store, spec: DocList, limit: int = COUNT_LIMIT) -> tuple[int, bool]:
    """How many documents ``spec`` selects with its ``keep`` test, read up to ``limit``."""
    spec = for_store(store, spec)
    found = 0
    for read, doc in enumerate(iter_docs(store, spec, batch=1000), start=1):
        if spec.keep is None or spec.keep(doc.body):
            found += 1
        if read >= limit:
            return found, False
    return found, True


def _maker(spec: DocList) -> Callable[[int, str | None, int], DocQuery]:
    return lambda size, cursor, track_total: spec.query(size=size, cursor=cursor, track_total=track_total)


def _kept_page(store: Store, spec: DocList, keep: Callable[[dict[str, Any]], bool], limit: int,
               cursor: str | None) -> tuple[list[Doc], str | None]:
    """Up to ``limit`` kept documents after ``cursor`` and the cursor after the last one."""
    items: list[Doc] = []
    read = 0
    while True:
        page = store.query_documents(spec.query(size=BATCH, cursor=cursor, track_total=1))
        kept = [(i, d) for i, d in enumerate(page.docs) if keep(d.body)]
        room = limit - len(items)
        if len(kept) > room:  # the page ends inside this read: end it right after its last item
            last = kept[room - 1][0] if room else -1
            items += [d for _, d in kept[:room]]
            if last < 0:
                return items, cursor
            upto = store.query_documents(spec.query(size=last + 1, cursor=cursor, track_total=1))
            return items, upto.cursor
        items += [d for _, d in kept]
        read += len(page.docs)
        if page.cursor is None or len(items) == limit or read >= MAX_SCAN:
            return items, page.cursor
        cursor = page.cursor


def doc_page(store: Store, spec: DocList, *, limit: int, cursor: str | None,
             show: Callable[[dict[str, Any]], Any] = lambda body: body) -> Page:
    """One page of ``spec`` after ``cursor`` with the cursor of the next and the total."""
    spec = for_store(store, spec)
    if spec.alternatives:
        return _union_page(store, spec, limit=limit, cursor=cursor, show=show)
    if spec.keep is None:
        page = store.query_documents(spec.query(size=limit, cursor=cursor))
        return Page([show(d.body) for d in page.docs], page.cursor, page.total, page.total_exact)
    items, next_cursor = _kept_page(store, spec, spec.keep, limit, cursor)
    if cursor is None and next_cursor is None:
        total, exact = len(items), True  # the whole list is on this page
    else:
        total, exact = count_docs(store, spec)
    return Page([show(d.body) for d in items], next_cursor, total, exact)


def _union_page(store: Store, spec: DocList, *, limit: int, cursor: str | None,
                show: Callable[[dict[str, Any]], Any]) -> Page:
    """:func:`doc_page` of a list with ``alternatives``."""
    make = _maker(spec)
    items, next_cursor = union_page(store, make, spec.alternatives, limit=limit, cursor=cursor, keep=spec.keep,
                                    max_scan=MAX_SCAN)
    if cursor is None and next_cursor is None:
        total, exact = len(items), True
    elif spec.keep is None:
        total, exact = union_count(store, make, spec.alternatives, TRACK_TOTAL)
    else:
        total, exact = count_docs(store, spec)
    return Page([show(d.body) for d in items], next_cursor, total, exact)
