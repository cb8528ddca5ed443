"""Shift handover (giao ca): the outgoing shift's summary (:mod:`soc.handover`), the note and
who takes over, saved as a draft or signed off by the outgoing analyst; past handovers; a
printable summary (A4 portrait).

The page needs ``alerts:read``; saving and signing need ``alerts:write`` or
``incidents:write`` (checked by the service). Everything is computed through the service layer
acting as the analyst: the summary holds only the agencies the analyst may see, and every save
and sign-off is in the audit trail under the analyst's name.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from soc.handover import MAX_NOTE, HandoverError, HandoverNotFound, Handovers, ShiftWindow
from soc.model import iso
from soc.web.console.render import render
from soc.web.console.security import console_caller
from soc.web.deps import Caller
from soc.web.problems import NotFound

router = APIRouter(include_in_schema=False)

PAST = 10


def _service(who: Caller) -> Handovers:
    who.principal.require("alerts:read")
    return Handovers(who.services)


def _found(service: Handovers, handover_id: str) -> dict[str, Any]:
    try:
        return service.get(handover_id)
    except HandoverNotFound as error:
        raise NotFound(f"no handover {handover_id!r}") from error


def _page(request: Request, who: Caller, service: Handovers, window: ShiftWindow | None, *, status: int = 200,
          error: str | None = None, note: str | None = None, incoming: str | None = None,
          form: dict[str, str] | None = None) -> Response:
    draft = service.draft()
    past = service.list(limit=PAST, cursor=request.query_params.get("cursor") or None)
    summary = service.summary(window) if window is not None else None
    follows = service.get(window.follows) if window is not None and window.follows else None
    return render(request, "handover/page.html", status=status, summary=summary, window=window, follows=follows,
                  draft=draft, past=[d.body for d in past.docs], past_total=past.total, next=past.cursor,
                  note=note if note is not None else (draft or {}).get("note", ""),
                  incoming=incoming if incoming is not None else (draft or {}).get("incoming") or "",
                  error=error, form=form or {}, max_note=MAX_NOTE, done=request.query_params.get("done"),
                  may_sign=who.principal.can("alerts:write") or who.principal.can("incidents:write"),
                  start=iso(window.start) if window else "", end=iso(window.end) if window else "")


@router.get("/handover")
def handover_page(request: Request, who: Caller = Depends(console_caller)) -> Response:
    service = _service(who)
    form = {name: (request.query_params.get(name) or "").strip() for name in ("since", "until")}
    try:
        window = service.window(form["since"] or None, form["until"] or None)
    except (HandoverError, ValueError) as error:
        return _page(request, who, service, None, status=400, error=str(error), form=form)
    return _page(request, who, service, window, form=form)


@router.post("/handover")
def save_handover(request: Request, start: Annotated[str, Form(max_length=64)],
                  end: Annotated[str, Form(max_length=64)], note: Annotated[str, Form(max_length=MAX_NOTE + 1000)] = "",
                  incoming: Annotated[str, Form(max_length=64)] = "", action: Annotated[str, Form()] = "save",
                  handover_id: Annotated[str, Form(max_length=64)] = "",
                  who: Caller = Depends(console_caller)) -> Response:
    service = _service(who)
    window = service.window(start, end)
    try:
        saved = service.save(window, note=note, incoming=incoming, sign=action == "sign",
                             handover_id=handover_id or None)
    except HandoverNotFound as error:
        raise NotFound(str(error)) from error
    except HandoverError as error:
        return _page(request, who, service, window, status=400, error=str(error), note=note, incoming=incoming)
    if saved["status"] == "signed":
        return RedirectResponse(f"/handover/{saved['id']}?done=signed", status_code=303)
    return RedirectResponse(f"/handover?since={saved['shift_start']}&until={saved['shift_end']}&done=saved",
                            status_code=303)


@router.get("/handover/{handover_id}")
def handover_record(request: Request, handover_id: str, who: Caller = Depends(console_caller)) -> Response:
    service = _service(who)
    record = _found(service, handover_id)
    return render(request, "handover/record.html", record=record, summary=record["summary"],
                  check=service.check(record), done=request.query_params.get("done"))


@router.get("/handover/{handover_id}/print")
def handover_print(request: Request, handover_id: str, who: Caller = Depends(console_caller)) -> Response:
    service = _service(who)
    record = _found(service, handover_id)
    return render(request, "handover/print.html", record=record, summary=record["summary"],
                  check=service.check(record), agency_names=who.services.agencies.names())
