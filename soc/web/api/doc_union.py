"""A list whose documents match *one of* several filters, over store queries that only AND.

The alert filters ``host``, ``user`` and ``source_ip`` look in two or four places of an alert
(``entities.host.name`` or ``group.host.name``...). A store's document query ANDs its filters,
so these filters used to be tested on every alert read (up to 20,000 per page, 10,000 more for
the total: 2.4 s at 1,000,000 alerts). Here each place is a *branch*: the list's own query
with one more filter, which both stores answer from an index (SQLite: the values table of
:mod:`soc.store.sqlite_doc_fields`). The branches are read in the list's order and merged,
a document found by several branches kept once:

* the merge compares documents by the list's sort values read from their bodies as the stores
  sort them (:func:`soc.store.doc_query.sort_value`; a missing value first ascending, last
  descending; numbers before text; then the id), so the merged list is in the store's order;
* a page ends with the store's own cursor after its last document, asked of the store with a
  one-document query selecting that document and the next one by id (the cursor holds sort
  values only, so it continues every branch -- they share collection, sort and order);
* the total of a list without further tests is counted by the store, by inclusion and
  exclusion over the branches (``|A ∪ B| = |A| + |B| - |A ∩ B|``; at most four branches).
"""

from __future__ import annotations

import dataclasses
import heapq
from collections.abc import Callable, Iterator, Sequence
from itertools import combinations
from typing import Any

from soc.store.base import Doc, DocQuery, Store
from soc.store.doc_query import ID_FIELD, DocFilter, body_values, sort_value

__all__ = ["MAX_BRANCHES", "Make", "union_count", "union_docs", "union_page"]

#: branches a list may have (its total reads 2**n - 1 store counts)
MAX_BRANCHES = 4
#: (size, cursor, track_total) -> the list's own store query
Make = Callable[[int, str | None, int], DocQuery]


def _key(doc: Doc, sort: Sequence[str], descending: bool) -> tuple[Any, ...]:
    """Where a document sorts among the others (see the module docstring)."""
    parts: list[Any] = []
    for name in sort:
        value = doc.id if name == ID_FIELD else sort_value(body_values(doc.body, tuple(name.split("."))), descending)
        if value is None:
            parts.append((0,))
        elif isinstance(value, str):
            parts.append((1, 1, value))
        else:
            parts.append((1, 0, value))
    return (*parts, doc.id)


def _with(query: DocQuery, *more: Any) -> DocQuery:
    return dataclasses.replace(query, filters=(*query.filters, *(DocFilter(*f) for f in more)))


def _branch(store: Store, make: Make, alternative: Any, cursor: str | None, batch: int) -> Iterator[Doc]:
    while True:
        page = store.query_documents(_with(make(batch, cursor, 0), alternative))
        yield from page.docs
        if page.cursor is None:
            return
        cursor = page.cursor


def union_docs(store: Store, make: Make, alternatives: Sequence[Any], cursor: str | None = None, *,
               batch: int = 500) -> Iterator[Doc]:
    """The documents of ``make``'s query that match one of ``alternatives`` (``(field, op,
    value)`` filters) after ``cursor``, in the query's order, each once."""
    if not 0 < len(alternatives) <= MAX_BRANCHES:
        raise ValueError(f"between 1 and {MAX_BRANCHES} alternatives")
    first = make(1, None, 0)
    sort, descending = first.sort, first.order == "desc"
    streams = [_branch(store, make, alternative, cursor, batch) for alternative in alternatives]
    merged = heapq.merge(*streams, key=lambda doc: _key(doc, sort, descending), reverse=descending)
    last: str | None = None
    for doc in merged:
        if doc.id != last:  # the same document sorts the same in every branch: next to itself
            last = doc.id
            yield doc


def _cursor_between(store: Store, make: Make, before: Doc, after: Doc) -> str | None:
    """The store's cursor right after ``before`` (``after`` follows it in the list)."""
    query = make(1, None, 0)
    probe = DocQuery(query.collection, filters=((ID_FIELD, "in", [before.id, after.id]),), sort=query.sort,
                     order=query.order, size=1, track_total=0)
    return store.query_documents(probe).cursor


def union_page(store: Store, make: Make, alternatives: Sequence[Any], *, limit: int, cursor: str | None,
               keep: Callable[[dict[str, Any]], bool] | None, max_scan: int) -> tuple[list[Doc], str | None]:
    """Up to ``limit`` documents of the union (those ``keep`` keeps) after ``cursor``, and the
    cursor after the last one read (``None`` at the end); at most ``max_scan`` are read."""
    stream = union_docs(store, make, alternatives, cursor, batch=limit + 1 if keep is None else 500)
    items: list[Doc] = []
    read = 0
    last: Doc | None = None
    for doc in stream:
        read += 1
        last = doc
        if keep is None or keep(doc.body):
            items.append(doc)
        if len(items) == limit or read >= max_scan:
            break
    else:
        return items, None
    following = next(stream, None)
    if following is None or last is None:
        return items, None
    return items, _cursor_between(store, make, last, following)


def union_count(store: Store, make: Make, alternatives: Sequence[Any], limit: int) -> tuple[int, bool]:
    """How many documents of ``make``'s query match one of ``alternatives`` (exact up to
    ``limit``), counted by the store."""
    if not 0 < len(alternatives) <= MAX_BRANCHES:
        raise ValueError(f"between 1 and {MAX_BRANCHES} alternatives")
    base = make(1, None, 0)
    alone = [(alternative, store.count_documents(_with(base, alternative))[0][1]) for alternative in alternatives]
    total = sum(count for _, count in alone)
    found = [alternative for alternative, count in alone if count]  # an empty branch meets no other
    for size in range(2, len(found) + 1):
        for chosen in combinations(found, size):
            count = store.count_documents(_with(base, *chosen))[0][1]
            total += count if size % 2 else -count
    return (total, True) if total <= limit else (limit, False)
