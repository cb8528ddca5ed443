"""The alert queue's free text and its groups by rule and host, counted by the store where it
keeps them (SQLite: :mod:`soc.store.sqlite_doc_text`), on both stores: the pages, their order,
cursors and totals, and the group counts with the spellings they show, must be exactly what
testing (and reading) every alert in Python gives; on SQLite the text is an FTS5 lookup and
the groups read from the totals per rule and host (:mod:`soc.store.sqlite_doc_host_totals`) or
one ``GROUP BY`` over the host table's index, all kept by triggers through every write, and
rebuilt when an existing database is opened."""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from soc.alerts import AlertQuery
from soc.model import iso
from soc.store.base import Store
from soc.store.sqlite import SQLiteStore
from soc.store.sqlite_doc_host_totals import host_totals
from soc.store.sqlite_doc_query import _value_test
from soc.store.sqlite_doc_text import HOST_KEY, alert_text, host_counts, host_keys
from soc.web.api import alert_filters
from soc.web.api.alert_filters import doc_list, group_alerts, group_levels
from soc.web.api.doclist import doc_page, for_store
from tests.api_seed_helpers import NOW, A, alert_body, api_fixture
from tests.console_alert_helpers import console, row_ids, total
from tests.scope_helpers import STORE_KINDS, close_kind, open_kind
from tests.test_store_doc_plans import plans

TITLES = ("Đăng nhập thất bại", "Dò mật khẩu SSH", "PowerShell \"encoded\" command", "Tường lửa chặn")
HOSTS = ("WEB-01", "web-01", "Máy-Đức", "db-02", "MÁY-ĐỨC")


def _alert(i: int) -> dict[str, Any]:
    entities: dict[str, Any] = {"user.name": [("Đức", "root", "admin")[i % 3]]}
    group: dict[str, Any] = {}
    if i % 4 != 3:
        entities["host.name"] = [HOSTS[i % 5], HOSTS[(i + 1) % 5]] if i % 6 == 0 else [HOSTS[i % 5]]
    if i % 3 == 0:
        group["host.name"] = HOSTS[(i + 3) % 5]
    body: dict[str, Any] = {
        "id": f"t{i:03d}", "agency": ("xa-a", "xa-b")[i % 2], "status": ("new", "acknowledged", "closed")[i % 3],
        "rule": {"id": f"r{i % 4}", "level": "high", "title": TITLES[i % 4]},
        "message": f"sự kiện {i} trên {HOSTS[i % 5]}", "first_seen": f"2026-12-{1 + (i // 4) % 27:02d}T08:00:00.000Z",
        "entities": entities, "group": group}
    if i % 5 == 0:
        body["assignee"] = "Nguyễn Văn An"
    if i % 7 == 0:
        body["close_note"] = "dương tính giả"
    return body


ALERTS = [_alert(i) for i in range(60)]


@pytest.fixture(scope="module", params=STORE_KINDS)
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    made = open_kind(request.param, request, tmp_path_factory.mktemp("text"))
    for body in ALERTS:
        assert made.create("alerts", body["id"], body)
    made.refresh()
    yield made
    close_kind(made)


def test_the_kept_text_and_hosts_are_what_the_filters_compute() -> None:
    for alert in ALERTS:
        assert alert_text(alert) == AlertQuery._haystack(alert)
        hosts = [*(alert["entities"].get("host.name") or []), *([alert["group"]["host.name"]] if alert["group"] else [])]
        assert [k for k, _ in host_keys(alert)] == list(dict.fromkeys(h.casefold() for h in hosts))


def _expected(query: AlertQuery) -> list[str]:
    found = [a for a in ALERTS if query.matches(a)]
    return [a["id"] for a in sorted(found, key=lambda a: (a["first_seen"], a["id"]), reverse=True)]


def _walk(store: Store, query: AlertQuery, limit: int) -> tuple[list[str], tuple[int, bool]]:
    ids: list[str] = []
    first = None
    cursor = None
    while True:
        page = doc_page(store, doc_list(query, True), limit=limit, cursor=cursor)
        ids += [item["id"] for item in page.items]
        first = first or (page.total, page.total_exact)
        cursor = page.next
        if cursor is None:
            return ids, first
        assert len(ids) < 200


