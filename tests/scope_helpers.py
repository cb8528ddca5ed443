"""Helpers for the agency-scope tests (tests/test_scope*.py): the stores they run on (SQLite
and the real OpenSearch), an agency tree with a parent, children, a sibling and a merger, and
seed data of every agency-owned kind.

The tree::

    tinh (province)
    ├── so-x (department: the parent of A)
    │   ├── xa-a (A)
    │   │   └── thon-a (A's child)
    │   ├── xa-c (A's sibling)
    │   └── xa-old (merged into xa-a: its history belongs to A)
    └── so-b (B)
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from soc.access import Principal
from soc.agencies import Agency, AgencyTree
from soc.catalog import default_catalog
from soc.export import snapshot as snapshots
from soc.model import Event, iso
from soc.store.base import Store, Window
from soc.store.scoped import ScopedStore
from soc.store.sqlite import SQLiteStore
from tests.search_helpers import drop, open_search_store
from tests.store_contract import DAY1

A, A_CHILD, A_SIBLING, A_MERGED, PARENT, B = "xa-a", "thon-a", "xa-c", "xa-old", "so-x", "so-b"
TREE = AgencyTree((
    Agency(id="tinh", name="Tỉnh", level="province"),
    Agency(id=PARENT, name="Sở X", level="department", parent="tinh"),
    Agency(id=A, name="Xã A", level="commune", parent=PARENT),
    Agency(id=A_CHILD, name="Thôn A", level="other", parent=A),
    Agency(id=A_SIBLING, name="Xã C", level="commune", parent=PARENT),
    Agency(id=A_MERGED, name="Xã cũ", level="commune", parent=PARENT, merged_into=A),
    Agency(id=B, name="Sở B", level="department", parent="tinh"),
), Agency(id="unknown", name="Chưa xác định"))

#: events per agency (None: an event no agency owns); B's are the oldest, so a limit or a
#: page taken before the agency filter would be B's
EVENTS_PER_AGENCY: dict[str | None, int] = {B: 6, A: 4, A_CHILD: 2, A_MERGED: 1, A_SIBLING: 2, PARENT: 1, None: 1}
#: a window on event time covering every seeded event
WINDOW = Window(DAY1.timestamp() - 1, DAY1.timestamp() + 3600, "@timestamp")
#: a predicate selecting everything, and one selecting user.name "root", per dialect
EVERYTHING = {"sqlite": "1 = 1", "dsl": {"match_all": {}}}
ROOT_USER = {"sqlite": "`user.name` = 'root'", "dsl": {"term": {"user.name.lc": "root"}}}
#: alerts per agency for the paging test: more than a limit of 50 for A, B's sorted first
ALERTS_PER_AGENCY = {B: 60, A: 55, A_SIBLING: 3}
#: collections that belong to no agency, seeded with one document each
UNOWNED_SEEDED = ("rule_state", "playbook_runs", "exceptions", "users", "audit")


def scoped(store: Store, agency: str | None) -> ScopedStore:
    """The view of a user of ``agency`` (None: a user who sees every agency)."""
    return ScopedStore.for_principal(store, Principal(name="u", roles=frozenset({"agency"}), agency=agency), TREE)


def seed_events() -> list[Event]:
    events: list[Event] = []
    n = 0
    for agency, count in EVENTS_PER_AGENCY.items():
        for i in range(count):
            event: Event = {"_id": f"ev-{agency or 'none'}-{i}", "@timestamp": iso(DAY1 + timedelta(seconds=n)),
                            "event.dataset": "linux.sshd", "host.name": f"host-{agency or 'none'}",
                            "user.name": "root" if i % 2 == 0 else "alice", "message": f"login {n}"}
            if agency is not None:
                event["organization.id"] = agency
            events.append(event)
            n += 1
    return events


def event_ids(agencies: set[str | None]) -> set[str]:
    return {e["_id"] for e in seed_events() if e.get("organization.id") in agencies}


def alert_body(agency: str | None, i: int) -> dict[str, Any]:
    return {"id": f"al-{agency}-{i:03d}", "agency": agency, "rule": "r1", "status": "open",
            "first_seen": iso(DAY1 + timedelta(seconds=(0 if agency == B else 1000) + i))}


def incident_body(id_: str, agencies: list[str], agency: str | None = None) -> dict[str, Any]:
    return {"id": id_, "title": id_, "agency": agency, "agencies": agencies, "status": "open",
            "opened_at": iso(DAY1)}


#: incidents: id -> (agencies list, agency)
INCIDENTS: dict[str, tuple[list[str], str | None]] = {
    "inc-a": ([A], A), "inc-b": ([B], B), "inc-shared": ([B, A_CHILD], B), "inc-merged": ([A_MERGED], None),
    "inc-sibling": ([A_SIBLING], A_SIBLING), "inc-agency-only": ([], A), "inc-none": ([], None),
}


def seed_docs(store: Store) -> None:
    for agency, count in ALERTS_PER_AGENCY.items():
        for i in range(count):
            body = alert_body(agency, i)
            assert store.create("alerts", body["id"], body)
    assert store.create("alerts", "al-none", alert_body(None, 0))
    for id_, (agencies, agency) in INCIDENTS.items():
        assert store.create("incidents", id_, incident_body(id_, agencies, agency))
    for agency in (A, A_CHILD, B, A_SIBLING):
        assert store.create("tasks", f"task-{agency}", {"id": f"task-{agency}", "agency": agency, "status": "sent"})
        assert store.create("alert_history", f"h-{agency}", {"alert_id": f"al-{agency}-000", "agency": agency,
                                                             "action": "ack"})
    for id_ in ("inc-a", "inc-b", "inc-shared"):
        agencies, agency = INCIDENTS[id_]
        snap = {"report_no": f"R-{id_}", "document": "incident_report", "kind": "initial",
                "built_at": iso(DAY1), "incident": incident_body(id_, agencies, agency)}
        assert snapshots.save(store, snap)
        owners = snapshots.owner_agencies(snap)
        assert store.create("report_outbox", f"R-{id_}--cert", {"report_no": f"R-{id_}", "status": "pending",
                                                                 "owner_agencies": owners})
        assert store.create("report_receipts", f"R-{id_}--cert", {"report_no": f"R-{id_}", "owner_agencies": owners})
    assert snapshots.save(store, {"report_no": "R-summary", "document": "summary_report", "kind": "monthly",
                                  "built_at": iso(DAY1)})
    for collection in UNOWNED_SEEDED:
        assert store.create(collection, "x1", {"agency": A, "agencies": [A], "owner_agencies": [A]})


def seed(store: Store) -> None:
    result = store.write_events(seed_events())
    assert (result.created, result.rejected) == (len(seed_events()), [])
    seed_docs(store)
    store.refresh()


def open_kind(kind: str, request: pytest.FixtureRequest, folder: Path) -> Store:
    """A fresh, empty store of ``kind`` (``sqlite`` or ``opensearch``)."""
    if kind == "sqlite":
        return SQLiteStore(folder / "soc.db", numeric_fields=default_catalog().numeric_fields)
    url = request.getfixturevalue("opensearch_url")
    return open_search_store(url, f"t-scope-{uuid.uuid4().hex[:10]}")


def close_kind(store: Store) -> None:
    if isinstance(store, SQLiteStore):
        store.close()
    else:
        drop(store)  # type: ignore[arg-type]


STORE_KINDS = ["sqlite", pytest.param("opensearch", marks=pytest.mark.search)]


def store_fixture(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                  *, seeded: bool) -> Iterator[Store]:
    """Body of the store fixtures of the scope tests (parametrized over :data:`STORE_KINDS`)."""
    store = open_kind(request.param, request, tmp_path_factory.mktemp("scope"))
    try:
        if seeded:
            seed(store)
        yield store
    finally:
        close_kind(store)

