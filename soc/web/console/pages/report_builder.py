"""The report builder: Mẫu 03 (initial report) and Mẫu 04 (closing report) of an incident,
previewed as the form the national centre receives, with the required fields that are missing
highlighted and editable in place; then built, signed and sent, with the deliveries and receipts.

**Where a value is saved.** What the incident holds -- the summary, the outcome, the first
affected system (operator, governing body, name, level) -- is saved on the incident through the
incident service (a history entry and an audit record under the user's name). What only a report
holds -- whom the incident was already notified to, how it was detected, attachments, support
requested... -- travels in the builder's URL as the report's overrides until the report is built,
and is then stored in the report's snapshot. The reporting organisation, contact person and
signatory are the service's settings (``reporting:`` in soc.yml): when they are missing the page
says where to set them.

The preview is the export engine's own (:meth:`soc.export.reports.Reports.preview_incident`):
when required fields are missing it is asked again with a placeholder in each field an override
can fill, so the rest of the form is shown as it will be built.
"""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from soc.errors import SocError
from soc.export import snapshot as snapshots
from soc.export.incident_report import MissingFieldsError
from soc.export.outbox import OUTBOX, RECEIPTS, deliver_due, enqueue
from soc.incidents.model import Incident
from soc.web.api.reports import _audit, _overrides, _own
from soc.web.console.pages.incident_actions import system_with
from soc.web.console.pages.incidents import DONE, require_incident
from soc.web.console.pages.report_layout import (
    FORMS,
    LIST_KEYS,
    OVERRIDE_KEYS,
    PLACEHOLDERS,
    REPORT_KEYS,
    rows,
)
from soc.web.console.render import render
from soc.web.console.security import console_caller
from soc.web.deps import Caller
from soc.web.problems import NotFound

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

Text = Annotated[str, Form(max_length=20_000)]
Values = Annotated[list[str] | None, Form()]


def _form(form: str) -> tuple[str, tuple[str, ...]]:
    if form not in FORMS:
        raise NotFound(f"no form {form!r}: use 03 or 04")
    return form, FORMS[form]


def _given(params: Any, keys: tuple[str, ...] = OVERRIDE_KEYS) -> dict[str, Any]:
    """The overrides of a query string or form (text and lists), as given."""
    given: dict[str, Any] = {}
    for key in keys:
        if key in LIST_KEYS:
            values = [v for v in params.getlist(key) if v]
            if values:
                given[key] = values
        elif (params.get(key) or "").strip():
            given[key] = params.get(key).strip()
    return given


def _preview(who: Caller, incident_id: str, kind: str, overrides: dict[str, Any]) -> tuple[dict | None, dict]:
    """The document as it would be built (placeholders where a missing field can be filled) and
    the missing required fields by name."""
    reports = who.services.reports
    first = reports.preview_incident(incident_id, kind, None, overrides)
    missing = {m["field"]: m for m in first.missing}
    if not missing:
        return first.document, missing
    filled = {**overrides, **{PLACEHOLDERS[f][0]: PLACEHOLDERS[f][1] for f in missing if f in PLACEHOLDERS}}
    return reports.preview_incident(incident_id, kind, None, filled).document, missing


def builder_page(request: Request, who: Caller, incident: Incident, form: str, kind: str,
                 given: dict[str, Any], *, error: str | None = None, status: int = 200,
                 missing_fields: list[dict[str, Any]] | None = None) -> HTMLResponse:
    overrides = _overrides(given)
    document, missing = _preview(who, incident.id, kind, overrides)
    built = [r for r in incident.reports if r.kind in FORMS[form]]
    return render(request, "incidents/report.html", status=status, incident=incident, form=form, kind=kind,
                  kinds=FORMS[form], rows=rows(form, document, missing, incident, given), missing=missing,
                  document=document, given=given, hidden=[(k, v) for k, vs in given.items()
                                                          for v in (vs if isinstance(vs, list) else [vs])],
                  built=built, error=error, refused=missing_fields or [], can_build=who.principal.can("reports:write"),
                  can_sign=who.services.reports.can_sign)


@router.get("/incidents/{incident_id}/report/{form}")
def report_builder(request: Request, incident_id: str, form: str, kind: str | None = None,
                   who: Caller = Depends(console_caller)) -> HTMLResponse:  # noqa: B008
    who.principal.require("reports:write")
    form, kinds = _form(form)
    incident = require_incident(who, incident_id)
    kind = kind if kind in kinds else kinds[0]
    return builder_page(request, who, incident, form, kind, _given(request.query_params))


@router.post("/incidents/{incident_id}/report/{form}/save")
async def save(request: Request, incident_id: str, form: str, kind: Annotated[str, Form(max_length=20)],
               summary: Text = "", outcome: Text = "", system_name: Text = "", system_operator: Text = "",
               system_owner: Text = "", system_level: Text = "",
               who: Caller = Depends(console_caller)) -> Response:  # noqa: B008
    """Save what the incident holds on the incident; keep the report's own values in the URL."""
    who.principal.require("reports:write")
    form, kinds = _form(form)
    incident = require_incident(who, incident_id)
    given = _given(await request.form(), REPORT_KEYS)
    kind = kind if kind in kinds else kinds[0]
    held = {"summary": summary.strip(), "outcome": outcome.strip(), "system_name": system_name.strip(),
            "system_operator": system_operator.strip(), "system_owner": system_owner.strip(),
            "system_level": system_level.strip()}
    try:
        if not who.principal.can("incidents:write"):  # may not change the incident: the report's own values
            given.update({k: v for k, v in held.items() if v})
        else:
            fields: dict[str, Any] = {k: held[k] for k in ("summary", "outcome")
                                      if held[k] and held[k] != getattr(incident, k)}
            systems = system_with(incident, name=held["system_name"], operator=held["system_operator"],
                                  owner=held["system_owner"], level=int(held["system_level"]) if held["system_level"]
                                  else None)
            if systems is not None:
                fields["affected_systems"] = systems
            if fields:
                who.services.incidents.update(incident.id, actor=who.principal.label, **fields)
        _overrides(given)  # refused here rather than on the next page
    except (ValueError, SocError) as error:
        return builder_page(request, who, incident, form, kind, {}, error=str(error), status=400)
    query = urlencode([("kind", kind), ("done", "saved"), *[(k, v) for k, vs in given.items()
                                                             for v in (vs if isinstance(vs, list) else [vs])]])
    return RedirectResponse(f"/incidents/{incident.id}/report/{form}?{query}#form", status_code=303)