QUERIES = [AlertQuery(text="dang nhap"), AlertQuery(text="ĐĂNG NHẬP"), AlertQuery(text="may-duc"),
           AlertQuery(text="01"), AlertQuery(text="u"), AlertQuery(text='"encoded"'), AlertQuery(text="t01"),
           AlertQuery(text="duong tinh"), AlertQuery(text="nguyen van"), AlertQuery(text="mật", status=["open"]),
           AlertQuery(text="web", host="db-02"), AlertQuery(text="ssh", agency="xa-b", since="2026-12-05T00:00:00.000Z"),
           AlertQuery(text="trên\nnowhere"), AlertQuery(text="không có")]


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: "-".join(f"{k}={v}" for k, v in q.as_dict().items()
                                                                  if k != "time_field"))
@pytest.mark.parametrize("limit", [4, 50])
def test_free_text_lists_what_testing_every_alert_lists(store: Store, query: AlertQuery, limit: int) -> None:
    expected = _expected(query)
    ids, total = _walk(store, query, limit)
    assert ids == expected
    assert total == (len(expected), True)
    if store.dialect == "sqlite" and not query.host:
        assert for_store(store, doc_list(query, True)).keep is None  # the store answers it all


def test_free_text_is_an_index_lookup_on_sqlite(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    for body in ALERTS:
        store.create("alerts", body["id"], body)
    seen = plans(store, lambda: doc_page(store, doc_list(AlertQuery(text="dang nhap"), True), limit=5, cursor=None))
    assert any("VIRTUAL TABLE INDEX" in plan for plan in seen), seen
    assert not any(re.search(r"SCAN (d|docs)\b", plan) for plan in seen), seen
    store.close()


def _by_reading(store: Store, query: AlertQuery, fields: list[str]) -> dict[str, Any]:
    matched, counts, shown, exact = alert_filters._counted_by_reading(store, query, [fields])
    return alert_filters._answer(query, fields, matched, counts[0], shown[0], exact, 100)


GROUPED = [AlertQuery(), AlertQuery(status=["open"]), AlertQuery(status=["closed"]),
           AlertQuery(since="2026-12-10T00:00:00.000Z"), AlertQuery(agency="xa-a", since="2026-12-03T00:00:00.000Z"),
           AlertQuery(rule=["r1", "r2"], level="high")]


@pytest.mark.parametrize("query", GROUPED, ids=str)
@pytest.mark.parametrize("fields", [["rule.id", "host.name"], ["host.name"]])
def test_groups_by_host_count_what_reading_every_alert_counts(store: Store, query: AlertQuery,
                                                               fields: list[str]) -> None:
    expected = _by_reading(store, query, fields)
    assert expected["buckets"]
    assert group_alerts(store, query, fields, size=100) == expected
    assert alert_filters._hosts_by_the_store(store, query, fields) == (store.dialect == "sqlite")


def test_nested_groups_by_rule_and_host_come_from_the_store(store: Store) -> None:
    query = AlertQuery(status=["open", "acknowledged"])
    levels = group_levels(store, query, ["rule.id", "host.name"], sizes=[10, 100])
    assert levels[1] == _by_reading(store, query, ["rule.id", "host.name"])
    assert {b["values"]["rule.id"]: b["count"] for b in levels[0]["buckets"]} == \
        {b["values"]["rule.id"]: b["count"] for b in _by_reading(store, query, ["rule.id"])["buckets"]}


def test_host_groups_use_the_host_index_on_sqlite(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    for body in ALERTS:
        store.create("alerts", body["id"], body)
    # a filter the totals per rule and host do not hold: one GROUP BY over the host table's index
    seen = plans(store, lambda: group_alerts(store, AlertQuery(level="high"), ["rule.id", "host.name"], size=10))
    assert any("doc_hosts_alerts_rule" in plan for plan in seen), seen
    assert not any("docs" in plan for plan in seen), seen
    # the queue's common case: each rule's biggest hosts read from the totals' index
    for query in (AlertQuery(), AlertQuery(status=["open"])):
        seen = plans(store, lambda q=query: group_alerts(store, q, ["rule.id", "host.name"], size=10))  # type: ignore[misc]
        assert any("doc_host_totals_alerts_top" in plan for plan in seen), seen
        assert not any("doc_hosts_alerts " in plan + " " or "docs" in plan for plan in seen), seen
    # a short time range: its rows read by time; a long one (more than FEW_IN_TIME rows): by rule
    recent = AlertQuery(since="2026-12-10T00:00:00.000Z")
    for few, index in ((1000, "doc_hosts_alerts_time"), (3, "doc_hosts_alerts_rule")):
        monkey = pytest.MonkeyPatch()
        monkey.setattr("soc.store.sqlite_doc_text.FEW_IN_TIME", few)
        try:
            seen = plans(store, lambda: group_alerts(store, recent, ["rule.id", "host.name"], size=10))
            assert group_alerts(store, recent, ["rule.id", "host.name"], size=100) == \
                _by_reading(store, recent, ["rule.id", "host.name"])
        finally:
            monkey.undo()
        assert any(f"USING COVERING INDEX {index}" in plan for plan in seen), (few, seen)
    store.close()


def _both_ways(store: SQLiteStore, query: AlertQuery, sizes: tuple[int, int]) -> tuple[Any, Any]:
    """The count per rule and host from the kept totals and from the host table's GROUP BY."""
    doc_query = doc_list(query, descending=True).query(size=1)
    fields = ("rule.id", HOST_KEY)
    kept = host_totals(store._doc_run, doc_query, fields, sizes, None)
    grouped = host_counts(store._doc_run, _value_test, doc_query, fields, sizes, None)
    return kept, grouped


STATES = [AlertQuery(), AlertQuery(status=["open"]), AlertQuery(status=["acknowledged"]), AlertQuery(status=["closed"])]


def test_the_totals_per_rule_and_host_count_what_the_host_table_groups(tmp_path: Path) -> None:
    """Through creations, changes of status, host spelling and time, and deletions, the kept
    totals give exactly the host table's groups: counts, order, ties and the newest spelling."""
    rng = random.Random(11)
    store = SQLiteStore(tmp_path / "s.db")
    bodies: dict[str, dict[str, Any]] = {}
    spellings = ("WEB-01", "web-01", "Web-01", "Máy-Đức", "MÁY-ĐỨC", "db-02", 42)

    def random_body(i: int) -> dict[str, Any]:
        hosts = rng.sample(spellings, rng.choice((0, 1, 1, 2, 3)))
        return {"id": f"w{i:03d}", "agency": "xa-a", "status": rng.choice(("new", "open", "acknowledged", "closed")),
                "rule": {"id": rng.choice(("r1", "r2", "r3", 7)), "level": "high", "title": "t"},
                "first_seen": f"2026-12-0{rng.randint(1, 3)}T0{rng.randint(0, 2)}:00:00.000Z",
                "entities": {"host.name": hosts[:1]}, "group": {"host.name": hosts[1:]}}

    for step in range(240):
        i = rng.randrange(60)
        if f"w{i:03d}" in bodies and step % 3 == 0:
            store.delete("alerts", f"w{i:03d}")
            del bodies[f"w{i:03d}"]
        else:
            bodies[f"w{i:03d}"] = random_body(i)
            store.put("alerts", f"w{i:03d}", bodies[f"w{i:03d}"])
        if step % 20 == 19:
            for query in STATES:
                for sizes in ((1000, 100), (2, 1)):
                    kept, grouped = _both_ways(store, query, sizes)
                    assert kept is not None and kept == grouped, (step, query, sizes)
    assert bodies and _both_ways(store, AlertQuery(), (1000, 100))[0]
    # a status the service does not write (a filter may match it ignoring case): not from the totals
    store.put("alerts", "odd", {**random_body(99), "id": "odd", "status": "Open", "rule": {"id": "r1"},
                                "entities": {"host.name": ["WEB-01"]}})
    kept, grouped = _both_ways(store, AlertQuery(status=["open"]), (1000, 100))
    assert kept is None and grouped
    assert _both_ways(store, AlertQuery(), (1000, 100))[0] == _both_ways(store, AlertQuery(), (1000, 100))[1]
    store.delete("alerts", "odd")
    kept, grouped = _both_ways(store, AlertQuery(status=["open"]), (1000, 100))
    assert kept == grouped
    store.close()


def test_writes_keep_the_text_and_the_hosts(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "s.db"
    store = SQLiteStore(path)
    for body in ALERTS:
        store.create("alerts", body["id"], body)
    changed = {**ALERTS[1], "rule": {**ALERTS[1]["rule"], "title": "Quét cổng"},
               "entities": {"host.name": ["Cổng-Ra"]}, "group": {}}
    store.put("alerts", changed["id"], changed)
    store.delete("alerts", ALERTS[2]["id"])
    alerts = [changed if a["id"] == changed["id"] else a for a in ALERTS if a["id"] != ALERTS[2]["id"]]

    def check(s: Store) -> None:
        for text in ("quet cong", "do mat khau", "cong-ra"):
            wanted = sorted((a for a in alerts if AlertQuery(text=text).matches(a)),
                            key=lambda a: (a["first_seen"], a["id"]), reverse=True)
            page = doc_page(s, doc_list(AlertQuery(text=text), True), limit=100, cursor=None)
            assert [i["id"] for i in page.items] == [a["id"] for a in wanted]
        for query in STATES:
            assert group_alerts(s, query, ["rule.id", "host.name"], size=100) == \
                _by_reading(s, query, ["rule.id", "host.name"])

    check(store)
    # an existing database without the tables (or with older ones) gains them when opened
    conn = store._conn()
    conn.execute("DELETE FROM doc_fields_meta WHERE collection = 'text:alerts'")
    conn.execute("DROP TRIGGER doc_hosts_alerts_insert")
    conn.execute("UPDATE doc_host_totals_alerts SET n = n + 5")  # stale totals: rebuilt with the host table
    store.close()
    caplog.set_level(logging.INFO)
    monkey = pytest.MonkeyPatch()
    monkey.setattr("soc.store.sqlite_doc_text._FILL_BATCH", 7)
    try:
        reopened = SQLiteStore(path)
    finally:
        monkey.undo()
    assert any("free text and hosts of alerts" in r.getMessage() for r in caplog.records)
    assert any("totals per rule and host of alerts" in r.getMessage() for r in caplog.records)
    check(reopened)
    reopened.close()
    # opening again rebuilds nothing; lost triggers of the totals alone rebuild the totals alone
    caplog.clear()
    again = SQLiteStore(path)
    assert not any("of alerts:" in r.getMessage() for r in caplog.records)
    again._conn().execute("DROP TRIGGER doc_host_totals_alerts_delete")
    again.close()
    again = SQLiteStore(path)
    messages = [r.getMessage() for r in caplog.records]
    assert any("totals per rule and host" in m for m in messages) and not any("free text and" in m for m in messages)
    again.delete("alerts", ALERTS[3]["id"])
    alerts = [a for a in alerts if a["id"] != ALERTS[3]["id"]]
    check(again)
    again.close()


@pytest.fixture(params=["sqlite"])
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    yield from api_fixture(request, tmp_path_factory.mktemp("console-text"))


def test_the_queue_and_its_new_count_find_the_text_through_the_store(api: Any) -> None:
    """The console's queue and its "N new alerts" count with free text, as testing each alert says."""
    soc = console(api, "soc")
    page = soc.get(f"/alerts?agency={A}").text
    after = re.search(r'data-after="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    later = NOW + timedelta(hours=2)
    for i, title in enumerate(("Đăng nhập thất bại", "Quét cổng", "ĐĂNG NHẬP lạ")):
        body = {**alert_body(A, 60 + i), "detected_at": iso(later), "rule": {"id": f"x{i}", "title": title}}
        api.store.create("alerts", body["id"], body)
    assert soc.get(f"/alerts-queue/new-count?agency={A}&after={after}&text=dang+nhap").json()["new"] == 2
    listed = soc.get(f"/alerts?agency={A}&text=DANG%20NHAP").text
    wanted = [d.body for d in api.store.find("alerts", {"agency": A}, limit=10_000)
              if AlertQuery(text="dang nhap").matches(d.body)]
    assert sorted(row_ids(listed)) == sorted(b["id"] for b in wanted) and total(listed) == len(wanted) == 2


def test_the_biggest_host_groups_are_the_same_when_few_are_asked_for(store: Store) -> None:
    """Of each rule the store counts only its biggest hosts: the biggest groups are among them."""
    query = AlertQuery()
    matched, counts, shown, _ = alert_filters._counted_by_reading(store, query, [["rule.id", "host.name"]])
    expected = alert_filters._answer(query, ["rule.id", "host.name"], matched, counts[0], shown[0], True, 3)
    assert group_alerts(store, query, ["rule.id", "host.name"], size=3)["buckets"] == expected["buckets"]
