"""Playbooks in the console (:mod:`soc.playbooks`): the definitions and the files that failed to
load, the approvals waiting for a decision, the runs (filters in the URL, keyset pages), one run
with its steps and its append-only record, a decision on an approval with a comment, and a run
by hand (or a dry run).

Everything goes through the user's service layer: the runner checks that whoever decides holds
``playbooks:approve`` and is among the step's approvers (otherwise the 403 page, and the approval
stays pending). Runs belong to no agency, so a user scoped to some agencies sees none.
"""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from soc.access import Forbidden
from soc.errors import SocError
from soc.playbooks import APPROVALS, RUNS, PlaybookError
from soc.web.api.doclist import DocList, doc_page
from soc.web.api.playbooks import _approval, _decoded, _definition
from soc.web.console.render import render
from soc.web.console.security import console_caller
from soc.web.deps import Caller
from soc.web.problems import NotFound

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

RUN_STATUSES = ("pending", "running", "waiting", "succeeded", "failed")
PAGE_SIZE = 30
DONE = {"approved": "Approved; the run continues.", "rejected": "Rejected; the run continues.",
        "started": "Run started.", "exists": "A run with this key exists already: here it is."}


@router.get("/playbooks")
def playbook_list(request: Request, playbook: str | None = Query(None, max_length=200),
                  status: str | None = Query(None, max_length=20), cursor: str | None = Query(None, max_length=2048),
                  who: Caller = Depends(console_caller)) -> HTMLResponse:  # noqa: B008
    who.principal.require("playbooks:read")
    if status and status not in RUN_STATUSES:
        raise ValueError(f"status {status[:20]!r}: use {', '.join(RUN_STATUSES)}")
    runner = who.services.playbook_runner()
    store = who.services.store
    store.refresh()
    where = {k: v for k, v in {"playbook_id": playbook, "status": status}.items() if v}
    runs = doc_page(store, DocList(RUNS, where or None, "created_at"), limit=PAGE_SIZE, cursor=cursor,
                    show=_decoded)
    pending = [d.body for d in store.find(APPROVALS, {"status": "pending"}, sort="requested_at", limit=200)]
    definitions = [_definition(p) for p in sorted(runner.playbooks.values(), key=lambda p: p.id)]
    return render(request, "playbooks/list.html", definitions=definitions, errors=list(runner.errors), runs=runs,
                  pending=pending, filters={"playbook": playbook or "", "status": status or ""},
                  statuses=RUN_STATUSES, first_page=cursor is not None)


def _run(who: Caller, run_id: str) -> dict[str, Any]:
    doc = who.services.store.get(RUNS, run_id)
    if doc is None:
        raise NotFound(f"no playbook run {run_id!r}")
    return doc.body


def _text(value: Any) -> str:
    """A step's output or a record's detail as readable JSON text (shown escaped, as text)."""
    if value is None or value == {}:
        return ""
    return json.dumps(value, ensure_ascii=False, indent=1, default=str)


def run_page(request: Request, who: Caller, run_id: str, *, error: str | None = None, status: int = 200) -> HTMLResponse:
    who.principal.require("playbooks:read")
    run = _run(who, run_id)
    shown = _decoded(run)
    for step in shown.get("steps") or []:
        step["shown"] = step.get("error") or _text(step.get("output"))
    record = []
    for entry in who.services.playbook_runner().records(run_id):
        entry = _decoded(entry)
        entry["shown"] = entry.get("error") or _text(entry.get("output")) or _text(entry.get("detail"))
        record.append(entry)
    waiting = _approval(who, run)
    approvals = [doc.body for doc in (who.services.store.get(APPROVALS, f"{run_id}:{step['id']}")
                                      for step in run.get("steps") or [] if step.get("action") == "approval.wait")
                 if doc is not None]
    return render(request, "playbooks/run.html", status=status, run=shown, approval=waiting, approvals=approvals,
                  record=record, error=error, done=DONE.get(request.query_params.get("done") or ""),
                  can_decide=who.principal.can("playbooks:approve"))


@router.get("/playbooks/runs/{run_id}")
def run_detail(request: Request, run_id: str, who: Caller = Depends(console_caller)) -> HTMLResponse:  # noqa: B008
    return run_page(request, who, run_id)


