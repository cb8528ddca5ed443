"""Playbooks (:mod:`soc.playbooks`): the definitions and the files that failed to load, runs
with their steps and record, running one by hand (or a dry run), deciding an approval.

A run started here executes in the request, like ``soc playbook run``, and the answer is the
run as it stands when the request ends: ``succeeded``, ``failed``, or ``waiting`` for an
approval or a sub-playbook. Deciding an approval continues the run the same way. Whoever
decides must hold ``playbooks:approve`` and, when the step lists approvers, be one of them
(:mod:`soc.playbooks.approvers`): otherwise 403 and the approval stays pending.

Runs belong to no agency (collection ``playbook_runs``): a principal scoped to some agencies
sees none and starts none.
"""

from __future__ import annotations

import json
import uuid
from typing import Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from soc.playbooks import APPROVALS, RUNS, Playbook, PlaybookError, PlaybookRunner
from soc.web.api.doclist import DocList, Since, Until, doc_page, time_range
from soc.web.api.paging import Cursor, Limit
from soc.web.deps import Caller, need
from soc.web.problems import NotFound

router = APIRouter(prefix="/playbooks", tags=["playbooks"])

RunStatus = Literal["pending", "running", "waiting", "succeeded", "failed"]


class RunRequest(BaseModel):
    """A run by hand: the playbook's inputs, optionally the alerts or the incident it is about."""

    inputs: dict[str, Any] = Field(default_factory=dict)
    dry_run: bool = Field(False, description="actions say what they would do; nothing is changed or sent")
    alert_ids: list[str] = Field(default_factory=list, max_length=500, description="run on these alerts")
    incident_id: str | None = Field(None, description="run on this incident")
    key: str | None = Field(None, max_length=200, description="idempotency key: a second run with the same "
                                                              "key does nothing (default: a new key)")


class Decision(BaseModel):
    comment: str = Field("", max_length=2000)


def _runner(who: Caller) -> PlaybookRunner:
    return who.services.playbook_runner()


def _definition(playbook: Playbook) -> dict[str, Any]:
    data = playbook.model_dump(mode="json", by_alias=True, exclude={"steps", "outputs"})
    data["steps"] = [{"id": s.id, "action": s.action, "title": s.title} for s in playbook.steps]
    return data


def _decoded(body: dict[str, Any]) -> dict[str, Any]:
    """A stored run or record with its ``*_json`` fields as JSON values (``inputs_json`` ->
    ``inputs``)."""
    shown: dict[str, Any] = {}
    for key, value in body.items():
        if key.endswith("_json"):
            try:
                shown[key[:-5]] = json.loads(value) if isinstance(value, str) and value else None
            except ValueError:
                shown[key[:-5]] = value
        elif key == "steps" and isinstance(value, list):
            shown[key] = [_decoded(s) if isinstance(s, dict) else s for s in value]
        else:
            shown[key] = value
    return shown


def _run(who: Caller, run_id: str) -> dict[str, Any]:
    doc = who.services.store.get(RUNS, run_id)
    if doc is None:
        raise NotFound(f"no playbook run {run_id!r}")
    return doc.body


def _approval(who: Caller, run: dict[str, Any]) -> dict[str, Any] | None:
    """The approval a waiting run waits for (prompt, approvers, status), if any."""
    waiting = [s for s in run.get("steps", []) if s.get("status") == "waiting" and s.get("action") == "approval.wait"]
    if not waiting:
        return None
    doc = who.services.store.get(APPROVALS, f"{run['id']}:{waiting[0]['id']}")
    return doc.body if doc is not None else None


@router.get("", summary="Playbook definitions, and the files that failed to load")
def list_playbooks(who: Caller = need("playbooks:read")) -> dict[str, Any]:
    runner = _runner(who)
    items = [_definition(p) for p in sorted(runner.playbooks.values(), key=lambda p: p.id)]
    return {"items": items, "next": None, "total": len(items), "total_exact": True, "errors": list(runner.errors)}


