"""Incidents in the console: the list (national type, severity, the "serious" flag, assignee,
report deadlines and overdue reports; filters in the URL, keyset pages) and one incident with
its timeline, alerts, remediation tasks and reports, and the forms that change it
(:mod:`.incident_actions`); the report builder is :mod:`.report_builder`.

Everything goes through the caller's service layer (``who.services``): the list and every read
are scoped to the user's agencies inside the store query, so another agency's incident is a 404
page like an unknown one, and every change is recorded under the user's name.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from soc.incidents.lifecycle import VERDICTS, allowed_next
from soc.incidents.model import IMPACTS, INCIDENT_TYPES, STATUSES, Incident
from soc.incidents.records import INCIDENTS, IncidentRecords
from soc.incidents.remediation import KIND, TASKS, is_overdue
from soc.web.api.doclist import DocList, doc_page, time_range
from soc.web.api.timeline import KINDS, timeline
from soc.web.console.render import render
from soc.web.console.security import console_caller
from soc.web.deps import Caller
from soc.web.problems import NotFound

__all__ = ["DONE", "SEVERITIES", "detail_page", "require_incident", "router", "visible_agencies"]

router = APIRouter(include_in_schema=False)

SEVERITIES = ("low", "medium", "high", "critical")
SORTS = ("-updated_at", "updated_at", "-discovered_at", "discovered_at", "-created_at", "created_at")
PAGE_SIZE = 50
#: timeline entries shown unless all are asked for (``?all=1``)
TIMELINE_SHOWN = 100
#: alerts listed on an incident's page at most (the timeline and the count cover them all)
ALERTS_SHOWN = 300
#: what a finished change says on the page it returns to (``?done=KEY``)
DONE = {"note": "Note added.", "status": "Status changed.", "assign": "Assignee changed.",
        "verdict": "Verdict changed.", "edit": "Incident updated.", "merge": "Incidents merged into this one.",
        "split": "Alerts split off into this new incident.", "attach": "Alerts attached.",
        "task": "Remediation task sent to the agency.", "saved": "Saved on the incident.",
        "signed": "Report signed.", "sent": "Report queued for its recipients.", "built": "Report built."}


def require_incident(who: Caller, incident_id: str) -> Incident:
    """The incident as the caller sees it; unknown or outside the scope: the 404 page."""
    found = who.services.incidents.get(incident_id)
    if found is None:
        raise NotFound(f"no incident {incident_id!r}")
    return found


def visible_agencies(who: Caller) -> list[Any]:
    """The agencies of the tree the caller may see (for filters and forms)."""
    tree = who.services.agencies
    scope = who.principal.scope(tree)
    return [a for a in tree if scope.allows(a.id) and not a.merged_into]


def _row(body: dict[str, Any], now: datetime) -> dict[str, Any]:
    incident = Incident.model_validate(body)
    return {"id": incident.id, "title": incident.title, "status": incident.status, "severity": incident.severity,
            "type": incident.incident_type, "type_label": incident.type_label, "serious": incident.serious,
            "agency": incident.agency, "agencies": incident.agencies, "assignee": incident.assignee,
            "verdict": incident.verdict, "discovered_at": incident.discovered_at, "updated_at": incident.updated_at,
            "notify_due": incident.notify_due, "closing_due": incident.closing_due,
            "overdue": incident.overdue(now), "alerts": len(incident.alert_ids), "merged_into": incident.merged_into,
            "reports": [r.kind for r in incident.reports],
            "delivered": [r.kind for r in incident.reports if r.delivered_at]}


def _checked(values: list[str], allowed: tuple[str, ...] | list[str], what: str) -> list[str]:
    bad = [v for v in values if v not in allowed]
    if bad:
        raise ValueError(f"{what} {bad[0][:40]!r}: use {', '.join(allowed)}")
    return values


@router.get("/incidents")
def incident_list(request: Request, status: list[str] = Query([]), severity: list[str] = Query([]),
                  agency: list[str] = Query([]), assignee: str | None = Query(None, max_length=200),
                  kind: str | None = Query(None, max_length=40), serious: bool = False, overdue: bool = False,
                  since: str | None = Query(None, max_length=64), until: str | None = Query(None, max_length=64),
                  sort: str = Query("-updated_at", max_length=20), cursor: str | None = Query(None, max_length=2048),
                  who: Caller = Depends(console_caller)) -> HTMLResponse:  # noqa: B008
    who.principal.require("incidents:read")
    status, severity, agency = ([v for v in values if v] for values in (status, severity, agency))
    _checked(status, STATUSES, "status")
    _checked(severity, SEVERITIES, "severity")
    _checked([sort], SORTS, "sort")
    where: dict[str, Any] = {}
    for name, values in (("status", status), ("severity", severity), ("agencies", agency)):
        if values:
            where[name] = list(values)
    if assignee:
        where["assignee"] = assignee
    if kind:
        _checked([kind], list(INCIDENT_TYPES), "type")
        where["incident_type"] = kind
    if serious:
        where["serious"] = True
    now = who.services.clock()
    window = time_range(since, until, who.services.settings.zone, who.services.clock)
    keep = (lambda body: bool(Incident.model_validate(body).overdue(now))) if overdue else None
    spec = DocList(INCIDENTS, where, sort.lstrip("-"), sort.startswith("-"), window, keep)
    page = doc_page(who.services.store, spec, limit=PAGE_SIZE, cursor=cursor, show=lambda body: _row(body, now))
    filters = {"status": status, "severity": severity, "agency": agency, "assignee": assignee or "",
               "kind": kind or "", "serious": serious, "overdue": overdue, "since": since or "",
               "until": until or "", "sort": sort}
    return render(request, "incidents/list.html", page=page, filters=filters, statuses=STATUSES,
                  severities=SEVERITIES, types=INCIDENT_TYPES, sorts=SORTS, agencies=visible_agencies(who),
                  agency_names=who.services.agencies.names(), first_page=cursor is not None)


def _alerts(who: Caller, incident: Incident) -> list[dict[str, Any]]:
    out = []
    for alert_id in incident.alert_ids[:ALERTS_SHOWN]:
        doc = who.services.store.get("alerts", alert_id)
        if doc is None:  # of an agency outside the caller's scope (a shared incident)
            continue
        body, rule = doc.body, doc.body.get("rule") or {}
        entities = body.get("entities") or {}
        out.append({"id": alert_id, "title": rule.get("title") or rule.get("id"), "level": rule.get("level"),
                    "status": body.get("status"), "assignee": body.get("assignee"), "agency": body.get("agency"),
                    "first_seen": body.get("first_seen"), "last_seen": body.get("last_seen"),
                    "events": body.get("event_count"), "hosts": entities.get("host.name") or [],
                    "sources": entities.get("source.ip") or []})
    return out


def _tasks(who: Caller, incident: Incident) -> list[dict[str, Any]]:
    now = who.services.clock()
    docs = who.services.store.find(TASKS, {"incident_id": incident.id}, sort="created_at", limit=500)
    return [{"id": d.id, "title": d.body.get("title") or d.id, "agency": d.body.get("agency"),
             "agency_name": d.body.get("agency_name"), "status": d.body.get("status"), "due_at": d.body.get("due_at"),
             "assignee": d.body.get("assignee"), "notifications": d.body.get("notifications") or [],
             "remediation": d.body.get("kind") == KIND, "overdue": is_overdue(d.body, now)} for d in docs]


def _timeline(who: Caller, incident: Incident) -> list[dict[str, Any]]:
    """The incident's timeline, oldest first; a change a playbook run made is shown once, as
    part of the run's entry (with its steps), a report once (built, then its deliveries), and
    one change made to many alerts in a row (a bulk change) as one entry."""
    who.services.store.refresh()  # what other processes wrote last second (a no-op on SQLite)
    entries = timeline(who.services.store, incident)
    runs = {e["run_id"][:8] for e in entries if e["kind"] == "playbook"}
    reports = {e["report_no"] for e in entries if e["kind"] == "report"}
    out: list[dict[str, Any]] = []
    for entry in entries:
        actor = str(entry["actor"] or "")
        if entry["kind"] == "incident" and (
                (actor.startswith("playbook:") and actor.rsplit("/", 1)[-1] in runs)
                or (entry.get("action") == "report" and entry["detail"].get("report_no") in reports
                    and not entry["detail"].get("delivered_at"))):
            continue  # shown as the run's entry, or as the report's
        last = out[-1] if out else None
        if (entry["kind"] == "alert_change" and last is not None and last["kind"] == "alert_change"
                and all(last.get(k) == entry.get(k) for k in ("actor", "action", "reason", "note"))):
            last["alert_ids"].append(entry["alert_id"])  # one change to many alerts: one row
            continue
        out.append({**entry, "alert_ids": [entry["alert_id"]]} if entry["kind"] == "alert_change" else entry)
    return out


def detail_page(request: Request, who: Caller, incident: Incident, *, error: str | None = None,
                status: int = 200, kinds: list[str] | None = None, form: dict[str, Any] | None = None) -> HTMLResponse:
    """The page of one incident (also answered, with ``error``, when a form on it was refused)."""
    entries = _timeline(who, incident)
    shown_kinds = [k for k in (kinds or []) if k in KINDS]
    counts = {k: sum(1 for e in entries if e["kind"] == k) for k in KINDS}
    if shown_kinds:
        entries = [e for e in entries if e["kind"] in shown_kinds]
    oldest_first = request.query_params.get("order") == "asc"
    if not oldest_first:
        entries.reverse()
    everything = request.query_params.get("all") == "1"
    hidden = 0 if everything else max(0, len(entries) - TIMELINE_SHOWN)
    entries = entries if everything else entries[:TIMELINE_SHOWN]
    now = who.services.clock()
    task_agencies = [a for a in visible_agencies(who) if a.id in ({incident.agency, *incident.agencies} - {None})]
    done = request.query_params.get("done")
    return render(request, "incidents/detail.html", status=status, incident=incident, row=_row(
        IncidentRecords.body(incident), now), entries=entries, hidden=hidden, oldest_first=oldest_first, kinds=KINDS, shown_kinds=shown_kinds, counts=counts,
        alerts=_alerts(who, incident), tasks=_tasks(who, incident), allowed=[] if incident.merged_into else
        allowed_next(incident.status), verdicts=VERDICTS, severities=SEVERITIES, types=INCIDENT_TYPES,
        impacts=IMPACTS, task_agencies=task_agencies or visible_agencies(who), error=error,
        agency_names=who.services.agencies.names(),
        done=DONE.get(done or ""), done_count=request.query_params.get("n"), form=form or {},
        system=incident.affected_systems[0] if incident.affected_systems else None)


@router.get("/incidents/{incident_id}")
def incident_detail(request: Request, incident_id: str, kinds: list[str] = Query([]),
                    who: Caller = Depends(console_caller)) -> HTMLResponse:  # noqa: B008
    who.principal.require("incidents:read")
    return detail_page(request, who, require_incident(who, incident_id), kinds=kinds)
