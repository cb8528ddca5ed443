"""Bulk changes of alerts by query, as jobs that report exact counts and survive a crash.

A bulk change (:meth:`BulkAlerts.apply`) applies one :class:`~soc.alerts.model.AlertChange` to
every alert an :class:`~soc.alerts.query.AlertQuery` matches -- not to a page of a list. It is
recorded as a document of the ``jobs`` collection::

    id, kind "alerts.bulk", status (pending, running, succeeded, failed), query_json (the
    query as JSON text: its field names are data, not mapped fields), change,
    created_by (the principal's label), principal (to resume under), agency (its scope),
    created_at, started_at, updated_at, finished_at, attempts, resumed_by [labels],
    processed (alerts read), matched, pages, cursor, counts {changed, unchanged, invalid,
    concurrent, missing}, error, lease_owner, lease_until

Up to ``alerts.bulk_background_threshold`` alerts it runs at once and returns the finished job;
more run in the background (:attr:`BulkAlerts.background`: a thread, or what the front door
gives -- the CLI starts a detached ``soc jobs resume``) unless the caller waits.

**Exact counts.** ``changed`` counts the alerts this job changed, ``unchanged`` those already as
asked, ``invalid`` those the change does not apply to (acknowledging a closed alert),
``concurrent`` those someone else changed meanwhile so that they no longer match the query (or
that stayed contended), ``missing`` those gone since they were read. Every changed alert has a
history entry naming the job (and the audit trail records the write).

**Resumable.** The job is held under a lease (:mod:`soc.store.lease`) and saves its cursor and
counts after each page (:func:`~soc.alerts.query.scan`: keyset pages of a stable order, so
100,000 alerts are never held at once). A job whose process died is taken over when its lease
runs out (:meth:`BulkAlerts.recover`, ``soc jobs resume ID``) and goes on after the last saved
page; the changes it made after that page are counted once from their history entries (and
from the alerts whose entry was not written yet), and re-reading those alerts counts nothing
twice: each alert is changed at most once per job.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from typing import Any

import orjson

from soc.access import Principal
from soc.alerts.model import ALERTS, HISTORY, JOBS, AlertChange, AlertNotFound, AlertWorkflowError
from soc.alerts.query import AlertQuery, Cursor, scan
from soc.alerts.workflow import AlertWorkflow
from soc.clock import Clock, system_clock
from soc.config import AlertSettings
from soc.model import iso
from soc.store.base import Store
from soc.store.lease import Claim, LeaseLost, Leases, owner_gone

__all__ = ["COUNTS", "JOB_KIND", "BulkAlerts", "principal_from", "principal_record"]

log = logging.getLogger(__name__)

JOB_KIND = "alerts.bulk"
COUNTS = ("changed", "unchanged", "invalid", "concurrent", "missing")
RESUMABLE = ("pending", "running", "failed")


def principal_record(principal: Principal) -> dict[str, Any]:
    """What a job keeps of its principal, to resume under it."""
    return {"name": principal.name, "roles": sorted(principal.roles), "agency": principal.agency,
            "kind": principal.kind, "token": principal.token,
            "token_scopes": None if principal.token_scopes is None else sorted(principal.token_scopes)}


def principal_from(record: dict[str, Any]) -> Principal:
    """The principal a job was created by (:func:`principal_record`)."""
    scopes = record.get("token_scopes")
    return Principal(name=record["name"], roles=frozenset(record.get("roles") or ()), agency=record.get("agency"),
                     kind=record.get("kind") or "user", token=record.get("token"),
                     token_scopes=None if scopes is None else frozenset(scopes))


class BulkAlerts:
    """Bulk alert changes over ``store`` (the acting principal's store, scoped and audited).

    ``store_for(principal)`` gives the store a job is resumed on when :meth:`recover` resumes it
    on behalf of its creator (default: ``store``). ``background(job_id)`` starts a job without
    waiting (default: a thread of this process running :meth:`run`)."""

    def __init__(self, store: Store, *, settings: AlertSettings | None = None, clock: Clock = system_clock,
                 owner: str | None = None, store_for: Callable[[Principal], Store] | None = None,
                 background: Callable[[str], None] | None = None) -> None:
        self.store = store
        self.settings = settings or AlertSettings()
        self.clock = clock
        self.store_for = store_for
        self.leases = Leases(store, JOBS, seconds=self.settings.job_lease_seconds, owner=owner, clock=clock,
                             abandoned=owner_gone)
        self.background: Callable[[str], None] = background or self._thread

    # -- asking ------------------------------------------------------------------------------
    def count(self, principal: Principal, query: AlertQuery, *, limit: int | None = None) -> int:
        """How many alerts ``query`` matches now (reading stops after ``limit``)."""
        principal.require("alerts:read")
        query.check()
        found = 0
        for docs, _ in scan(self.store, query, page=self.settings.bulk_page_size):
            found += sum(1 for d in docs if query.matches(d.body))
            if limit is not None and found >= limit:
                return found
        return found

    def apply(self, principal: Principal, query: AlertQuery, change: AlertChange, *,
              wait: bool = False) -> dict[str, Any]:
        """Apply ``change`` to every alert ``query`` matches. Returns the job: finished when
        the query matched at most the threshold (or ``wait``), else pending in the background
        (poll :meth:`job`)."""
        principal.require("alerts:write")
        change.check()
        query.check()
        threshold = self.settings.bulk_background_threshold
        small = self.count(principal, query, limit=threshold + 1) <= threshold
        job = self.submit(principal, query, change)
        if small or wait:
            return self.run(job["id"], principal)
        self.background(job["id"])
        return job

    def submit(self, principal: Principal, query: AlertQuery, change: AlertChange) -> dict[str, Any]:
        """Record a pending job (:meth:`run` executes it)."""
        principal.require("alerts:write")
        change.check()
        query.check()
        job_id = f"job-{uuid.uuid4().hex[:20]}"
        now = iso(self.clock())
        body = {"id": job_id, "kind": JOB_KIND, "status": "pending", "query_json": orjson.dumps(query.as_dict()).decode(),
                "change": change.as_dict(), "describe": change.describe(), "created_by": principal.label,
                "principal": principal_record(principal), "agency": principal.agency, "created_at": now,
                "updated_at": now, "started_at": None, "finished_at": None, "attempts": 0, "resumed_by": [],
                "processed": 0, "matched": 0, "pages": 0, "cursor": None, "counts": dict.fromkeys(COUNTS, 0),
                "error": None}
        self.store.put(JOBS, job_id, body, expected_version=0)
        return _public(body)

    def job(self, principal: Principal, job_id: str) -> dict[str, Any]:
        """A job as it stands (``alerts:read``)."""
        principal.require("alerts:read")
        doc = self.store.get(JOBS, job_id)
        if doc is None or doc.body.get("kind") != JOB_KIND:
            raise AlertNotFound(f"no bulk job {job_id!r}; `soc jobs list` shows them")
        return _public(doc.body)

    def jobs(self, principal: Principal, *, status: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Bulk jobs, newest first (``alerts:read``)."""
        principal.require("alerts:read")
        where: dict[str, Any] = {"kind": JOB_KIND, **({"status": status} if status else {})}
        return [_public(d.body) for d in self.store.find(JOBS, where, sort="created_at", descending=True,
                                                          limit=limit)]

    # -- running -----------------------------------------------------------------------------
    def run(self, job_id: str, by: Principal | None = None) -> dict[str, Any]:
        """Execute (or resume) a job in this thread and return it as it ends. ``by`` resumes it
        with that principal's rights on this store; ``None`` resumes it for its creator (on
        ``store_for(creator)``). A job another live process holds is returned as it is."""
        doc = self.store.get(JOBS, job_id)
        if doc is None or doc.body.get("kind") != JOB_KIND:
            raise AlertNotFound(f"no bulk job {job_id!r}; `soc jobs list` shows them")
        creator = principal_from(doc.body["principal"])
        actor = by or creator
        actor.require("alerts:write")
        store = self.store if by is not None or self.store_for is None else self.store_for(creator)
        if doc.body["status"] not in RESUMABLE:
            return _public(doc.body)
        attempts = int(doc.body.get("attempts") or 0) + 1
        resumed = list(doc.body.get("resumed_by") or []) + ([actor.label] if attempts > 1 else [])
        claim = self.leases.claim(job_id, doc, changes={
            "status": "running", "attempts": attempts, "resumed_by": resumed, "error": None,
            "started_at": doc.body.get("started_at") or iso(self.clock()), "updated_at": iso(self.clock())})
        if claim is None:
            current = self.store.get(JOBS, job_id)
            return _public(current.body if current else doc.body)
        try:
            with claim.keep_alive(f"job {job_id}"):
                self._execute(claim, store, creator.label)
        except LeaseLost:
            log.warning("job %s: taken over by another process", job_id)
        except Exception as error:
            log.exception("job %s failed", job_id)
            try:
                claim.release(status="failed", error=f"{type(error).__name__}: {error}",
                              updated_at=iso(self.clock()))
            except LeaseLost:
                pass
        return _public(claim.body)

    def recover(self) -> list[str]:
        """Start (in the background) the jobs left pending or running by a process that is
        gone or whose lease ran out. Returns their ids."""
        self.store.refresh()
        started = []
        for doc in self.store.find(JOBS, {"kind": JOB_KIND, "status": ["pending", "running"]}, limit=10_000):
            if not self.leases.live(doc.body):
                started.append(doc.id)
                self.background(doc.id)
        return started

    def _thread(self, job_id: str) -> None:
        threading.Thread(target=self.run, args=(job_id,), name=f"bulk-{job_id[-8:]}", daemon=True).start()

    def _execute(self, claim: Claim, store: Store, actor: str) -> None:
        job = claim.body
        job_id = job["id"]
        query = AlertQuery.from_dict(orjson.loads(job["query_json"]))
        change = AlertChange.from_dict(job["change"]).check()
        workflow = AlertWorkflow(store, clock=self.clock)
        counts = {name: int(job["counts"].get(name, 0)) for name in COUNTS}
        pages, processed, matched = int(job["pages"]), int(job["processed"]), int(job["matched"])
        if job["attempts"] > 1:  # what an interrupted attempt changed after its last saved page
            counts["changed"] += self._unsaved_changes(store, workflow, job_id, pages + 1)
        cursor = Cursor.from_dict(job.get("cursor")) if job.get("cursor") else None
        for docs, after in scan(store, query, page=self.settings.bulk_page_size, cursor=cursor):
            pages += 1
            for doc in docs:
                processed += 1
                if not query.matches(doc.body):
                    continue
                matched += 1
                try:
                    outcome, alert, _ = workflow.apply(doc.id, change, actor=actor, doc=doc,
                                                       still_matches=query.matches, job=job_id, job_page=pages)
                except AlertWorkflowError:
                    outcome, alert = "concurrent", None
                if outcome == "unchanged" and alert and (alert.get("last_change") or {}).get("job") == job_id:
                    continue  # changed by this job before it was interrupted: counted already
                counts[outcome] += 1
            claim.renew(cursor=after.as_dict(), counts=counts, pages=pages, processed=processed, matched=matched,
                        updated_at=iso(self.clock()))
        claim.release(status="succeeded", counts=counts, pages=pages, processed=processed, matched=matched,
                      finished_at=iso(self.clock()), updated_at=iso(self.clock()))

    @staticmethod
    def _unsaved_changes(store: Store, workflow: AlertWorkflow, job_id: str, page: int) -> int:
        """Changes of page ``page`` of ``job_id`` (not saved in the job's counts): the history
        entries naming it, and the alerts whose last change names it but whose entry was not
        written yet (the entry is written now)."""
        store.refresh()
        where = {"job": job_id, "job_page": page}
        entries = {d.id for d in store.find(HISTORY, where, limit=1_000_000)}
        for doc in store.find(ALERTS, {"last_change.job": job_id, "last_change.job_page": page}, limit=1_000_000):
            last = doc.body["last_change"]
            if last["id"] not in entries:
                workflow.write_pending_history(doc.body)
                entries.add(last["id"])
        return len(entries)


def _public(body: dict[str, Any]) -> dict[str, Any]:
    """A job without its lease fields and principal record, with its query as a mapping."""
    shown = {k: v for k, v in body.items() if k not in ("lease_owner", "lease_until", "principal", "query_json")}
    shown["query"] = orjson.loads(body["query_json"])
    return shown