@router.get("/runs", summary="Playbook runs, newest first")
def list_runs(playbook_id: str | None = Query(None, max_length=200), status: RunStatus | None = Query(None),
              since: str | None = Since, until: str | None = Until, limit: int = Limit,
              cursor: str | None = Cursor, who: Caller = need("playbooks:read")) -> dict[str, Any]:
    """Runs created in ``[since, until)``, of one playbook or status."""
    window = time_range(since, until, who.services.settings.zone, who.services.clock)
    where = {k: v for k, v in {"playbook_id": playbook_id, "status": status}.items() if v}
    who.services.store.refresh()
    spec = DocList(RUNS, where or None, "created_at", window=window)
    return doc_page(who.services.store, spec, limit=limit, cursor=cursor, show=_decoded).body()


@router.get("/runs/{run_id}", summary="One run: its steps, the approval it waits for, its record")
def get_run(run_id: str, who: Caller = need("playbooks:read")) -> dict[str, Any]:
    run = _run(who, run_id)
    records = _runner(who).records(run_id)
    return {**_decoded(run), "approval": _approval(who, run), "record": [_decoded(r) for r in records]}


@router.post("/{playbook_id}/run", summary="Run a playbook by hand (or a dry run)")
def run_playbook(playbook_id: str, body: RunRequest, who: Caller = need("playbooks:run")) -> dict[str, Any]:
    runner = _runner(who)
    playbook = runner.playbooks.get(playbook_id)
    if playbook is None:
        raise NotFound(f"no playbook {playbook_id!r}")
    if not playbook.trigger.manual:
        raise ValueError(f"playbook {playbook_id} may not be run by hand (trigger.manual is false)")
    if not playbook.enabled and not body.dry_run:
        raise ValueError(f"playbook {playbook_id} is disabled: only a dry run is possible")
    trigger: dict[str, Any] = {"type": "manual", "by": who.principal.label}
    if body.alert_ids:
        alerts = []
        for alert_id in body.alert_ids:
            doc = who.services.store.get("alerts", alert_id)
            if doc is None:
                raise NotFound(f"no alert {alert_id!r}")
            alerts.append(doc.body)
        trigger.update(alerts=alerts, alert=alerts[0], alert_ids=[a["id"] for a in alerts], group={})
    if body.incident_id:
        incident = who.services.incidents.get(body.incident_id)
        if incident is None:
            raise NotFound(f"no incident {body.incident_id!r}")
        trigger.update(incident=incident.model_dump(mode="json"), event="manual")
    try:
        run_id, created = runner.start(playbook, trigger, f"manual:{body.key or uuid.uuid4().hex}",
                                       inputs=body.inputs, actor=who.principal.label, dry_run=body.dry_run)
    except PlaybookError as error:
        raise ValueError(str(error)) from error
    run = _run(who, run_id)
    return {**_decoded(run), "created": created, "approval": _approval(who, run)}


def _decide(who: Caller, run_id: str, approved: bool, comment: str) -> dict[str, Any]:
    _run(who, run_id)
    runner = _runner(who)
    try:
        runner.approve(run_id, approved=approved, by=who.principal, comment=comment)
    except PlaybookError as error:
        raise ValueError(str(error)) from error
    return _decoded(_run(who, run_id))


@router.post("/runs/{run_id}/approve", summary="Approve the step a run waits for, and continue the run")
def approve_run(run_id: str, body: Decision | None = None, who: Caller = need("playbooks:approve")) -> dict[str, Any]:
    return _decide(who, run_id, True, (body or Decision()).comment)


@router.post("/runs/{run_id}/reject", summary="Reject the step a run waits for, and continue the run")
def reject_run(run_id: str, body: Decision | None = None, who: Caller = need("playbooks:approve")) -> dict[str, Any]:
    return _decide(who, run_id, False, (body or Decision()).comment)
