"""Log sources as the store knows them, per agency: events received, the newest one, and
whether a source has gone silent -- and the check that raises an alert for a silent source.

A **source** is a value of ``soc.source`` (the source definition that received it) or of
``event.dataset``, per agency (``organization.id``). A source is **silent** when it sent events
in the window (``oversight.silent_window_hours`` back from the end, by ingest time) but none in
the last ``oversight.silent_minutes``. Every count is taken through the store given: through a
principal's scoped store an agency sees its own sources only (events of no agency only for a
principal that sees every agency).

:func:`check_silent_sources` runs in the service (``oversight.silent_check_minutes``) over the
shared store and records one alert per silence -- id from the agency, the source and the time
its last event was stored, create-only -- so a source that stays silent is announced once,
and one that comes back and falls silent again is announced again.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from soc.agencies import AgencyTree
from soc.model import alert_id_for_group, iso, parse_iso
from soc.store.base import EventQuery, Store

__all__ = ["AGENCY", "MAX_GROUPS", "SILENT_RULE", "SourceRow", "agency_source_counts", "check_silent_sources",
           "silent_alert", "source_rows"]

AGENCY = "organization.id"
#: most agencies, and most sources per agency, looked at
MAX_GROUPS = 1000
#: the "rule" a silent-source alert names (no Sigma file: the service itself raises it)
SILENT_RULE = {"id": "soc-silent-log-source", "title": "Log source went silent", "level": "medium", "version": 1,
               "author": "soc (service health check)", "status": "stable", "tags": [],
               "description": "A log source that sent events within the watch window has sent none for longer "
                              "than oversight.silent_minutes: the device, its forwarding or the network may be "
                              "down, or logging may have been switched off."}


@dataclass
class SourceRow:
    agency: str | None
    agency_name: str | None
    source: Any
    events: int
    recent_events: int
    per_hour: float
    last_event_at: str | None = None  # the newest event's own time (ISO UTC)
    last_ingested_at: str | None = None  # when the newest event was stored
    silent: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _query(start: datetime, end: datetime, agency: str | None, filters: tuple[Any, ...] = (),
           **more: Any) -> EventQuery:
    """Events stored in ``[start, end)`` of ``agency`` (``None``: of no agency)."""
    if agency is None:
        return EventQuery(start=start, end=end, time_field="event.ingested",
                          filters=(*filters, (AGENCY, "exists", False)), **more)
    return EventQuery(start=start, end=end, time_field="event.ingested", agencies=frozenset({agency}),
                      filters=filters, **more)


def _agencies(store: Store, start: datetime, end: datetime, everything: bool) -> list[str | None]:
    found: list[str | None] = [a for a, _ in store.top_values(
        EventQuery(start=start, end=end, time_field="event.ingested"), AGENCY, MAX_GROUPS)]
    if everything:
        found.append(None)  # events of no agency: only for those who see every agency
    return found


def _stamp(value: Any) -> str | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return iso(datetime.fromtimestamp(value, UTC))
    if isinstance(value, str) and value:
        try:
            return iso(parse_iso(value))
        except ValueError:
            return None
    return None


def agency_source_counts(store: Store, *, end: datetime, window_hours: float, silent_minutes: float,
                         by: str = "soc.source", everything: bool = False
                         ) -> dict[str | None, tuple[dict[Any, int], dict[Any, int]]]:
    """Per agency: events per source in the window, and in the last ``silent_minutes``."""
    start, recent = end - timedelta(hours=window_hours), end - timedelta(minutes=silent_minutes)
    store.refresh()
    out: dict[str | None, tuple[dict[Any, int], dict[Any, int]]] = {}
    for agency in _agencies(store, start, end, everything):
        counts = dict(store.top_values(_query(start, end, agency), by, MAX_GROUPS))
        if counts:
            out[agency] = (counts, dict(store.top_values(_query(recent, end, agency), by, MAX_GROUPS)))
    return out


def source_rows(store: Store, tree: AgencyTree, *, end: datetime, window_hours: float, silent_minutes: float,
                by: str = "soc.source", everything: bool = False, newest: bool = True) -> list[SourceRow]:
    """Every source that sent events in the window, silent ones first, then by agency and
    source; with ``newest`` each row also has its newest event's times (one query per source)."""
    start = end - timedelta(hours=window_hours)
    rows = []
    for agency, (counts, recent) in agency_source_counts(store, end=end, window_hours=window_hours,
                                                         silent_minutes=silent_minutes, by=by,
                                                         everything=everything).items():
        for value, count in counts.items():
            row = SourceRow(agency, tree.name_of(agency) if agency else None, value, count, recent.get(value, 0),
                            round(count / window_hours, 2), silent=recent.get(value, 0) == 0)
            if newest:
                found = store.search_events(_query(start, end, agency, filters=((by, "equals", value),),
                                                   order="desc", size=1))
                event = found.events[0] if found.events else {}
                row.last_event_at = _stamp(event.get("@timestamp"))
                row.last_ingested_at = _stamp(event.get("event.ingested"))
            rows.append(row)
    rows.sort(key=lambda r: (not r.silent, r.agency or "", str(r.source)))
    return rows


def silent_alert(row: SourceRow, *, by: str, now: datetime, silent_minutes: float) -> dict[str, Any]:
    """The alert of one silent source (its id names the silence: agency, source, last event stored)."""
    last = row.last_ingested_at or iso(now)
    key = f"agency={row.agency or ''}|{by}={row.source}"
    return {
        "id": alert_id_for_group(SILENT_RULE["id"], key, last), "kind": "health", "rule": dict(SILENT_RULE),
        "detected_at": iso(now), "status": "new", "@timestamp": last, "first_seen": last, "last_seen": iso(now),
        "agency": row.agency, "event_count": 0, "event_ids": [], "group": {by: str(row.source)}, "group_key": key,
        "entities": {},
        "message": f"log source {row.source} ({by}) of agency {row.agency or '-'} sent no event for "
                   f"{silent_minutes:g} minutes: last event stored {last}, {row.events} events in the "
                   f"watch window before",
    }


def check_silent_sources(store: Store, tree: AgencyTree, *, now: datetime, window_hours: float,
                         silent_minutes: float, by: str = "soc.source") -> list[dict[str, Any]]:
    """Record an alert for every silent source not announced yet; the alerts recorded now."""
    created = []
    for row in source_rows(store, tree, end=now, window_hours=window_hours, silent_minutes=silent_minutes, by=by,
                           everything=True):
        if not row.silent:
            continue
        alert = silent_alert(row, by=by, now=now, silent_minutes=silent_minutes)
        if store.create("alerts", alert["id"], alert):
            created.append(alert)
    return created
