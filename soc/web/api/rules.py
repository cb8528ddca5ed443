"""Rule health (:mod:`soc.detect.scheduler`, collection ``rule_state``): per rule the last run,
its duration, hits and matches, the range covered, errors and time-outs, alerts held back by
exceptions. Rule state belongs to no agency: a principal scoped to some agencies sees none.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Query

from soc.detect.scheduler import RULE_STATE
from soc.model import iso
from soc.web.api.paging import Cursor, Limit, page_list
from soc.web.deps import Caller, need

router = APIRouter(prefix="/rules", tags=["rules"])

#: the health fields shown, as stored (numbers, texts, flags)
FIELDS = ("title", "runs", "last_duration", "last_hits", "last_matches", "total_alerts", "truncated",
          "last_error", "consecutive_errors", "last_timed_out", "timeouts", "last_suppressed", "last_suppressed_by",
          "takeovers")
#: epoch-second fields shown as ISO time
TIMES = ("last_run", "last_finished", "covered_from", "covered_until", "watermark")


def _time(value: Any) -> str | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return iso(datetime.fromtimestamp(value, UTC))
    return None


def health_of(rule_id: str, state: dict[str, Any]) -> dict[str, Any]:
    """One rule's health as the API shows it (leases and internal bookkeeping left out)."""
    shown: dict[str, Any] = {"rule_id": state.get("rule_id") or rule_id}
    shown.update({k: state.get(k) for k in FIELDS})
    shown.update({k: _time(state.get(k)) for k in TIMES})
    window = state.get("last_window")
    shown["last_window"] = [_time(v) for v in window] if isinstance(window, list) else None
    shown["failing"] = bool(state.get("last_error"))
    return shown


@router.get("/health", summary="Per-rule run health: last run, duration, hits, covered range, errors")
def rules_health(failing: bool | None = Query(None, description="only rules whose last run failed (or not)"),
                 limit: int = Limit, cursor: str | None = Cursor,
                 who: Caller = need("rules:read")) -> dict[str, Any]:
    rows = [health_of(d.id, d.body) for d in who.services.store.iter_all(RULE_STATE)]
    if failing is not None:
        rows = [r for r in rows if r["failing"] == failing]
    return page_list(rows, lambda r: (str(r.get("title") or ""), str(r["rule_id"])), limit=limit,
                     cursor=cursor).body()
