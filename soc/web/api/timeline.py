"""An incident's timeline: everything that happened to it, one chronological list.

Merged from the incident's own history (opened, status, assignee, verdict, edits, alerts
attached or moved, merges and splits, reports recorded), its notes (whole text), its alerts
(first seen) and their triage changes, its remediation and response tasks (sent, acknowledged,
done), its national reports (built, each delivery attempt, delivered with the receipt), and the
playbook runs that acted on it (one entry per run, with its steps).
Every entry is ``{"at", "kind", "actor", "summary", ...}``; ``kind`` is one of :data:`KINDS`.
Entries with the same time keep the order of :data:`KINDS`.

Everything is read through the caller's store, so alerts, tasks and deliveries of agencies
outside the caller's scope (an incident shared by two agencies) are left out. Playbook runs
belong to no agency: they are shown to principals who see every agency, and left out for the
others like any other document of no agency. A run is the incident's when it changed it: its
actor ``playbook:<playbook id>/<run id prefix>`` (:func:`soc.playbooks.actions.incident.actor_of`)
is in the incident's history or notes.
"""

from __future__ import annotations

import re
from typing import Any

from soc.alerts.model import ALERTS, HISTORY
from soc.export.outbox import OUTBOX, RECEIPTS
from soc.incidents.model import Incident
from soc.incidents.remediation import TASKS
from soc.playbooks import RUNS
from soc.store.base import DocQuery, Store

__all__ = ["KINDS", "MAX_ALERTS", "timeline"]

KINDS = ("alert", "incident", "playbook", "alert_change", "note", "task", "report", "delivery")
#: alerts of one incident shown at most (the incident lists them all)
MAX_ALERTS = 1000
#: playbook runs of one incident shown at most
MAX_RUNS = 200
_PLAYBOOK_ACTOR = re.compile(r"^playbook:([^/]{1,200})/([0-9a-f]{8})$")
_RANK = {kind: n for n, kind in enumerate(KINDS)}


def _entry(at: str | None, kind: str, actor: str | None, summary: str, **rest: Any) -> dict[str, Any]:
    return {"at": at, "kind": kind, "actor": actor, "summary": summary, **rest}


def _incident_entries(incident: Incident) -> list[dict[str, Any]]:
    out = []
    for change in incident.history:
        if change.action == "note":  # the note itself, whole, comes from the notes
            continue
        detail = dict(change.detail)
        if change.action == "status":
            summary = f"status {detail.get('from')} -> {detail.get('to')}"
        elif change.action in ("assign", "verdict"):
            summary = f"{change.action} {detail.get('from') or '-'} -> {detail.get('to') or '-'}"
        else:
            summary = change.action
        out.append(_entry(change.at, "incident", change.actor, summary, action=change.action, detail=detail))
    out.extend(_entry(n.at, "note", n.author, n.text[:200], text=n.text) for n in incident.notes)
    return out


def _alert_entries(store: Store, alert_ids: list[str]) -> list[dict[str, Any]]:
    out = []
    shown = alert_ids[:MAX_ALERTS]
    for alert_id in shown:
        doc = store.get(ALERTS, alert_id)
        if doc is None:  # gone, or of an agency outside the caller's scope
            continue
        alert, rule = doc.body, doc.body.get("rule") or {}
        out.append(_entry(alert.get("first_seen"), "alert", None, f"alert: {rule.get('title') or rule.get('id')}",
                          alert_id=alert_id, rule={k: rule.get(k) for k in ("id", "title", "level")},
                          agency=alert.get("agency"), event_count=alert.get("event_count")))
    if shown:
        for doc in store.find(HISTORY, {"alert_id": shown}, sort="at", limit=100_000):
            change = doc.body
            summary = f"alert {change.get('action')}: {change.get('from')} -> {change.get('to')}"
            out.append(_entry(change.get("at"), "alert_change", change.get("actor"), summary,
                              alert_id=change.get("alert_id"), action=change.get("action"),
                              reason=change.get("reason"), note=change.get("note") or ""))
    return out


