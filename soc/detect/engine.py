"""Running compiled detections over a store window and recording alerts.

An alert is *recorded* here, create-only by a deterministic id; *notifying* about it (playbooks,
webhooks) is a separate step that reacts to the alerts a run reports as new. So an overlapping
window, a restart or a second scheduler never records or notifies twice.

Alert ids (``soc.model``):

* single-event rules: ``hash(rule id, rule version, event id)`` -- one alert per matched event;
* correlations: ``hash(rule id, group key, start of the episode)`` -- one alert per episode of
  overlapping qualifying windows (see :mod:`soc.detect.correlate`). A later run that extends a
  recorded episode (the attack went on) updates that alert in place (compare-and-set), so the
  id stays the one the episode started with.

A run that matches more than ``max_alerts`` events records the first ``max_alerts`` and one
*overflow* alert that states how many more there were: nothing is truncated silently.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from soc.detect.aggregate import may_qualify
from soc.detect.compiler import Detection, RuleSet
from soc.detect.correlate import (
    CorrelationResult,
    Episode,
    Point,
    correlate,
    first_seen,
    points_from_episodes,
)
from soc.detect.firstseen import baseline
from soc.detect.lucene_regex import explain_engine_error
from soc.model import alert_id_for_events, alert_id_for_group, iso
from soc.store.base import Conflict, Doc, Match, Store, StoreError, Window

ALERTS = "alerts"
#: entity fields copied from matched events onto alerts (for triage and incident grouping)
ENTITY_FIELDS = ("host.name", "source.ip", "destination.ip", "user.name", "user.target.name",
                 "process.name", "url.domain", "event.action", "event.outcome")
MAX_EVENT_IDS = 1000
MAX_MATCHES = 2_000_000  # hard bound on matches pulled for one correlation input

Filter = Callable[[Detection, Match | Episode], str | bool | None]
"""The exception hook (:class:`soc.detect.suppressions.ActiveExceptions`): given what would become an
alert -- a match of a single-event rule or an episode of a correlation -- the id of the
exception that suppresses it (or True), else None. Suppressed alerts are not recorded but
counted in :attr:`RunResult.suppressed` / ``suppressed_by``. The events a correlation counts are
never filtered. A hook with a ``prepare(engine)`` method is prepared at the start of each run
(to reload the exceptions in force)."""

Enrich = Callable[[dict[str, Any]], None]
"""Adds what the service knows about an alert's subject before it is recorded (and again when an
episode extends it): :class:`soc.alerts.priority.AlertPriority` records the affected system's
security level and the alert's risk. Given by the composition root; None records alerts as
the rules raise them."""


def _iso(ts: float) -> str:
    return iso(datetime.fromtimestamp(ts, UTC))


@dataclass
class RunResult:
    rule_id: str
    window: tuple[float | None, float | None]
    matches: int = 0
    created: list[dict[str, Any]] = field(default_factory=list)
    updated: int = 0
    existing: int = 0
    suppressed: int = 0
    suppressed_by: dict[str, int] = field(default_factory=dict)  # exception id -> alerts suppressed
    truncated: bool = False
    missing_group: int = 0
    error: str | None = None
    duration: float = 0.0


class DetectionEngine:
    """Evaluates detections of one :class:`RuleSet` against one store."""

    def __init__(self, store: Store, ruleset: RuleSet, *, max_alerts: int = 1000,
                 suppress: Filter | None = None, clock: Callable[[], float] = time.time,
                 fresh_store: bool = False, enrich: Enrich | None = None):
        if store.dialect != ruleset.dialect:
            raise ValueError(f"rules compiled for {ruleset.dialect}, store speaks {store.dialect}")
        self.store = store
        self.ruleset = ruleset
        self.max_alerts = max_alerts
        self.suppress = suppress
        self.enrich = enrich
        self.clock = clock
        self._prefetched: dict[str, list[Match]] = {}
        self._prefetched_points: dict[str, list[Point]] = {}  # the same, as points (shared by correlations)
        #: ``fresh_store``: the store held no alerts when this engine started and nothing else
        #: records alerts in it (a one-shot hunt). Alerts are then kept in memory as the store
        #: would hold them -- create-only by id, episodes merged into the latest alert of their
        #: group exactly as :meth:`_record_episode` does through the store -- without a store
        #: look-up per episode, and :meth:`flush` writes them. Same alerts, far fewer queries.
        self.fresh_store = fresh_store
        self._pending: dict[str, Doc] = {}
        self._pending_groups: dict[tuple[str, str], list[str]] = {}

    # -- matches -----------------------------------------------------------------------------
    def _matches(self, detection: Detection, window: Window, fields: Sequence[str], limit: int) -> list[Match]:
        if detection.info.id in self._prefetched:
            return self._prefetched[detection.info.id][:limit]
        wanted = list(dict.fromkeys([*ENTITY_FIELDS, *fields]))
        self.store.prepare_fields(detection.fields)
        return self.store.find_matches(detection.where, detection.datasets, window, wanted, limit)

    def _points(self, detection: Detection, window: Window, fields: Sequence[str],
                cache: dict[str, list[Point]]) -> list[Point]:
        """Matches of a referenced rule (event rule or inner correlation) as points."""
        key = detection.info.id
        if key in cache:
            return cache[key]
        if detection.kind == "event":
            points = self._prefetched_points.get(key)  # (points and their lists are never modified)
            if points is None:
                matches = self._matches(detection, window, fields, MAX_MATCHES)
                points = [Point(m.ts, key, m.agency, m.fields, (m.id,)) for m in matches]
                if key in self._prefetched:
                    self._prefetched_points[key] = points
        else:
            assert detection.correlation is not None
            inner = self._correlate(detection, window, cache)
            points = points_from_episodes(key, detection.correlation, inner)
        cache[key] = points
        return points

    def _fields_for(self, parent: Detection, child_id: str) -> list[str]:
        spec = parent.correlation
        assert spec is not None
        names = [spec.field_for(child_id, g) for g in spec.group_by]
        if spec.value_field:
            names.append(spec.field_for(child_id, spec.value_field))
        return names

    def _correlate(self, detection: Detection, window: Window, cache: dict[str, list[Point]]) -> CorrelationResult:
        spec = detection.correlation
        assert spec is not None
        if not any(r in cache or r in self._prefetched for r in spec.rules) \
                and not may_qualify(self.store, self.ruleset.detections, spec, window):
            return CorrelationResult([])  # the store's sums and counts rule out every window
        points: list[Point] = []
        for child_id in spec.rules:
            child = self.ruleset.detections[child_id]
            points.extend(self._points(child, window, self._fields_for(detection, child_id), cache))
        if spec.type == "first_seen":  # judged against the store's history before the window
            start = window.start if window.field == "@timestamp" else None
            return first_seen(spec, points, None if start is None else
                              baseline(self.store, self.ruleset.detections, spec, start))
        return correlate(spec, points)

    def span(self, detection: Detection) -> float:
        """How far back (event time) a correlation may need context: its timespan plus inner ones."""
        if detection.correlation is None:
            return 0.0
        inner = max((self.span(self.ruleset.detections[r]) for r in detection.correlation.rules), default=0.0)
        if detection.correlation.type == "first_seen":
            return inner  # its timespan is a baseline the store aggregates (soc.detect.firstseen)
        return detection.correlation.timespan + inner

    # -- runs --------------------------------------------------------------------------------
    def run(self, detection: Detection, window: Window) -> RunResult:
        """Evaluate one detection over ``window`` and record its alerts."""
        started = time.perf_counter()
        result = RunResult(detection.info.id, (window.start, window.end))
        try:
            self._prepare_suppress()
            if detection.kind == "event":
                self._run_event_rule(detection, window, result)
            else:
                self._run_correlation(detection, window, result)
        except Exception as error:  # one broken rule never stops the others
            result.error = explain_engine_error(f"{type(error).__name__}: {error}")
        result.duration = time.perf_counter() - started
        return result

    def run_all(self, detections: Iterable[Detection], window: Window,
                progress: Callable[[Detection], None] | None = None) -> list[RunResult]:
        """Run many detections over one window: the event rules (and the rules correlations
        refer to) are evaluated together, in one pass over the data per group of datasets."""
        detections = list(detections)
        self._prepare_suppress()
        self.prefetch(detections, window)
        try:
            results = []
            for detection in detections:
                results.append(self.run(detection, window))
                if progress is not None:
                    progress(detection)
            return results
        finally:
            self._prefetched.clear()
            self._prefetched_points.clear()

    def _base_rules(self, detection: Detection) -> list[Detection]:
        if detection.kind == "event":
            return [detection]
        assert detection.correlation is not None
        return [b for r in detection.correlation.rules for b in self._base_rules(self.ruleset.detections[r])]

    def prefetch(self, detections: Sequence[Detection], window: Window, limit: int = MAX_MATCHES) -> None:
        """Evaluate the event rules behind ``detections`` in batches grouped by datasets."""
        needed: dict[str, Detection] = {}
        fields: set[str] = set(ENTITY_FIELDS)
        for detection in detections:
            for base in self._base_rules(detection):
                needed[base.info.id] = base
        pending, seen = list(detections), set()
        while pending:  # the fields the correlations being run (and those inside them) group on
            detection = pending.pop()
            if detection.correlation is None or detection.info.id in seen:
                continue
            seen.add(detection.info.id)
            for child in detection.correlation.rules:
                fields.update(self._fields_for(detection, child))
                pending.append(self.ruleset.detections[child])
        groups: dict[tuple[str, ...], list[Detection]] = {}
        for base in needed.values():
            groups.setdefault(tuple(base.datasets), []).append(base)
        wanted = sorted(fields)
        if len(groups) > 1:  # one pass over all their datasets; each rule keeps its own datasets' matches
            groups = self._prefetch_together(list(needed.values()), window, wanted, limit, groups)
        for datasets, members in groups.items():
            try:
                self.store.prepare_fields({f for m in members for f in m.fields})
                results = self.store.find_matches_many([m.where for m in members], datasets, window, wanted, limit)
            except StoreError:
                continue  # evaluated rule by rule instead, so the failing rule reports its error
            for member, matches in zip(members, results, strict=True):
                self._prefetched[member.info.id] = matches

    def _prefetch_together(self, members: list[Detection], window: Window, wanted: list[str], limit: int,
                           groups: dict[tuple[str, ...], list[Detection]]) -> dict[tuple[str, ...], list[Detection]]:
        """Evaluate ``members`` in one call over the union of their datasets, each match tagged
        with its dataset and kept for the rules of that dataset only. Returns the groups still to
        evaluate by datasets: all of them if the call failed, else those with a rule that reached
        ``limit`` here (its own datasets may hold fewer matches than the union)."""
        tag = "event.dataset"
        try:
            self.store.prepare_fields({f for m in members for f in m.fields})
            results = self.store.find_matches_many([m.where for m in members],
                                                   sorted({d for m in members for d in m.datasets}),
                                                   window, [*wanted, tag] if tag not in wanted else wanted, limit)
        except StoreError:
            return groups
        full = {m.info.id for m, matches in zip(members, results, strict=True) if len(matches) >= limit}
        for member, matches in zip(members, results, strict=True):
            own = set(member.datasets)
            self._prefetched[member.info.id] = [m for m in matches if m.fields.get(tag) in own]
        if tag not in wanted:
            for matches in results:
                for match in matches:
                    match.fields.pop(tag, None)
        return {k: v for k, v in groups.items() if any(m.info.id in full for m in v)}

    def _run_event_rule(self, detection: Detection, window: Window, result: RunResult) -> None:
        matches = self._matches(detection, window, (), self.max_alerts + 1)
        if len(matches) > self.max_alerts:
            result.truncated = True
            total = self.store.count_matches(detection.where, detection.datasets, window)
            matches = matches[: self.max_alerts]
            self._record(self._overflow_alert(detection, window, matches, total), result)
        result.matches = len(matches)
        if self.suppress is not None:
            matches = [m for m in matches if not self._suppressed(detection, m, result)]
        now = self.clock()
        for match in matches:
            self._record(self._event_alert(detection, match, now), result)

    def _run_correlation(self, detection: Detection, window: Window, result: RunResult) -> None:
        spec = detection.correlation
        assert spec is not None
        span = self.span(detection)
        if window.field == "event.ingested" and (window.start is not None or window.end is not None):
            # which events are new in this ingest window, then their full event-time context
            probe: dict[str, list[Point]] = {}
            self._correlate(detection, window, probe)
            fresh = [p for points in probe.values() for p in points]
            if not fresh:
                return
            context = Window(min(p.ts for p in fresh) - span, max(p.ts for p in fresh) + span + 1e-6,
                             "@timestamp", ingested_before=window.end)
        else:
            context = window
        outcome = self._correlate(detection, context, {})
        result.missing_group = outcome.missing_group
        result.matches = len(outcome.episodes)
        now = self.clock()
        for episode in outcome.episodes[: self.max_alerts]:
            if self.suppress is not None and self._suppressed(detection, episode, result):
                continue
            self._record_episode(detection, episode, now, result)
        if len(outcome.episodes) > self.max_alerts:
            result.truncated = True
            self._record(self._overflow_alert(detection, window, [], len(outcome.episodes)), result)

    # -- exceptions --------------------------------------------------------------------------
    def _prepare_suppress(self) -> None:
        prepare = getattr(self.suppress, "prepare", None)
        if prepare is not None:
            prepare(self)

    def _suppressed(self, detection: Detection, subject: Match | Episode, result: RunResult) -> bool:
        assert self.suppress is not None
        by = self.suppress(detection, subject)
        if not by:
            return False
        key = by if isinstance(by, str) else "suppressed"
        result.suppressed += 1
        result.suppressed_by[key] = result.suppressed_by.get(key, 0) + 1
        return True

    # -- alerts ------------------------------------------------------------------------------
    def _base_alert(self, detection: Detection, now: float) -> dict[str, Any]:
        return {
            "rule": {k: v for k, v in detection.info.as_dict().items() if k != "path"},
            "detected_at": _iso(now),
            "status": "new",
        }

    def _event_alert(self, detection: Detection, match: Match, now: float) -> dict[str, Any]:
        info = detection.info
        alert = self._base_alert(detection, now)
        alert.update({
            "id": alert_id_for_events(info.id, info.version, [match.id]),
            "kind": "event",
            "@timestamp": _iso(match.ts),
            "first_seen": _iso(match.ts),
            "last_seen": _iso(match.ts),
            "agency": match.agency,
            "event_count": 1,
            "event_ids": [match.id],
            "group": {},
            "group_key": "",
            "entities": {f: [v] for f in ENTITY_FIELDS if (v := match.fields.get(f)) not in (None, "")},
        })
        return alert

    @staticmethod
    def group_key(episode: Episode) -> str:
        parts = [f"agency={episode.agency or ''}"]
        parts += [f"{name}={value}" for name, value in zip(sorted(episode.group_values),
                                                            [str(episode.group_values[n]).lower()
                                                             for n in sorted(episode.group_values)], strict=True)]
        return "|".join(parts)

    def _episode_alert(self, detection: Detection, episode: Episode, now: float) -> dict[str, Any]:
        spec = detection.correlation
        assert spec is not None
        events = episode.events
        ids = sorted(events, key=lambda e: (events[e], e))
        key = self.group_key(episode)
        entities: dict[str, list[Any]] = {}
        for point in episode.members:
            if point.events and point.events[0] in events:
                for name in ENTITY_FIELDS:
                    value = point.fields.get(name)
                    if value not in (None, "") and value not in entities.setdefault(name, []) \
                            and len(entities[name]) < 20:
                        entities[name].append(value)
        alert = self._base_alert(detection, now)
        alert.update({
            "id": alert_id_for_group(detection.info.id, key, _iso(episode.start)),
            "kind": "correlation",
            "@timestamp": _iso(episode.start),
            "first_seen": _iso(min(events.values()) if events else episode.start),
            "last_seen": _iso(episode.end),
            "agency": episode.agency,
            "event_count": len(events),
            "event_ids": ids[:MAX_EVENT_IDS],
            "event_ids_truncated": len(ids) > MAX_EVENT_IDS,
            "group": dict(episode.group_values),
            "group_key": key,
            "entities": {k: v for k, v in entities.items() if v},
            "correlation": {"type": spec.type, "timespan_seconds": spec.timespan,
                            "condition": {spec.op: spec.count}, "max_in_window": episode.metric,
                            "windows": len(episode.windows), **episode.details},
        })
        return alert

    def _overflow_alert(self, detection: Detection, window: Window, shown: list[Match],
                        total: int | None) -> dict[str, Any]:
        now = self.clock()
        alert = self._base_alert(detection, now)
        start = window.start if window.start is not None else 0.0
        alert.update({
            "id": alert_id_for_group(detection.info.id, "overflow", _iso(start)),
            "kind": "overflow",
            "@timestamp": _iso(shown[0].ts if shown else now),
            "first_seen": _iso(shown[0].ts if shown else now),
            "last_seen": _iso(shown[-1].ts if shown else now),
            "agency": None,
            "event_count": total if total is not None else len(shown),
            "event_ids": [],
            "group": {},
            "group_key": "overflow",
            "message": (f"more than {self.max_alerts} matches in one run: only the first "
                        f"{self.max_alerts} became alerts ({total if total is not None else 'unknown'} in all)"),
        })
        return alert

    def _record(self, alert: dict[str, Any], result: RunResult) -> None:
        if self.enrich is not None:
            self.enrich(alert)
        if self._create(alert):
            result.created.append(alert)
        else:
            result.existing += 1

    def _create(self, alert: dict[str, Any]) -> bool:
        if not self.fresh_store:
            return self.store.create(ALERTS, alert["id"], alert)
        if alert["id"] in self._pending:
            return False
        self._pending[alert["id"]] = Doc(alert["id"], 1, orjson.loads(orjson.dumps(alert)))  # as stored
        self._pending_groups.setdefault((alert["rule"]["id"], alert["group_key"]), []).append(alert["id"])
        return True

    def _latest(self, rule_id: str, group_key: str, since: str) -> list[Doc]:
        """The alert of this rule and group with the latest ``last_seen`` >= ``since`` (at most one)."""
        if not self.fresh_store:
            return self.store.find(ALERTS, {"rule.id": rule_id, "group_key": group_key}, time_field="last_seen",
                                   start=since, sort="last_seen", descending=True, limit=1)
        docs = [self._pending[i] for i in self._pending_groups.get((rule_id, group_key), ())]
        docs = [d for d in docs if d.body["last_seen"] >= since]
        if not docs:
            return []
        last = max(d.body["last_seen"] for d in docs)
        return [min((d for d in docs if d.body["last_seen"] == last), key=lambda d: d.id)]

    def _replace(self, doc: Doc, body: dict[str, Any]) -> None:
        if not self.fresh_store:
            self.store.put(ALERTS, doc.id, body, expected_version=doc.version)
            return
        self._pending[doc.id] = Doc(doc.id, doc.version + 1, orjson.loads(orjson.dumps(body)))

    def flush(self) -> int:
        """Write the alerts a ``fresh_store`` engine kept in memory; returns how many."""
        pending, self._pending, self._pending_groups = self._pending, {}, {}
        for doc in pending.values():
            self.store.create(ALERTS, doc.id, doc.body)
        return len(pending)

    def _record_episode(self, detection: Detection, episode: Episode, now: float, result: RunResult) -> None:
        alert = self._episode_alert(detection, episode, now)
        spec = detection.correlation
        assert spec is not None
        for _ in range(5):  # compare-and-set retries against concurrent schedulers
            previous = self._latest(detection.info.id, alert["group_key"], _iso(episode.start - spec.timespan))
            if not previous:
                self._record(alert, result)
                return
            doc = previous[0]
            if doc.body.get("first_seen", "") > alert["last_seen"]:
                self._record(alert, result)  # a distinct, earlier episode
                return
            merged = _merge_alerts(doc.body, alert)
            if self.enrich is not None:
                self.enrich(merged)
            if merged == doc.body:
                result.existing += 1
                return
            try:
                self._replace(doc, merged)
            except Conflict:
                continue
            result.updated += 1
            return
        raise Conflict(f"could not update alert for {alert['group_key']} after 5 attempts")


def _merge_alerts(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Extend a recorded episode with a later view of it (same rule and group)."""
    merged = dict(old)
    ids = list(dict.fromkeys([*old.get("event_ids", []), *new.get("event_ids", [])]))
    extra = len(set(new.get("event_ids", [])) - set(old.get("event_ids", [])))
    merged["event_ids"] = ids[:MAX_EVENT_IDS]
    merged["event_ids_truncated"] = len(ids) > MAX_EVENT_IDS or bool(old.get("event_ids_truncated"))
    merged["event_count"] = max(old.get("event_count", 0) + extra, new.get("event_count", 0))
    merged["first_seen"] = min(old["first_seen"], new["first_seen"])
    merged["last_seen"] = max(old["last_seen"], new["last_seen"])
    entities = {k: list(v) for k, v in old.get("entities", {}).items()}
    for name, values in new.get("entities", {}).items():
        bucket = entities.setdefault(name, [])
        bucket.extend(v for v in values if v not in bucket and len(bucket) < 20)
    merged["entities"] = entities
    if "correlation" in old and "correlation" in new:
        corr = dict(old["correlation"])
        corr["max_in_window"] = max(old["correlation"]["max_in_window"], new["correlation"]["max_in_window"])
        corr["windows"] = max(old["correlation"]["windows"], new["correlation"]["windows"])
        merged["correlation"] = corr
    return merged
