"""The alert queue's entity filters (host, user, source address) asked of the store, on both
stores: an alert's host is in ``entities`` or in its correlation ``group`` (a user also as the
target user), so the list reads one store query per place and merges them
(:mod:`soc.web.api.doc_union`). The pages, their order, their cursors and the totals must be
exactly what testing every alert with :meth:`AlertQuery.matches` gives; on SQLite each place
is looked up in the values table's index (no body read); an existing database gains the
values of a newly listed field when it is opened, with its progress logged, once."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from soc.alerts import AlertQuery
from soc.store import sqlite_doc_fields
from soc.store.base import Store
from soc.store.sqlite import SQLiteStore
from soc.web.api.alert_filters import doc_list, group_alerts
from soc.web.api.doclist import doc_page
from soc.web.console.pages.alert_query import parse_params, queue_page
from tests.scope_helpers import STORE_KINDS, close_kind, open_kind
from tests.test_store_doc_plans import plans

HOSTS = ("web-01", "WEB-01", "db-02", "Máy-Đức", "MÁY-ĐỨC")
USERS = ("root", "Root", "đức", "admin")
IPS = ("10.0.0.1", "10.0.0.2", "192.168.1.9")


def _alert(i: int) -> dict[str, Any]:
    """Alert ``i``: its host, user and address in entities, in the group, in both or nowhere;
    several alerts share a time (the order falls back to the id)."""
    host, user, ip = HOSTS[i % 5], USERS[i % 4], IPS[i % 3]
    entities: dict[str, Any] = {}
    group: dict[str, Any] = {}
    place = i % 4
    if place in (0, 2):
        entities["host.name"] = [host, HOSTS[(i + 2) % 5]] if i % 7 == 0 else [host]
        entities["source.ip"] = [ip]
    if place in (1, 2):
        group["host.name"] = host
        group["source.ip"] = ip
    if i % 3 == 0:
        entities["user.name"] = [user]
    elif i % 3 == 1:
        group["user.target.name"] = user
    else:
        entities["user.target.name"] = [user]
    return {"id": f"a{i:03d}", "agency": ("xa-a", "xa-b")[i % 2], "status": ("new", "acknowledged", "closed")[i % 3],
            "rule": {"id": f"r{i % 3}", "level": "high", "title": f"Rule {i % 3}"},
            "message": f"alert {i} on {host}", "first_seen": f"2026-12-{1 + (i // 3) % 27:02d}T08:00:00.000Z",
            "entities": entities, "group": group}


ALERTS = [_alert(i) for i in range(70)]


@pytest.fixture(scope="module", params=STORE_KINDS)
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    made = open_kind(request.param, request, tmp_path_factory.mktemp("entities"))
    for body in ALERTS:
        assert made.create("alerts", body["id"], body)
    made.refresh()
    yield made
    close_kind(made)


def _expected(query: AlertQuery) -> list[str]:
    found = [a for a in ALERTS if query.matches(a)]
    return [a["id"] for a in sorted(found, key=lambda a: (a["first_seen"], a["id"]), reverse=True)]


def _walk(store: Store, query: AlertQuery, limit: int) -> tuple[list[str], list[tuple[int, bool]]]:
    """Every page of the list: the ids in order, and each page's total."""
    ids: list[str] = []
    totals = []
    cursor = None
    while True:
        page = doc_page(store, doc_list(query, True), limit=limit, cursor=cursor)
        ids += [item["id"] for item in page.items]
        totals.append((page.total, page.total_exact))
        cursor = page.next
        if cursor is None:
            return ids, totals
        assert len(ids) < 200


QUERIES = [
    AlertQuery(host="web-01"), AlertQuery(host="máy-đức"), AlertQuery(host="DB-02", status=["open"]),
    AlertQuery(user="root"), AlertQuery(user="ĐỨC", agency="xa-a"), AlertQuery(source_ip="10.0.0.2"),
    AlertQuery(host="web-01", user="admin"), AlertQuery(host="web-01", text="alert 1"),
    AlertQuery(source_ip="192.168.1.9", since="2026-12-05T00:00:00.000Z", until="2026-12-20T00:00:00.000Z"),
    AlertQuery(host="nowhere"),
]


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: "-".join(f"{k}={v}" for k, v in q.as_dict().items()
                                                                  if k != "time_field"))
@pytest.mark.parametrize("limit", [3, 50])
def test_entity_filters_list_what_testing_every_alert_lists(store: Store, query: AlertQuery, limit: int) -> None:
    expected = _expected(query)
    ids, totals = _walk(store, query, limit)
    assert ids == expected  # in order, each once, across pages
    assert totals[0] == (len(expected), True)
    if query.text is None and not (query.host and query.user):
        assert doc_list(query, True).keep is None  # the store answers it all


def test_an_entity_filter_does_not_read_the_other_alerts(store: Store) -> None:
    """The host filter asks the store for that host's alerts: a page reads nothing else."""
    read: list[int] = []
    original = store.query_documents

    class Counting:
        def __getattr__(self, name: str) -> Any:
            return getattr(store, name)

        def query_documents(self, query: Any, **options: Any) -> Any:
            page = original(query, **options)
            read.append(len(page.docs))
            return page

    query = AlertQuery(host="db-02")
    page = doc_page(Counting(), doc_list(query, True), limit=50, cursor=None)  # type: ignore[arg-type]
    assert [item["id"] for item in page.items] == _expected(query)
    assert sum(read) <= 2 * len(_expected(query))