def _task_entries(store: Store, incident_id: str) -> list[dict[str, Any]]:
    out = []
    for doc in store.find(TASKS, {"incident_id": incident_id}, sort="created_at", limit=10_000):
        task = doc.body
        events = task.get("events") or [{"at": task.get("created_at"), "actor": task.get("created_by"),
                                         "action": "created", "note": ""}]
        for event in events:
            out.append(_entry(event.get("at"), "task", event.get("actor"),
                              f"task {event.get('action')}: {task.get('title') or task.get('id')}",
                              task_id=doc.id, action=event.get("action"), note=event.get("note") or "",
                              agency=task.get("agency")))
    return out


def _report_entries(store: Store, incident: Incident) -> list[dict[str, Any]]:
    out = [_entry(r.built_at, "report", None, f"report {r.report_no} ({r.kind}) built", report_no=r.report_no,
                  report_kind=r.kind, action="built") for r in incident.reports]
    numbers = {r.report_no for r in incident.reports}
    for doc in store.find(OUTBOX, {"incident_id": incident.id}, sort="created_at", limit=10_000):
        entry = doc.body
        numbers.add(entry.get("report_no"))
        for attempt in entry.get("attempts_log") or []:
            if attempt.get("ok"):
                continue
            out.append(_entry(attempt.get("at"), "delivery", None,
                              f"report {entry.get('report_no')} to {entry.get('recipient')}: not delivered",
                              report_no=entry.get("report_no"), recipient=entry.get("recipient"),
                              action="failed", error=attempt.get("error")))
    if numbers:
        for doc in store.find(RECEIPTS, {"report_no": sorted(n for n in numbers if n)}, limit=10_000):
            receipt = doc.body
            out.append(_entry(receipt.get("delivered_at"), "delivery", None,
                              f"report {receipt.get('report_no')} delivered to {receipt.get('recipient')}"
                              + (" (late)" if receipt.get("late") else ""),
                              report_no=receipt.get("report_no"), recipient=receipt.get("recipient"),
                              action="delivered", channel=receipt.get("channel"), late=receipt.get("late"),
                              receipt=receipt.get("receipt")))
    return out


def _playbook_entries(store: Store, incident: Incident) -> list[dict[str, Any]]:
    """One entry per playbook run that changed the incident, with its steps."""
    prefixes: dict[str, str] = {}
    for actor in [h.actor for h in incident.history] + [n.author for n in incident.notes]:
        found = _PLAYBOOK_ACTOR.match(actor or "")
        if found:
            prefixes.setdefault(found.group(2), found.group(1))
    out = []
    for prefix, playbook_id in list(prefixes.items())[:MAX_RUNS]:
        page = store.query_documents(DocQuery(RUNS, filters=(("id", "prefix", prefix), ("playbook_id", "equals",
                                                                                          playbook_id)),
                                              size=5, track_total=0))
        for doc in page.docs:
            run = doc.body
            steps = [{k: s.get(k) for k in ("id", "action", "status", "started_at", "finished_at", "error")}
                     for s in run.get("steps") or [] if s.get("status") != "pending"]
            out.append(_entry(run.get("created_at"), "playbook", run.get("actor"),
                              f"playbook {run.get('playbook_id')}: {run.get('status')}", run_id=doc.id,
                              playbook_id=run.get("playbook_id"), playbook_title=run.get("playbook_title"),
                              status=run.get("status"), dry_run=bool(run.get("dry_run")), steps=steps))
    return out


def timeline(store: Store, incident: Incident) -> list[dict[str, Any]]:
    """Every entry of ``incident``'s timeline read through ``store``, oldest first."""
    entries = [*_incident_entries(incident), *_alert_entries(store, list(incident.alert_ids)),
               *_task_entries(store, incident.id), *_report_entries(store, incident),
               *_playbook_entries(store, incident)]
    return sorted(entries, key=lambda e: (e["at"] or "", _RANK[e["kind"]]))
