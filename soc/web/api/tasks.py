"""Remediation tasks the SOC sends to agencies (:mod:`soc.incidents.remediation`).

The SOC sends (``POST /tasks``, ``tasks:write``); the agency's users acknowledge and mark done
(``tasks:respond``); everyone with ``tasks:read`` lists and reads the tasks of their agencies.
``GET /tasks`` filters: ``agency``, ``status`` (each repeatable), ``incident_id``, ``overdue``
(not done and past due), ``since``/``until`` on the creation time; newest first, keyset pages.
A task of an agency outside the caller's scope is answered 404 like an unknown one.

``due`` is an ISO 8601 date or time (no zone: the analyst's; a date: its midnight) and
``due_in`` a time ahead from now (``12h``, ``3d``, ``2w``); give at most one.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from soc.incidents.remediation import KIND, TASKS, is_overdue
from soc.timeexpr import parse_time
from soc.web.api.doclist import DocList, Since, Until, doc_page, time_range
from soc.web.api.paging import Cursor, Limit
from soc.web.deps import Caller, need
from soc.web.problems import NotFound

__all__ = ["router"]

router = APIRouter(prefix="/tasks", tags=["tasks"])

_AHEAD = re.compile(r"^(\d{1,5})\s*([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
TaskStatus = Literal["open", "acknowledged", "done"]


class NewTask(BaseModel):
    agency: str = Field(min_length=1, max_length=200)
    title: str = Field(min_length=1, max_length=300)
    description: str = Field("", max_length=10_000)
    incident_id: str | None = Field(None, max_length=200)
    due: str | None = Field(None, max_length=64, description="ISO 8601 date or time (no zone: the analyst's)")
    due_in: str | None = Field(None, max_length=16, description="a time ahead from now: 12h, 3d, 2w")


class Acknowledge(BaseModel):
    note: str = Field("", max_length=10_000)


class Done(BaseModel):
    note: str = Field(min_length=1, max_length=10_000, description="what was done")


def _due(who: Caller, body: NewTask) -> datetime | None:
    now = who.services.clock()
    if body.due and body.due_in:
        raise ValueError("give due or due_in, not both")
    if body.due_in:
        ahead = _AHEAD.match(body.due_in.strip().lower())
        if not ahead:
            raise ValueError(f"due_in {body.due_in!r}: a time ahead from now such as 12h, 3d or 2w")
        return now + timedelta(**{_UNITS[ahead.group(2)]: int(ahead.group(1))})
    if body.due:
        arg = parse_time(body.due)
        if arg.kind not in ("day", "local", "exact"):
            raise ValueError(f"due {body.due!r}: an ISO 8601 date or time (use due_in for 3d from now)")
        return arg.resolve(who.services.settings.zone, now)
    return None


def _require(who: Caller, task_id: str) -> None:
    doc = who.services.store.get(TASKS, task_id)
    if doc is None or doc.body.get("kind") != KIND:
        raise NotFound(f"no remediation task {task_id!r}")


@router.get("", summary="Remediation tasks, newest first")
def list_tasks(agency: list[str] = Query([]), status: list[TaskStatus] = Query([]),
               incident_id: str | None = Query(None, max_length=200),
               overdue: bool = Query(False, description="only tasks not done and past their due time"),
               since: str | None = Since, until: str | None = Until, limit: int = Limit,
               cursor: str | None = Cursor, who: Caller = need("tasks:read")) -> dict[str, Any]:
    where: dict[str, Any] = {"kind": KIND}
    if agency:
        where["agency"] = list(agency)
    if status:
        where["status"] = list(status)
    if incident_id:
        where["incident_id"] = incident_id
    now = who.services.clock()
    window = time_range(since, until, who.services.settings.zone, who.services.clock)
    spec = DocList(TASKS, where, "created_at", True, window,
                   (lambda body: is_overdue(body, now)) if overdue else None)
    return doc_page(who.services.store, spec, limit=limit, cursor=cursor,
                    show=lambda body: {**body, "overdue": is_overdue(body, now)}).body()


@router.post("", status_code=201, summary="Send a task to an agency (its contacts are e-mailed)")
def create_task(body: NewTask, who: Caller = need("tasks:write")) -> dict[str, Any]:
    return who.services.tasks.create(who.principal, agency=body.agency, title=body.title,
                                     description=body.description, incident_id=body.incident_id,
                                     due=_due(who, body))


@router.get("/{task_id}", summary="One task with its events and notifications")
def get_task(task_id: str, who: Caller = need("tasks:read")) -> dict[str, Any]:
    _require(who, task_id)
    return who.services.tasks.get(who.principal, task_id)


@router.post("/{task_id}/acknowledge", summary="The agency has seen the task")
def acknowledge(task_id: str, body: Acknowledge | None = None, who: Caller = need("tasks:respond")) -> dict[str, Any]:
    _require(who, task_id)
    return who.services.tasks.acknowledge(who.principal, task_id, note=(body or Acknowledge()).note)


@router.post("/{task_id}/done", summary="The agency has done it (with a note; the SOC is e-mailed)")
def done(task_id: str, body: Done, who: Caller = need("tasks:respond")) -> dict[str, Any]:
    _require(who, task_id)
    return who.services.tasks.done(who.principal, task_id, note=body.note)
