"""Seed documents and the oracle for the document query tests (tests/test_doc_query*.py).

The same bodies go into two collections: ``alerts`` (on SQLite its listed fields are read from
the indexed field table, :mod:`soc.store.sqlite_doc_fields`) and ``cases`` (every field read from
the body), so each expectation checks both ways of reading a field on both stores. The oracle
is written from the operators' definitions in :mod:`soc.store.doc_query`, not from the stores.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from soc.model import iso
from soc.store.base import Store
from tests.event_search_data import fresh_store

COLLECTIONS = ("alerts", "cases")
T0 = datetime(2025, 3, 1, tzinfo=UTC)
N = 60
STATUSES = ["open", "Open", "CLOSED", "acknowledged", None]
AGENCIES = ["ag-a", "ag-b", "AG-B", "ag-c", None]
LEVELS = ["high", "LOW", "medium", "Critical"]
TITLES = ["Failed password", "Đăng nhập thất bại", "O'Brien -- login; DROP TABLE docs", "100% match_all *star? back\\slash",
          "failed PASSWORD again"]
HOSTS = ["web-1", "DB-2", "mail", "Web-10"]
Body = dict[str, Any]


def body(i: int) -> Body:
    """Document ``i`` of the seed (see the module docstring for what it exercises)."""
    doc: Body = {"id": f"d{i:03d}", "rule": {"id": f"R{i % 4 + 1}", "level": LEVELS[i % 4], "title": TITLES[i % 5],
                                             "score": i % 7 + (0.5 if i % 3 == 0 else 0)},
                 "flag": i % 2 == 0, "port": (22, 80, 8080)[i % 3], "zip": ("00501", "10001")[i % 2]}
    if STATUSES[i % 5] is not None:
        doc["status"] = STATUSES[i % 5]
    if AGENCIES[i % 5 if i % 10 < 5 else (i + 2) % 5] is not None:
        doc["agency"] = AGENCIES[i % 5 if i % 10 < 5 else (i + 2) % 5]
    if i % 11:
        doc["first_seen"] = iso(T0 + timedelta(minutes=37 * i))
    if i % 3:
        doc["assignee"] = ("Alice", "bob")[i % 2]
    if i % 4 != 3:
        hosts = [HOSTS[i % 4]] if i % 4 else [HOSTS[i % 4], HOSTS[(i + 1) % 4]]
        doc["entities"] = {"host.name": hosts if i % 8 != 2 else [], "user.name": ["root"]}
    if i % 6 == 1:
        doc["group"] = {"source.ip": f"10.0.0.{i % 4}"}
    if i % 2:
        doc["tags"] = ["a", "b"] if i % 3 else ["B"]
    if i % 5 == 4:
        doc["notes"] = [{"by": "Ann"}, {"by": "ben"}]
    return doc


BODIES = {f"d{i:03d}": body(i) for i in range(N)}


def seeded(kind: str, request: pytest.FixtureRequest, tmp: Path) -> Iterator[Store]:
    """A store of ``kind`` holding :data:`BODIES` in both :data:`COLLECTIONS`."""
    for store in fresh_store(kind, request, tmp):
        for collection in COLLECTIONS:
            for id_, doc in BODIES.items():
                assert store.create(collection, id_, doc)
        store.refresh()
        yield store


# -- the oracle -----------------------------------------------------------------------------------
def values(node: Any, field: str | list[str]) -> list[Any]:
    """Every value at a dotted field: dots as nesting or inside keys, lists flattened."""
    parts = field.split(".") if isinstance(field, str) else field
    if isinstance(node, list):
        return [v for item in node for v in values(item, parts)]
    if not parts:
        return [node] if isinstance(node, (str, int, float)) else []
    if not isinstance(node, dict):
        return []
    return [v for i in range(1, len(parts) + 1) if ".".join(parts[:i]) in node
            for v in values(node[".".join(parts[:i])], parts[i:])]


def field_values(id_: str, field: str) -> list[Any]:
    return [id_] if field == "id" else values(BODIES[id_], field)


_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")


def same(stored: Any, wanted: Any, exact: bool) -> bool:
    """``equals`` of one stored value (see soc.store.doc_query)."""
    text = str(wanted).lower() if isinstance(wanted, bool) else str(wanted)
    if isinstance(stored, bool):
        return text.lower() == str(stored).lower()
    if isinstance(stored, (int, float)):
        return bool(_NUMBER.fullmatch(text)) and float(text) == stored
    return stored == text if exact else stored.lower() == text.lower()


def exact(field: str) -> bool:
    last = field.rpartition(".")[2]
    return last in ("id", "agency", "agencies") or last.endswith(("_id", "_ids"))


def where(test: Callable[[str], bool]) -> set[str]:
    return {id_ for id_ in BODIES if test(id_)}


def sort_key(id_: str, fields: Sequence[str], descending: bool) -> tuple[Any, ...]:
    """A key that orders documents as a query sorted by ``fields`` in ascending order does
    (reverse it for descending): missing smallest, numbers before text, lists by min/max."""
    key: list[Any] = []
    for name in fields:
        found = [(1, v) if isinstance(v, str) else (0, v) for v in field_values(id_, name)]
        if not found:
            key.append((0,))
        else:
            key.append((1, *(max(found) if descending else min(found))))
    return (*key, id_)


def ordered(ids: set[str], fields: Sequence[str], descending: bool) -> list[str]:
    return sorted(ids, key=lambda i: sort_key(i, fields, descending), reverse=descending)


def _key(value: Any) -> tuple[Any, ...]:
    return (0, value) if not isinstance(value, str) else (1, value)


def groups(ids: set[str], fields: Sequence[str], sizes: Sequence[int]) -> list[tuple[tuple[Any, ...], int]]:
    """Nested group counts: each level's biggest ``size`` groups (ties by value) within each
    group above, a document once under each distinct value."""
    def level(members: set[str], depth: int, prefix: tuple[Any, ...]) -> list[tuple[tuple[Any, ...], int]]:
        counts: Counter[Any] = Counter()
        holders: dict[Any, set[str]] = {}
        for id_ in members:
            for value in set(field_values(id_, fields[depth])):
                value = int(value) if isinstance(value, float) and value.is_integer() else value
                counts[value] += 1
                holders.setdefault(value, set()).add(id_)
        top = sorted(counts.items(), key=lambda item: (-item[1], _key(item[0])))[:sizes[depth]]
        if depth == len(fields) - 1:
            return [((*prefix, value), n) for value, n in top]
        return [row for value, _ in top for row in level(holders[value], depth + 1, (*prefix, value))]
    return level(ids, 0, ())


def every_page(store: Store, make: Callable[[str | None], Any]) -> tuple[list[str], list[Any]]:
    """The ids of all pages of a query (``make(cursor)`` builds it) and the pages."""
    ids: list[str] = []
    pages = []
    cursor = None
    while True:
        page = store.query_documents(make(cursor))
        pages.append(page)
        ids.extend(doc.id for doc in page.docs)
        if page.cursor is None:
            return ids, pages
        assert len(pages) < 200, "the cursor does not advance"
        cursor = page.cursor