@router.post("/incidents/{incident_id}/report/{form}/build")
async def build(request: Request, incident_id: str, form: str, kind: Annotated[str, Form(max_length=20)],
                who: Caller = Depends(console_caller)) -> Response:  # noqa: B008
    who.principal.require("reports:write")
    form, kinds = _form(form)
    incident = require_incident(who, incident_id)
    given = _given(await request.form())
    kind = kind if kind in kinds else kinds[0]
    try:
        built = who.services.reports.build_incident(incident.id, kind, None, _overrides(given))
    except MissingFieldsError as error:
        shown = [{"field": m.field, "label_vi": m.label_vi, "label_en": m.label_en, "where": m.where}
                 for m in error.missing]
        return builder_page(request, who, incident, form, kind, given, status=400, missing_fields=shown)
    except (ValueError, SocError) as error:
        return builder_page(request, who, incident, form, kind, given, error=str(error), status=400)
    return RedirectResponse(f"/incidents/{incident.id}/reports/{built.report_no}?done=built", status_code=303)


def _snapshot(who: Caller, incident: Incident, report_no: str) -> dict[str, Any]:
    doc = who.services.store.get(snapshots.SNAPSHOTS, report_no)
    if doc is None or (doc.body.get("incident") or {}).get("id") != incident.id:
        raise NotFound(f"no report {report_no!r} of incident {incident.id}")
    return doc.body


def report_page(request: Request, who: Caller, incident: Incident, report_no: str, *, error: str | None = None,
                status: int = 200) -> HTMLResponse:
    snap = _snapshot(who, incident, report_no)
    reports = who.services.reports
    folder = reports.out_dir / report_no
    names = sorted(p.name for p in folder.iterdir() if _own(p, report_no)) if folder.is_dir() else []
    files = [{"name": n, "signed": f"{n}.p7s" in names} for n in names if not n.endswith(".p7s")]
    store = who.services.store
    deliveries = [d.body for d in store.find(OUTBOX, {"report_no": report_no}, sort="created_at", limit=1000)]
    receipts = [{**d.body, "shown": json.dumps(d.body.get("receipt"), ensure_ascii=False, indent=1, default=str)}
                for d in store.find(RECEIPTS, {"report_no": report_no}, limit=1000)]
    profile = (snap.get("profile") or {}).get("id")
    recipients = [r for r in who.services.settings.reporting.recipients if r.profile == profile]
    done = request.query_params.get("done")
    return render(request, "incidents/built.html", status=status, incident=incident, snap=snap,
                  report_no=report_no, files=files, deliveries=deliveries, receipts=sorted(
                      receipts, key=lambda r: str(r.get("delivered_at") or "")), recipients=recipients,
                  can_sign=reports.can_sign and who.principal.can("reports:write"),
                  can_send=who.principal.can("reports:send"), error=error, done=DONE.get(done or ""),
                  form="04" if snap.get("kind") == "closing" else "03")


@router.get("/incidents/{incident_id}/reports/{report_no}")
def built_report(request: Request, incident_id: str, report_no: str,
                 who: Caller = Depends(console_caller)) -> HTMLResponse:  # noqa: B008
    who.principal.require("reports:read")
    return report_page(request, who, require_incident(who, incident_id), report_no)


@router.post("/incidents/{incident_id}/reports/{report_no}/sign")
def sign(request: Request, incident_id: str, report_no: str, who: Caller = Depends(console_caller)) -> Response:  # noqa: B008
    who.principal.require("reports:write")
    incident = require_incident(who, incident_id)
    _snapshot(who, incident, report_no)
    try:
        built = who.services.reports.sign(report_no)
    except (ValueError, SocError) as error:
        return report_page(request, who, incident, report_no, error=str(error), status=400)
    _audit(who, request, "report.sign", report_no, {"signatures": [p.name for p in built.signatures]})
    return RedirectResponse(f"/incidents/{incident.id}/reports/{report_no}?done=signed", status_code=303)


@router.post("/incidents/{incident_id}/reports/{report_no}/send")
def send(request: Request, incident_id: str, report_no: str, recipients: Values = None,
         who: Caller = Depends(console_caller)) -> Response:  # noqa: B008
    who.principal.require("reports:send")
    incident = require_incident(who, incident_id)
    _snapshot(who, incident, report_no)
    store, settings = who.services.store, who.services.settings
    try:
        enqueue(store, settings, report_no, list(recipients) if recipients else None)
        deliver_due(store, settings)
    except (ValueError, SocError) as error:
        return report_page(request, who, incident, report_no, error=str(error), status=400)
    return RedirectResponse(f"/incidents/{incident.id}/reports/{report_no}?done=sent", status_code=303)
