"""Threat intelligence (:mod:`soc.intel`): feeds and their status, indicators, adding and revoking
indicators, polling a feed and running the retro-hunt now.

Indicators and feeds belong to no agency (province-wide): a principal scoped to some agencies
reads nothing here (empty lists, 404) and may change nothing (403). Adding and revoking go
through the caller's audited store (every change in the audit trail under the caller's name);
a poll or a hunt is the service's work over the shared store and is recorded in the audit trail
as an action of the caller.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from soc.access import Forbidden
from soc.intel import FEEDS, IndicatorBook, IndicatorError, IntelError, guess_type, is_live
from soc.intel.matching import INTEL_STATE
from soc.web.api.paging import Cursor, Limit
from soc.web.deps import Caller, need
from soc.web.problems import NotFound

router = APIRouter(prefix="/intel", tags=["intel"])
Tlp = Literal["clear", "green", "amber", "amber+strict", "red"]


class NewIndicator(BaseModel):
    """An indicator added by hand (feed ``manual``)."""

    value: str = Field(min_length=1, max_length=8191)
    type: Literal["ipv4", "ipv6", "domain", "url", "md5", "sha1", "sha256", "email"] | None = Field(
        None, description="default: guessed from the value")
    confidence: int = Field(80, ge=0, le=100)
    tlp: Tlp = "amber"
    valid_until: str | None = Field(None, max_length=64, description="ISO 8601 with a zone; none: no expiry")
    note: str | None = Field(None, max_length=2000)


class Revocation(BaseModel):
    reason: str | None = Field(None, max_length=2000)


class HuntRequest(BaseModel):
    days: int | None = Field(None, ge=1, le=3650, description="how far back (default: intel.retro_hunt_days)")
    indicators: list[str] = Field(default_factory=list, max_length=1000,
                                  description="ids of indicators to hunt again (default: the new ones)")


def _province_wide(who: Caller) -> None:
    """Feeds and indicators are province-wide: only a principal who sees every agency acts on them."""
    if not who.principal.scope(who.services.agencies).everything:
        raise Forbidden("threat-intel feeds and indicators are province-wide: an agency-scoped principal "
                        "may not change them")


def _book(who: Caller) -> IndicatorBook:
    return IndicatorBook(who.services.store, clock=who.services.clock)


def _shown(doc_id: str, body: dict[str, Any], book: IndicatorBook) -> dict[str, Any]:
    return {**body, "id": doc_id, "live": is_live(body, book.clock())}


@router.get("/feeds", summary="Configured feeds and their status (last poll, indicators taken, errors)")
def list_feeds(who: Caller = need("intel:read")) -> dict[str, Any]:
    if not who.principal.scope(who.services.agencies).everything:
        return {"items": [], "matching": None}
    state = who.services.base_store.get(INTEL_STATE, "matching")
    return {"items": who.services.intel_poller().statuses(), "matching": state.body if state else None}


@router.post("/feeds/{name}/poll", summary="Poll a feed now")
def poll_feed(name: str, who: Caller = need("intel:write")) -> dict[str, Any]:
    _province_wide(who)
    poller = who.services.intel_poller()
    if name not in poller.feeds:
        raise NotFound(f"no feed {name!r} in intel.feeds")
    status = poller.poll(name)
    who.services.audit.record(who.principal, "intel.poll", (FEEDS, name),
                              {"taken": status.get("last_taken"), "error": status.get("last_error")})
    return status


@router.get("/indicators", summary="Indicators, the most recently changed first")
def list_indicators(type: str | None = Query(None, max_length=16), feed: str | None = Query(None, max_length=64),
                    live: bool | None = Query(None, description="true: only live ones"),
                    q: str | None = Query(None, max_length=256, description="part of the value"),
                    limit: int = Limit, cursor: str | None = Cursor,
                    who: Caller = need("intel:read")) -> dict[str, Any]:
    book = _book(who)
    try:
        docs, next_cursor, total = book.search(type_=type, feed=feed, live=live, text=q, size=limit, cursor=cursor)
    except ValueError as error:
        raise IndicatorError(str(error)) from None
    return {"items": [_shown(d.id, d.body, book) for d in docs], "next_cursor": next_cursor, "total": total}


@router.get("/indicators/{indicator_id}", summary="One indicator with what each feed said")
def get_indicator(indicator_id: str, who: Caller = need("intel:read")) -> dict[str, Any]:
    book = _book(who)
    doc = book.find_one(indicator_id)
    if doc is None:
        raise NotFound(f"no indicator {indicator_id!r}")
    return _shown(doc.id, doc.body, book)


@router.post("/indicators", status_code=201, summary="Add an indicator by hand (it is retro-hunted)")
def add_indicator(body: NewIndicator, who: Caller = need("intel:write")) -> dict[str, Any]:
    _province_wide(who)
    book = _book(who)
    kind = body.type or guess_type(body.value).type
    added = book.add(kind, body.value, actor=who.principal.label, confidence=body.confidence, tlp=body.tlp,
                     valid_until=body.valid_until, note=body.note)
    doc = book.find_one(added["value"]) if kind != "pattern" else None
    return _shown(doc.id if doc else "", added, book)


@router.post("/indicators/{indicator_id}/revoke", summary="Revoke an indicator for every feed")
def revoke_indicator(indicator_id: str, body: Revocation | None = None,
                     who: Caller = need("intel:write")) -> dict[str, Any]:
    _province_wide(who)
    book = _book(who)
    doc = book.find_one(indicator_id)
    if doc is None:
        raise NotFound(f"no indicator {indicator_id!r}")
    try:
        changed = book.revoke(doc.id, actor=who.principal.label, reason=(body or Revocation()).reason)
    except IntelError as error:
        raise NotFound(str(error)) from None
    return _shown(doc.id, changed, book)


@router.post("/hunt", summary="Run the retro-hunt now (new indicators, or those named)")
def hunt(body: HuntRequest | None = None, who: Caller = need("intel:write")) -> dict[str, Any]:
    _province_wide(who)
    request = body or HuntRequest()
    figures = who.services.intel_matching().hunt(days=request.days, ids=request.indicators or None)
    who.services.audit.record(who.principal, "intel.hunt", None, {"days": request.days,
                                                                   "indicators": len(request.indicators),
                                                                   "alerts": figures.get("alerts")})
    return figures
