"""What every ``list`` command shares: a page of results and how many there are in all.

A list says ``50 of 66 alerts``, never just ``50 alerts``: the total is counted with the same
filters as the page. The store protocol counts events but not documents, so documents are
counted by reading them (:func:`find_page`), up to :data:`COUNT_LIMIT` -- beyond that the total
is shown as ``100,000+``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from soc.cli.timeargs import TimeRange
from soc.store.base import Doc, Store

__all__ = ["COUNT_LIMIT", "Page", "find_page", "page_of"]

#: documents counted at most for a list's total
COUNT_LIMIT = 100_000

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """The items shown and how many match in all (``capped``: at least ``total``)."""

    items: list[T]
    total: int
    capped: bool = False

    def title(self, noun: str, note: str = "") -> str:
        """``50 of 66 alerts (newest first)``."""
        total = f"{self.total:,}{'+' if self.capped else ''}"
        return f"{len(self.items):,} of {total} {noun}" + (f" ({note})" if note else "")


def page_of(items: Sequence[T], limit: int) -> Page[T]:
    """The first ``limit`` of ``items`` (already filtered and sorted) with their count."""
    return Page(list(items[:limit]), len(items))


def find_page(store: Store, collection: str, where: dict[str, Any] | None, *, time_field: str,
              window: TimeRange, sort: str, limit: int, descending: bool = True) -> Page[Doc]:
    """``store.find`` for one page, and the number of documents matching the same filters
    (``where`` and ``time_field`` in ``window``)."""
    start, end = window.bounds()
    query: dict[str, Any] = {"time_field": time_field if window.bounded else None, "start": start, "end": end}
    docs = store.find(collection, where or None, sort=sort, descending=descending, limit=limit, **query)
    if len(docs) < limit:
        return Page(docs, len(docs))
    total = len(store.find(collection, where or None, limit=COUNT_LIMIT, **query))
    return Page(docs, max(total, len(docs)), capped=total >= COUNT_LIMIT)
