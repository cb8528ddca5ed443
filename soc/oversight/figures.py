"""The oversight dashboard's figures and the per-agency scorecard, computed through the service
layer acting as the user: every count is taken by the scoped store, so an agency's user sees
only its own agencies' figures -- in the page, the charts and the exports alike.

**Alerts** are counted by the store (``count_documents``: the SQLite store's indexed field table,
the search engine's aggregations) -- never read one by one: per bucket of the range by level,
per agency, the top rules; an alert belongs to the range by ``first_seen``. **Incidents** are read
once (:mod:`soc.oversight.incident_facts`). **Sources** come from the events
(:mod:`soc.oversight.sources`).

Scorecard columns (one row per agency the user may see, in the agency tree's order):
sources connected (sent events in the range, by ingest time) and silent (none in the last
``oversight.silent_minutes`` before the range's end), alerts, incidents discovered and by national
type, MTTD and MTTR (median; MTTD over promptly ingested events only, back-filled counted apart),
the false-positive rate (alerts of the range closed as false positive, of the alerts closed) and
the national reports overdue now.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from soc.export.measures import TimeFigures, Timing, summarize
from soc.oversight.incident_facts import IncidentFacts, incident_facts
from soc.oversight.sources import agency_source_counts
from soc.oversight.span import Span
from soc.store.base import DocQuery

if TYPE_CHECKING:
    from soc.app import App

__all__ = ["LEVELS", "AgencyRow", "Dashboard", "Oversight", "Trend"]

ALERTS = "alerts"
LEVELS = ("critical", "high", "medium", "low", "informational")
TOP_RULES = 10


@dataclass(frozen=True)
class Trend:
    """Medians per bucket: MTTD and MTTA in minutes, MTTR in hours (``None``: nothing to measure)."""

    mttd: tuple[float | None, ...]
    mtta: tuple[float | None, ...]
    mttr: tuple[float | None, ...]


@dataclass
class Dashboard:
    span: Span
    levels: dict[str, list[int]]  # level -> alerts per bucket
    alerts_total: int
    by_status: dict[str, int]
    by_agency: list[tuple[str | None, str, int]]  # (agency, name, alerts), biggest first
    top_rules: list[tuple[str, str, int]]  # (rule id, title, alerts)
    open_incidents: list[tuple[str | None, str, int]]
    open_total: int
    serious_open: int
    times: TimeFigures
    trend: Trend
    facts: IncidentFacts


@dataclass
class AgencyRow:
    agency: str | None
    name: str
    depth: int = 0
    sources: int = 0
    silent: int = 0
    alerts: int = 0
    incidents: int = 0
    by_type: Counter[str] = field(default_factory=Counter)
    times: TimeFigures = field(default_factory=TimeFigures)
    closed: int = 0
    false_positives: int = 0
    overdue: int = 0

    @property
    def fp_rate(self) -> float | None:
        return self.false_positives / self.closed if self.closed else None


def _range(span: Span) -> tuple[str, str, tuple[Any, Any]]:
    return ("first_seen", "range", (span.start, span.end))


class Oversight:
    """Figures of one user (``services``: :meth:`soc.app.App.acting_as`) at the service's clock."""

    def __init__(self, services: App) -> None:
        self.services = services
        self.store = services.store
        self.tree = services.agencies
        self.settings = services.settings.oversight
        principal = services.principal
        self.everything = principal is None or principal.scope(self.tree).everything

    def now(self) -> datetime:
        return self.services.clock()

    def name(self, agency: str | None) -> str:
        return self.tree.name_of(agency) if agency else ""

    def _count(self, span: Span, group_by: tuple[str, ...] = (), size: int | tuple[int, ...] = 1000,
               more: tuple[tuple[str, str, Any], ...] = ()) -> list[tuple[tuple[Any, ...], int]]:
        query = DocQuery(ALERTS, filters=(_range(span), *more))
        return self.store.count_documents(query, group_by, size=size)

    def _facts(self, span: Span) -> IncidentFacts:
        return incident_facts(self.store, start=span.start, end=span.end, now=self.now(),
                              backfill_hours=self.settings.backfill_hours)

    # -- the dashboard ---------------------------------------------------------------------------
    def dashboard(self, span: Span) -> Dashboard:
        self.store.refresh()
        levels: dict[str, list[int]] = {}
        for i, bucket in enumerate(span.buckets):
            query = DocQuery(ALERTS, filters=(("first_seen", "range", (bucket.start, bucket.end)),))
            for (level,), count in self.store.count_documents(query, ("rule.level",), size=20):
                levels.setdefault(str(level), [0] * len(span.buckets))[i] += count
        order = [lv for lv in LEVELS if lv in levels] + sorted(set(levels) - set(LEVELS))
        levels = {lv: levels[lv] for lv in order}
        total = sum(sum(v) for v in levels.values())
        by_status = Counter[str]()
        for (status,), count in self._count(span, ("status",), 20):
            by_status["open" if status == "new" else str(status)] += count
        by_agency = [(a, self.name(a), n) for (a,), n in self._count(span, ("agency",))]
        rest = total - sum(n for _a, _name, n in by_agency)  # alerts of no agency (a count leaves them out)
        if rest > 0:
            by_agency.append((None, "", rest))
            by_agency.sort(key=lambda row: -row[2])
        facts = self._facts(span)
        opened = sorted(((a, self.name(a), n) for a, n in facts.open_by_agency.items() if n),
                        key=lambda row: (-row[2], row[1]))
        return Dashboard(span, levels, total, dict(by_status), by_agency, self._top_rules(span), opened,
                         sum(facts.open_by_agency.values()), facts.serious_open, self._times(facts, span),
                         self._trend(facts, span), facts)

    def _top_rules(self, span: Span) -> list[tuple[str, str, int]]:
        rows = []
        for (rule_id,), count in self._count(span, ("rule.id",), TOP_RULES):
            page = self.store.query_documents(DocQuery(ALERTS, filters=(("rule.id", "equals", rule_id),),
                                                       sort=("first_seen",), order="desc", size=1, track_total=0))
            title = (page.docs[0].body.get("rule") or {}).get("title") if page.docs else None
            rows.append((str(rule_id), str(title or rule_id), count))
        return rows

    def _times(self, facts: IncidentFacts, span: Span) -> TimeFigures:
        return summarize(facts.timings, start=span.start, end=span.end, threshold_hours=self.settings.backfill_hours)

    def _trend(self, facts: IncidentFacts, span: Span) -> Trend:
        # each bucket summarizes only the incidents discovered or ended in it (the same figures as
        # from all of them: summarize keeps those alone), not every incident once per bucket
        starts = [bucket.start for bucket in span.buckets]
        ends = [bucket.end for bucket in span.buckets]
        members: list[list[Timing]] = [[] for _ in span.buckets]
        for timing in facts.timings:
            for moment in {timing.discovered_at, timing.response_ended_at}:
                i = bisect_right(starts, moment) - 1 if moment is not None else -1
                if i >= 0 and moment < ends[i] and (not members[i] or members[i][-1] is not timing):
                    members[i].append(timing)
        mttd, mtta, mttr = [], [], []
        for bucket, timings in zip(span.buckets, members, strict=True):
            figures = summarize(timings, start=bucket.start, end=bucket.end,
                                threshold_hours=self.settings.backfill_hours)
            mttd.append(figures.mttd.minutes()[0])
            mtta.append(figures.mtta.minutes()[0])
            mttr.append(figures.mttr.hours()[0])
        return Trend(tuple(mttd), tuple(mtta), tuple(mttr))

    # -- the scorecard ---------------------------------------------------------------------------
    def agencies(self) -> list[tuple[str, int]]:
        """The agencies the user may see, each after its parent, with its depth (for indenting)."""
        principal = self.services.principal
        scope = principal.scope(self.tree) if principal is not None else None
        visible = [a for a in self.tree if scope is None or scope.allows(a.id)]
        ids = {a.id for a in visible}
        out: list[tuple[str, int]] = []

        def walk(parent: str | None, depth: int) -> None:
            for agency in visible:
                above = agency.merged_into or agency.parent
                if (above if above in ids else None) == parent and agency.id not in {i for i, _ in out}:
                    out.append((agency.id, depth))
                    walk(agency.id, depth + 1)

        walk(None, 0)
        return out

    def scorecard(self, span: Span) -> list[AgencyRow]:
        self.store.refresh()
        rows: dict[str | None, AgencyRow] = {a: AgencyRow(a, self.name(a), depth) for a, depth in self.agencies()}

        def row(agency: str | None) -> AgencyRow:
            if agency not in rows:
                rows[agency] = AgencyRow(agency, self.name(agency))
            return rows[agency]

        end = min(span.end, self.now())
        sources = agency_source_counts(self.store, end=end, window_hours=max(span.hours, 1 / 60),
                                       silent_minutes=self.settings.silent_minutes, everything=self.everything)
        for agency, (counts, recent) in sources.items():
            row(agency).sources = len(counts)
            row(agency).silent = sum(1 for value in counts if not recent.get(value))
        counted = 0
        for (agency,), count in self._count(span, ("agency",)):
            row(agency).alerts = count
            counted += count
        (((), total),) = self._count(span) or [((), 0)]
        if total > counted:
            row(None).alerts = total - counted  # alerts of no agency (a count leaves them out)
        for (agency, reason), count in self._count(span, ("agency", "close_reason"), (1000, 10),
                                                   (("status", "equals", "closed"),)):
            row(agency).closed += count
            if reason == "false_positive":
                row(agency).false_positives += count
        facts = self._facts(span)
        for agency, count in facts.discovered_by_agency.items():
            row(agency).incidents = count
            row(agency).by_type = facts.types_by_agency.get(agency, Counter())
        for agency, count in facts.overdue_by_agency.items():
            row(agency).overdue = count
        for agency in {t.agency for t in facts.timings}:
            row(agency).times = summarize([t for t in facts.timings if t.agency == agency], start=span.start,
                                          end=span.end, threshold_hours=self.settings.backfill_hours)
        return list(rows.values())
