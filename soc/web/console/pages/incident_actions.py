"""The forms of an incident's page: note, status, assignee, verdict, edit (with the first
affected system), merge, split, attach alerts by a query, and a remediation task to an agency.

Each form posts here with the session's CSRF token, calls the caller's service layer (which
checks the scope and records the change under the caller's name) and returns to the incident
(``303``, with ``?done=`` saying what happened); a change the service refuses comes back as the
incident's page with the reason (``400``), the form's values kept.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from soc.access import Forbidden
from soc.errors import SocError
from soc.incidents.errors import IncidentNotFound
from soc.incidents.model import AffectedSystem, Incident
from soc.web.api.alert_filters import AlertFilters, doc_list
from soc.web.api.doclist import iter_docs
from soc.web.api.tasks import NewTask, _due
from soc.web.console.pages.incidents import detail_page, require_incident
from soc.web.console.security import console_caller
from soc.web.deps import Caller

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

Text = Annotated[str, Form(max_length=20_000)]
Short = Annotated[str, Form(max_length=300)]
#: alerts attached at most by one "attach by query"
MAX_ATTACH = 10_000


def _ids(text: str) -> list[str]:
    return [i for i in re.split(r"[\s,;]+", text.strip()) if i]


def _back(incident_id: str, done: str, anchor: str = "", **extra: Any) -> RedirectResponse:
    query = "&".join([f"done={done}", *(f"{k}={v}" for k, v in extra.items())])
    return RedirectResponse(f"/incidents/{incident_id}?{query}{anchor}", status_code=303)


def _apply(request: Request, who: Caller, incident_id: str, permission: str, change: Callable[[Incident], Any],
           done: str, anchor: str = "", form: dict[str, Any] | None = None) -> Response:
    """Check the permission and the incident, make the change; refused: the page with the reason."""
    who.principal.require(permission)
    incident = require_incident(who, incident_id)
    try:
        result = change(incident)
    except Forbidden:
        raise
    except IncidentNotFound as error:  # another incident named in the form (merge)
        return detail_page(request, who, incident, error=str(error).split(";")[0], status=400, form=form)
    except (ValueError, SocError) as error:
        return detail_page(request, who, require_incident(who, incident_id), error=str(error), status=400,
                           form=form)
    if isinstance(result, Response):
        return result
    return _back(incident_id, done, anchor)


@router.post("/incidents/{incident_id}/note")
def add_note(request: Request, incident_id: str, text: Text, who: Caller = Depends(console_caller)) -> Response:  # noqa: B008
    return _apply(request, who, incident_id, "incidents:comment", lambda i: who.services.incidents.add_note(
        i.id, text, actor=who.principal.label), "note", "#notes", {"note": text})


@router.post("/incidents/{incident_id}/status")
def change_status(request: Request, incident_id: str, status: Short, note: Text = "",
                  who: Caller = Depends(console_caller)) -> Response:  # noqa: B008
    return _apply(request, who, incident_id, "incidents:write", lambda i: who.services.incidents.transition(
        i.id, status, actor=who.principal.label, note=note or None), "status")


@router.post("/incidents/{incident_id}/assign")
def assign(request: Request, incident_id: str, assignee: Short = "", who: Caller = Depends(console_caller)) -> Response:  # noqa: B008
    return _apply(request, who, incident_id, "incidents:write", lambda i: who.services.incidents.assign(
        i.id, assignee.strip() or None, actor=who.principal.label), "assign")


@router.post("/incidents/{incident_id}/verdict")
def set_verdict(request: Request, incident_id: str, verdict: Short = "", who: Caller = Depends(console_caller)) -> Response:  # noqa: B008
    return _apply(request, who, incident_id, "incidents:write", lambda i: who.services.incidents.set_verdict(
        i.id, verdict or None, actor=who.principal.label), "verdict")


def system_with(incident: Incident, **changes: Any) -> list[AffectedSystem] | None:
    """The affected systems with the first one changed (created when there is none and a name
    or operator is given); None when nothing would change."""
    given = {k: v for k, v in changes.items() if v not in (None, "")}
    systems = list(incident.affected_systems)
    if systems:
        first = systems[0].model_copy(update=given)
        if first == systems[0]:
            return None
        return [first, *systems[1:]]
    if not given.get("name") and not given.get("operator"):
        return None
    return [AffectedSystem(**{**given, "name": given.get("name") or given["operator"]})]


@router.post("/incidents/{incident_id}/edit")
def edit(request: Request, incident_id: str, title: Short, severity: Short, incident_type: Short,
         summary: Text = "", outcome: Text = "", impacts: Annotated[list[str] | None, Form()] = None,
         system_name: Short = "", system_operator: Short = "", system_owner: Short = "", system_level: Short = "",
         who: Caller = Depends(console_caller)) -> Response:  # noqa: B008
    def change(incident: Incident) -> Any:
        fields: dict[str, Any] = {"title": title.strip(), "severity": severity, "incident_type": incident_type,
                                  "summary": summary.strip(), "outcome": outcome.strip(), "impacts": impacts or []}
        level = int(system_level) if system_level.strip() else None
        systems = system_with(incident, name=system_name.strip(), operator=system_operator.strip(),
                              owner=system_owner.strip(), level=level)
        if systems is not None:
            fields["affected_systems"] = systems
        return who.services.incidents.update(incident.id, actor=who.principal.label, **fields)

    return _apply(request, who, incident_id, "incidents:write", change, "edit")


@router.post("/incidents/{incident_id}/merge")
def merge(request: Request, incident_id: str, sources: Short, who: Caller = Depends(console_caller)) -> Response:  # noqa: B008
    return _apply(request, who, incident_id, "incidents:write", lambda i: who.services.incidents.merge(
        i.id, _ids(sources), actor=who.principal.label), "merge", form={"sources": sources})


@router.post("/incidents/{incident_id}/split")
def split(request: Request, incident_id: str, alert_ids: Annotated[list[str] | None, Form()] = None,
          title: Short = "", who: Caller = Depends(console_caller)) -> Response:  # noqa: B008
    def change(incident: Incident) -> Response:
        made = who.services.incidents.split(incident.id, alert_ids or [], actor=who.principal.label,
                                            title=title.strip() or None)
        return _back(made.id, "split")

    return _apply(request, who, incident_id, "incidents:write", change, "split")


@router.post("/incidents/{incident_id}/attach")
def attach(request: Request, incident_id: str, rule: Short = "", host: Short = "", user: Short = "",
           source_ip: Short = "", text: Short = "", status: Short = "", since: Short = "", until: Short = "",
           who: Caller = Depends(console_caller)) -> Response:  # noqa: B008
    """Attach every alert a query selects (the alert queue's filters) that is in no incident;
    alerts already in another incident are counted and left where they are."""
    def change(incident: Incident) -> Response:
        filters = AlertFilters([status] if status else [], _ids(rule), [], [], host.strip() or None,
                               user.strip() or None, source_ip.strip() or None, text.strip() or None, [],
                               since.strip() or None, until.strip() or None)
        query = filters.query(who.services.settings.zone, who.services.clock)
        if query.empty:
            raise ValueError("give at least one filter: a query without one would select every alert")
        spec = doc_list(query, True)
        free, elsewhere = [], 0
        for doc in iter_docs(who.services.store, spec):
            if spec.keep is not None and not spec.keep(doc.body):
                continue
            owner = doc.body.get("incident_id")
            if owner == incident.id:
                continue
            if owner:
                elsewhere += 1
            else:
                free.append(doc.id)
            if len(free) >= MAX_ATTACH:
                break
        if free:
            who.services.incidents.attach(incident.id, free, actor=who.principal.label)
        return _back(incident.id, "attach", "#alerts", n=len(free), elsewhere=elsewhere)

    form = {"rule": rule, "host": host, "user": user, "source_ip": source_ip, "text": text}
    return _apply(request, who, incident_id, "incidents:write", change, "attach", form=form)


@router.post("/incidents/{incident_id}/tasks")
def send_task(request: Request, incident_id: str, agency: Short, title: Short, description: Text = "",
              due: Short = "", due_in: Short = "", who: Caller = Depends(console_caller)) -> Response:  # noqa: B008
    def change(incident: Incident) -> Any:
        body = NewTask(agency=agency, title=title, description=description, incident_id=incident.id,
                       due=due.strip() or None, due_in=due_in.strip() or None)
        return who.services.tasks.create(who.principal, agency=body.agency, title=body.title,
                                         description=body.description, incident_id=incident.id, due=_due(who, body))

    form = {"task_title": title, "task_description": description}
    return _apply(request, who, incident_id, "tasks:write", change, "task", "#tasks", form)

