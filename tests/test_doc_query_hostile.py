"""Hostile input to the document query API, on SQLite and the real OpenSearch: field names,
operators, values, collections, sizes and cursors a caller might craft. Each one either is
refused with a :class:`ValueError` that says why, or is treated as data and gives the right
answer; nothing reaches SQL or the query DSL as syntax, and the store is unharmed."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from soc.access import Scope
from soc.store.base import DocFilter, DocQuery, Store
from soc.store.doc_query import encode_doc_cursor
from soc.store.event_query import encode_cursor
from soc.store.scoped import ScopedStore
from tests.event_search_data import STORE_KINDS, fresh_store

NASTY = ["' OR '1'='1", "x' --", "'; DROP TABLE docs; --", '{"match_all": {}}', "*", "?", "%", "_", "\\",
         ".*", "[a-z]+", "(", "OR 1=1", "null", "NULL", "a\" OR \"1\"=\"1", "$where", "<script>", "1; SELECT 1",
         "'||(SELECT 1)||'", "\u202e", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢"]
DOCS = {f"h{i:02d}": {"title": text, "status": "open", "agency": "ag-a", "n": i} for i, text in enumerate(NASTY)}


@pytest.fixture(scope="module", params=STORE_KINDS)
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    for store in fresh_store(str(request.param), request, tmp_path_factory.mktemp("hostile")):
        for id_, body in DOCS.items():
            store.create("alerts", id_, body)
            store.create("cases", id_, body)
        store.refresh()
        yield store


def unharmed(store: Store) -> None:
    for collection in ("alerts", "cases"):
        assert store.count_documents(DocQuery(collection)) == [((), len(DOCS))]


BAD_FIELDS: list[Any] = ["", ".", "a..b", "a.", ".a", "_id", "_source", "a b", "a'b", 'a"b', "a;--", "a/*x*/", "$.a",
                         "a[0]", "a\x00", "@soc_id", "@soc_id.x", "x" * 300, "ä", "a\\b", "a`b", 5, None, ["a"],
                         {"a": 1}]


@pytest.mark.parametrize("name", BAD_FIELDS, ids=repr)
def test_bad_field_names_are_refused_everywhere(store: Store, name: Any) -> None:
    with pytest.raises(ValueError):
        DocFilter(name, "equals", "x")
    with pytest.raises(ValueError):
        DocQuery("cases", sort=(name,))
    with pytest.raises(ValueError):
        DocQuery("cases", text="x", text_fields=(name,))
    with pytest.raises(ValueError):
        store.count_documents(DocQuery("cases"), (name,))


@pytest.mark.parametrize(("field", "op", "value"), [
    ("title", "EQUALS", "x"), ("title", "$eq", "x"), ("title", "match_all", None), ("title", "script", "1"),
    ("title", "equals", {"match_all": {}}), ("title", "equals", ["a"]), ("title", "equals", b"x"),
    ("title", "equals", None), ("title", "equals", "a\x00b"), ("title", "equals", "\ud800"),
    ("title", "equals", "x" * 9000), ("title", "in", []), ("title", "in", ["x"] * 501), ("title", "in", "abc"),
    ("title", "in", {"a": 1}), ("title", "in", [{"term": 1}]), ("title", "prefix", ""), ("title", "prefix", "x" * 1001),
    ("title", "exists", "yes"), ("n", "range", (1, 2, 3)), ("n", "range", {"gt": 1}), ("n", "range", (None, None)),
    ("n", "range", (True, 5)), ("n", "range", (1, "b")), ("n", "range", (float("nan"), None)),
    ("n", "range", (float("inf"), None)), ("n", "range", (datetime(2025, 1, 1), None)), ("n", "range", 5),
    ("n", "range", ({"$gt": 1}, None)),
], ids=repr)
def test_bad_operators_and_values_are_refused(field: str, op: Any, value: Any) -> None:
    with pytest.raises(ValueError):
        DocQuery("cases", filters=[(field, op, value)])


@pytest.mark.parametrize("options", [
    {"size": 0}, {"size": 1001}, {"size": True}, {"size": "10"}, {"size": -1}, {"track_total": -1},
    {"track_total": True}, {"order": "DESC; DROP"}, {"order": None}, {"sort": ("id", "title")},
    {"sort": ("a", "b", "c", "d", "e")}, {"sort": ("a", "a")}, {"text": "x"}, {"text": "a\x00", "text_fields": ("t",)},
    {"text": "x" * 300, "text_fields": ("t",)}, {"filters": "status=open"}, {"filters": [("a",)]},
    {"filters": [("a", "equals", "b", "c")]}, {"filters": {"a": "b"}}, {"cursor": 5}, {"cursor": "x" * 70_000},
    {"text_fields": "title" * 100},
], ids=repr)
def test_bad_query_options_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        DocQuery("cases", **options)


@pytest.mark.parametrize("collection", ["", "a\x00b", "x" * 201, 5, None, ["alerts"]], ids=repr)
def test_bad_collection_names_are_refused(collection: Any) -> None:
    with pytest.raises(ValueError):
        DocQuery(collection)


@pytest.mark.parametrize("collection", ["alerts'; DROP TABLE docs; --", "../x", "a b", "*", "_all", "docs-*",
                                        "ALERTS", "alerts\n", "đ"], ids=repr)
def test_odd_collection_names_are_only_names(store: Store, collection: str) -> None:
    page = store.query_documents(DocQuery(collection, filters=[("status", "equals", "open")], sort=("n",)))
    assert (page.docs, page.total) == ([], 0)
    assert store.count_documents(DocQuery(collection), ("status",)) == []
    unharmed(store)


@pytest.mark.parametrize("collection", ["alerts", "cases"])
@pytest.mark.parametrize("text", NASTY, ids=repr)
def test_query_syntax_in_values_is_data(store: Store, collection: str, text: str) -> None:
    wanted = {i for i, body in DOCS.items() if body["title"].lower() == text.lower()}  # "null" is "NULL"
    assert wanted

    def found(*filters: Any, **options: Any) -> set[str]:
        page = store.query_documents(DocQuery(collection, filters=filters, size=1000, **options))
        return {d.id for d in page.docs}

    assert found(("title", "equals", text)) == wanted
    assert found(("title", "in", [text, "nothing"])) == wanted
    assert found(("title", "prefix", text)) == {i for i, b in DOCS.items() if b["title"].lower().startswith(text.lower())}
    assert found(("title", "not_equals", text)) == set(DOCS) - wanted
    assert found(text=text, text_fields=("title",)) == {i for i, b in DOCS.items() if text.lower() in b["title"].lower()}
    assert found(("status", "equals", text)) == set()
    assert found(("title", "range", (text, text + "\uffff"))) == {i for i, b in DOCS.items()
                                                                  if text <= b["title"] < text + "\uffff"}
    assert store.count_documents(DocQuery(collection, filters=[("title", "equals", text)]), ("title",)) == \
        [((title,), 1) for title in sorted(DOCS[i]["title"] for i in wanted)]
    unharmed(store)


def _raw(payload: Any) -> str:
    return "d1." + base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


@pytest.mark.parametrize("collection", ["alerts", "cases"])
def test_bad_cursors_are_refused(store: Store, collection: str) -> None:
    query = DocQuery(collection, sort=("n",), order="desc", size=2)
    good = store.query_documents(query).cursor
    assert good is not None
    other = "dsl" if store.dialect == "sqlite" else "sqlite"
    base = [store.dialect, collection, ["n", "id"], "desc"]
    bad = ["garbage", "d1.", "d1.!!!!", "d1." + base64.urlsafe_b64encode(b"\xff\xfe").decode(), "d1.bnVsbA",
           _raw([other, collection, ["n", "id"], "desc", [5, "h05"]]), _raw([*base[:1], "other", *base[2:], [5, "h05"]]),
           _raw([*base[:2], ["id"], "desc", ["h05"]]), _raw([*base[:3], "asc", [5, "h05"]]), _raw([*base, [5]]),
           _raw([*base, [5, "h05", 1]]), _raw([*base, [{"a": 1}, "h05"]]), _raw([*base, [[1], "h05"]]),
           _raw([*base, [True, "h05"]]), _raw([*base, [5, None]]), _raw([*base, [5, 7]]), _raw([*base, [1e308 * 10, "h"]]),
           _raw([*base, [2**70, "h05"]]), _raw({"a": 1}), _raw([*base, [5, "h0\x005"]]),
           encode_cursor(store.dialect, 5, "h05", "desc"), good[:-3], good + "AAAA", "x" * 70_000]
    for cursor in bad:
        with pytest.raises(ValueError):
            store.query_documents(DocQuery(collection, sort=("n",), order="desc", size=2, cursor=cursor))
        with pytest.raises(ValueError):
            ScopedStore(store, Scope(frozenset({"ag-a"}))).query_documents(
                DocQuery(collection, sort=("n",), order="desc", size=2, cursor=cursor))
    page = store.query_documents(DocQuery(collection, sort=("n",), order="desc", size=2, cursor=good))
    assert [d.id for d in page.docs] == [f"h{len(DOCS) - 3:02d}", f"h{len(DOCS) - 4:02d}"]


@pytest.mark.parametrize("collection", ["alerts", "cases"])
@pytest.mark.parametrize("value", [None, "text", 3, 2.5, "-Infinity", "' OR 1=1 --"], ids=repr)
def test_forged_cursor_positions_give_a_page_or_a_clean_refusal(store: Store, collection: str, value: Any) -> None:
    query = DocQuery(collection, sort=("n",), order="desc", size=3)
    cursor = encode_doc_cursor(store.dialect, query, [value, "h05"])
    try:
        page = store.query_documents(DocQuery(collection, sort=("n",), order="desc", size=3, cursor=cursor))
    except ValueError:
        return
    assert len(page.docs) <= 3 and page.total == len(DOCS)
    unharmed(store)


@pytest.mark.parametrize(("group_by", "size"), [
    (("a", "b", "c", "d"), 10), (("a", "a"), 10), ("title", 10), (("title",), 0), (("title",), 1001),
    (("title",), "5"), (("title",), True), (("title", "n"), (1,)), (("title",), (1, 2)), (("title",), None),
    ({"title": 1}, 10),
], ids=repr)
def test_bad_group_by_is_refused(store: Store, group_by: Any, size: Any) -> None:
    if isinstance(group_by, str):  # one field as a string is accepted: a sequence of one
        assert store.count_documents(DocQuery("cases"), group_by, size=size)[0][1] == 1
        return
    with pytest.raises(ValueError):
        store.count_documents(DocQuery("cases"), group_by, size=size)


def test_three_levels_of_distinct_values_count_each_document_once(store: Store) -> None:
    rows = store.count_documents(DocQuery("cases"), ("title", "id", "n"), size=1000)
    assert len(rows) == len(DOCS) and all(count == 1 for _, count in rows)


def test_long_case_insensitive_values_are_answered_or_refused_cleanly(store: Store) -> None:
    for value in ("đ" * 600, "a" * 8000, "Ă" * 300 + "x"):
        for op in ("equals", "prefix"):
            if op == "prefix" and len(value) > 1000:
                continue
            try:
                page = store.query_documents(DocQuery("cases", filters=[("title", op, value)]))
            except ValueError as error:
                assert "too long" in str(error) and store.dialect == "dsl"
                continue
            assert page.docs == []
    unharmed(store)
