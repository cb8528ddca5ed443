"""What the dashboard and the scorecard need from incidents, read in one pass.

Incidents are far fewer than alerts, and their figures depend on a whole document (history,
reports, deadlines), so they are read through the store (scoped: an agency sees its own) and
counted here: open incidents per agency, serious ones, the reports due and overdue
(:func:`soc.export.due.due_of`, the deadlines of the national forms), incidents by national type,
and each one's times (:mod:`soc.export.measures`: MTTD, MTTA, MTTR with back-filled events
counted apart). An incident counts under its ``agency`` (the first agency it concerns).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from soc.export.due import DueReport, due_of
from soc.export.measures import Timing, first_event_lags, timing_of
from soc.incidents.model import Incident
from soc.model import parse_iso
from soc.store.base import Store

__all__ = ["DueRow", "IncidentFacts", "incident_facts"]

INCIDENTS = "incidents"
#: most due reports listed (the counts cover all)
MAX_DUE_LISTED = 200


@dataclass(frozen=True)
class DueRow:
    report: DueReport
    agency: str | None


@dataclass
class IncidentFacts:
    open_by_agency: Counter[str | None] = field(default_factory=Counter)
    serious_open: int = 0
    discovered_by_agency: Counter[str | None] = field(default_factory=Counter)
    types_by_agency: dict[str | None, Counter[str]] = field(default_factory=dict)
    overdue_by_agency: Counter[str | None] = field(default_factory=Counter)
    due: list[DueRow] = field(default_factory=list)
    due_total: int = 0
    overdue_total: int = 0
    timings: list[Timing] = field(default_factory=list)


def _in(value: Any, start: datetime, end: datetime) -> bool:
    if not isinstance(value, str) or not value:
        return False
    try:
        moment = parse_iso(value)
    except ValueError:
        return False
    return start <= moment < end


def _owes(body: Mapping[str, Any]) -> bool:
    """Whether an incident may owe a national report (only those are validated as models)."""
    if body.get("merged_into") or body.get("verdict") in ("false_positive", "benign"):
        return False
    delivered = {r.get("kind") for r in body.get("reports") or () if isinstance(r, Mapping) and r.get("delivered_at")}
    return not ({"initial", "update"} & delivered) or (bool(body.get("response_ended_at")) and "closing" not in delivered)


def incident_facts(store: Store, *, start: datetime, end: datetime, now: datetime, backfill_hours: float,
                   bodies: Iterable[Mapping[str, Any]] | None = None) -> IncidentFacts:
    """The facts of the incidents the store shows (``bodies``: given instead of read), for the
    range ``[start, end)`` (discovery, end of response) at ``now`` (open, due, overdue)."""
    facts = IncidentFacts()
    threshold = backfill_hours * 3600
    measured: list[Mapping[str, Any]] = []
    for body in bodies if bodies is not None else (d.body for d in store.iter_all(INCIDENTS)):
        agency = body.get("agency")
        merged = bool(body.get("merged_into"))
        if not merged and body.get("status") != "closed":
            facts.open_by_agency[agency] += 1
            systems = body.get("affected_systems") or []
            if body.get("impacts") and any(isinstance(s, Mapping) and ((s.get("level") or 0) >= 4
                                                                       or s.get("national_critical")) for s in systems):
                facts.serious_open += 1
        discovered = _in(body.get("discovered_at"), start, end)
        if discovered and not merged:
            facts.discovered_by_agency[agency] += 1
            facts.types_by_agency.setdefault(agency, Counter())[body.get("incident_type") or "other"] += 1
        if discovered or _in(body.get("response_ended_at"), start, end):
            measured.append(body)
        if _owes(body):
            try:
                owed = due_of(Incident.model_validate(body), now)
            except ValueError:
                owed = []
            for report in owed:
                facts.due_total += 1
                facts.overdue_total += report.overdue
                facts.overdue_by_agency[agency] += report.overdue
                facts.due.append(DueRow(report, agency))
    facts.due.sort(key=lambda r: (not r.report.overdue, r.report.due_at, r.report.incident_id))
    del facts.due[MAX_DUE_LISTED:]
    lags = first_event_lags(store, measured, threshold)
    facts.timings = [timing_of(b, threshold=threshold, ingest_delay=lags.get(str(b.get("id"))),
                               looked_up=str(b.get("id")) in lags) for b in measured]
    return facts
