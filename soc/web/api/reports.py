"""National reports (:mod:`soc.export`): what is due, building (Mẫu 03/04 from an incident, a
summary of a period), previewing for the report builder, signing, sending, receipts and the
files themselves.

**Who sees which report.** A report belongs to the agencies of its incident
(``owner_agencies`` of the snapshot, its outbox entries and receipts); the scoped store shows a
principal only the reports of its agencies, so another agency's report is absent from the lists
and answers 404 by number. A province-wide summary belongs to no agency: only principals that
see every agency see it or build it.

**Files.** ``GET /reports/{no}/files/{name}`` serves only a file of that report's own folder
(``<reporting.out_dir>/<report number>/``) named in its listing -- a name with a path in it
never matches -- and records the download in the audit trail (``download.report``).
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, Field, model_validator

from soc.export import snapshot as snapshots
from soc.export.due import due_reports
from soc.export.incident_report import (
    BOOL_OVERRIDES,
    INT_OVERRIDES,
    LIST_OVERRIDES,
    OVERRIDES,
    MissingFieldsError,
    parse_overrides,
)
from soc.export.outbox import OUTBOX, RECEIPTS, deliver_due, enqueue
from soc.export.render import content_type
from soc.export.reports import BuiltReport, Preview
from soc.model import now_utc
from soc.store.base import Doc
from soc.web.api.doclist import Since, Until, time_range
from soc.web.api.paging import Cursor, Limit, page_docs, page_list
from soc.web.deps import Caller, client_ip, need
from soc.web.problems import NotFound, problem

router = APIRouter(prefix="/reports", tags=["reports"])

SummaryType = Literal["daily", "weekly", "monthly", "quarterly", "semiannual", "annual"]


class BuildRequest(BaseModel):
    """Build Mẫu 03/04 for an incident (``incident`` and ``kind``) or the summary of a period
    (``summary`` and ``period``); ``overrides`` fill form fields the incident does not hold."""

    incident: str | None = Field(None, max_length=200)
    kind: Literal["initial", "update", "closing"] = "initial"
    summary: SummaryType | None = None
    period: str | None = Field(None, max_length=20, description="2026-11-30, 2026-W48, 2026-11, 2026-Q4, "
                                                                "2026-H2 or 2026 (default: the last complete one)")
    profile: str | None = Field(None, max_length=100, description="report profile (default: reporting.default_profile)")
    overrides: dict[str, Any] = Field(default_factory=dict, description=f"form fields: {', '.join(sorted(OVERRIDES))}")
    rebuild: bool = Field(False, description="with summary: a new snapshot even if the period has one")
    recommendations: str | None = Field(None, max_length=10_000)

    @model_validator(mode="after")
    def _one_subject(self) -> BuildRequest:
        if (self.incident is None) == (self.summary is None):
            raise ValueError("name what to build: an incident (with kind) or a summary (with period)")
        return self


class SendRequest(BaseModel):
    recipients: list[str] | None = Field(None, max_length=50, description="names of reporting.recipients "
                                                                          "(default: every recipient of the report)")


def _overrides(given: dict[str, Any]) -> dict[str, Any]:
    """JSON overrides, checked and typed as ``soc report build --set`` does."""
    out: dict[str, Any] = {}
    for raw, value in given.items():
        key = raw.strip().replace("-", "_")
        if key not in OVERRIDES:
            raise ValueError(f"override {raw!r}: use one of {', '.join(sorted(OVERRIDES))}")
        if isinstance(value, str):
            out.update(parse_overrides([f"{key}={value}"]))
        elif key in LIST_OVERRIDES and isinstance(value, list) and all(isinstance(v, str) for v in value):
            out[key] = [v.strip() for v in value if v.strip()]
        elif key in BOOL_OVERRIDES and isinstance(value, bool):
            out[key] = value
        elif key in INT_OVERRIDES and isinstance(value, int) and not isinstance(value, bool):
            out[key] = value
        else:
            kind = ("a list of texts" if key in LIST_OVERRIDES else "true or false" if key in BOOL_OVERRIDES
                    else "a whole number" if key in INT_OVERRIDES else "text")
            raise ValueError(f"override {key}: expected {kind}")
    return out


def _snapshot(who: Caller, report_no: str) -> dict[str, Any]:
    doc = who.services.store.get(snapshots.SNAPSHOTS, report_no)
    if doc is None:
        raise NotFound(f"no report {report_no!r}")
    return doc.body


def _summary(doc: Doc) -> dict[str, Any]:
    """A report as listed (not its whole snapshot)."""
    body = doc.body
    incident = body.get("incident") or {}
    return {"report_no": doc.id, "document": body.get("document"), "kind": body.get("kind"),
            "built_at": body.get("built_at"), "profile_id": (body.get("profile") or {}).get("id"),
            "incident_id": body.get("incident_id") or incident.get("id"),
            "incident_title": incident.get("title"), "owner_agencies": body.get(snapshots.REPORT_OWNER_FIELD, [])}


def _built(built: BuiltReport) -> dict[str, Any]:
    return {"report_no": built.report_no, "document": built.document, "kind": built.kind,
            "profile_id": built.profile_id, "files": [p.name for p in built.files],
            "signatures": [p.name for p in built.signatures], "created": built.created}


def _preview(preview: Preview) -> dict[str, Any]:
    return {"report_no": preview.report_no, "stored": preview.stored, "complete": preview.document is not None,
            "document": preview.document, "missing": preview.missing}


def _missing(error: MissingFieldsError) -> JSONResponse:
    return problem(400, str(error), missing=[{"field": m.field, "label_vi": m.label_vi, "label_en": m.label_en,
                                              "where": m.where} for m in error.missing])


def _audit(who: Caller, request: Request, action: str, report_no: str, details: dict[str, Any]) -> None:
    who.services.audit.record(who.principal, action, (snapshots.SNAPSHOTS, report_no), details,
                              ip=client_ip(request), user_agent=request.headers.get("user-agent"))


@router.get("", summary="Reports, newest first")
def list_reports(incident: str | None = Query(None, max_length=200),
                 document: Literal["incident_report", "summary_report", "monitoring_summary"] | None = Query(None),
                 since: str | None = Since, until: str | None = Until, limit: int = Limit,
                 cursor: str | None = Cursor, who: Caller = need("reports:read")) -> dict[str, Any]:
    """Reports built in ``[since, until)``, of one incident or kind of document."""
    window = time_range(since, until, who.services.settings.zone, who.services.clock)
    where = {k: v for k, v in {"incident_id": incident, "document": document}.items() if v}
    who.services.store.refresh()
    return page_docs(who.services.store, snapshots.SNAPSHOTS, where, time_field="built_at", since=window.start,
                     until=window.end, limit=limit, cursor=cursor, show=_summary).body()


@router.get("/due", summary="National reports due or overdue (Mẫu 03 / Mẫu 04 deadlines), overdue first")
def due(include_delivered: bool = Query(False), limit: int = Limit, cursor: str | None = Cursor,
        who: Caller = need("reports:read")) -> dict[str, Any]:
    rows = due_reports(who.services.store, now_utc(), include_delivered=include_delivered)
    return page_list(rows, lambda r: (0 if r.overdue else 1, r.due_at, r.incident_id, r.kind), limit=limit,
                     cursor=cursor, show=lambda r: r.as_dict()).body()


@router.post("", status_code=201, response_model=None, summary="Build a report: snapshot, check, write, sign")
def build(body: BuildRequest, who: Caller = need("reports:write")) -> dict[str, Any] | JSONResponse:
    reports = who.services.reports
    try:
        if body.incident is not None:
            if who.services.incidents.get(body.incident) is None:
                raise NotFound(f"no incident {body.incident!r}")
            built = reports.build_incident(body.incident, body.kind, body.profile, _overrides(body.overrides))
        else:
            built = reports.build_summary(body.summary or "monthly", body.period, body.profile, rebuild=body.rebuild,
                                          recommendations=body.recommendations)
    except MissingFieldsError as error:
        return _missing(error)
    return _built(built)


@router.post("/preview", summary="What a report of an incident would hold now (nothing stored)")
def preview_draft(body: BuildRequest, who: Caller = need("reports:write")) -> dict[str, Any]:
    if body.incident is None:
        raise ValueError("a preview is of an incident's report: give incident and kind")
    if who.services.incidents.get(body.incident) is None:
        raise NotFound(f"no incident {body.incident!r}")
    return _preview(who.services.reports.preview_incident(body.incident, body.kind, body.profile,
                                                          _overrides(body.overrides)))


@router.get("/{report_no}", summary="One report: what it is, its files and deliveries")
def get_report(report_no: str, who: Caller = need("reports:read")) -> dict[str, Any]:
    snap = _snapshot(who, report_no)
    folder = who.services.reports.out_dir / report_no
    files = sorted(p.name for p in folder.iterdir() if _own(p, report_no)) if folder.is_dir() else []
    deliveries = [d.body for d in who.services.store.find(OUTBOX, {"report_no": report_no}, sort="created_at",
                                                          limit=1000)]
    for entry in deliveries:
        entry.pop("endpoint", None)  # where it goes is configuration, not report data
    return {**_summary(Doc(report_no, 0, snap)), "files": files, "deliveries": deliveries}


@router.get("/{report_no}/preview", summary="The document of a report as JSON, with missing required fields")
def preview(report_no: str, who: Caller = need("reports:write")) -> dict[str, Any]:
    _snapshot(who, report_no)
    return _preview(who.services.reports.preview(report_no))


@router.post("/{report_no}/sign", summary="Sign the report's files (detached CMS .p7s)")
def sign(report_no: str, request: Request, who: Caller = need("reports:write")) -> dict[str, Any]:
    _snapshot(who, report_no)
    built = who.services.reports.sign(report_no)
    _audit(who, request, "report.sign", report_no, {"signatures": [p.name for p in built.signatures]})
    return _built(built)


@router.post("/{report_no}/send", summary="Queue the report for its recipients and deliver what is due")
def send(report_no: str, body: SendRequest | None = None, who: Caller = need("reports:send")) -> dict[str, Any]:
    _snapshot(who, report_no)
    store, settings = who.services.store, who.services.settings
    queued = enqueue(store, settings, report_no, (body or SendRequest()).recipients)
    handled = deliver_due(store, settings)
    shown = []
    for entry in handled:
        if entry.get("report_no") == report_no:
            shown.append({k: entry.get(k) for k in ("id", "recipient", "channel", "status", "attempts",
                                                     "delivered_at", "next_attempt_at", "last_error", "receipt")})
    return {"report_no": report_no, "queued": queued, "deliveries": shown}


@router.get("/{report_no}/receipts", summary="Delivery receipts of the report")
def receipts(report_no: str, limit: int = Limit, cursor: str | None = Cursor,
             who: Caller = need("reports:read")) -> dict[str, Any]:
    _snapshot(who, report_no)
    docs = who.services.store.find(RECEIPTS, {"report_no": report_no}, limit=10_000)
    return page_list(docs, lambda d: (str(d.body.get("delivered_at") or ""), d.id), limit=limit, cursor=cursor,
                     show=lambda d: d.body).body()


def _own(path: Any, report_no: str) -> bool:
    """Whether ``path`` is one of the report's own files: a regular file (no link) named after
    the report, in its folder."""
    return (path.name.startswith(report_no + ".") and not path.name.endswith(".tmp") and path.is_file()
            and not path.is_symlink())


@router.get("/{report_no}/files/{name}", response_class=FileResponse, summary="Download a file of the report")
def download(report_no: str, name: str, request: Request, who: Caller = need("reports:read")) -> FileResponse:
    _snapshot(who, report_no)
    reports = who.services.reports
    folder = reports.out_dir / report_no
    if not folder.is_dir():
        reports.render(report_no)  # byte-identical to what was built, from the snapshot
    own = {p.name: p for p in folder.iterdir() if _own(p, report_no)} if folder.is_dir() else {}
    path = own.get(name)
    if path is None or path.resolve().parent != folder.resolve():
        raise NotFound(f"report {report_no} has no file {name!r}")
    _audit(who, request, "download.report", report_no, {"file": name, "bytes": path.stat().st_size})
    return FileResponse(path, media_type=content_type(name), filename=name,
                        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"})
