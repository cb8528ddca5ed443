"""Time to detect, acknowledge and respond, measured honestly over incidents.

The same definitions serve the monitoring summaries (:mod:`soc.export.summary`) and the
console's oversight dashboard (:mod:`soc.oversight`), and both say them in words
(:data:`METHOD_VI`):

* **MTTD** (time to detect): from the incident's first event -- its own time, ``first_seen``
  -- to discovery (``discovered_at``: the first alert's detection), over incidents discovered
  in the period, not merged into another and not judged false positive or benign. **Only
  incidents whose first event was ingested promptly count**: within the back-fill threshold
  (``oversight.backfill_hours``, 24 h by default) of when it happened. An incident whose first
  event arrived later -- old logs replayed, an agency sending a backlog -- is *back-filled*:
  its "time to detect" measures how late the logs were delivered, not how fast the SOC saw
  them (a month of replayed logs would say "MTTD 336.148,95 phút", 233 days), so it is counted
  apart, with its delivery delay. An incident whose first event can no longer be read
  (retention) while its detection took longer than the threshold is counted apart too
  (``unknown``).
* **MTTA** (time to acknowledge): from discovery to the first thing a person did on the
  incident (opened it, assigned it, moved it, wrote a note, gave a verdict...); what the
  service and playbooks did (actors ``system:...``, ``playbook:...``) does not count. Incidents
  discovered in the period, not merged; those nobody has touched yet are counted apart.
* **MTTR** (time to respond): from discovery to the end of the response (``response_ended_at``:
  the status first reached ``resolved``), over responses that ended in the period, not merged,
  not false positive or benign.

Each is given as the median and the mean, with how many incidents it counts: one very late
incident moves the mean, not the median.

**Why the detection lag decides which events to look up.** An alert is raised after its
events were stored, so an incident detected within the threshold of its first event was
ingested within it too; only the incidents detected later need their first event's ingest
time (``event.ingested``, stamped by the store when it wrote the event), read from the store:
the earliest alert of the incident names it.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from soc.model import parse_iso
from soc.store.base import DocQuery, Store

__all__ = ["DEFAULT_BACKFILL_HOURS", "METHOD_VI", "Measure", "TimeFigures", "Timing", "acknowledged_at", "by_person",
           "first_event_lags", "measure", "summarize", "timing_of"]

DEFAULT_BACKFILL_HOURS = 24.0
#: actors that are not a person (the service, the scheduler, playbooks)
MACHINE_ACTORS = ("system:", "playbook:")
NOT_INCIDENTS = ("false_positive", "benign")

#: how each figure is computed, in the words of the reports ({hours}: the back-fill threshold)
METHOD_VI = {
    "mttd": ("MTTD: trung vị và trung bình thời gian từ thời điểm xảy ra sự kiện đầu tiên đến khi phát hiện "
             "(cảnh báo đầu tiên), tính trên các sự cố phát hiện trong kỳ, không tính sự cố bị gộp, dương tính giả "
             "hoặc lành tính; chỉ tính sự cố có sự kiện đầu tiên được thu thập trong vòng {hours} giờ sau khi xảy ra. "
             "Sự cố từ dữ liệu nạp bù (sự kiện được thu thập muộn hơn {hours} giờ) được tính riêng."),
    "mtta": ("MTTA: trung vị và trung bình thời gian từ khi phát hiện đến thao tác đầu tiên của một người trên sự cố "
             "(mở, phân công, chuyển trạng thái, ghi chú, kết luận); thao tác của hệ thống và playbook không tính."),
    "mttr": ("MTTR: trung vị và trung bình thời gian từ khi phát hiện đến khi kết thúc ứng cứu (trạng thái "
             "\"đã xử lý\"), tính trên các sự cố kết thúc ứng cứu trong kỳ, không tính dương tính giả hoặc lành tính."),
}


def _time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str) and value:
        try:
            return parse_iso(value)
        except ValueError:
            return None
    return None


@dataclass(frozen=True)
class Measure:
    """A duration over ``count`` incidents: median and mean in seconds (``None``: none counted)."""

    count: int = 0
    median: float | None = None
    mean: float | None = None

    def minutes(self) -> tuple[float | None, float | None]:
        return (_per(self.median, 60), _per(self.mean, 60))

    def hours(self) -> tuple[float | None, float | None]:
        return (_per(self.median, 3600), _per(self.mean, 3600))


def _per(value: float | None, unit: float) -> float | None:
    return None if value is None else round(value / unit, 2)


def measure(seconds: Iterable[float]) -> Measure:
    values = [max(0.0, v) for v in seconds]
    if not values:
        return Measure()
    return Measure(len(values), statistics.median(values), statistics.fmean(values))


def by_person(actor: object) -> bool:
    """Whether a history entry was made by a person (not the service or a playbook)."""
    return isinstance(actor, str) and bool(actor) and not actor.startswith(MACHINE_ACTORS)


@dataclass(frozen=True)
class Timing:
    """One incident's times, in seconds (``None``: not measured).

    ``detect_class``: ``prompt`` (its first event was ingested within the threshold: counts in
    MTTD), ``backfilled``, ``unknown`` (detected late and its first event cannot be read), or
    ``None`` (not an incident MTTD counts). ``ingest_delay``: how late the first event was
    stored, when it was looked up."""

    incident_id: str
    agency: str | None
    discovered_at: datetime | None
    detect: float | None = None
    detect_class: str | None = None
    ingest_delay: float | None = None
    acknowledge: float | None = None
    acknowledged: bool = False
    respond: float | None = None
    response_ended_at: datetime | None = None
    counts: bool = True  # discovered-side figures apply (not merged)
    true_incident: bool = True  # not false positive or benign


def timing_of(incident: Mapping[str, Any], *, threshold: float, ingest_delay: float | None = None,
              looked_up: bool = False) -> Timing:
    """The times of one incident (a stored body). ``threshold``: the back-fill threshold in
    seconds; ``ingest_delay``: its first event's delay between happening and being stored,
    when :func:`first_event_lags` looked it up (``looked_up``)."""
    discovered = _time(incident.get("discovered_at"))
    first = _time(incident.get("first_seen"))
    ended = _time(incident.get("response_ended_at"))
    merged = bool(incident.get("merged_into"))
    true_incident = incident.get("verdict") not in NOT_INCIDENTS
    detect = detect_class = None
    if discovered and first and not merged and true_incident:
        detect = max(0.0, (discovered - first).total_seconds())
        if detect <= threshold:
            detect_class = "prompt"
        elif looked_up and ingest_delay is not None:
            detect_class = "backfilled" if ingest_delay > threshold else "prompt"
        else:
            detect_class = "unknown"
    acknowledge = None
    touched = _time(acknowledged_at(incident))
    if discovered and not merged and touched is not None:
        acknowledge = max(0.0, (touched - discovered).total_seconds())
    respond = None
    if discovered and ended and not merged and true_incident:
        respond = max(0.0, (ended - discovered).total_seconds())
    return Timing(str(incident.get("id")), incident.get("agency"), discovered, detect, detect_class,
                  ingest_delay if looked_up else None, acknowledge, acknowledge is not None, respond, ended,
                  not merged, true_incident)


def acknowledged_at(incident: Mapping[str, Any]) -> str | None:
    """When a person first acted on the incident (ISO text), from its history (or its
    ``acknowledged_at`` when a summary snapshot kept only that); ``None``: nobody yet."""
    if incident.get("acknowledged_at"):
        return str(incident["acknowledged_at"])
    times = [(moment, str(entry.get("at"))) for entry in incident.get("history") or () if isinstance(entry, Mapping)
             and by_person(entry.get("actor")) and (moment := _time(entry.get("at"))) is not None]
    return min(times)[1] if times else None


def first_event_lags(store: Store, incidents: Iterable[Mapping[str, Any]], threshold: float) -> dict[str, float | None]:
    """For each incident detected more than ``threshold`` seconds after its first event: how
    long that event took to be stored (seconds), ``None`` when it cannot be read any more.
    Incidents detected within the threshold need no look-up and are not in the answer."""
    firsts: dict[str, str] = {}
    answer: dict[str, float | None] = {}
    for incident in incidents:
        discovered, first = _time(incident.get("discovered_at")), _time(incident.get("first_seen"))
        if not discovered or not first or (discovered - first).total_seconds() <= threshold:
            continue
        incident_id = str(incident.get("id"))
        answer[incident_id] = None
        page = store.query_documents(DocQuery("alerts", filters=(("incident_id", "equals", incident_id),),
                                              sort=("first_seen",), size=1, track_total=0))
        ids = page.docs[0].body.get("event_ids") if page.docs else None
        if ids:
            firsts[incident_id] = str(ids[0])
    if firsts:
        events = {e.get("_id"): e for e in store.get_events(sorted(set(firsts.values())))}
        for incident_id, event_id in firsts.items():
            event = events.get(event_id) or {}
            happened, stored = _time(event.get("@timestamp")), _time(event.get("event.ingested"))
            if happened and stored:
                answer[incident_id] = max(0.0, (stored - happened).total_seconds())
    return answer


@dataclass
class TimeFigures:
    """MTTD, MTTA and MTTR of a set of incidents, and what was counted apart."""

    mttd: Measure = field(default_factory=Measure)
    mtta: Measure = field(default_factory=Measure)
    mttr: Measure = field(default_factory=Measure)
    backfilled: int = 0
    backfill_delay: Measure = field(default_factory=Measure)
    unknown: int = 0
    not_acknowledged: int = 0
    threshold_hours: float = DEFAULT_BACKFILL_HOURS


def summarize(timings: Iterable[Timing], *, start: datetime | None = None, end: datetime | None = None,
              threshold_hours: float = DEFAULT_BACKFILL_HOURS) -> TimeFigures:
    """The figures over ``timings``: MTTD and MTTA of incidents discovered in ``[start, end)``,
    MTTR of responses that ended in it (no bound: all)."""
    def inside(moment: datetime | None) -> bool:
        return moment is not None and (start is None or moment >= start) and (end is None or moment < end)

    detect, delays, ack, respond = [], [], [], []
    figures = TimeFigures(threshold_hours=threshold_hours)
    for t in timings:
        if t.counts and inside(t.discovered_at):
            if t.detect_class == "prompt" and t.detect is not None:
                detect.append(t.detect)
            elif t.detect_class == "backfilled":
                figures.backfilled += 1
                if t.ingest_delay is not None:
                    delays.append(t.ingest_delay)
            elif t.detect_class == "unknown":
                figures.unknown += 1
            if t.acknowledge is not None:
                ack.append(t.acknowledge)
            else:
                figures.not_acknowledged += 1
        if t.respond is not None and inside(t.response_ended_at):
            respond.append(t.respond)
    figures.mttd, figures.mtta, figures.mttr = measure(detect), measure(ack), measure(respond)
    figures.backfill_delay = measure(delays)
    return figures
