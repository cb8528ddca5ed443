"""Detection exceptions (:mod:`soc.detect.suppressions`): list, read with their audit, add,
disable.

An exception belongs to no agency (collection ``exceptions``): a principal scoped to some
agencies lists none, reads none (404) and may add or disable none (403).
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from soc.detect.suppressions import Condition, DetectionException, Scope, parse_expiry
from soc.web.api.paging import Cursor, Limit, page_list
from soc.web.deps import Caller, need
from soc.web.problems import NotFound

router = APIRouter(prefix="/exceptions", tags=["exceptions"])


class NewException(BaseModel):
    """An exception to add: which rules, which alerts (all conditions hold), who owns it, why,
    until when."""

    scope: Scope
    conditions: list[Condition] = Field(default_factory=list, max_length=50)
    owner: str = Field(min_length=1, max_length=200)
    reason: str = Field(min_length=1, max_length=2000)
    expires: str | None = Field(None, max_length=64,
                                description="30d, 12h, 2w (from now), an ISO date or time, or never")


class Note(BaseModel):
    note: str = Field("", max_length=2000)


def _shown(exception: DetectionException, now: Any) -> dict[str, Any]:
    return {**exception.model_dump(mode="json"), "status": exception.status(now), "describe": exception.describe()}


def _found(who: Caller, exception_id: str) -> DetectionException:
    found = who.services.exceptions.get(exception_id)
    if found is None:
        raise NotFound(f"no exception {exception_id!r}")
    return found


@router.get("", summary="Detection exceptions, oldest first")
def list_exceptions(status: Literal["active", "disabled", "expired"] | None = Query(None),
                    limit: int = Limit, cursor: str | None = Cursor,
                    who: Caller = need("exceptions:read")) -> dict[str, Any]:
    book = who.services.exceptions
    now = book.clock()
    items = book.list(status=status)
    return page_list(items, lambda e: (e.created_at, e.id), limit=limit, cursor=cursor,
                     show=lambda e: _shown(e, now)).body()


@router.get("/{exception_id}", summary="One exception with its audit (every change, oldest first)")
def get_exception(exception_id: str, who: Caller = need("exceptions:read")) -> dict[str, Any]:
    book = who.services.exceptions
    found = _found(who, exception_id)
    return {**_shown(found, book.clock()), "audit": book.audit(found.id)}


@router.post("", status_code=201, summary="Add an exception")
def add_exception(body: NewException, who: Caller = need("exceptions:write")) -> dict[str, Any]:
    book = who.services.exceptions
    now = book.clock()
    expires = parse_expiry(body.expires, now, who.services.settings.zone)
    added = book.add(scope=body.scope, conditions=body.conditions, owner=body.owner, reason=body.reason,
                     actor=who.principal.label, expires_at=expires)
    return _shown(added, now)


@router.post("/{exception_id}/disable", summary="Disable an exception (it stops applying at the next run)")
def disable_exception(exception_id: str, body: Note | None = None,
                      who: Caller = need("exceptions:write")) -> dict[str, Any]:
    book = who.services.exceptions
    _found(who, exception_id)
    changed = book.disable(exception_id, actor=who.principal.label, note=(body or Note()).note)
    return _shown(changed, book.clock())
