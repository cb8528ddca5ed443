"""Document queries (``Store.query_documents``, ``count_documents``) on SQLite and the real
OpenSearch with the same expectations: every operator, free text, sorts and keyset pages
(complete, no duplicates, stable while documents arrive), totals, and group-by counts on one to
three fields, list fields among them. Expectations come from the oracle over the seeded bodies
(``tests/doc_query_data.py``), for a collection SQLite reads through its field table
(``alerts``) and one it reads from the bodies (``cases``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from soc.model import iso
from soc.store import sqlite_doc_groups
from soc.store.base import DocQuery, Store
from tests.doc_query_data import (
    BODIES,
    COLLECTIONS,
    T0,
    every_page,
    exact,
    field_values,
    groups,
    ordered,
    same,
    seeded,
    values,
    where,
)
from tests.event_search_data import STORE_KINDS, fresh_store

ALL = set(BODIES)


@pytest.fixture(scope="module", params=STORE_KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def store(kind: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    yield from seeded(kind, request, tmp_path_factory.mktemp("docs"))


@pytest.fixture
def empty(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    yield from fresh_store(kind, request, tmp_path)


def ids(store: Store, collection: str, **query: Any) -> set[str]:
    """Every id a query selects (one page of 1000 holds the seed); checks the total too."""
    page = store.query_documents(DocQuery(collection, size=1000, **query))
    found = [doc.id for doc in page.docs]
    assert page.cursor is None and page.total == len(found) and page.total_exact
    assert len(set(found)) == len(found)
    count = store.count_documents(DocQuery(collection, **query))
    assert count == [((), len(found))]
    return set(found)


def equals(field: str, value: Any) -> set[str]:
    return where(lambda i: any(same(v, value, exact(field)) for v in field_values(i, field)))


def between(field: str, low: Any, high: Any) -> set[str]:
    text = isinstance(low if low is not None else high, str)

    def ok(v: Any) -> bool:
        if isinstance(v, str) != text or isinstance(v, bool):
            return False
        return (low is None or v >= low) and (high is None or v < high)
    return where(lambda i: any(ok(v) for v in field_values(i, field)))


def starts(field: str, prefix: str) -> set[str]:
    return where(lambda i: any(isinstance(v, str) and (v.startswith(prefix) if exact(field) else
                                                       v.lower().startswith(prefix.lower()))
                               for v in field_values(i, field)))


HOUR = T0 + timedelta(hours=3)
CASES: list[tuple[tuple[Any, ...], set[str]]] = [
    (("status", "equals", "OPEN"), equals("status", "open")),
    (("status", "not_equals", "open"), ALL - equals("status", "open")),
    (("status", "in", ["closed", "Acknowledged"]), equals("status", "closed") | equals("status", "acknowledged")),
    (("status", "contains_any", ["ACKNOWLEDGED", "nothing"]), equals("status", "acknowledged")),
    (("status", "exists", True), where(lambda i: "status" in BODIES[i])),
    (("status", "exists", False), where(lambda i: "status" not in BODIES[i])),
    (("status", "prefix", "AC"), starts("status", "ac")),
    (("agency", "equals", "ag-b"), where(lambda i: BODIES[i].get("agency") == "ag-b")),
    (("agency", "equals", "AG-B"), where(lambda i: BODIES[i].get("agency") == "AG-B")),
    (("agency", "in", ["AG-B", "ag-c"]), where(lambda i: BODIES[i].get("agency") in ("AG-B", "ag-c"))),
    (("agency", "prefix", "AG"), where(lambda i: BODIES[i].get("agency", "").startswith("AG"))),
    (("rule.id", "equals", "r1"), set()),
    (("rule.id", "equals", "R1"), equals("rule.id", "R1")),
    (("rule.level", "equals", "low"), equals("rule.level", "LOW")),
    (("rule.level", "not_equals", "HIGH"), ALL - equals("rule.level", "high")),
    (("rule.title", "equals", "đăng nhập THẤT BẠI"), equals("rule.title", "Đăng nhập thất bại")),
    (("rule.title", "prefix", "đĂNG"), starts("rule.title", "đăng")),
    (("rule.title", "equals", "O'Brien -- login; DROP TABLE docs"), equals("rule.title", "O'Brien -- login; DROP TABLE docs")),
    (("rule.title", "prefix", "100% match_"), starts("rule.title", "100% match_")),
    (("rule.title", "prefix", "100_"), set()),
    (("rule.score", "equals", 3), equals("rule.score", "3")),
    (("rule.score", "equals", "3.5"), equals("rule.score", "3.5")),
    (("rule.score", "in", ["1", 6.5, "x"]), equals("rule.score", "1") | equals("rule.score", "6.5")),
    (("rule.score", "range", (2, 4)), between("rule.score", 2, 4)),
    (("rule.score", "range", {"gte": "4.5"}), between("rule.score", 4.5, None)),
    (("rule.score", "range", ("a", "z")), set()),
    (("rule.score", "prefix", "3"), set()),
    (("first_seen", "range", (HOUR.astimezone(timezone(timedelta(hours=7))).isoformat(), None)),
     between("first_seen", iso(HOUR), None)),
    (("first_seen", "range", (T0 + timedelta(hours=1), HOUR)), between("first_seen", iso(T0 + timedelta(hours=1)),
                                                                         iso(HOUR))),
    (("first_seen", "range", {"lt": "2025-03-01T05"}), between("first_seen", None, "2025-03-01T05")),
    (("first_seen", "range", (None, 5)), set()),
    (("first_seen", "exists", False), where(lambda i: "first_seen" not in BODIES[i])),
    (("assignee", "equals", "ALICE"), equals("assignee", "alice")),
    (("assignee", "not_equals", "alice"), ALL - equals("assignee", "alice")),
    (("entities.host.name", "equals", "WEB-1"), equals("entities.host.name", "web-1")),
    (("entities.host.name", "contains_any", ["db-2", "nope"]), equals("entities.host.name", "db-2")),
    (("entities.host.name", "prefix", "we"), starts("entities.host.name", "we")),
    (("entities.host.name", "exists", False), where(lambda i: not values(BODIES[i], "entities.host.name"))),
    (("entities.host.name", "not_equals", "mail"), ALL - equals("entities.host.name", "mail")),
    (("group.source.ip", "equals", "10.0.0.3"), equals("group.source.ip", "10.0.0.3")),
    (("tags", "equals", "b"), equals("tags", "b")),
    (("tags", "not_equals", "a"), ALL - equals("tags", "a")),
    (("flag", "equals", True), where(lambda i: BODIES[i]["flag"] is True)),
    (("flag", "equals", "FALSE"), where(lambda i: BODIES[i]["flag"] is False)),
    (("flag", "equals", "1"), set()),
    (("port", "equals", "8080"), equals("port", 8080)),
    (("port", "range", (1000, None)), between("port", 1000, None)),
    (("zip", "equals", "501"), set()),
    (("zip", "equals", "00501"), equals("zip", "00501")),
    (("zip", "range", ("00500", "00600")), between("zip", "00500", "00600")),
    (("notes.by", "equals", "BEN"), equals("notes.by", "ben")),
    (("id", "equals", "d003"), {"d003"}),
    (("id", "equals", "D003"), set()),
    (("id", "in", ["d001", "d002", "nope"]), {"d001", "d002"}),
    (("id", "prefix", "d00"), {f"d00{i}" for i in range(10)}),
    (("id", "range", ("d010", "d020")), {f"d0{i}" for i in range(10, 20)}),
    (("missing.field", "equals", "x"), set()),
    (("missing.field", "not_equals", "x"), ALL),
    (("missing.field", "exists", True), set()),
    (("rule", "equals", "x"), set()),
    (("rule", "exists", True), set()),
]


@pytest.mark.parametrize("collection", COLLECTIONS)
@pytest.mark.parametrize(("condition", "wanted"), CASES, ids=lambda c: "-".join(map(str, c))[:60]
                         if isinstance(c, tuple) else None)
def test_each_operator_selects_what_it_says(store: Store, collection: str, condition: tuple[Any, ...],
                                            wanted: set[str]) -> None:
    assert ids(store, collection, filters=[condition]) == wanted


@pytest.mark.parametrize("collection", COLLECTIONS)
def test_filters_combine_with_and(store: Store, collection: str) -> None:
    filters = [("status", "in", ["open", "closed"]), ("rule.score", "range", (1, None)), ("tags", "exists", True)]
    wanted = ((equals("status", "open") | equals("status", "closed")) & between("rule.score", 1, None)
              & where(lambda i: bool(values(BODIES[i], "tags"))))
    assert wanted and ids(store, collection, filters=filters) == wanted


@pytest.mark.parametrize("collection", COLLECTIONS)
@pytest.mark.parametrize("text", ["PASSWORD", "thất", "DROP TABLE", "% match_all *star? back\\sl", "web-1", "zzz"])
def test_free_text_is_a_case_insensitive_substring_of_the_given_fields(store: Store, collection: str,
                                                                       text: str) -> None:
    fields = ("rule.title", "entities.host.name", "status")
    wanted = where(lambda i: any(isinstance(v, str) and text.lower() in v.lower()
                                 for f in fields for v in field_values(i, f)))
    assert ids(store, collection, text=text, text_fields=fields) == wanted
    assert ids(store, collection, text=text, text_fields=("port",)) == set()


SORTS = [("first_seen",), ("rule.score", "first_seen"), ("assignee",), ("entities.host.name",), ("status",),
         ("id",), ("rule.title", "agency"), ("flag", "port"), ("missing.field",)]


@pytest.mark.parametrize("collection", COLLECTIONS)
@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("sort", SORTS, ids="-".join)
def test_pages_follow_the_sort_without_gaps_or_repeats(store: Store, collection: str, order: str,
                                                       sort: tuple[str, ...]) -> None:
    filters = [("rule.level", "not_equals", "medium")]
    selected = ALL - equals("rule.level", "medium")
    found, pages = every_page(store, lambda c: DocQuery(collection, filters=filters, sort=sort, order=order,
                                                        size=7, cursor=c))
    assert found == ordered(selected, sort, order == "desc")
    assert all(p.total == len(selected) and p.total_exact for p in pages)
    assert [len(p.docs) for p in pages[:-1]] == [7] * (len(pages) - 1) and 1 <= len(pages[-1].docs) <= 7
    assert {d.id: d.body for p in pages for d in p.docs} == {i: BODIES[i] for i in selected}


@pytest.mark.parametrize("collection", COLLECTIONS)
def test_pages_of_one_and_a_page_that_fits_exactly(store: Store, collection: str) -> None:
    found, pages = every_page(store, lambda c: DocQuery(collection, sort=("first_seen",), order="desc", size=1,
                                                        cursor=c))
    assert found == ordered(ALL, ("first_seen",), True) and len(pages) == len(ALL)
    found, pages = every_page(store, lambda c: DocQuery(collection, size=len(ALL), cursor=c))
    assert found == sorted(ALL) and len(pages) == 1 and pages[0].cursor is None


@pytest.mark.parametrize("collection", COLLECTIONS)
def test_totals_are_exact_up_to_track_total(store: Store, collection: str) -> None:
    page = store.query_documents(DocQuery(collection, size=3, track_total=5))
    assert (len(page.docs), page.total, page.total_exact) == (3, 5, False)
    page = store.query_documents(DocQuery(collection, size=3, track_total=len(ALL)))
    assert (page.total, page.total_exact) == (len(ALL), True)
    page = store.query_documents(DocQuery(collection, size=3, cursor=page.cursor, track_total=10))
    assert (page.total, page.total_exact) == (10, False)
    assert store.count_documents(DocQuery(collection)) == [((), len(ALL))]
    page = store.query_documents(DocQuery(collection, size=3, track_total=0))
    assert (len(page.docs), page.total, page.total_exact) == (3, 3, False)
    page = store.query_documents(DocQuery(collection, size=3, cursor=page.cursor, track_total=0))
    assert (len(page.docs), page.total, page.total_exact) == (3, 3, False)
    page = store.query_documents(DocQuery(collection, filters=[("id", "in", ["d001", "d002"])], track_total=0))
    assert (len(page.docs), page.total, page.total_exact) == (2, 2, True)


GROUPS: list[tuple[tuple[str, ...], Any]] = [
    (("status",), 100), (("agency",), 2), (("rule.score",), 3), (("flag",), 100), (("tags",), 100),
    (("agency", "rule.id"), 100), (("agency", "rule.id"), (2, 1)), (("entities.host.name", "tags"), 100),
    (("agency", "rule.level", "entities.host.name"), 100), (("agency", "rule.level", "entities.host.name"), (3, 2, 1)),
    (("status", "notes.by", "id"), (1, 1, 3)), (("missing.field",), 10), (("rule",), 10),
    (("rule.level", "assignee"), 100), (("status", "agency", "assignee"), (2, 2, 2)),
    (("assignee", "first_seen"), (2, 3)), (("tags", "agency", "rule.id"), 100),
]


@pytest.mark.parametrize("collection", COLLECTIONS)
@pytest.mark.parametrize(("fields", "size"), GROUPS, ids=lambda v: "-".join(map(str, v)) if isinstance(v, tuple)
                         else str(v))
def test_group_by_counts_nested_biggest_first(store: Store, collection: str, fields: tuple[str, ...],
                                              size: Any) -> None:
    sizes = size if isinstance(size, tuple) else (size,) * len(fields)
    assert store.count_documents(DocQuery(collection), fields, size=size) == groups(ALL, fields, sizes)


@pytest.mark.parametrize("collection", COLLECTIONS)
def test_group_by_counts_the_same_when_columns_are_counted_level_by_level(
        store: Store, collection: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_doc_groups, "MAX_PASS_ROWS", 1)  # SQLite: no one-pass grouping
    for fields in (("agency", "rule.level"), ("status", "agency", "assignee"), ("agency", "entities.host.name")):
        for size in (100, 2):
            assert store.count_documents(DocQuery(collection), fields, size=size) == \
                groups(ALL, fields, (size,) * len(fields))


@pytest.mark.parametrize("collection", COLLECTIONS)
def test_group_by_counts_only_the_matching_documents(store: Store, collection: str) -> None:
    query = DocQuery(collection, filters=[("status", "in", ["open", "acknowledged"])], text="a",
                     text_fields=("rule.title",), sort=("first_seen",), size=1)
    selected = ids(store, collection, filters=query.filters, text="a", text_fields=("rule.title",))
    for fields in (("agency",), ("agency", "entities.host.name"), ("tags", "status", "flag")):
        assert store.count_documents(query, fields) == groups(selected, fields, (100,) * len(fields))


def test_pages_stay_complete_while_documents_arrive(empty: Store) -> None:
    for id_, body in BODIES.items():
        empty.create("alerts", id_, body)
        empty.create("cases", id_, body)
    empty.refresh()
    for collection in COLLECTIONS:
        query = {"collection": collection, "sort": ("first_seen",), "order": "desc", "size": 8}
        seen: list[str] = []
        page = empty.query_documents(DocQuery(**query))
        seen += [d.id for d in page.docs]
        page = empty.query_documents(DocQuery(**query, cursor=page.cursor))
        seen += [d.id for d in page.docs]
        newest = iso(T0 + timedelta(days=30))  # sorts before the cursor: not seen
        oldest = iso(T0 - timedelta(days=30))  # after it: seen
        empty.create(collection, "n-new", {"first_seen": newest, "status": "open"})
        empty.create(collection, "n-old", {"first_seen": oldest, "status": "open"})
        empty.create(collection, "n-none", {"status": "open"})  # no first_seen: last
        empty.put(collection, seen[0], {**BODIES[seen[0]], "status": "closed"})  # a change behind the cursor
        cursor = page.cursor
        while cursor:
            page = empty.query_documents(DocQuery(**query, cursor=cursor))
            seen += [d.id for d in page.docs]
            cursor = page.cursor
        assert len(seen) == len(set(seen))
        assert set(seen) == ALL | {"n-old", "n-none"}
        assert seen.index("n-old") < seen.index("n-none") and "n-new" not in seen


def test_an_empty_or_missing_collection_has_nothing(empty: Store) -> None:
    page = empty.query_documents(DocQuery("nothing-here", filters=[("status", "equals", "open")], sort=("first_seen",)))
    assert (page.docs, page.cursor, page.total, page.total_exact) == ([], None, 0, True)
    assert empty.count_documents(DocQuery("nothing-here")) == [((), 0)]
    assert empty.count_documents(DocQuery("nothing-here"), ("status", "agency")) == []
