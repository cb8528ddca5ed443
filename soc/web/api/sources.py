"""Source health as the store knows it: per agency and per source (``soc.source``, or
``event.dataset``) the events received in a window, the newest one, and whether the source
has gone silent.

The running service keeps finer per-source counters in its own process
(:class:`soc.ingest.flow.Topology`); the API answers from the store, so it works for every
process that writes there. A source is **silent** when it sent events in the window but none in
the last ``silent_minutes`` (by ingest time). A source silent for longer than the whole window
is not listed: widen ``window_hours`` to find it. Every count is limited to the caller's
agencies (the scoped store puts the agency filter inside each query).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from fastapi import APIRouter, Query

from soc.model import iso, now_utc
from soc.store.base import EventQuery, Store
from soc.web.api.paging import Cursor, Limit, page_list
from soc.web.deps import Caller, need

router = APIRouter(prefix="/sources", tags=["sources"])

#: most agencies and most sources per agency looked at
MAX_GROUPS = 1000
AGENCY = "organization.id"


def _counts(store: Store, field: str, start: datetime, end: datetime, agency: str | None) -> dict[Any, int]:
    """Events ingested in ``[start, end)`` per value of ``field`` (of one agency; ``None``:
    events of no agency)."""
    query = (EventQuery(start=start, end=end, time_field="event.ingested", agencies=frozenset({agency}))
             if agency is not None else
             EventQuery(start=start, end=end, time_field="event.ingested", filters=((AGENCY, "exists", False),)))
    return dict(store.top_values(query, field, MAX_GROUPS))


def _newest(store: Store, field: str, value: Any, start: datetime, end: datetime, agency: str | None) -> Any:
    filters: list[tuple[str, str, Any]] = [(field, "equals", value)]
    if agency is None:
        filters.append((AGENCY, "exists", False))
    query = EventQuery(filters=tuple(filters), start=start, end=end, time_field="event.ingested", order="desc",
                       size=1, agencies=frozenset({agency}) if agency is not None else None)
    events = store.search_events(query).events
    return events[0] if events else None


def _ingested(value: Any) -> str | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return iso(datetime.fromtimestamp(value, UTC))
    return value if isinstance(value, str) else None


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
    start, recent = end - timedelta(hours=window_hours), end - timedelta(minutes=silent_minutes)
    store.refresh()
    query = EventQuery(start=start, end=end, time_field="event.ingested")
    agencies: list[str | None] = [a for a, _ in store.top_values(query, AGENCY, MAX_GROUPS)]
    if who.principal.scope(tree).everything:
        agencies.append(None)  # events no agency owns: only for those who see every agency
    rows = []
    for agency in agencies:
        counts = _counts(store, by, start, end, agency)
        if not counts:
            continue
        latest = _counts(store, by, recent, end, agency)
        for value, count in counts.items():
            newest = _newest(store, by, value, start, end, agency) or {}
            rows.append({"agency": agency, "agency_name": tree.name_of(agency) if agency else None, "field": by,
                         "source": value, "events": count, "recent_events": latest.get(value, 0),
                         "last_event_at": newest.get("@timestamp"),
                         "last_ingested_at": _ingested(newest.get("event.ingested")),
                         "silent": latest.get(value, 0) == 0})
    if silent_only:
        rows = [r for r in rows if r["silent"]]
    page = page_list(rows, lambda r: (0 if r["silent"] else 1, r["agency"] or "", str(r["source"])), limit=limit,
                     cursor=cursor)
    return {**page.body(), "window": {"start": iso(start), "end": iso(end)}, "silent_after_minutes": silent_minutes}