def _decide(request: Request, who: Caller, run_id: str, approved: bool, comment: str) -> Response:
    who.principal.require("playbooks:approve")
    _run(who, run_id)
    try:
        who.services.playbook_runner().approve(run_id, approved=approved, by=who.principal, comment=comment)
    except Forbidden as error:  # not among the step's approvers: the approval stays pending
        return run_page(request, who, run_id, error=str(error), status=403)
    except (PlaybookError, ValueError, SocError) as error:
        return run_page(request, who, run_id, error=str(error), status=400)
    return RedirectResponse(f"/playbooks/runs/{run_id}?done={'approved' if approved else 'rejected'}",
                            status_code=303)


@router.post("/playbooks/runs/{run_id}/approve")
def approve(request: Request, run_id: str, comment: Annotated[str, Form(max_length=2000)] = "",
            who: Caller = Depends(console_caller)) -> Response:  # noqa: B008
    return _decide(request, who, run_id, True, comment)


@router.post("/playbooks/runs/{run_id}/reject")
def reject(request: Request, run_id: str, comment: Annotated[str, Form(max_length=2000)] = "",
           who: Caller = Depends(console_caller)) -> Response:  # noqa: B008
    return _decide(request, who, run_id, False, comment)


def definition_page(request: Request, who: Caller, playbook_id: str, *, error: str | None = None,
                    status: int = 200, form: dict[str, Any] | None = None) -> HTMLResponse:
    who.principal.require("playbooks:read")
    playbook = who.services.playbook_runner().playbooks.get(playbook_id)
    if playbook is None:
        raise NotFound(f"no playbook {playbook_id!r}")
    return render(request, "playbooks/definition.html", status=status, playbook=playbook,
                  definition=_definition(playbook), error=error, form=form or {},
                  can_run=who.principal.can("playbooks:run") and playbook.trigger.manual)


@router.get("/playbooks/{playbook_id}")
def playbook_detail(request: Request, playbook_id: str, who: Caller = Depends(console_caller)) -> HTMLResponse:  # noqa: B008
    return definition_page(request, who, playbook_id)


@router.post("/playbooks/{playbook_id}/run")
async def run_playbook(request: Request, playbook_id: str, who: Caller = Depends(console_caller)) -> Response:  # noqa: B008
    """A run by hand: the declared inputs (empty: the default), optionally an incident or alerts."""
    who.principal.require("playbooks:run")
    runner = who.services.playbook_runner()
    playbook = runner.playbooks.get(playbook_id)
    if playbook is None:
        raise NotFound(f"no playbook {playbook_id!r}")
    form = await request.form()
    given = {k: str(form.get(f"input.{k}") or "").strip() for k in playbook.inputs}
    inputs = {k: v for k, v in given.items() if v}
    dry_run = form.get("dry_run") == "on"
    incident_id = str(form.get("incident_id") or "").strip()
    alert_ids = [a for a in str(form.get("alert_ids") or "").replace(",", " ").split() if a][:500]
    kept = {"inputs": given, "dry_run": dry_run, "incident_id": incident_id, "alert_ids": " ".join(alert_ids)}
    try:
        if not playbook.trigger.manual:
            raise ValueError(f"playbook {playbook_id} may not be run by hand (trigger.manual is false)")
        if not playbook.enabled and not dry_run:
            raise ValueError(f"playbook {playbook_id} is disabled: only a dry run is possible")
        trigger: dict[str, Any] = {"type": "manual", "by": who.principal.label}
        if alert_ids:
            alerts = []
            for alert_id in alert_ids:
                doc = who.services.store.get("alerts", alert_id)
                if doc is None:
                    raise ValueError(f"no alert {alert_id!r}")
                alerts.append(doc.body)
            trigger.update(alerts=alerts, alert=alerts[0], alert_ids=[a["id"] for a in alerts], group={})
        if incident_id:
            incident = who.services.incidents.get(incident_id)
            if incident is None:
                raise ValueError(f"no incident {incident_id!r}")
            trigger.update(incident=incident.model_dump(mode="json"), event="manual")
        run_id, created = runner.start(playbook, trigger, f"manual:{uuid.uuid4().hex}", inputs=inputs,
                                       actor=who.principal.label, dry_run=dry_run)
    except Forbidden:
        raise
    except (PlaybookError, ValueError, SocError) as error:
        return definition_page(request, who, playbook_id, error=str(error), status=400, form=kept)
    return RedirectResponse(f"/playbooks/runs/{run_id}?done={'started' if created else 'exists'}", status_code=303)
