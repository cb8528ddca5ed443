"""Document queries through the agency scope (``ScopedStore``) and the audit trail
(``AuditedStore``) on SQLite and the real OpenSearch: a scoped principal's pages, totals and
group-by buckets hold only its agencies' documents, a collection of no agency gives it nothing,
its own owner filter can only narrow, and reads are forwarded unrecorded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from soc.access import Forbidden, Principal, Scope
from soc.audit.store import AuditedStore
from soc.audit.trail import AuditTrail
from soc.store.base import DocQuery, OwnedBy, Store
from soc.store.scoped import ScopedStore
from tests.doc_query_data import BODIES, every_page, groups, ordered
from tests.event_search_data import STORE_KINDS, fresh_store

#: incidents: owned by a list field (``agencies``) or a string (``agency``)
INCIDENTS: dict[str, dict[str, Any]] = {
    "i1": {"agencies": ["ag-a", "ag-c"], "title": "shared", "severity": 3},
    "i2": {"agencies": ["ag-c"], "title": "other agency", "severity": 2},
    "i3": {"agency": "ag-a", "title": "own", "severity": 1},
    "i4": {"agencies": [], "agency": "AG-A", "title": "case differs", "severity": 5},
    "i5": {"title": "nobody's", "severity": 4},
}
MINE = frozenset({"ag-a", "AG-B"})


@pytest.fixture(scope="module", params=STORE_KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def store(kind: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    for store in fresh_store(kind, request, tmp_path_factory.mktemp("scope")):
        for id_, body in BODIES.items():
            store.create("alerts", id_, body)
            store.create("cases", id_, body)  # a collection nobody declared: no agency owns it
        for id_, body in INCIDENTS.items():
            store.create("incidents", id_, body)
        store.create("playbook_runs", "run-1", {"agency": "ag-a", "status": "done"})
        store.refresh()
        yield store


def visible_alerts(agencies: frozenset[str]) -> set[str]:
    return {i for i, body in BODIES.items() if body.get("agency") in agencies}


def test_a_scoped_principal_pages_and_counts_only_its_agencies_documents(store: Store) -> None:
    scoped = ScopedStore(store, Scope(MINE))
    mine = visible_alerts(MINE)
    assert mine and mine != set(BODIES)
    for order in ("asc", "desc"):
        found, pages = every_page(scoped, lambda c, o=order: DocQuery("alerts", sort=("first_seen",), order=o,
                                                                       size=4, cursor=c))
        assert found == ordered(mine, ("first_seen",), order == "desc")
        assert all(page.total == len(mine) and page.total_exact for page in pages)
    assert scoped.count_documents(DocQuery("alerts")) == [((), len(mine))]
    assert scoped.count_documents(DocQuery("alerts"), ("agency",)) == groups(mine, ("agency",), (100,))
    assert scoped.count_documents(DocQuery("alerts"), ("agency", "rule.id", "entities.host.name"), size=2) == \
        groups(mine, ("agency", "rule.id", "entities.host.name"), (2, 2, 2))


def test_filters_cannot_reach_outside_the_scope(store: Store) -> None:
    scoped = ScopedStore(store, Scope(frozenset({"ag-a"})))
    query = DocQuery("alerts", filters=[("agency", "in", ["ag-b", "ag-c"])], size=1000)
    assert scoped.query_documents(query).docs == []
    assert scoped.count_documents(query, ("agency",)) == []
    text = DocQuery("alerts", text="ag-", text_fields=("agency",), size=1000)
    assert {d.id for d in scoped.query_documents(text).docs} == visible_alerts(frozenset({"ag-a"}))


def test_list_and_string_owner_fields_compare_exactly(store: Store) -> None:
    scoped = ScopedStore(store, Scope(frozenset({"ag-a"})))
    page = scoped.query_documents(DocQuery("incidents", sort=("severity",), size=10))
    assert [d.id for d in page.docs] == ["i3", "i1"] and page.total == 2
    assert scoped.count_documents(DocQuery("incidents"), ("agencies",)) == [(("ag-a",), 1), (("ag-c",), 1)]
    everyone = ScopedStore(store, Scope(None))
    assert everyone.count_documents(DocQuery("incidents")) == [((), len(INCIDENTS))]


def test_a_callers_own_owner_filter_narrows_and_cannot_widen(store: Store) -> None:
    scoped = ScopedStore(store, Scope(MINE))
    narrowed = OwnedBy(("agency",), frozenset({"ag-a", "ag-c"}))
    ids = {d.id for d in scoped.query_documents(DocQuery("alerts", size=1000), owned_by=narrowed).docs}
    assert ids == visible_alerts(frozenset({"ag-a"}))
    assert scoped.count_documents(DocQuery("alerts"), owned_by=narrowed) == [((), len(ids))]
    with pytest.raises(Forbidden):
        scoped.query_documents(DocQuery("alerts"), owned_by=OwnedBy(("assignee",), frozenset({"ag-a"})))
    everyone = ScopedStore(store, Scope(None))
    assert {d.id for d in everyone.query_documents(DocQuery("alerts", size=1000), owned_by=narrowed).docs} == \
        visible_alerts(frozenset({"ag-a", "ag-c"}))
    nobody = OwnedBy(("agency",), frozenset())
    assert everyone.query_documents(DocQuery("alerts"), owned_by=nobody).total == 0
    assert everyone.count_documents(DocQuery("alerts"), ("status",), owned_by=nobody) == []


@pytest.mark.parametrize("collection", ["cases", "playbook_runs"])
def test_a_collection_of_no_agency_gives_a_scoped_principal_nothing(store: Store, collection: str) -> None:
    scoped = ScopedStore(store, Scope(MINE))
    page = scoped.query_documents(DocQuery(collection, size=1000))
    assert (page.docs, page.cursor, page.total) == ([], None, 0)
    assert scoped.count_documents(DocQuery(collection)) == [((), 0)]
    assert scoped.count_documents(DocQuery(collection), ("status",)) == []
    with pytest.raises(ValueError):  # bad input is refused all the same
        scoped.query_documents(DocQuery(collection, cursor="not-a-cursor"))
    with pytest.raises(ValueError):
        scoped.count_documents(DocQuery(collection), ("status",), size=0)
    everyone = ScopedStore(store, Scope(None))
    assert everyone.count_documents(DocQuery(collection)) != [((), 0)]


def test_the_audited_store_forwards_document_queries_unrecorded(store: Store, tmp_path: Path) -> None:
    scoped = ScopedStore(store, Scope(MINE))
    trail = AuditTrail(store)
    before = len(list(trail.records()))
    audited = AuditedStore(scoped, trail, Principal(name="ann", roles=frozenset({"analyst"}), agency="ag-a"))
    mine = visible_alerts(MINE)
    page = audited.query_documents(DocQuery("alerts", size=1000))
    assert {d.id for d in page.docs} == mine
    assert audited.count_documents(DocQuery("alerts"), ("agency",)) == groups(mine, ("agency",), (100,))
    assert audited.query_documents(DocQuery("cases")).total == 0
    assert len(list(trail.records())) == before