def test_groups_of_a_host_filter_count_its_alerts(store: Store) -> None:
    query = AlertQuery(host="web-01")
    answer = group_alerts(store, query, ["rule.id"], size=10)
    counts = {b["values"]["rule.id"]: b["count"] for b in answer["buckets"]}
    expected: dict[str, int] = {}
    for alert in ALERTS:
        if query.matches(alert):
            expected[alert["rule"]["id"]] = expected.get(alert["rule"]["id"], 0) + 1
    assert counts == expected and answer["total"] == sum(expected.values())


# -- SQLite: the plans and the migration ----------------------------------------------------------------
@pytest.fixture()
def sqlite_store(tmp_path: Path) -> Iterator[SQLiteStore]:
    made = SQLiteStore(tmp_path / "soc.db")
    for body in ALERTS:
        made.create("alerts", body["id"], body)
    yield made
    made.close()


def test_each_place_of_an_entity_is_looked_up_in_the_values_index(sqlite_store: SQLiteStore) -> None:
    """The pages, the cursor after a page (a lookup of two ids) and the totals: every statement
    searches an index; none scans a table or an index (at 1,000,000 alerts the cursor's lookup
    once walked the time index: 0.2-0.45 s, now under 1 ms)."""
    for query in (AlertQuery(host="web-01"), AlertQuery(user="root")):
        seen = plans(sqlite_store, lambda q=query: doc_page(sqlite_store, doc_list(q, True), limit=3, cursor=None))
        lookups = [p for p in seen if "doc_values_alerts" in p]
        assert lookups, seen
        for plan in lookups:
            assert "doc_values_alerts_value" in plan, plan
        assert not [p for p in seen if "SCAN" in p], seen  # no body is read to find them, no index walked


def test_opening_an_older_database_fills_the_new_values_once_with_progress(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "soc.db"
    store = SQLiteStore(path)
    for body in ALERTS:
        store.create("alerts", body["id"], body)
    conn = store._conn()
    wanted = conn.execute("SELECT field, value, type, id FROM doc_values_alerts ORDER BY 1, 2, 3, 4").fetchall()
    assert any(row[0] == "group.user.target.name" for row in wanted)
    # as a database made before group.user.target.name was listed: no rows of it, another fingerprint
    conn.execute("DELETE FROM doc_values_alerts WHERE field = 'group.user.target.name'")
    conn.execute("UPDATE doc_fields_meta SET fingerprint = 'older' WHERE collection = 'alerts'")
    store.close()
    monkeypatch.setattr(sqlite_doc_fields, "FILL_BATCH", 16)
    with caplog.at_level(logging.INFO, logger="soc.store.sqlite_doc_fields"):
        reopened = SQLiteStore(path)
    progress = [r.getMessage() for r in caplog.records if "field tables of alerts" in r.getMessage()]
    assert progress[-1].startswith(f"field tables of alerts: {len(ALERTS)} of {len(ALERTS)} documents")
    assert len(progress) == -(-len(ALERTS) // 16)
    conn = reopened._conn()
    assert conn.execute("SELECT field, value, type, id FROM doc_values_alerts ORDER BY 1, 2, 3, 4").fetchall() == wanted
    assert conn.execute("SELECT COUNT(*) FROM doc_fields_alerts").fetchone()[0] == len(ALERTS)
    assert _ids(reopened, AlertQuery(user="admin")) == _expected(AlertQuery(user="admin"))
    reopened.close()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="soc.store.sqlite_doc_fields"):
        again = SQLiteStore(path)  # nothing to do the second time
    assert not [r for r in caplog.records if "field tables" in r.getMessage()]
    assert again._conn().execute("SELECT COUNT(*) FROM doc_values_alerts").fetchone()[0] == len(wanted)
    again.close()


def _ids(store: Store, query: AlertQuery) -> list[str]:
    return [item["id"] for item in doc_page(store, doc_list(query, True), limit=200, cursor=None).items]


def test_the_queue_by_risk_with_a_host_filter_merges_in_the_risk_order(store: Store) -> None:
    """Sorted by risk (then time), the merged places keep the store's order across pages."""
    risky = [{**a, "id": f"r{a['id']}", "risk": (i * 7) % 5 if i % 6 else None} for i, a in enumerate(ALERTS[:40])]
    for body in risky:
        assert store.create("alerts", body["id"], body)
    store.refresh()
    try:
        params = parse_params([("host", "WEB-01"), ("sort", "-risk"), ("limit", "25")])
        query = AlertQuery(host="WEB-01")
        found = [a for a in [*ALERTS, *risky] if query.matches(a)]
        expected = [a["id"] for a in sorted(found, key=lambda a: (a.get("risk") is not None, a.get("risk") or 0,
                                                                  a["first_seen"], a["id"]), reverse=True)]
        ids: list[str] = []
        cursor = None
        while True:
            page = queue_page(store, dataclasses.replace(params, limit=3), query, cursor)
            ids += [item["id"] for item in page.items]
            cursor = page.next
            if cursor is None:
                break
        assert ids == expected
    finally:
        for body in risky:
            store.delete("alerts", body["id"])
        store.refresh()
