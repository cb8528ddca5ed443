"""The TAXII server's object store (soc/intel/taxii_objects.py) on its own: a write in progress
holds readers back (no page passes over it), one left behind by a dead writer stops doing so,
every request's ``date_added`` is strictly later than the previous one's even when the clock
says otherwise, cursors belong to their collection, and a status resource is kept at least 24
hours (the time taken from a clock)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from soc.intel.taxii_objects import (
    PENDING_SECONDS,
    STATE,
    AddResult,
    Filters,
    TaxiiObjects,
    TaxiiRequestError,
    load_status,
    parse_timestamp,
    save_status,
    timestamp_text,
)
from soc.store.sqlite import SQLiteStore
from tests.taxii_server_helpers import indicator

T0 = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStore:
    return SQLiteStore(tmp_path / "soc.db")


def ids(objects: TaxiiObjects, collection: str = "c", **filters: object) -> list[str]:
    out, cursor = [], None
    while True:
        page = objects.page(collection, Filters(**filters), 2, cursor)  # type: ignore[arg-type]
        out += [r.object_id for r in page.records]
        if not page.more:
            return out
        cursor = page.next


def test_a_write_in_progress_holds_readers_back_until_done_or_abandoned(store: SQLiteStore) -> None:
    clock = Clock()
    objects = TaxiiObjects(store, clock=clock)
    objects.add("c", [indicator(1)])
    first, _, block = objects._claim("c", 2)  # a writer took seq 2-3 and has not written yet
    objects.add("c", [indicator(4)])  # a later write finishes first (seq 4)
    assert ids(objects) == [indicator(1)["id"]]  # seq 4 is not shown before 2-3 are there
    objects._release("c", block)
    assert ids(objects) == [indicator(1)["id"], indicator(4)["id"]]
    objects._claim("c", 1)  # a writer that dies
    objects.add("c", [indicator(6)])
    assert indicator(6)["id"] not in ids(objects)
    clock.now += timedelta(seconds=PENDING_SECONDS + 1)
    assert indicator(6)["id"] in ids(objects)


def test_date_added_grows_with_every_request_even_when_the_clock_does_not(store: SQLiteStore) -> None:
    clock = Clock()
    objects = TaxiiObjects(store, clock=clock)
    a = objects.add("c", [indicator(1), indicator(2)])
    b = objects.add("c", [indicator(3)])  # the same instant
    clock.now -= timedelta(minutes=5)  # the clock steps back
    c = objects.add("c", [indicator(4)])
    assert a.date_added == timestamp_text(parse_timestamp("2026-12-07T08:00:00Z"))
    assert a.date_added < b.date_added < c.date_added  # type: ignore[operator]
    after_a = parse_timestamp(a.date_added or "")
    assert ids(objects, added_after=after_a) == [indicator(3)["id"], indicator(4)["id"]]  # exclusive
    assert ids(objects, added_after=after_a - 1) == [indicator(n)["id"] for n in (1, 2, 3, 4)]


def test_concurrent_writers_lose_nothing_and_leave_nothing_pending(store: SQLiteStore) -> None:
    objects = TaxiiObjects(store)
    batches = [[indicator(w * 100 + n) for n in range(40)] for w in range(4)]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda batch: objects.add("c", batch), batches))
    assert len({r.date_added for r in results}) == 4  # one date_added per request, all different
    got = ids(objects)
    assert len(got) == 160 and set(got) == {o["id"] for batch in batches for o in batch}
    state = store.get(STATE, "c")
    assert state is not None and state.body["seq"] == 160 and state.body["pending"] == []
    assert objects.visible("c") == 160


def test_cursors_belong_to_their_collection(store: SQLiteStore) -> None:
    objects = TaxiiObjects(store)
    objects.add("c", [indicator(n) for n in range(3)])
    page = objects.page("c", Filters(), 1)
    assert page.more and page.next
    with pytest.raises(TaxiiRequestError, match="invalid next"):
        objects.page("other", Filters(), 1, page.next)
    for bad in ("", "t1.", "t1.!!!", "x" * 500):
        if bad:
            with pytest.raises(TaxiiRequestError):
                objects.page("c", Filters(), 1, bad)


def test_a_status_is_kept_24_hours_at_least(store: SQLiteStore) -> None:
    result = AddResult(date_added=None, successes=[{"id": "indicator--1", "version": "v"}])
    status = save_status(store, "c", result, requested_at=T0, keep=timedelta(hours=24), by="an")
    assert load_status(store, status["id"], now=T0 + timedelta(hours=23, minutes=59)) == ("c", status)
    assert load_status(store, status["id"], now=T0 + timedelta(hours=24)) is None
    assert load_status(store, status["id"], now=T0) is None  # deleted once expired
    assert load_status(store, "not-a-uuid", now=T0) is None
