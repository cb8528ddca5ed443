"""Incidents: list, open from alerts, read, edit, walk the lifecycle, notes, verdict, merge,
split, and the timeline (:mod:`soc.incidents`).

``GET /incidents`` filters: ``status``, ``severity``, ``agency`` (each repeatable: any of; an
incident shared by several agencies is found by each), ``assignee``, ``since``/``until`` (the
forms of :mod:`soc.timeexpr`) on the sort field; ``sort`` is ``-updated_at`` (default),
``updated_at``, ``-created_at``, ``created_at``, ``-discovered_at``, ``discovered_at``,
``-last_seen``, ``last_seen``. Items leave out the history and the notes (counted); the
incident itself has them.

Reading needs ``incidents:read``, notes ``incidents:comment``, every other change
``incidents:write``; changes are recorded in the incident's history under the caller's name
(and in the audit trail). An incident or alert outside the caller's agencies is answered 404
like an unknown one.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from soc.alerts.model import ALERTS
from soc.incidents import model as incident_model
from soc.incidents.errors import IncidentNotFound
from soc.incidents.lifecycle import allowed_next
from soc.incidents.model import AffectedSystem, Incident
from soc.incidents.records import INCIDENTS, IncidentRecords
from soc.web.api.doclist import DocList, Since, Until, doc_page, time_range
from soc.web.api.paging import Cursor, Limit
from soc.web.api.timeline import timeline
from soc.web.deps import Caller, need
from soc.web.problems import NotFound

__all__ = ["router"]

router = APIRouter(prefix="/incidents", tags=["incidents"])

SORTS = ("-updated_at", "updated_at", "-created_at", "created_at", "-discovered_at", "discovered_at",
         "-last_seen", "last_seen")
Severity = Literal["low", "medium", "high", "critical"]
Status = Literal["new", "triage", "contained", "resolved", "closed"]
Verdict = Literal["true_positive", "false_positive", "benign"]


class NewIncident(BaseModel):
    """Open an incident from alerts (or join the one they are in or group with)."""

    alert_ids: list[str] = Field(min_length=1, max_length=1000)
    title: str | None = Field(None, min_length=1, max_length=300)
    severity: Severity | None = None
    incident_type: str | None = Field(None, max_length=40)


class IncidentEdit(BaseModel):
    """Fields to change (only those given); title, severity and type are then pinned."""

    title: str | None = Field(None, min_length=1, max_length=300)
    severity: Severity | None = None
    incident_type: str | None = Field(None, max_length=40)
    summary: str | None = Field(None, max_length=20_000)
    outcome: str | None = Field(None, max_length=20_000)
    affected_systems: list[AffectedSystem] | None = Field(None, max_length=200)
    impacts: list[str] | None = Field(None, max_length=10)


class StatusChange(BaseModel):
    status: Status
    note: str | None = Field(None, max_length=20_000)


class Assignee(BaseModel):
    assignee: str | None = Field(..., max_length=200, description="null clears it")


class NewNote(BaseModel):
    text: str = Field(min_length=1, max_length=20_000)


class VerdictChange(BaseModel):
    verdict: Verdict | None = Field(..., description="null clears it")


class Merge(BaseModel):
    sources: list[str] = Field(min_length=1, max_length=50, description="incidents folded into this one")


class Split(BaseModel):
    alert_ids: list[str] = Field(min_length=1, max_length=1000)
    title: str | None = Field(None, min_length=1, max_length=300)


def shown(incident: Incident) -> dict[str, Any]:
    """An incident as answered: the stored document (with ``serious`` and the report deadlines)
    and the statuses it may move to."""
    return {**IncidentRecords.body(incident), "allowed_next": [] if incident.merged_into else
            allowed_next(incident.status)}


def _brief(body: dict[str, Any]) -> dict[str, Any]:
    return {**{k: v for k, v in body.items() if k not in ("history", "notes")},
            "notes_count": len(body.get("notes") or []), "history_count": len(body.get("history") or [])}


def _require(who: Caller, incident_id: str) -> Incident:
    found = who.services.incidents.get(incident_id)
    if found is None:
        raise NotFound(f"no incident {incident_id!r}")
    return found


def _act(call: Any, *args: Any, **kwargs: Any) -> Incident:
    """An incident service call; an unknown (or invisible) incident is 404."""
    try:
        return call(*args, **kwargs)
    except IncidentNotFound as error:
        raise NotFound(str(error).split(";")[0]) from None


@router.get("", summary="Incidents (most recently updated first; filters, keyset pages)")
def list_incidents(status: list[Status] = Query([]), severity: list[Severity] = Query([]),
                   agency: list[str] = Query([], description="agency id (repeatable; within your scope)"),
                   assignee: str | None = Query(None, max_length=200), since: str | None = Since,
                   until: str | None = Until, sort: str = Query("-updated_at", description=", ".join(SORTS)),
                   limit: int = Limit, cursor: str | None = Cursor,
                   who: Caller = need("incidents:read")) -> dict[str, Any]:
    if sort not in SORTS:
        raise ValueError(f"sort {sort[:40]!r}: use one of {', '.join(SORTS)}")
    where: dict[str, Any] = {}
    if status:
        where["status"] = list(status)
    if severity:
        where["severity"] = list(severity)
    if assignee:
        where["assignee"] = assignee
    if agency:
        where["agencies"] = list(agency)  # any of an incident's agencies
    window = time_range(since, until, who.services.settings.zone, who.services.clock)
    spec = DocList(INCIDENTS, where, sort.lstrip("-"), sort.startswith("-"), window)
    return doc_page(who.services.store, spec, limit=limit, cursor=cursor, show=_brief).body()


@router.post("", status_code=201, summary="Open an incident from alerts (or the one they are in or group with)")
def open_incident(body: NewIncident, who: Caller = need("incidents:write")) -> dict[str, Any]:
    store = who.services.store
    alerts = []
    for alert_id in dict.fromkeys(body.alert_ids):
        doc = store.get(ALERTS, alert_id)
        if doc is None:
            raise NotFound(f"no alert {alert_id!r}")
        alerts.append(doc.body)
    incident = who.services.incidents.open_from_alerts(alerts, actor=who.principal.label, title=body.title,
                                                       severity=body.severity, incident_type=body.incident_type)
    return shown(incident)


@router.get("/{incident_id}", summary="One incident with its history and notes")
def get_incident(incident_id: str, who: Caller = need("incidents:read")) -> dict[str, Any]:
    return shown(_require(who, incident_id))


@router.patch("/{incident_id}", summary="Change title, severity, type, summary, outcome, affected systems, impacts")
def edit_incident(incident_id: str, body: IncidentEdit, who: Caller = need("incidents:write")) -> dict[str, Any]:
    fields = body.model_dump(exclude_unset=True)
    if not fields:
        raise ValueError(f"nothing to change: give any of {', '.join(IncidentEdit.model_fields)}")
    if any(v is None for v in fields.values()):
        raise ValueError("a field cannot be cleared with null: give its new value")
    if "impacts" in fields:
        unknown = [i for i in fields["impacts"] if i not in incident_model.IMPACTS]
        if unknown:
            raise ValueError(f"unknown impacts {unknown}: use {', '.join(incident_model.IMPACTS)}")
    return shown(_act(who.services.incidents.update, incident_id, actor=who.principal.label, **fields))


@router.post("/{incident_id}/status", summary="Move to another status (forward, or back to triage)")
def change_status(incident_id: str, body: StatusChange, who: Caller = need("incidents:write")) -> dict[str, Any]:
    return shown(_act(who.services.incidents.transition, incident_id, body.status, actor=who.principal.label,
                      note=body.note))


@router.post("/{incident_id}/assign", summary="Set or clear the assignee")
def assign(incident_id: str, body: Assignee, who: Caller = need("incidents:write")) -> dict[str, Any]:
    return shown(_act(who.services.incidents.assign, incident_id, body.assignee, actor=who.principal.label))


@router.post("/{incident_id}/notes", status_code=201, summary="Add a note")
def add_note(incident_id: str, body: NewNote, who: Caller = need("incidents:comment")) -> dict[str, Any]:
    return shown(_act(who.services.incidents.add_note, incident_id, body.text, actor=who.principal.label))


@router.post("/{incident_id}/verdict", summary="Set or clear the verdict")
def set_verdict(incident_id: str, body: VerdictChange, who: Caller = need("incidents:write")) -> dict[str, Any]:
    return shown(_act(who.services.incidents.set_verdict, incident_id, body.verdict, actor=who.principal.label))


@router.post("/{incident_id}/merge", summary="Fold other incidents into this one")
def merge(incident_id: str, body: Merge, who: Caller = need("incidents:write")) -> dict[str, Any]:
    return shown(_act(who.services.incidents.merge, incident_id, body.sources, actor=who.principal.label))


@router.post("/{incident_id}/split", status_code=201, summary="Take alerts out into a new incident (answered)")
def split(incident_id: str, body: Split, who: Caller = need("incidents:write")) -> dict[str, Any]:
    return shown(_act(who.services.incidents.split, incident_id, body.alert_ids, actor=who.principal.label,
                      title=body.title))


@router.get("/{incident_id}/timeline", summary="Everything that happened, oldest first")
def get_timeline(incident_id: str, who: Caller = need("incidents:read")) -> dict[str, Any]:
    incident = _require(who, incident_id)
    entries = timeline(who.services.store, incident)
    return {"incident_id": incident.id, "items": entries, "next": None, "total": len(entries), "total_exact": True}
