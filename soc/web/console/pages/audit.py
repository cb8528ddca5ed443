"""The audit trail: its records (filters: actor, action, object, time; keyset pages, newest
first), one record with its hashes, and the verification of the whole chain against every
checkpoint -- the same helpers as the API (:mod:`soc.web.api.audit`).

Only auditors and administrators read it (``audit:read``), and only principals that see every
agency: the trail belongs to no agency (a scoped principal gets the 403 page).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from soc.audit import AuditRecord, record_hash, verify
from soc.audit.trail import AuditTrail
from soc.web.api.audit import _checkpoints as audit_checkpoints
from soc.web.api.audit import _page as audit_page
from soc.web.api.audit import _trail as audit_trail
from soc.web.api.doclist import time_range
from soc.web.console.render import render
from soc.web.console.security import console_caller
from soc.web.deps import Caller
from soc.web.problems import NotFound

router = APIRouter(include_in_schema=False)

PAGE = 50
#: characters of a record's details shown in the list
SHORT = 160


def _trail(who: Caller) -> AuditTrail:
    who.principal.require("audit:read")
    return audit_trail(who)


def _details(details: Any, limit: int | None = SHORT) -> str:
    text = json.dumps(details, ensure_ascii=False, sort_keys=True)
    return text if limit is None or len(text) <= limit else text[:limit] + "…"


def _row(item: dict[str, Any]) -> dict[str, Any]:
    target = item.get("target") or None
    return {"seq": item["seq"], "at": item["at"], "actor": (item.get("actor") or {}).get("label", ""),
            "action": item["action"], "target": (f"{target['type']}/{target['id']}" if target and target.get("id")
                                                  else target["type"] if target else ""),
            "ip": (item.get("source") or {}).get("ip"), "details": _details(item.get("details"))}


@router.get("/audit")
def audit_list(request: Request, who: Caller = Depends(console_caller)) -> Response:
    trail = _trail(who)
    query = request.query_params
    filters = {name: (query.get(name) or "").strip() for name in ("actor", "action", "object", "since", "until")}
    window = time_range(filters["since"] or None, filters["until"] or None, who.services.settings.zone,
                        who.services.clock)
    trail.store.refresh()  # what other processes wrote a moment ago, too
    page = audit_page(trail, since=window.start, until=window.end,
                      actors=[filters["actor"]] if filters["actor"] else [],
                      actions=[filters["action"]] if filters["action"] else [], target=filters["object"] or None,
                      limit=PAGE, cursor=query.get("cursor") or None)
    return render(request, "audit/list.html", records=[_row(i) for i in page.items], total=page.total,
                  exact=page.total_exact, next=page.next, filters=filters, head=trail.head())


@router.get("/audit/verify")
def audit_verify(request: Request, who: Caller = Depends(console_caller)) -> Response:
    trail = _trail(who)
    checkpoints, problems = audit_checkpoints(who, [], True)
    result = verify(trail.store, checkpoints, problems)
    return render(request, "audit/verify.html", result=result, problems=result.problems,
                  checkpoints=result.checkpoints)


@router.get("/audit/{seq}")
def audit_record(request: Request, seq: str, who: Caller = Depends(console_caller)) -> Response:
    trail = _trail(who)
    if not seq.isdigit() or len(seq) > 12:
        raise NotFound(f"no audit record {seq!r}")
    record = trail.get(int(seq))
    if record is None:
        raise NotFound(f"no audit record {seq}")
    before = trail.get(record.seq - 1) if record.seq > 1 else None
    return render(request, "audit/record.html", record=record, details=_details(record.details, None),
                  checks=_checks(record, before), head=trail.head().seq)


def _checks(record: AuditRecord, before: AuditRecord | None) -> dict[str, bool | None]:
    """This record's own checks: its hash is the hash of its content, and it follows the record
    before it (the whole chain and the checkpoints: the verification page)."""
    follows = (record.prev == "0" * 64) if record.seq == 1 else (before.hash == record.prev if before else None)
    return {"hash": record_hash(record.body) == record.hash, "follows": follows}
