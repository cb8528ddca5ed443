"""The alert queue (``/alerts``): filters kept in the URL, sorting by time or by risk (severity
weighted by the affected system's security level), grouping by up to three fields with counts,
keyset pages, "select all N matching", keyboard triage, saved views, and a small poll that says
how many new alerts arrived without reloading the page (the selection stays).

Everything goes through the user's service layer (``who.services``): the agency scope applies
inside every store query, every change is audited under the user's name. The changes
themselves are :mod:`.alert_actions` (bulk changes, incidents) and :mod:`.alert_exception`
(a false positive becomes a detection exception).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from soc.alerts import AlertNotFound, status_of
from soc.alerts.query import lookup
from soc.incidents.grouping import OPEN_STATUSES
from soc.incidents.records import INCIDENTS
from soc.model import iso, parse_iso
from soc.store.base import DocQuery
from soc.web.api.alert_filters import doc_list
from soc.web.api.doclist import DocList, doc_page, for_store
from soc.web.console.i18n import language
from soc.web.console.pages import alert_actions, alert_exception
from soc.web.console.pages.alert_query import (
    GROUPS,
    LIMITS,
    SORTS,
    STATUSES,
    group_tree,
    parse_params,
    queue_page,
)
from soc.web.console.render import LANG_COOKIE, render
from soc.web.console.saved_views import SavedViews, ViewError
from soc.web.console.security import console_caller
from soc.web.deps import Caller

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
router.include_router(alert_actions.router)
router.include_router(alert_exception.router)

#: new alerts counted at most by the poll when a filter must be checked on each alert
MAX_NEW_SCAN = 1000
ENTITY_SHOWN = ("host.name", "user.name", "source.ip")


def _row(body: dict[str, Any]) -> dict[str, Any]:
    """An alert as a queue row shows it."""
    entities = dict(body.get("entities") or {})
    for name, value in (body.get("group") or {}).items():
        values = entities.setdefault(name, [])
        for one in value if isinstance(value, list) else [value]:
            if one not in values:
                values.append(one)
    rule = body.get("rule") or {}
    return {"id": body.get("id"), "status": status_of(body), "level": rule.get("level") or "informational",
            "rule_id": rule.get("id") or "", "title": rule.get("title") or body.get("message") or body.get("id"),
            "agency": body.get("agency"), "first_seen": body.get("first_seen"), "last_seen": body.get("last_seen"),
            "detected_at": body.get("detected_at"), "assignee": body.get("assignee"),
            "incident_id": body.get("incident_id"), "risk": body.get("risk"),
            "criticality": lookup(body, "asset.level"), "system": lookup(body, "asset.system"),
            "count": body.get("event_count") or 1,
            "entities": {n: [str(v) for v in (entities.get(n) or [])][:3] for n in ENTITY_SHOWN}}


def _agencies(who: Caller) -> list[Any]:
    tree = who.services.agencies
    scope = who.principal.scope(tree)
    return [a for a in (*tree.agencies, tree.unknown) if scope.allows(a.id)]


def _open_incidents(who: Caller) -> list[dict[str, Any]]:
    """The open incidents the user may attach alerts to (most recently updated first)."""
    if not (who.principal.can("incidents:read") and who.principal.can("incidents:write")):
        return []
    spec = DocList(INCIDENTS, {"status": list(OPEN_STATUSES)}, "updated_at", True)
    page = doc_page(who.services.store, spec, limit=50, cursor=None)
    return [{"id": b.get("id"), "title": b.get("title") or ""} for b in page.items if not b.get("merged_into")]


def _job_notice(who: Caller, job_id: str | None) -> dict[str, Any] | None:
    if not job_id:
        return None
    try:
        return who.services.bulk_alerts().job(who.principal, job_id[:64])
    except AlertNotFound:
        return None


def _notice(who: Caller, request: Request) -> dict[str, Any]:
    """What the last action did (its job's exact counts, the incident, the exception), shown
    once after it -- only what exists and the user may see (a crafted link shows nothing)."""
    asked = request.query_params
    incident = asked.get("incident")
    if incident and not (who.principal.can("incidents:read") and who.services.incidents.get(incident[:200])):
        incident = None
    exception = asked.get("exception")
    if exception and not (who.principal.can("exceptions:read") and who.principal.agency is None
                          and who.services.exceptions.get(exception[:200])):
        exception = None
    added = asked.get("added", "")
    return {"job": _job_notice(who, asked.get("job")), "closed_job": _job_notice(who, asked.get("closed_job")),
            "incident": incident, "added": int(added) if added.isdigit() else 0, "exception": exception}


@router.get("/alerts")
def alert_queue(request: Request, who: Caller = Depends(console_caller)) -> Response:  # noqa: B008
    who.principal.require("alerts:read")
    pairs = list(request.query_params.multi_items())
    if any(not value.strip() for _, value in pairs):  # a submitted filter form: drop the blanks
        kept = parse_params(pairs)
        extra = [(k, v) for k, v in pairs if k in ("select",) and v.strip()]
        return RedirectResponse(kept.url(**{k: v for k, v in extra}), status_code=303)
    params = parse_params(pairs)
    services = who.services
    zone, clock = services.settings.zone, services.clock
    query = params.query(zone, clock)
    cursor = request.query_params.get("cursor") or None
    groups, group_total, group_exact = group_tree(services.store, params, query) if params.group else ([], 0, True)
    page = queue_page(services.store, params, query, cursor, show=_row)
    views = SavedViews(services.store, who.principal, clock).list()
    agencies = _agencies(who)
    notice = _notice(who, request)
    return render(request, "alerts/queue.html", params=params, page=page, rows=page.items, groups=groups,
                  group_total=group_total, group_exact=group_exact, cursor=cursor, views=views, notice=notice,
                  agencies=agencies, agency_names={a.id: a.name for a in agencies}, incidents=_open_incidents(who),
                  statuses=STATUSES, sorts=list(SORTS),
                  group_fields=GROUPS, limits=LIMITS, select_all=request.query_params.get("select") == "all",
                  rendered_at=iso(clock()), back=params.url(),
                  can_write=who.principal.can("alerts:write"),
                  can_incident=who.principal.can("incidents:write"),
                  can_exception=who.principal.can("exceptions:write") and who.principal.agency is None)


@router.get("/alerts-queue/new-count")
def new_alerts(request: Request, after: str, who: Caller = Depends(console_caller)) -> Response:  # noqa: B008
    """How many alerts matching the queue's filters were raised since ``after`` (the time the
    page was shown): the queue says "N new alerts -- show" without reloading."""
    who.principal.require("alerts:read")
    params = parse_params(request.query_params.multi_items())
    services = who.services
    query = params.query(services.settings.zone, services.clock)
    try:
        since = iso(parse_iso(after[:40]))
    except ValueError:
        raise ValueError("after: an ISO time (the time the page was shown)") from None
    spec = for_store(services.store, doc_list(query, True))  # the free text asked of a store that keeps it
    base = spec.query(size=1, track_total=MAX_NEW_SCAN)
    filters = (*base.filters, ("detected_at", "range", (since, None)))
    text = {"text": base.text, "text_fields": base.text_fields}
    more = False
    if spec.keep is None and not spec.alternatives:
        count = services.store.count_documents(DocQuery("alerts", filters=filters, size=1, **text))[0][1]
    else:  # an entity in one of its places, free text...: tested on each new alert
        page = services.store.query_documents(DocQuery("alerts", filters=filters, size=MAX_NEW_SCAN,
                                                       sort=("detected_at",), order="desc", track_total=0, **text))
        count = sum(1 for d in page.docs if query.matches(d.body))
        more = page.cursor is not None  # more new alerts than were read: at least ``count``
    lang = language(request.cookies.get(LANG_COOKIE))
    label = lang.ngettext("{n} new alert", "{n} new alerts", count) if count else ""
    return JSONResponse({"new": count, "more": more, "label": label + ("+" if more else "")},
                        headers={"Cache-Control": "no-store"})


@router.post("/alerts-queue/views")
def save_view(request: Request, name: str = Form(""), q: str = Form(""),  # noqa: B008
              who: Caller = Depends(console_caller)) -> Response:  # noqa: B008
    who.principal.require("alerts:read")
    params = parse_params(_pairs(q))
    try:
        SavedViews(who.services.store, who.principal, who.services.clock).save(name, params.query_string)
    except ViewError as error:
        raise ValueError(language(request.cookies.get(LANG_COOKIE)).gettext(error.message, **error.values)) from None
    return RedirectResponse(params.url(), status_code=303)


@router.post("/alerts-queue/views/{view_id}/delete")
def delete_view(view_id: str, back: str = Form("/alerts"),  # noqa: B008
                who: Caller = Depends(console_caller)) -> Response:  # noqa: B008
    who.principal.require("alerts:read")
    SavedViews(who.services.store, who.principal, who.services.clock).delete(view_id[:64])
    return RedirectResponse(alert_actions.safe_back(back), status_code=303)


def _pairs(query: str) -> list[tuple[str, str]]:
    from urllib.parse import parse_qsl

    return parse_qsl(query[:8000], keep_blank_values=False)
