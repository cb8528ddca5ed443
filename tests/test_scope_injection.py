"""The agency filter cannot be talked out of its agencies (issue #10, item 2), on SQLite and
the real OpenSearch: agency ids and filter values that look like SQL, Lucene, wildcards, JSON
or regular expressions are data -- SQL parameters and ``terms`` values -- so a principal
scoped to such an id sees exactly that agency's rows, never another's, and no query fails
with anything but a clean error."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from soc.access import Scope
from soc.model import Event, iso
from soc.store.base import EventQuery, OwnedBy, Store, StoreError
from soc.store.scoped import ScopedStore
from tests.scope_helpers import EVERYTHING, STORE_KINDS, WINDOW, close_kind, open_kind
from tests.store_contract import DAY1

#: agency ids that would widen a filter built as text
ODD = ["a' OR '1'='1", "*", "a OR b", '{"$ne":1}', "a%", "a_", "a*", '"', "\\", "a) OR (1=1", "a\" OR \"1\"=\"1",
       "'; DROP TABLE events; --", "organization.id:*", "/.*/", "$.agency", "Sở Tài chính", "a\nb"]
#: the plain agencies next to them; "a" and "b" are what the odd ids try to reach
PLAIN = ["a", "b", "A", "ab"]
AGENCIES = [*ODD, *PLAIN]


def _events() -> list[Event]:
    events: list[Event] = []
    for n, agency in enumerate(AGENCIES):
        for i in range(2):
            events.append({"_id": f"ev-{n}-{i}", "@timestamp": iso(DAY1), "event.dataset": "linux.sshd",
                           "organization.id": agency, "user.name": "root", "message": f"event of {agency}"})
    events.append({"_id": "ev-none", "@timestamp": iso(DAY1), "event.dataset": "linux.sshd", "message": "none"})
    return events


@pytest.fixture(scope="module", params=STORE_KINDS)
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    store = open_kind(request.param, request, tmp_path_factory.mktemp("inject"))
    try:
        assert store.write_events(_events()).created == len(_events())
        for n, agency in enumerate(AGENCIES):
            assert store.create("alerts", f"al-{n}", {"agency": agency, "status": "open"})
            assert store.create("incidents", f"inc-{n}", {"agencies": [agency], "agency": None})
            assert store.create("report_snapshots", f"R-{n}", {"owner_agencies": [agency], "document": "x"})
        store.refresh()
        yield store
    finally:
        close_kind(store)


def _ids_of(agency: str) -> list[str]:
    n = AGENCIES.index(agency)
    return [f"ev-{n}-0", f"ev-{n}-1"]


@pytest.mark.parametrize("agency", ODD)
def test_an_odd_agency_id_selects_exactly_its_own_rows(store: Store, agency: str) -> None:
    view = ScopedStore(store, Scope(frozenset({agency})))
    n = AGENCIES.index(agency)
    every_id = [e["_id"] for e in _events()]
    found = view.find_matches(EVERYTHING[store.dialect], None, WINDOW, ["message"], 100)
    assert [m.id for m in found] == _ids_of(agency)
    assert {m.agency for m in found} == {agency}
    assert [[m.id for m in ms] for ms in view.find_matches_many([EVERYTHING[store.dialect]], None, WINDOW, [], 100)] \
        == [_ids_of(agency)]
    assert view.count_matches(EVERYTHING[store.dialect], None, WINDOW) == 2
    assert view.count_events() == {"": 2}
    assert view.count_events(group_by="organization.id") == {agency: 2}
    assert [e["_id"] for e in view.get_events(every_id)] == _ids_of(agency)
    assert [d.id for d in view.find("alerts")] == [f"al-{n}"]
    assert [d.id for d in view.iter_all("alerts")] == [f"al-{n}"]
    assert [d.id for d in view.find("incidents")] == [f"inc-{n}"]
    assert [d.id for d in view.find("report_snapshots")] == [f"R-{n}"]
    assert view.get("alerts", f"al-{AGENCIES.index('a')}") is None
    page = view.search_events(EventQuery(size=100, order="asc"))
    assert sorted(e["_id"] for e in page.events) == _ids_of(agency) and page.total == 2
    assert view.top_values(EventQuery(), "organization.id") == [(agency, 2)]
    assert sum(n for _, n in view.event_histogram(EventQuery(), "1d")) == 2


@pytest.mark.parametrize("value", ODD)
def test_odd_filter_values_never_widen_a_scope(store: Store, value: str) -> None:
    """A principal of ``a`` asking for an odd agency, or filtering on one, gets nothing of it."""
    view = ScopedStore(store, Scope(frozenset({"a"})))
    assert view.count_events(agencies=[value]) == {"": 0}
    assert view.find_matches(EVERYTHING[store.dialect], None, WINDOW, [], 100, agencies=[value]) == []
    assert view.get_events([e["_id"] for e in _events()], agencies=[value]) == []
    assert view.find("alerts", {"agency": value}) == []
    assert view.search_events(EventQuery(agencies=frozenset({value}))).events == []
    assert view.search_events(EventQuery(filters=(("organization.id", "equals", value),))).events == []
    assert view.top_values(EventQuery(), "organization.id", agencies=[value]) == []
    assert view.find("alerts", {"agency": [value, "b"]}) == []
    assert view.find("incidents", owned_by=OwnedBy(("agencies", "agency"), frozenset({value}))) == []
    assert [d.id for d in view.find("alerts", {"status": value})] == []
    # and an unscoped read with the same values finds exactly the rows of that value
    assert [d.id for d in store.find("alerts", {"agency": value})] == [f"al-{AGENCIES.index(value)}"]
    assert store.count_events(agencies=[value]) == {"": 2}


def test_a_scope_of_every_odd_id_sees_none_of_the_plain_agencies(store: Store) -> None:
    view = ScopedStore(store, Scope(frozenset(ODD)))
    counts = view.count_events(group_by="organization.id")
    assert counts == dict.fromkeys(ODD, 2)
    assert {d.body["agency"] for d in view.find("alerts", limit=1000)} == set(ODD)
    assert not {m.agency for m in view.find_matches(EVERYTHING[store.dialect], None, WINDOW, [], 1000)} & set(PLAIN)


def test_odd_owner_field_names_are_refused_cleanly(store: Store) -> None:
    """Owner fields come from soc/store/scoped.py, not from users; a field name that a store
    cannot use as given is refused with a StoreError (SQLite) or matches nothing (OpenSearch)."""
    for field in ['agency"', "a\\b", "agency') OR 1=1 --"]:
        try:
            found = store.find("alerts", owned_by=OwnedBy((field,), frozenset({"a"})))
        except StoreError:
            continue
        assert found == []
