"""What every list of the API shares: the answer's shape, an opaque keyset cursor, bounded
limits and time parameters.

A list answers ``{"items": [...], "next": CURSOR | null, "total": N, "total_exact": bool}``:
``next`` is passed back as ``cursor`` for the following page (``null``: this is the last),
``total`` counts every item the filters select (``total_exact`` is false when it was counted
only up to :data:`COUNT_LIMIT`). Pages are keyset pages -- a cursor names the last item of a
page and the next page starts strictly after it -- so an item added between two requests never
shifts a page or repeats one.

Two ways to page:

* :func:`page_list` -- a list already read and filtered in full (exceptions, users, tokens,
  rule health: small collections);
* :func:`page_docs` -- a store collection read newest first on an ISO time field, one page
  at a time (``store.find`` with the time bound of the cursor).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from fastapi import Query

from soc.model import iso, parse_iso
from soc.store.base import Doc, Store

__all__ = ["COUNT_LIMIT", "MAX_LIMIT", "Cursor", "Limit", "Page", "decode_cursor", "encode_cursor",
           "page_docs", "page_list"]

#: items counted at most for a list's total
COUNT_LIMIT = 100_000
#: most items of one page
MAX_LIMIT = 500
#: the longest cursor accepted
MAX_CURSOR = 2048
#: documents read at most to fill one page past items that share the cursor's time
MAX_FETCH = 20_000

Limit = Query(50, ge=1, le=MAX_LIMIT, description=f"items per page (1 to {MAX_LIMIT})")
Cursor = Query(None, max_length=MAX_CURSOR, description="the `next` of the previous page")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a list (see the module docstring)."""

    items: list[Any]
    next: str | None
    total: int
    total_exact: bool = True

    def body(self) -> dict[str, Any]:
        return {"items": self.items, "next": self.next, "total": self.total, "total_exact": self.total_exact}


def encode_cursor(*key: Any) -> str:
    """An opaque cursor naming a position (the sort key of the last item shown)."""
    text = json.dumps(["c1", *key], ensure_ascii=False, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii").rstrip("=")


def decode_cursor(cursor: str | None, size: int) -> list[Any] | None:
    """The key a cursor of :func:`encode_cursor` names (``size`` parts), or None for no
    cursor; anything else is a :class:`ValueError` (answered 400)."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        data = None
    if not isinstance(data, list) or len(data) != size + 1 or data[0] != "c1" or any(
            not isinstance(v, (str, int, float)) or isinstance(v, bool) for v in data[1:]):
        raise ValueError("invalid cursor: pass the `next` of the previous page as it was given")
    return data[1:]


def page_list(items: Sequence[T], key: Callable[[T], tuple[Any, ...]], *, limit: int, cursor: str | None,
              show: Callable[[T], Any] = lambda item: item, descending: bool = False) -> Page:
    """A page of ``items`` (all of them, filtered) in ``key`` order, after ``cursor``."""
    ordered = sorted(items, key=key, reverse=descending)
    after = decode_cursor(cursor, len(key(ordered[0]))) if cursor and ordered else None
    if after is not None:
        mark = tuple(after)
        ordered = [i for i in ordered if (key(i) < mark if descending else key(i) > mark)]
    shown = ordered[:limit]
    more = len(ordered) > limit
    return Page([show(i) for i in shown], encode_cursor(*key(shown[-1])) if more and shown else None, len(items))


def _count(store: Store, collection: str, where: dict[str, Any] | None, query: dict[str, Any]) -> tuple[int, bool]:
    found = len(store.find(collection, where or None, limit=COUNT_LIMIT, **query))
    return found, found < COUNT_LIMIT


def page_docs(store: Store, collection: str, where: dict[str, Any] | None, *, time_field: str,
              since: datetime | None, until: datetime | None, limit: int, cursor: str | None,
              show: Callable[[Doc], Any] = lambda doc: doc.body) -> Page:
    """A page of a collection newest first on ``time_field`` (ISO text, :func:`soc.model.iso`),
    ties by id, with ``time_field`` in ``[since, until)``; ``where`` as ``store.find`` takes it.
    Documents without the time field are not listed."""
    start, end = (iso(since) if since else None), (iso(until) if until else None)
    after = decode_cursor(cursor, 2)
    query_end = end
    if after is not None:
        try:
            bound = iso(parse_iso(str(after[0])) + timedelta(milliseconds=1))
        except ValueError as error:
            raise ValueError("invalid cursor: pass the `next` of the previous page as it was given") from error
        query_end = bound if end is None else min(end, bound)
    counted = {"time_field": time_field, "start": start, "end": end}
    fetch = limit + 1
    while True:
        docs = store.find(collection, where or None, time_field=time_field, start=start, end=query_end,
                          sort=time_field, descending=True, limit=fetch)
        keyed = sorted(((str(d.body.get(time_field) or ""), d.id, d) for d in docs if d.body.get(time_field)),
                       key=lambda k: (k[0], k[1]), reverse=True)
        if after is not None:
            keyed = [k for k in keyed if (k[0], k[1]) < (str(after[0]), str(after[1]))]
        full = len(docs) >= fetch
        if full:  # the oldest time of a full read may hold more documents than were read
            oldest = min(str(d.body.get(time_field) or "") for d in docs)
            settled = [k for k in keyed if k[0] > oldest]
            if len(settled) > limit or fetch >= MAX_FETCH:
                keyed = settled if len(settled) > limit else keyed
                break
            fetch = min(fetch * 4, MAX_FETCH)
            continue
        break
    shown = keyed[:limit]
    more = len(keyed) > limit or (full and bool(shown))
    total, exact = _count(store, collection, where, counted)
    return Page([show(k[2]) for k in shown], encode_cursor(shown[-1][0], shown[-1][1]) if more and shown else None,
                max(total, len(shown)), exact)
