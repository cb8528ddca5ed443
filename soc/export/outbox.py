"""The outbox: report deliveries as documents, retried with exponential backoff, with receipts.

An entry (collection ``report_outbox``) is created once per report and recipient (id
``<report number>--<recipient>``, create-only: enqueueing twice does nothing). The worker
(:func:`deliver_due`) claims due entries with a compare-and-set (``status: sending`` plus a lease,
so two processes never send the same entry at once and a crashed sender's lease runs out),
delivers through the recipient's channel and records the outcome:

* delivered: ``status: delivered``, the receipt on the entry and in ``report_receipts``, the
  delivery time on the incident's report record;
* a retryable failure (network, 5xx, 429...): ``attempts + 1`` and ``next_attempt_at = now +
  retry_base_seconds * 2**(attempts-1)`` (capped at ``retry_max_seconds``); after
  ``max_attempts``: ``status: failed``;
* a permanent failure (4xx, TLS trust, refused recipient): ``status: failed`` at once.

Every attempt is appended to the entry's ``attempts_log``. ``soc report outbox`` lists entries;
``soc report send --retry`` puts failed ones back to pending.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from soc.clock import Clock, system_clock
from soc.config import ReportRecipient, Settings
from soc.errors import SocError
from soc.export import snapshot as snapshots
from soc.export.channels import DeliveryError, send_drop, send_email, send_https
from soc.export.profiles import get_profile
from soc.export.reports import Reports
from soc.model import iso, parse_iso
from soc.retry import Backoff
from soc.store.base import Conflict, Store
from soc.store.lease import Claim, LeaseFields, LeaseLost, Leases
from soc.store.scoped import REPORT_OWNER_FIELD

log = logging.getLogger(__name__)
OUTBOX = "report_outbox"
RECEIPTS = "report_receipts"
LEASE_SECONDS = 300
#: an entry being sent: ``status: sending`` and ``lease_until`` (ISO text; None when released)
LEASE = LeaseFields(owner=None, until="lease_until", stamp="iso", vacant=None)
TITLES = {"initial": "Báo cáo ban đầu sự cố mạng", "update": "Báo cáo cập nhật sự cố",
          "closing": "Báo cáo kết thúc ứng phó sự cố", "summary_report": "Báo cáo tổng hợp",
          "monitoring_summary": "Báo cáo tổng hợp giám sát"}


class OutboxError(SocError, ValueError):
    """An outbox request names an unknown recipient or a report nobody takes."""


def entry_id(report_no: str, recipient: str) -> str:
    return f"{report_no}--{recipient}"


def _recipient(settings: Settings, name: str) -> ReportRecipient:
    for recipient in settings.reporting.recipients:
        if recipient.name == name:
            return recipient
    known = ", ".join(r.name for r in settings.reporting.recipients) or "none configured"
    raise OutboxError(f"unknown recipient {name!r} (reporting.recipients: {known})")


def _kind_class(snap: dict[str, Any]) -> str:
    return snap["kind"] if snap["document"] == "incident_report" else "summary"


def enqueue(store: Store, settings: Settings, report_no: str, recipients: list[str] | None = None,
            now: datetime | None = None) -> list[str]:
    """Create outbox entries for a stored report. Without ``recipients``: every configured
    recipient whose profile is the report's and whose ``kinds`` include it. Returns the ids of
    the entries created (existing ones are left as they are)."""
    snap = snapshots.load(store, report_no)
    chosen = [_recipient(settings, n) for n in recipients] if recipients else [
        r for r in settings.reporting.recipients
        if r.profile == snap["profile"]["id"] and _kind_class(snap) in r.kinds]
    if not chosen:
        raise OutboxError(f"no recipient takes report {report_no} (profile {snap['profile']['id']}, "
                          f"{_kind_class(snap)}): add one to reporting.recipients or name one with --to")
    at = iso(now or system_clock())
    created = []
    for r in chosen:
        eid = entry_id(report_no, r.name)
        body = {"id": eid, "report_no": report_no, "recipient": r.name, "channel": r.channel,
                "endpoint": r.endpoint, "profile_id": snap["profile"]["id"], "document": snap["document"],
                "kind": snap["kind"], "incident_id": (snap.get("incident") or {}).get("id"),
                REPORT_OWNER_FIELD: snap.get(REPORT_OWNER_FIELD) or snapshots.owner_agencies(snap),
                "status": "pending", "attempts": 0, "created_at": at, "next_attempt_at": at,
                "lease_until": None, "last_error": None, "receipt": None, "delivered_at": None,
                "attempts_log": []}
        if store.create(OUTBOX, eid, body):
            created.append(eid)
    store.refresh()
    return created


def _leases(store: Store, clock: Clock) -> Leases:
    return Leases(store, OUTBOX, seconds=LEASE_SECONDS, clock=clock, fields=LEASE)


def _claim(leases: Leases, eid: str, now: datetime) -> Claim | None:
    """Claim a due entry for sending (``status: sending`` and a lease); None when it is not
    due, not pending, or another sender holds it."""
    doc = leases.store.get(OUTBOX, eid)
    if doc is None:
        return None
    if doc.body["status"] not in ("pending", "sending") or doc.body.get("next_attempt_at", "") > iso(now):
        return None
    return leases.claim(eid, doc, at=now, changes={"status": "sending"})


def _finish(claim: Claim, body: dict[str, Any]) -> None:
    try:
        claim.release(body)
    except LeaseLost:  # the lease ran out and someone else took it: theirs wins
        log.warning("outbox entry %s changed while it was being sent", body["id"])


def deliver_entry(store: Store, settings: Settings, claim: Claim, clock: Clock = system_clock) -> dict[str, Any]:
    """Send one claimed entry (:func:`_claim`) and record the outcome on it; ``clock`` stamps
    the attempt, the receipt and the delivery time (which decides whether the report was
    late). Returns the entry as recorded."""
    body = dict(claim.body)
    now = clock()
    reports = Reports(store, settings)
    recipient = _recipient(settings, body["recipient"])
    snap = snapshots.load(store, body["report_no"])
    built = reports.render(body["report_no"])  # byte-identical to what was built
    paths: list[Path] = built.all_files
    meta = {"report_no": body["report_no"], "profile_id": body["profile_id"], "document": body["document"],
            "kind": body["kind"], "schema_version": snap["profile"]["schema_version"],
            "reporter": snap["reporting"]["reporter"].get("name")}
    started = iso(now)
    try:
        if recipient.channel == "https":
            receipt = send_https(recipient, meta, paths, body["id"])
        elif recipient.channel == "email":
            profile = get_profile(body["profile_id"], settings.reporting.profile_dirs)
            sender = settings.smtp.sender or snap["reporting"]["reporter"].get("email") or "soc@localhost"
            title = TITLES.get(body["kind"]) or TITLES.get(body["document"], "Báo cáo")
            incident = snap.get("incident") or {}
            subject = f"{profile.email_subject_prefix} {title} {body['report_no']}" + (
                f": {incident['title']}" if incident.get("title") else "")
            text = (f"Kính gửi: {profile.addressee or recipient.title or recipient.name}\n\n"
                    f"{snap['reporting']['reporter'].get('name') or ''} gửi kèm {title.lower()} số "
                    f"{body['report_no']} (hồ sơ {body['profile_id']}). Mỗi tệp có chữ ký số tách rời (.p7s, CMS).\n")
            receipt = send_email(recipient, settings.smtp, sender, subject, text, paths)
        elif recipient.channel == "drop":
            receipt = send_drop(recipient, meta, paths, iso(clock()))
        else:
            raise DeliveryError(f"recipient {recipient.name}: unknown channel {recipient.channel!r} "
                                "(https, email or drop)", retryable=False)
    except DeliveryError as error:
        body["attempts"] += 1
        body["last_error"] = str(error)
        body["attempts_log"].append({"at": started, "ok": False, "error": str(error), "receipt": error.receipt})
        if error.retryable and body["attempts"] < settings.reporting.max_attempts:
            delay = Backoff(base=settings.reporting.retry_base_seconds, factor=2.0,
                            max=settings.reporting.retry_max_seconds).delay(body["attempts"])
            body["status"] = "pending"
            body["next_attempt_at"] = iso(now + timedelta(seconds=delay))
        else:
            body["status"] = "failed"
        body["lease_until"] = None
        _finish(claim, body)
        return body
    except Exception as error:  # a bug or a broken file must not stop the worker: retry later
        log.exception("delivering %s failed", body["id"])
        body["attempts"] += 1
        body["last_error"] = f"{type(error).__name__}: {error}"
        body["attempts_log"].append({"at": started, "ok": False, "error": body["last_error"]})
        body["status"] = "pending" if body["attempts"] < settings.reporting.max_attempts else "failed"
        body["next_attempt_at"] = iso(now + timedelta(seconds=settings.reporting.retry_max_seconds))
        body["lease_until"] = None
        _finish(claim, body)
        return body
    delivered = iso(clock())
    receipt.setdefault("at", delivered)
    body["attempts"] += 1
    body.update({"status": "delivered", "receipt": receipt, "delivered_at": delivered, "lease_until": None,
                 "last_error": None})
    body["attempts_log"].append({"at": started, "ok": True})
    _finish(claim, body)
    store.create(RECEIPTS, body["id"], {"id": body["id"], "report_no": body["report_no"],
                                        "recipient": body["recipient"], "channel": body["channel"],
                                        "delivered_at": delivered, "receipt": receipt,
                                        "late": reports.is_late(body["report_no"], delivered),
                                        REPORT_OWNER_FIELD: body.get(REPORT_OWNER_FIELD) or []})
    reports.mark_delivered(body["report_no"], delivered)
    return body


def due_entries(store: Store, now: datetime) -> list[str]:
    docs = store.find(OUTBOX, {"status": ["pending", "sending"]}, sort="next_attempt_at", limit=10_000)
    at = iso(now)
    return [d.id for d in docs if d.body.get("next_attempt_at", "") <= at]


def deliver_due(store: Store, settings: Settings, clock: Clock = system_clock) -> list[dict[str, Any]]:
    """One pass: deliver every entry that is due now. Returns the entries it handled."""
    done = []
    leases = _leases(store, clock)
    for eid in due_entries(store, clock()):
        claim = _claim(leases, eid, clock())
        if claim is not None:
            done.append(deliver_entry(store, settings, claim, clock))
    store.refresh()
    return done


def next_due(store: Store) -> datetime | None:
    docs = store.find(OUTBOX, {"status": ["pending", "sending"]}, sort="next_attempt_at", limit=1)
    return parse_iso(docs[0].body["next_attempt_at"]) if docs else None


def run_until_settled(store: Store, settings: Settings, timeout: float = 60.0,
                      stop: threading.Event | None = None, clock: Clock = system_clock) -> list[dict[str, Any]]:
    """Deliver, sleeping until the next retry, until nothing is pending (or ``timeout``)."""
    stop = stop or threading.Event()
    deadline = clock() + timedelta(seconds=timeout)
    handled: list[dict[str, Any]] = []
    while not stop.is_set():
        handled += deliver_due(store, settings, clock)
        upcoming = next_due(store)
        if upcoming is None or upcoming > deadline:
            break
        stop.wait(max(0.0, min((upcoming - clock()).total_seconds(), 5.0)))
    return handled


def retry_failed(store: Store, report_no: str | None = None, clock: Clock = system_clock) -> int:
    """Put failed entries (of one report, or all) back to pending, attempts reset."""
    n = 0
    where: dict[str, Any] = {"status": "failed"}
    if report_no:
        where["report_no"] = report_no
    for doc in store.find(OUTBOX, where, limit=10_000):
        body = dict(doc.body)
        body.update({"status": "pending", "attempts": 0, "next_attempt_at": iso(clock())})
        try:
            store.put(OUTBOX, doc.id, body, expected_version=doc.version)
            n += 1
        except Conflict:
            pass
    store.refresh()
    return n


def list_entries(store: Store, status: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    where = {"status": status} if status else None
    return [d.body for d in store.find(OUTBOX, where, sort="created_at", descending=True, limit=limit)]
