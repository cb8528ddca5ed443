"""The one lease primitive (:mod:`soc.store.lease`) on the embedded store: claim when free or
expired, skip a live lease, lose to a concurrent writer, renew, release, keep alive, wait."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from soc.clock import epoch_clock
from soc.store.base import Store
from soc.store.lease import REMOVE, LeaseBusy, LeaseFields, LeaseLost, Leases, owner_gone, owner_id
from soc.store.sqlite import SQLiteStore

T0 = datetime(2030, 1, 1, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = SQLiteStore(tmp_path / "soc.db")
    yield s
    s.close()


def test_claim_skip_expire_take_over_release(store: Store) -> None:
    clock = Clock()
    a = Leases(store, "things", seconds=60, owner="a", clock=clock)
    b = Leases(store, "things", seconds=60, owner="b", clock=clock)
    claim = a.claim("t1", None, changes={"n": 1})  # a new document
    assert claim is not None and claim.held
    assert claim.body == {"n": 1, "lease_owner": "a", "lease_until": (T0 + timedelta(seconds=60)).timestamp()}
    assert b.claim("t1") is None  # live: skipped
    assert a.claim("t1") is not None  # its own lease: claimed again
    clock.now += timedelta(seconds=61)
    taken = b.claim("t1", changes={"n": 2})
    assert taken is not None and b.holder(taken.body) == "b"
    with pytest.raises(LeaseLost):  # a's version is stale: its writes fail from now on
        claim.write(n=3)
    assert claim.lost.is_set()
    taken.release(n=4)
    doc = store.get("things", "t1")
    assert doc is not None and doc.body == {"n": 4}  # REMOVE: the lease fields are gone
    assert not a.held_by_other(doc.body)


def test_a_stale_read_loses_the_compare_and_set(store: Store) -> None:
    a = Leases(store, "things", seconds=60, owner="a")
    b = Leases(store, "things", seconds=60, owner="b")
    assert a.claim("t1", None) is not None
    doc = store.get("things", "t1")
    assert doc is not None
    store.put("things", "t1", {"lease_owner": None, "lease_until": 0})  # released meanwhile
    assert b.claim("t1", doc) is None  # its read is stale: a held it then
    fresh = store.get("things", "t1")
    assert b.claim("t1", fresh) is not None
    assert a.claim("t1", fresh) is None  # the same version was claimed by b first


def test_iso_stamps_without_owner_and_vacant_value(store: Store) -> None:
    clock = Clock()
    fields = LeaseFields(owner=None, until="lease_until", stamp="iso", vacant=None)
    leases = Leases(store, "outbox", seconds=300, clock=clock, fields=fields)
    claim = leases.claim("e1", None, changes={"status": "sending"})
    assert claim is not None and claim.body == {"status": "sending", "lease_until": "2030-01-01T00:05:00.000Z"}
    assert leases.claim("e1") is None  # no owner field: any live lease is someone else's
    claim.release(status="delivered")
    assert claim.body == {"status": "delivered", "lease_until": None}
    assert leases.claim("e1") is not None


def test_abandoned_holders_are_free_before_expiry(store: Store) -> None:
    fields = LeaseFields(owner="owner", until="until", vacant=0)
    dead = Leases(store, "runs", seconds=600, owner="gone", fields=fields)
    assert dead.claim("r1", None) is not None
    live = Leases(store, "runs", seconds=600, owner="me", fields=fields, abandoned=lambda who: who == "gone")
    claim = live.claim("r1")
    assert claim is not None
    claim.release()
    assert claim.body == {"owner": None, "until": 0}


def test_renew_and_keep_alive(store: Store) -> None:
    clock = [1_900_000_000.0]
    leases = Leases(store, "things", seconds=0.3, owner="a", clock=epoch_clock(lambda: clock[0]))
    claim = leases.claim("t1", None)
    assert claim is not None
    before = claim.body["lease_until"]
    clock[0] += 10
    claim.renew(note="x")
    assert claim.body["lease_until"] == pytest.approx(before + 10) and claim.body["note"] == "x"
    with claim.keep_alive("test", lambda: {"beat": clock[0]}):
        clock[0] += 5
        time.sleep(0.35)  # at least one beat (every 0.1 s)
    assert claim.body["lease_until"] == pytest.approx(before + 15) and claim.body["beat"] == clock[0]
    version = claim.version
    time.sleep(0.25)
    assert claim.version == version  # the heartbeat stopped with the block


def test_keep_alive_stops_when_the_lease_is_taken_over(store: Store) -> None:
    leases = Leases(store, "things", seconds=0.15, owner="a")
    claim = leases.claim("t1", None)
    assert claim is not None
    lost = threading.Event()
    claim.on_lost = lost.set
    with claim.keep_alive("test"):
        store.put("things", "t1", {"lease_owner": "b", "lease_until": time.time() + 60})
        assert lost.wait(2)
    with pytest.raises(LeaseLost):
        claim.release()


def test_acquire_waits_then_reports_the_holder(store: Store) -> None:
    holder = Leases(store, "locks", seconds=0.4, owner="holder")
    assert holder.claim("k", None) is not None
    other = Leases(store, "locks", seconds=60, owner="other")
    with pytest.raises(LeaseBusy) as busy:
        other.acquire("k", wait=0.1)
    assert busy.value.holder == "holder"
    assert other.acquire("k", wait=2).body["lease_owner"] == "other"  # after the expiry


def test_owner_identity() -> None:
    me = owner_id()
    host, pid, nonce = me.split(":")
    assert int(pid) > 0 and len(nonce) == 6
    assert not owner_gone(me)  # this process
    assert owner_gone(None) and owner_gone(f"{host}:999999999:abcdef")
    assert not owner_gone("another-host:1:abcdef")  # cannot tell: not gone
    assert repr(REMOVE) == "REMOVE"
