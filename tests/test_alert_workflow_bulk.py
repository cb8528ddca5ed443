"""Bulk alert changes by query (issue #10, item 4): exact counts, small sets at once, large
ones as a background job that resumes after its process stops -- on SQLite and OpenSearch."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from soc.access import Forbidden, Principal
from soc.alerts import AlertChange, AlertNotFound, AlertQuery, AlertWorkflow, BulkAlerts
from soc.alerts.model import HISTORY
from soc.config import AlertSettings
from soc.model import iso
from soc.store.base import Store
from soc.store.sqlite import SQLiteStore
from tests.test_alert_workflow import ANALYST, READER, T0, any_store, clock_at, make_alert, seed

__all__ = ["any_store"]  # the fixture, imported


class Killed(BaseException):
    """The process dies (nothing catches it: no clean-up is written)."""


class Dying:
    """A store that dies after ``after`` writes to ``collection`` (``create`` or ``put``)."""

    def __init__(self, store: Store, after: int, collection: str = "alerts", op: str = "put") -> None:
        self.inner, self.after, self.collection, self.op = store, after, collection, op

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _count(self, op: str, collection: str) -> None:
        if op == self.op and collection == self.collection:
            self.after -= 1
            if self.after < 0:
                raise Killed

    def put(self, collection: str, id: str, body: dict[str, Any], expected_version: int | None = None) -> int:
        self._count("put", collection)
        return self.inner.put(collection, id, body, expected_version=expected_version)

    def create(self, collection: str, id: str, body: dict[str, Any]) -> bool:
        self._count("create", collection)
        return self.inner.create(collection, id, body)


def settings(threshold: int = 100, page: int = 4) -> AlertSettings:
    return AlertSettings(bulk_background_threshold=threshold, bulk_page_size=page, job_lease_seconds=60)


def job_history(store: Store, job_id: str) -> list[dict[str, Any]]:
    store.refresh()
    return [d.body for d in store.find(HISTORY, {"job": job_id}, limit=100_000)]


def statuses(store: Store) -> dict[str, str]:
    store.refresh()
    return {d.id: d.body["status"] for d in store.find("alerts", None, limit=100_000)}


def wait_for(bulk: BulkAlerts, job_id: str, seconds: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job = bulk.job(ANALYST, job_id)
        if job["status"] in ("succeeded", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def seed_many(store: Store) -> None:
    """14 db01 alerts (3 closed already) over several first-seen times, 6 on web01."""
    alerts = [make_alert(f"d{n:02d}", host="db01", first_seen=T0 + timedelta(minutes=n // 5),
                         status="closed" if n in (2, 7, 11) else "new") for n in range(14)]
    alerts += [make_alert(f"w{n:02d}", host="web01", first_seen=T0 + timedelta(minutes=n)) for n in range(6)]
    seed(store, *alerts)


def test_a_small_bulk_change_runs_at_once_with_exact_counts(any_store: Store) -> None:
    seed_many(any_store)
    bulk = BulkAlerts(any_store, settings=settings(), clock=clock_at(T0))
    query = AlertQuery(host="db01")
    assert bulk.count(ANALYST, query) == 14
    job = bulk.apply(ANALYST, query, AlertChange("close", reason="benign", note="backup job"))
    assert job["status"] == "succeeded" and job["matched"] == 14
    assert job["counts"] == {"changed": 11, "unchanged": 3, "invalid": 0, "concurrent": 0, "missing": 0}
    assert job["created_by"] == "an" and job["describe"] == "close (benign)"
    entries = job_history(any_store, job["id"])
    assert len(entries) == 11 and {e["actor"] for e in entries} == {"an"}
    now = statuses(any_store)
    assert all(now[f"d{n:02d}"] == "closed" for n in range(14))
    assert all(now[f"w{n:02d}"] == "new" for n in range(6))  # not matched: untouched

    acked = bulk.apply(ANALYST, AlertQuery(host="db01"), AlertChange("ack"))
    assert acked["counts"]["invalid"] == 14 and acked["counts"]["changed"] == 0  # closed: reopen first
    assigned = bulk.apply(ANALYST, AlertQuery(since=iso(T0 + timedelta(minutes=2)), host="web01"),
                          AlertChange("assign", assignee="chi"))
    assert assigned["counts"]["changed"] == 4  # w02..w05
    assert {j["id"] for j in bulk.jobs(READER)} == {job["id"], acked["id"], assigned["id"]}
    with pytest.raises(Forbidden):
        bulk.apply(READER, query, AlertChange("ack"))


def test_a_large_bulk_change_runs_as_a_background_job(any_store: Store) -> None:
    seed_many(any_store)
    bulk = BulkAlerts(any_store, settings=settings(threshold=5, page=3), clock=clock_at(T0))
    job = bulk.apply(ANALYST, AlertQuery(status="open"), AlertChange("ack"))
    assert job["status"] == "pending" and job["id"].startswith("job-")
    done = wait_for(bulk, job["id"])
    assert done["status"] == "succeeded", done
    assert done["counts"] == {"changed": 17, "unchanged": 0, "invalid": 0, "concurrent": 0, "missing": 0}
    assert done["pages"] >= 6 and done["processed"] == 17
    assert len(job_history(any_store, job["id"])) == 17
    assert sorted(statuses(any_store).values()).count("acknowledged") == 17
    waited = bulk.apply(ANALYST, AlertQuery(status="acknowledged"), AlertChange("close", reason="duplicate"),
                        wait=True)
    assert waited["status"] == "succeeded" and waited["counts"]["changed"] == 17


@pytest.mark.parametrize("dies_at", ["alert write", "history write"])
def test_a_job_resumes_after_its_process_stopped(any_store: Store, dies_at: str) -> None:
    """The process dies in the middle of a page (after the alert write, or between the alert
    write and its history entry); another takes the job over when the lease has run out and
    ends with the exact count: each alert changed once, with one history entry."""
    seed_many(any_store)
    query = AlertQuery(status="open")  # a changed alert no longer matches: it is not read again
    dying = Dying(any_store, 7, *(("alerts", "put") if dies_at == "alert write" else (HISTORY, "create")))
    first = BulkAlerts(dying, settings=settings(threshold=5, page=3), clock=clock_at(T0))  # type: ignore[arg-type]
    job = first.submit(ANALYST, query, AlertChange("close", reason="false_positive", note="lab"))
    with pytest.raises(Killed):
        first.run(job["id"])
    stopped = first.job(ANALYST, job["id"])
    assert stopped["status"] == "running" and stopped["pages"] == 2  # two pages saved, the third cut off

    later = clock_at(T0 + timedelta(minutes=5))
    busy = BulkAlerts(any_store, settings=settings(threshold=5, page=3), clock=clock_at(T0 + timedelta(seconds=10)))
    assert busy.run(job["id"], ANALYST)["status"] == "running"  # the lease is still live: left alone
    second = BulkAlerts(any_store, settings=settings(threshold=5, page=3), clock=later)
    assert second.recover() == [job["id"]]
    done = wait_for(second, job["id"])
    assert done["status"] == "succeeded" and done["attempts"] == 2, done
    assert done["counts"] == {"changed": 17, "unchanged": 0, "invalid": 0, "concurrent": 0, "missing": 0}
    entries = job_history(any_store, job["id"])
    assert len(entries) == 17 and len({e["alert_id"] for e in entries}) == 17
    assert list(statuses(any_store).values()).count("closed") == 20
    assert AlertWorkflow(any_store).history(ANALYST, "d00")[-1]["job"] == job["id"]


def test_a_concurrent_change_is_counted_not_overwritten(any_store: Store) -> None:
    seed_many(any_store)

    class Racing(Dying):
        """Before the bulk job writes d05, someone else closes it."""

        def put(self, collection: str, id: str, body: dict[str, Any], expected_version: int | None = None) -> int:
            if collection == "alerts" and id == "d05" and body.get("last_change", {}).get("job"):
                AlertWorkflow(self.inner).close(Principal("dung", roles=frozenset({"analyst"})), "d05",
                                                reason="true_positive")
            return self.inner.put(collection, id, body, expected_version=expected_version)

    bulk = BulkAlerts(Racing(any_store, 10**6), settings=settings(), clock=clock_at(T0))  # type: ignore[arg-type]
    job = bulk.apply(ANALYST, AlertQuery(status="open", host="db01"), AlertChange("ack"))
    assert job["counts"] == {"changed": 10, "unchanged": 0, "invalid": 0, "concurrent": 1, "missing": 0}
    assert any_store.get("alerts", "d05").body["close_reason"] == "true_positive"  # type: ignore[union-attr]


def test_many_alerts_in_small_pages(tmp_path: Path) -> None:
    """1,200 alerts, pages of 70, a background job: every one changed once, counted exactly."""
    store = SQLiteStore(tmp_path / "soc.db")
    for n in range(1200):
        alert = make_alert(f"m{n:04d}", first_seen=T0 + timedelta(seconds=n // 40))  # 40 share each time
        store.create("alerts", alert["id"], alert)
    bulk = BulkAlerts(store, settings=settings(threshold=500, page=70), clock=clock_at(T0))
    query = AlertQuery(since=iso(T0), until=iso(T0 + timedelta(hours=1)))
    job = bulk.apply(ANALYST, query, AlertChange("assign", assignee="chi"))
    assert job["status"] == "pending"
    done = wait_for(bulk, job["id"])
    assert done["counts"]["changed"] == 1200 and done["processed"] == 1200 and done["pages"] >= 18
    assert len(job_history(store, job["id"])) == 1200
    store.close()


def test_a_scoped_principal_changes_only_its_agencies_alerts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the scoped store (soc.store.scoped) a bulk change of every alert reaches only the
    principal's agencies. (Jobs are owned by the creator's agency: ``jobs`` needs an owner
    field in ``OWNERS`` for scoped principals to start one.)"""
    from soc.agencies import UNKNOWN, Agency, AgencyTree
    from soc.store import scoped

    monkeypatch.setitem(scoped.OWNERS, "jobs", ("agency",))
    tree = AgencyTree((Agency(id="ubnd", name="U"), Agency(id="so-tttt", name="T", parent="ubnd"),
                       Agency(id="so-yte", name="Y", parent="ubnd")), Agency(**UNKNOWN))
    store = SQLiteStore(tmp_path / "soc.db")
    seed(store, *(make_alert(f"t{n}", agency="so-tttt") for n in range(3)),
         *(make_alert(f"y{n}", agency="so-yte") for n in range(4)))
    analyst = Principal("lan", roles=frozenset({"analyst"}), agency="so-tttt")
    view = scoped.ScopedStore.for_principal(store, analyst, tree)
    job = BulkAlerts(view, settings=settings(), clock=clock_at(T0)).apply(  # type: ignore[arg-type]
        analyst, AlertQuery(), AlertChange("close", reason="benign"))
    assert job["matched"] == 3 and job["counts"]["changed"] == 3
    assert {k for k, v in statuses(store).items() if v == "closed"} == {"t0", "t1", "t2"}
    with pytest.raises(AlertNotFound):
        AlertWorkflow(view).acknowledge(analyst, "y0")  # type: ignore[arg-type]
    store.close()
