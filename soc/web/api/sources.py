"""Source health as the store knows it: per agency and per source (``soc.source``, or
``event.dataset``) the events received in a window, the newest one, and whether the source
has gone silent.

The running service keeps finer per-source counters in its own process
(:class:`soc.ingest.flow.Topology`); the API answers from the store, so it works for every
process that writes there. A source is **silent** when it sent events in the window but none in
the last ``silent_minutes`` (by ingest time). A source silent for longer than the whole window
is not listed: widen ``window_hours`` to find it. Every count is limited to the caller's
agencies (the scoped store puts the agency filter inside each query). The rows are those of the
console's health page (:func:`soc.oversight.sources.source_rows`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from fastapi import APIRouter, Query

from soc.model import iso, now_utc
from soc.oversight.sources import source_rows
from soc.web.api.paging import Cursor, Limit, page_list
from soc.web.deps import Caller, need

router = APIRouter(prefix="/sources", tags=["sources"])


@router.get("/health", summary="Per agency and source: events in a window, the newest, silent sources")
def sources_health(
        by: Literal["soc.source", "event.dataset"] = Query("soc.source", description="what a source is"),
        window_hours: float = Query(24.0, gt=0, le=24 * 90, description="look this far back (ingest time)"),
        silent_minutes: float = Query(60.0, gt=0, le=60 * 24 * 30,
                                      description="silent: no event received for this long"),
        silent_only: bool = Query(False), limit: int = Limit, cursor: str | None = Cursor,
        who: Caller = need("rules:read")) -> dict[str, Any]:
    store, tree = who.services.store, who.services.agencies
    end = now_utc()
    found = source_rows(store, tree, end=end, window_hours=window_hours, silent_minutes=silent_minutes, by=by,
                        everything=who.principal.scope(tree).everything)
    rows = [{"agency": r.agency, "agency_name": r.agency_name, "field": by, "source": r.source, "events": r.events,
             "recent_events": r.recent_events, "last_event_at": r.last_event_at,
             "last_ingested_at": r.last_ingested_at, "silent": r.silent} for r in found]
    if silent_only:
        rows = [r for r in rows if r["silent"]]
    page = page_list(rows, lambda r: (0 if r["silent"] else 1, r["agency"] or "", str(r["source"])), limit=limit,
                     cursor=cursor)
    start = end - timedelta(hours=window_hours)
    return {**page.body(), "window": {"start": iso(start), "end": iso(end)}, "silent_after_minutes": silent_minutes}
