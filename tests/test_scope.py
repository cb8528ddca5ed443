"""Agency scope enforced where queries are built (issue #10, item 2), on SQLite and the real
OpenSearch: :class:`soc.store.scoped.ScopedStore` over seeded data of two agencies A and B
(and A's parent, child, sibling and an agency merged into A; see tests/scope_helpers.py).

Reads by a principal of A return A's data only -- in lists, counts, group-by buckets, limits
and pages (the filter is inside the query, so a limit of 50 gives 50 of A's rows) -- ``get``
of B's ids returns None, and writes to B's documents or to collections of no agency raise
:class:`~soc.access.Forbidden`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from soc.access import Forbidden, Scope
from soc.store.base import Conflict, Doc, EventQuery, OwnedBy, Store, Window
from soc.store.scoped import OWNERS, ScopedStore, owners_of
from tests.scope_helpers import (
    A_CHILD,
    A_MERGED,
    A_SIBLING,
    ALERTS_PER_AGENCY,
    EVENTS_PER_AGENCY,
    EVERYTHING,
    INCIDENTS,
    PARENT,
    ROOT_USER,
    STORE_KINDS,
    UNOWNED_SEEDED,
    WINDOW,
    A,
    B,
    alert_body,
    event_ids,
    incident_body,
    scoped,
    seed_events,
    store_fixture,
)

MINE = {A, A_CHILD, A_MERGED}  # what a principal of A sees


@pytest.fixture(scope="module", params=STORE_KINDS)
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """Seeded once per store kind; the tests here only read it (or are refused)."""
    yield from store_fixture(request, tmp_path_factory, seeded=True)


@pytest.fixture(scope="module", params=STORE_KINDS)
def writable(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """Seeded once per store kind for the tests that write (each to ids of its own)."""
    yield from store_fixture(request, tmp_path_factory, seeded=True)


def in_time_order(ids: set[str]) -> list[str]:
    return [e["_id"] for e in seed_events() if e["_id"] in ids]


def doc_ids(docs: list[Doc] | Iterator[Doc]) -> set[str]:
    return {d.id for d in docs}


# -- reads -------------------------------------------------------------------------------------
def test_an_unscoped_principal_sees_everything(store: Store) -> None:
    view = scoped(store, None)
    everything = [e["_id"] for e in seed_events()]
    assert view.count_events() == store.count_events() == {"": len(everything)}
    assert [e["_id"] for e in view.get_events(everything)] == everything
    assert len(view.find("alerts", limit=1000)) == sum(ALERTS_PER_AGENCY.values()) + 1
    assert view.get("rule_state", "x1") is not None
    assert doc_ids(view.find("report_snapshots")) == {"R-inc-a", "R-inc-b", "R-inc-shared", "R-summary"}


def test_events_of_a_scoped_principal_are_its_own(store: Store) -> None:
    view = scoped(store, A)
    everything, root = EVERYTHING[store.dialect], ROOT_USER[store.dialect]
    mine = in_time_order(event_ids(set(MINE)))
    found = view.find_matches(everything, None, WINDOW, ["user.name"], 100)
    assert [m.id for m in found] == mine
    assert {m.agency for m in found} == MINE
    # the limit applies to A's events: B's are older, and a filter applied afterwards would drop them all
    assert [m.id for m in view.find_matches(everything, ["linux.sshd"], WINDOW, [], 3)] == mine[:3]
    roots = [m.id for m in view.find_matches(root, None, WINDOW, ["user.name"], 100)]
    assert roots and set(roots) <= set(mine) and len(roots) == sum(1 for e in seed_events()
                                                                   if e["_id"] in mine and e["user.name"] == "root")
    many = view.find_matches_many([everything, root], None, WINDOW, [], 2)
    assert [[m.id for m in ms] for ms in many] == [mine[:2], roots[:2]]
    assert view.count_matches(everything, None, WINDOW) == len(mine)
    assert view.count_matches(root, ["linux.sshd"], WINDOW) == len(roots)
    assert view.find_matches(everything, [], WINDOW, [], 10) == []
    # counts and group-by buckets of A's rows only
    assert view.count_events() == {"": len(mine)}
    assert view.count_events(Window(time.time() - 3600, time.time() + 60)) == {"": len(mine)}
    assert view.count_events(WINDOW, "organization.id") == {a: EVENTS_PER_AGENCY[a] for a in MINE}
    assert view.count_events(None, "host.name") == {f"host-{a}": EVENTS_PER_AGENCY[a] for a in MINE}
    # by id: other agencies' events are left out
    every_id = [e["_id"] for e in seed_events()]
    assert [e["_id"] for e in view.get_events(every_id)] == mine
    assert {e["organization.id"] for e in view.get_events(every_id)} == MINE
    assert view.get_events(sorted(event_ids({B, None}))) == []


def test_event_search_of_a_scoped_principal_is_its_own(store: Store) -> None:
    view = scoped(store, A)
    mine = in_time_order(event_ids(set(MINE)))
    window = {"start": WINDOW.start, "end": WINDOW.end}
    page = view.search_events(EventQuery(**window, order="asc", size=3))
    assert [e["_id"] for e in page.events] == mine[:3] and page.total == len(mine)
    seen, cursor = [e["_id"] for e in page.events], page.cursor
    while cursor is not None:  # later pages stay in the scope too
        page = view.search_events(EventQuery(**window, order="asc", size=3, cursor=cursor))
        seen, cursor = seen + [e["_id"] for e in page.events], page.cursor
    assert seen == mine
    # the query's own agencies narrow the scope, never widen it
    assert view.search_events(EventQuery(**window, agencies=frozenset({B}))).events == []
    assert view.search_events(EventQuery(**window, filters=(("organization.id", "equals", B),))).total == 0
    wider = view.search_events(EventQuery(**window, agencies=frozenset({A, B}), size=100))
    assert {e["organization.id"] for e in wider.events} == {A}
    assert view.search_events(EventQuery(**window), agencies=[A_CHILD, B]).total == EVENTS_PER_AGENCY[A_CHILD]
    # histogram and top values count A's events only
    assert sum(n for _, n in view.event_histogram(EventQuery(**window), "1h")) == len(mine)
    assert dict(view.top_values(EventQuery(**window), "organization.id")) == {a: EVENTS_PER_AGENCY[a] for a in MINE}
    assert {v for v, _ in view.top_values(EventQuery(), "host.name", 50)} == {f"host-{a}" for a in MINE}
    assert view.top_values(EventQuery(agencies=frozenset({B})), "host.name") == []


def test_a_caller_may_narrow_its_scope_never_widen_it(store: Store) -> None:
    view = scoped(store, A)
    everything = EVERYTHING[store.dialect]
    assert view.count_events(agencies=[A, B]) == {"": EVENTS_PER_AGENCY[A]}
    assert view.count_matches(everything, None, WINDOW, agencies=[B]) == 0
    assert view.get_events(sorted(event_ids({B})), agencies=[B]) == []
    assert {m.agency for m in view.find_matches(everything, None, WINDOW, [], 100, agencies=[A_CHILD, B])} \
        == {A_CHILD}
    assert doc_ids(view.find("incidents", owned_by=OwnedBy(OWNERS["incidents"], frozenset({A_MERGED, B})))) \
        == {"inc-merged"}
    with pytest.raises(Forbidden):  # an owner filter on other fields cannot be merged with the scope
        view.find("incidents", owned_by=OwnedBy(("title",), frozenset({"inc-b"})))


def test_documents_of_a_scoped_principal_are_its_own(store: Store) -> None:
    view = scoped(store, A)
    # the limit and the sort apply to A's alerts (B's sort first)
    page = view.find("alerts", sort="first_seen", limit=50)
    assert [d.id for d in page] == [f"al-{A}-{i:03d}" for i in range(50)]
    assert len(view.find("alerts", {"status": "open"}, limit=1000)) == ALERTS_PER_AGENCY[A]
    assert len(list(view.iter_all("alerts"))) == ALERTS_PER_AGENCY[A]
    assert view.find("alerts", {"agency": B}) == []
    assert view.find("alerts", {"agency": None}) == []
    assert len(view.find("alerts", time_field="first_seen", start="2000-01-01", limit=10)) == 10
    assert doc_ids(view.find("incidents")) == {"inc-a", "inc-shared", "inc-merged", "inc-agency-only"}
    assert doc_ids(view.iter_all("incidents")) == {"inc-a", "inc-shared", "inc-merged", "inc-agency-only"}
    assert doc_ids(view.find("tasks")) == {f"task-{A}", f"task-{A_CHILD}"}
    assert doc_ids(view.find("alert_history")) == {f"h-{A}", f"h-{A_CHILD}"}
    # reports carry their incident's agencies; a province-wide summary none
    assert doc_ids(view.find("report_snapshots")) == {"R-inc-a", "R-inc-shared"}
    assert doc_ids(view.find("report_outbox")) == {"R-inc-a--cert", "R-inc-shared--cert"}
    assert doc_ids(view.find("report_receipts")) == {"R-inc-a--cert", "R-inc-shared--cert"}
    for collection, id_ in [("alerts", f"al-{A}-000"), ("incidents", "inc-shared"), ("tasks", f"task-{A_CHILD}"),
                            ("report_snapshots", "R-inc-a"), ("alert_history", f"h-{A}")]:
        assert view.get(collection, id_) is not None, (collection, id_)


def test_other_agencies_documents_do_not_exist_for_a_scoped_principal(store: Store) -> None:
    view = scoped(store, A)
    for collection, id_ in [("alerts", f"al-{B}-000"), ("alerts", f"al-{A_SIBLING}-000"), ("alerts", "al-none"),
                            ("incidents", "inc-b"), ("incidents", "inc-none"), ("incidents", "inc-sibling"),
                            ("tasks", f"task-{B}"), ("alert_history", f"h-{B}"), ("report_snapshots", "R-inc-b"),
                            ("report_snapshots", "R-summary"), ("report_outbox", "R-inc-b--cert"),
                            ("report_receipts", "R-inc-b--cert")]:
        assert store.get(collection, id_) is not None
        assert view.get(collection, id_) is None, (collection, id_)
    # collections of no agency (and any collection nobody declared) are empty for it
    for collection in (*UNOWNED_SEEDED, "no_such_collection"):
        assert view.get(collection, "x1") is None
        assert view.find(collection) == []
        assert list(view.iter_all(collection)) == []


def test_the_parent_agency_sees_its_subtree_not_its_siblings(store: Store) -> None:
    view = scoped(store, PARENT)
    subtree = {PARENT, A, A_CHILD, A_MERGED, A_SIBLING}
    assert view.count_events(group_by="organization.id") == {a: EVENTS_PER_AGENCY[a] for a in subtree}
    found = view.find_matches(EVERYTHING[store.dialect], None, WINDOW, [], 100)
    assert [m.id for m in found] == in_time_order(event_ids(set(subtree)))
    assert len(view.find("alerts", limit=1000)) == ALERTS_PER_AGENCY[A] + ALERTS_PER_AGENCY[A_SIBLING]
    assert doc_ids(view.find("incidents")) == {"inc-a", "inc-shared", "inc-merged", "inc-sibling", "inc-agency-only"}
    assert view.get("incidents", "inc-b") is None and view.get("tasks", f"task-{B}") is None
    # A's own principal does not see its sibling
    assert view.get("tasks", f"task-{A_SIBLING}") is not None
    assert scoped(store, A).get("tasks", f"task-{A_SIBLING}") is None


def test_a_merged_agencys_history_is_visible_to_its_successor(store: Store) -> None:
    merged_events = sorted(event_ids({A_MERGED}))
    assert [e["_id"] for e in scoped(store, A).get_events(merged_events)] == merged_events
    assert scoped(store, A).get("incidents", "inc-merged") is not None
    assert scoped(store, B).get_events(merged_events) == []
    assert scoped(store, B).get("incidents", "inc-merged") is None
    assert scoped(store, A_SIBLING).get("incidents", "inc-merged") is None


def test_b_sees_nothing_of_a(store: Store) -> None:
    view = scoped(store, B)
    assert view.count_events(group_by="organization.id") == {B: EVENTS_PER_AGENCY[B]}
    assert doc_ids(view.find("incidents")) == {"inc-b", "inc-shared"}
    assert doc_ids(view.find("report_snapshots")) == {"R-inc-b", "R-inc-shared"}
    assert len(view.find("alerts", limit=1000)) == ALERTS_PER_AGENCY[B]


def test_an_empty_scope_sees_nothing(store: Store) -> None:
    view = ScopedStore(store, Scope(frozenset()))
    assert view.count_events() == {"": 0} and view.count_events(group_by="host.name") == {}
    assert view.find_matches(EVERYTHING[store.dialect], None, WINDOW, [], 10) == []
    assert view.get_events([e["_id"] for e in seed_events()]) == []
    assert all(view.find(c) == [] for c in OWNERS)


# -- writes ------------------------------------------------------------------------------------
def test_writes_outside_the_scope_are_forbidden(writable: Store) -> None:
    view = scoped(writable, A)
    before = writable.get("alerts", f"al-{B}-000")
    assert before is not None
    refused: list[tuple[str, Any]] = [
        ("write B's alert", lambda: view.put("alerts", f"al-{B}-000", {**before.body, "status": "closed"})),
        ("write B's alert, versioned", lambda: view.put("alerts", f"al-{B}-000", before.body, before.version)),
        ("move B's alert into A", lambda: view.put("alerts", f"al-{B}-000", {**before.body, "agency": A})),
        ("move A's alert out", lambda: view.put("alerts", f"al-{A}-001", alert_body(B, 1))),
        ("create an alert of B", lambda: view.create("alerts", "new-b", alert_body(B, 99))),
        ("create over B's alert", lambda: view.create("alerts", f"al-{B}-001", alert_body(A, 1))),
        ("create an alert of no agency", lambda: view.create("alerts", "new-none", alert_body(None, 1))),
        ("delete B's alert", lambda: view.delete("alerts", f"al-{B}-002")),
        ("take B from a shared incident", lambda: view.put("incidents", "inc-shared", incident_body("x", [A_CHILD]))),
        ("share A's incident with B", lambda: view.put("incidents", "inc-a", incident_body("inc-a", [A, B], A))),
        ("create an incident shared with B", lambda: view.create("incidents", "inc-new", incident_body("n", [A, B]))),
        ("delete a shared incident", lambda: view.delete("incidents", "inc-shared")),
        ("write B's task", lambda: view.put("tasks", f"task-{B}", {"agency": B, "status": "done"})),
        ("write B's report", lambda: view.put("report_snapshots", "R-inc-b", {"owner_agencies": [A]})),
        ("write events of B", lambda: view.write_events([{**seed_events()[0], "_id": "new-ev-b"}])),
        ("write events of no agency", lambda: view.write_events([{"_id": "new-ev-none", "@timestamp": "2025-03-01T08:00:00.000Z"}])),
        ("purge events", lambda: view.purge_events(time.time())),
    ]
    for collection in (*UNOWNED_SEEDED, "no_such_collection"):
        body = {"agency": A, "agencies": [A], "owner_agencies": [A]}
        refused += [(f"create in {collection}", lambda c=collection, b=body: view.create(c, "x2", b)),
                    (f"put in {collection}", lambda c=collection, b=body: view.put(c, "x1", b)),
                    (f"delete in {collection}", lambda c=collection: view.delete(c, "x1"))]
    for what, write in refused:
        with pytest.raises(Forbidden):
            write()
            pytest.fail(f"{what}: not refused")
    writable.refresh()
    assert writable.get("alerts", f"al-{B}-000") == before
    assert writable.get("alerts", f"al-{A}-001").body["agency"] == A  # type: ignore[union-attr]
    assert writable.get("alerts", "new-b") is None and writable.get("incidents", "inc-new") is None
    assert writable.get("incidents", "inc-shared").body["agencies"] == [B, A_CHILD]  # type: ignore[union-attr]
    assert writable.get_events(["new-ev-b", "new-ev-none"]) == []
    assert all(writable.get(c, "x1") is not None and writable.get(c, "x2") is None for c in UNOWNED_SEEDED)


def test_writes_inside_the_scope_work(writable: Store) -> None:
    view = scoped(writable, A)
    assert view.create("alerts", "new-a", alert_body(A_CHILD, 900))
    assert not view.create("alerts", "new-a", alert_body(A_CHILD, 900))
    first = view.get("alerts", "new-a")
    assert first is not None
    second = view.put("alerts", "new-a", {**first.body, "status": "acknowledged"}, first.version)
    with pytest.raises(Conflict):
        view.put("alerts", "new-a", first.body, first.version)
    view.put("alerts", "new-a", {**first.body, "status": "closed"})
    got = view.get("alerts", "new-a")
    assert got is not None and got.body["status"] == "closed" and got.version > second
    assert view.put("tasks", "task-new", {"agency": A, "status": "sent"}) > 0
    # a shared incident may be edited as long as B stays on it
    shared = view.get("incidents", "inc-shared")
    assert shared is not None
    view.put("incidents", "inc-shared", {**shared.body, "title": "renamed"}, shared.version)
    assert writable.get("incidents", "inc-shared").body["title"] == "renamed"  # type: ignore[union-attr]
    assert view.delete("alerts", "new-a") and not view.delete("alerts", "new-a")
    assert view.write_events([{**seed_events()[0], "_id": "new-ev-a", "organization.id": A}]).created == 1


def test_put_checks_the_document_it_overwrites(writable: Store) -> None:
    """Between the scope check and the write, someone moves the document to B: the write is a
    compare-and-set on the version that was checked, so it loses, looks again and is refused."""
    writable.create("alerts", "race-1", alert_body(A, 901))

    class Racing:
        def __init__(self, store: Store) -> None:
            self.store, self.raced = store, False

        def get(self, collection: str, id_: str) -> Doc | None:
            doc = self.store.get(collection, id_)
            if not self.raced:
                self.raced = True
                self.store.put(collection, id_, alert_body(B, 901))
            return doc

        def __getattr__(self, name: str) -> Any:
            return getattr(self.store, name)

    view = ScopedStore(Racing(writable), Scope(frozenset({A})))  # type: ignore[arg-type]
    with pytest.raises(Forbidden):
        view.put("alerts", "race-1", {**alert_body(A, 901), "status": "closed"})
    assert writable.get("alerts", "race-1").body == alert_body(B, 901)  # type: ignore[union-attr]


def test_an_unscoped_principal_writes_everywhere(writable: Store) -> None:
    view = scoped(writable, None)
    assert view.create("rule_state", "r-new", {"watermark": 1})
    assert view.put("alerts", f"al-{B}-010", {**alert_body(B, 10), "status": "closed"}) > 0
    assert view.delete("playbook_runs", "x1")


def test_owners_of_reads_strings_and_lists() -> None:
    assert owners_of("incidents", incident_body("i", [A, B], A_CHILD)) == {A, B, A_CHILD}
    assert owners_of("alerts", {"agency": None}) == frozenset()
    assert owners_of("rule_state", {"agency": A}) == frozenset()
    assert owners_of("report_snapshots", {"owner_agencies": [A, 3, None]}) == {A}
    assert {i for i, (agencies, agency) in INCIDENTS.items() if not {A, A_CHILD, A_MERGED} & {*agencies, agency}} \
        == {"inc-b", "inc-sibling", "inc-none"}


def test_the_view_is_a_store_and_nothing_more(store: Store) -> None:
    view = scoped(store, A)
    assert isinstance(view, Store) and view.dialect == store.dialect
    for name in ("_conn", "transport", "path", "_store_for_tests"):
        with pytest.raises(AttributeError):
            getattr(view, name)
    view.close()  # the view does not own the store
    assert store.get("alerts", f"al-{A}-000") is not None
