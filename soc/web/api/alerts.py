"""Alerts: list, groups, one alert with its history, triage changes and bulk changes by query.

``GET /alerts`` filters (query parameters, :mod:`soc.web.api.alert_filters`): ``status``,
``rule``, ``agency``, ``level`` (each repeatable: any of), ``host``, ``user``, ``source_ip``,
``text`` (without case or diacritics), ``field=FIELD=VALUE``, ``criticality`` (the affected
system's security level 1-5, repeatable: any of; :mod:`soc.alerts.priority`), ``since``/``until``
(the forms of :mod:`soc.timeexpr`) on the
sort field; ``sort`` is ``-first_seen`` (default, newest first), ``first_seen``, ``-last_seen``,
``last_seen``, ``-detected_at`` or ``detected_at``. Keyset pages (``cursor``, ``limit``).

Changes (``alerts:write``) are ``POST /alerts/{id}/acknowledge|assign|close|reopen`` with a
small body (``note``; ``assignee``; ``reason``), recorded in the alert's history under the
caller's name. ``POST /alerts/bulk`` applies one change to every alert a query matches: up to
``alerts.bulk_background_threshold`` alerts it answers 200 with the finished job and its exact
counts, beyond that 202 with the pending job (``GET /jobs/{id}``). A query that selects every
alert in scope needs ``"all": true``.

An alert outside the caller's agencies is answered 404 like an unknown one.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field

from soc.alerts import CLOSE_REASONS, AlertChange, AlertNotFound, AlertUpdate, status_of
from soc.alerts.model import MAX_NOTE
from soc.web.api.alert_filters import (
    GROUP_FIELDS,
    SORTS,
    AlertFilters,
    QueryBody,
    alert_filters,
    doc_list,
    group_alerts,
)
from soc.web.api.doclist import doc_page
from soc.web.api.paging import Cursor, Limit
from soc.web.deps import Caller, need
from soc.web.problems import NotFound

__all__ = ["router"]

router = APIRouter(prefix="/alerts", tags=["alerts"])
Filters = Depends(alert_filters)
#: fields left out of list items (long; in the alert itself)
LIST_OMITS = ("event_ids", "last_change")


class Note(BaseModel):
    note: str = Field("", max_length=MAX_NOTE)


class Assign(BaseModel):
    assignee: str | None = Field(..., max_length=200, description="the user who handles it; null clears it")
    note: str = Field("", max_length=MAX_NOTE)


class Close(BaseModel):
    reason: Literal["true_positive", "benign", "false_positive", "duplicate", "other"] = Field(
        description=f"why: {', '.join(CLOSE_REASONS)} (other needs a note)")
    note: str = Field("", max_length=MAX_NOTE)


class Bulk(BaseModel):
    """One change for every alert ``query`` matches."""

    query: QueryBody
    action: Literal["acknowledge", "ack", "assign", "close", "reopen"]
    reason: str | None = Field(None, max_length=40)
    note: str = Field("", max_length=MAX_NOTE)
    assignee: str | None = Field(None, max_length=200)
    all: bool = Field(False, description="confirm a query without filters: every alert in your scope")


def shown(alert: dict[str, Any], *, brief: bool = False) -> dict[str, Any]:
    """An alert as answered: its workflow status (``new`` reads ``open``)."""
    body = {k: v for k, v in alert.items() if not (brief and k in LIST_OMITS)}
    body["status"] = status_of(alert)
    return body


def _sort(sort: str) -> tuple[str, bool]:
    if sort not in SORTS:
        raise ValueError(f"sort {sort[:40]!r}: use one of {', '.join(SORTS)}")
    return sort.lstrip("-"), sort.startswith("-")


@router.get("", summary="Alerts (newest first; filters, keyset pages)")
def list_alerts(filters: AlertFilters = Filters, sort: str = Query("-first_seen", description=", ".join(SORTS)),
                limit: int = Limit, cursor: str | None = Cursor, who: Caller = need("alerts:read")) -> dict[str, Any]:
    field, descending = _sort(sort)
    query = filters.query(who.services.settings.zone, who.services.clock, time_field=field)
    page = doc_page(who.services.store, doc_list(query, descending), limit=limit, cursor=cursor,
                    show=lambda body: shown(body, brief=True))
    return page.body()


@router.get("/groups", summary="Alert counts per value of up to 3 fields, each bucket with its query")
def alert_groups(filters: AlertFilters = Filters,
                 by: str = Query(..., max_length=200, description="comma-separated, up to 3 of agency, rule.id, "
                                 "rule.level, rule.title, status, assignee, host.name, user.name, source.ip"),
                 size: int = Query(100, ge=1, le=1000, description="most buckets answered"),
                 who: Caller = need("alerts:read")) -> dict[str, Any]:
    fields = list(dict.fromkeys(f.strip() for f in by.split(",") if f.strip()))
    if not 1 <= len(fields) <= 3:
        raise ValueError("by: name 1 to 3 fields")
    unknown = [f for f in fields if f not in GROUP_FIELDS]
    if unknown:
        raise ValueError(f"by: cannot group on {', '.join(u[:60] for u in unknown)}; use {', '.join(GROUP_FIELDS)}")
    query = filters.query(who.services.settings.zone, who.services.clock)
    return group_alerts(who.services.store, query, fields, size=size)


@router.post("/bulk", summary="Apply one change to every alert a query matches")
def bulk_change(body: Bulk, response: Response, who: Caller = need("alerts:write")) -> dict[str, Any]:
    query = body.query.query(who.services.settings.zone, who.services.clock)
    if query.empty and not body.all:
        raise ValueError("the query has no filter: it selects every alert in your scope; add a filter "
                         "or confirm with \"all\": true")
    action = "ack" if body.action == "acknowledge" else body.action
    change = AlertChange(action, reason=body.reason, note=body.note,  # type: ignore[arg-type]
                         assignee=body.assignee).check()
    job = who.services.bulk_alerts().apply(who.principal, query, change)
    if job["status"] in ("pending", "running"):
        response.status_code = 202
        response.headers["Location"] = f"/api/v1/jobs/{job['id']}"
    return job


def _update(update: AlertUpdate) -> dict[str, Any]:
    return {"alert": shown(update.alert), "changed": update.changed, "history": update.history}


def _change(who: Caller, alert_id: str, change: AlertChange) -> dict[str, Any]:
    try:
        return _update(who.services.alerts.change(who.principal, alert_id, change))
    except AlertNotFound:
        raise NotFound(f"no alert {alert_id!r}") from None


@router.get("/{alert_id}", summary="One alert with its rule, history and matched events' ids")
def get_alert(alert_id: str, who: Caller = need("alerts:read")) -> dict[str, Any]:
    flow = who.services.alerts
    try:
        alert = flow.get(who.principal, alert_id)
        history = flow.history(who.principal, alert_id)
    except AlertNotFound:
        raise NotFound(f"no alert {alert_id!r}") from None
    return {**shown(alert), "event_ids": list(alert.get("event_ids") or []), "history": history}


@router.post("/{alert_id}/acknowledge", summary="open -> acknowledged")
def acknowledge(alert_id: str, body: Note | None = None, who: Caller = need("alerts:write")) -> dict[str, Any]:
    return _change(who, alert_id, AlertChange("ack", note=(body or Note()).note))


@router.post("/{alert_id}/assign", summary="Set or clear the assignee")
def assign(alert_id: str, body: Assign, who: Caller = need("alerts:write")) -> dict[str, Any]:
    return _change(who, alert_id, AlertChange("assign", assignee=body.assignee, note=body.note))


@router.post("/{alert_id}/close", summary="Close with a reason")
def close(alert_id: str, body: Close, who: Caller = need("alerts:write")) -> dict[str, Any]:
    return _change(who, alert_id, AlertChange("close", reason=body.reason, note=body.note))


@router.post("/{alert_id}/reopen", summary="closed -> open (the close stays in the history)")
def reopen(alert_id: str, body: Note | None = None, who: Caller = need("alerts:write")) -> dict[str, Any]:
    return _change(who, alert_id, AlertChange("reopen", note=(body or Note()).note))
