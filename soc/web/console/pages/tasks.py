"""Remediation tasks in the console (:mod:`soc.incidents.remediation`): the tasks of the user's
agencies, newest first (filters in the URL, keyset pages); an agency's contact acknowledges a task
and marks it done with a note saying what was done (``tasks:respond``). The SOC sends tasks
from an incident's page.

Reads and changes go through the user's service layer: a task of another agency is not listed
and its forms answer the 404 page; every change is recorded in the task's events and the audit
trail under the user's name.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from soc.errors import SocError
from soc.incidents.remediation import KIND, STATUSES, TASKS, is_overdue
from soc.web.api.doclist import DocList, doc_page, time_range
from soc.web.console.render import render
from soc.web.console.security import console_caller
from soc.web.deps import Caller
from soc.web.problems import NotFound

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
DONE = {"acknowledged": "Task acknowledged.", "done": "Task marked done."}


def _page(request: Request, who: Caller, *, status: list[str], agency: list[str], incident: str | None,
          overdue: bool, since: str | None, until: str | None, cursor: str | None, error: str | None = None,
          code: int = 200) -> HTMLResponse:
    who.principal.require("tasks:read")
    status, agency = [s for s in status if s], [a for a in agency if a]
    bad = [s for s in status if s not in STATUSES]
    if bad:
        raise ValueError(f"status {bad[0][:40]!r}: use {', '.join(STATUSES)}")
    where: dict[str, object] = {"kind": KIND}
    if status:
        where["status"] = list(status)
    if agency:
        where["agency"] = list(agency)
    if incident:
        where["incident_id"] = incident
    now = who.services.clock()
    window = time_range(since, until, who.services.settings.zone, who.services.clock)
    spec = DocList(TASKS, where, "created_at", True, window, (lambda b: is_overdue(b, now)) if overdue else None)
    page = doc_page(who.services.store, spec, limit=PAGE_SIZE, cursor=cursor,
                    show=lambda body: {**body, "overdue": is_overdue(body, now)})
    tree = who.services.agencies
    scope = who.principal.scope(tree)
    filters = {"status": status, "agency": agency, "incident": incident or "", "overdue": overdue,
               "since": since or "", "until": until or ""}
    return render(request, "tasks/list.html", status=code, page=page, filters=filters, statuses=STATUSES,
                  agencies=[a for a in tree if scope.allows(a.id) and not a.merged_into], first_page=cursor is not None,
                  error=error, done=DONE.get(request.query_params.get("done") or ""),
                  can_respond=who.principal.can("tasks:respond"))


@router.get("/tasks")
def task_list(request: Request, status: list[str] = Query([]), agency: list[str] = Query([]),
              incident: str | None = Query(None, max_length=200), overdue: bool = False,
              since: str | None = Query(None, max_length=64), until: str | None = Query(None, max_length=64),
              cursor: str | None = Query(None, max_length=2048),
              who: Caller = Depends(console_caller)) -> HTMLResponse:  # noqa: B008
    return _page(request, who, status=status, agency=agency, incident=incident, overdue=overdue, since=since,
                 until=until, cursor=cursor)


def _respond(request: Request, who: Caller, task_id: str, action: str, note: str, back: str) -> Response:
    who.principal.require("tasks:respond")
    doc = who.services.store.get(TASKS, task_id)
    if doc is None or doc.body.get("kind") != KIND:
        raise NotFound(f"no remediation task {task_id!r}")
    try:
        if action == "acknowledged":
            who.services.tasks.acknowledge(who.principal, task_id, note=note)
        else:
            who.services.tasks.done(who.principal, task_id, note=note)
    except (ValueError, SocError) as error:
        return _page(request, who, status=[], agency=[], incident=None, overdue=False, since=None, until=None,
                     cursor=None, error=str(error), code=400)
    target = back if back.startswith("/tasks") and not back.startswith("//") else "/tasks"
    joiner = "&" if "?" in target else "?"
    return RedirectResponse(f"{target}{joiner}done={action}#task-{task_id}", status_code=303)


@router.post("/tasks/{task_id}/acknowledge")
def acknowledge(request: Request, task_id: str, note: Annotated[str, Form(max_length=10_000)] = "",
                back: Annotated[str, Form(max_length=2048)] = "/tasks",
                who: Caller = Depends(console_caller)) -> Response:  # noqa: B008
    return _respond(request, who, task_id, "acknowledged", note, back)


@router.post("/tasks/{task_id}/done")
def mark_done(request: Request, task_id: str, note: Annotated[str, Form(max_length=10_000)] = "",
              back: Annotated[str, Form(max_length=2048)] = "/tasks",
              who: Caller = Depends(console_caller)) -> Response:  # noqa: B008
    return _respond(request, who, task_id, "done", note, back)
