"""Sigma correlations over rule matches: one implementation for every store.

The store finds the events each referenced rule matches; this module does the windowing, so the
embedded and the search-engine deployments give the same alerts with the same ids.

Window semantics (documented for analysts in docs/detection.md):

* Windows **slide** over event time (``@timestamp``): a window ends at every matching event ``t``
  and covers ``[t - timespan, t]``, both ends included. Sliding windows never miss a burst that
  straddles a bucket boundary (the caveat the Sigma specification raises for tumbling buckets).
* Events are grouped by the agency that sent them plus the rule's ``group-by`` fields; group
  values compare case-insensitively, as Sigma strings do. An event lacking a group-by field
  cannot be grouped and is counted in ``missing_group``.
* ``event_count``: events in the window; ``value_count``: distinct (case-insensitive) values of
  the condition field in the window; ``temporal``: distinct referenced rules that matched in the
  window (default: all of them); ``temporal_ordered``: the referenced rules matched in the listed
  order within the window (each strictly after the previous one).
* **De-duplication**: qualifying windows of one group that overlap are merged into one
  *episode*, which becomes one alert. Its id is derived from the rule, the group and the start
  of the episode's first qualifying window, so re-running over overlapping time ranges (a
  restart, a late batch, a second scheduler) yields the same id and never a second alert.
* A correlation may refer to another correlation: the inner one's qualifying windows act as
  its matches (at the window's end time, carrying all of the window's events).

Sigma's ``value_sum`` (short name ``sum``) and the project's types (:mod:`soc.detect.extensions`):

* ``value_sum``: the sum of the numeric condition field over the window's events (a value that is
  not a number adds nothing);
* ``beaconing``: the group's connections (those closer than ``min_interval`` merged into one)
  in the window number at least the condition's count and the intervals between them vary
  little: their coefficient of variation (population standard deviation / mean) is at most
  ``jitter``. Running sums of the intervals keep it O(n) per group;
* ``first_seen`` (:func:`first_seen`): a value of the condition field that the entity (the
  group) has not shown in the ``timespan`` before; each first sighting is one episode, grouped by
  the entity *and* the value, so the same data always gives the same alerts.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from soc.detect.compiler import CorrelationSpec

_OPS = {
    "gte": lambda v, c: v >= c,
    "gt": lambda v, c: v > c,
    "lte": lambda v, c: v <= c,
    "lt": lambda v, c: v < c,
    "eq": lambda v, c: v == c,
    "neq": lambda v, c: v != c,
}


@dataclass(slots=True)
class Point:
    """Something a referenced rule matched: one event, or an inner correlation's window."""

    ts: float
    rule: str
    agency: str | None
    fields: dict[str, Any]
    events: tuple[str, ...]
    start: float | None = None  # inner windows: where the window began


@dataclass
class Episode:
    """Overlapping qualifying windows of one group: one alert."""

    group: tuple[Any, ...]
    agency: str | None
    group_values: dict[str, Any]
    start: float  # start of the first qualifying window (earliest event in it)
    first_window_end: float
    end: float  # end of the last qualifying window
    metric: float
    members: list[Point] = field(default_factory=list, repr=False)  # the group's points, by time
    windows: list[tuple[float, float, int, int]] = field(default_factory=list)  # start, end, first, last
    details: dict[str, Any] = field(default_factory=dict)  # what the type measured (beaconing: intervals)

    @property
    def events(self) -> dict[str, float]:
        """Event id -> event time, for every event of every qualifying window."""
        out: dict[str, float] = {}
        for first, last in self._ranges():
            for point in self.members[first:last + 1]:
                for event_id in point.events:
                    out.setdefault(event_id, point.ts)
        return out

    def _ranges(self) -> list[tuple[int, int]]:
        merged: list[tuple[int, int]] = []
        for _, _, first, last in sorted(self.windows, key=lambda w: w[2]):
            if merged and first <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(merged[-1][1], last))
            else:
                merged.append((first, last))
        return merged


@dataclass
class CorrelationResult:
    episodes: list[Episode]
    missing_group: int = 0


def _norm(value: Any) -> Any:
    if isinstance(value, str):
        return value.lower()
    if isinstance(value, list):
        return tuple(_norm(v) for v in value)
    return value


def _group_of(spec: CorrelationSpec, point: Point) -> tuple[tuple[Any, ...], dict[str, Any]] | None:
    values: dict[str, Any] = {}
    key: list[Any] = [point.agency]
    for name in spec.group_by:
        value = point.fields.get(spec.field_for(point.rule, name))
        if value is None or value == "":
            return None
        values[name] = value
        key.append(_norm(value))
    return tuple(key), values


def correlate(spec: CorrelationSpec, points: Sequence[Point]) -> CorrelationResult:
    """Qualifying windows of ``spec`` over ``points`` (matches of its referenced rules), merged
    into episodes. Points of rules ``spec`` does not reference are ignored."""
    groups: dict[tuple[Any, ...], list[Point]] = defaultdict(list)
    values_of: dict[tuple[Any, ...], dict[str, Any]] = {}
    missing = 0
    wanted = set(spec.rules)
    for point in points:
        if point.rule not in wanted:
            continue
        grouped = _group_of(spec, point)
        if grouped is None:
            missing += 1
            continue
        key, values = grouped
        groups[key].append(point)
        values_of.setdefault(key, values)
    episodes: list[Episode] = []
    for key, members in groups.items():
        members.sort(key=lambda p: (p.ts, p.events))
        found = _merge(key, values_of[key], members, _windows(spec, members))
        if spec.type == "beaconing":
            for episode in found:
                _describe_beacon(spec, episode)
        episodes.extend(found)
    episodes.sort(key=lambda e: (e.start, e.group))
    return CorrelationResult(episodes, missing)


Window = tuple[float, float, float, int, int]  # start, end, metric, first index, last index


class _Counter:
    """A multiset with O(1) add/remove and a count of distinct keys."""

    def __init__(self) -> None:
        self.counts: dict[Any, int] = {}

    def add(self, key: Any) -> None:
        self.counts[key] = self.counts.get(key, 0) + 1

    def remove(self, key: Any) -> None:
        left = self.counts[key] - 1
        if left:
            self.counts[key] = left
        else:
            del self.counts[key]

    def __len__(self) -> int:
        return len(self.counts)


def _keys(spec: CorrelationSpec, point: Point) -> list[Any]:
    """What a point contributes to the window metric."""
    if spec.type == "event_count":
        return list(point.events)
    if spec.type == "value_count":
        value = point.fields.get(spec.field_for(point.rule, spec.value_field or ""))
        return [] if value is None else [_norm(value)]
    return [point.rule]  # temporal


def _windows(spec: CorrelationSpec, members: list[Point]) -> list[Window]:
    """Sliding windows ``[t - timespan, t]`` ending at each point, two pointers, O(n)."""
    if spec.type == "temporal_ordered":
        return _ordered_windows(spec, members)
    if spec.type == "value_sum":
        return _sum_windows(spec, members)
    if spec.type == "beaconing":
        return _beacon_windows(spec, members)
    test = _OPS[spec.op]
    count = spec.count if spec.type != "temporal" or spec.count else float(len(spec.rules))
    inside = _Counter()
    out: list[Window] = []
    first = 0
    n = len(members)
    for i, point in enumerate(members):
        for key in _keys(spec, point):
            inside.add(key)
        end = point.ts
        while members[first].ts < end - spec.timespan:
            for key in _keys(spec, members[first]):
                inside.remove(key)
            first += 1
        if i + 1 < n and members[i + 1].ts == end:
            continue  # evaluated once, at the last point sharing this time
        metric = float(len(inside))
        if test(metric, count):
            start = min(p.start if p.start is not None else p.ts for p in members[first:first + 1])
            out.append((start, end, metric, first, i))
    return out


def _number(value: Any) -> float:
    """A field value as a number to sum; text that is no number (or NaN) adds nothing."""
    if isinstance(value, bool) or value is None:
        return 0.0
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return number if math.isfinite(number) else 0.0


def _sum_windows(spec: CorrelationSpec, members: list[Point]) -> list[Window]:
    test = _OPS[spec.op]
    values = [_number(p.fields.get(spec.field_for(p.rule, spec.value_field or ""))) for p in members]
    out: list[Window] = []
    total = 0.0
    first = 0
    for i, point in enumerate(members):
        total += values[i]
        while members[first].ts < point.ts - spec.timespan:
            total -= values[first]
            first += 1
        if i + 1 < len(members) and members[i + 1].ts == point.ts:
            continue
        metric = round(total, 6)  # running sums of floats: no 0.30000000000000004 in alerts
        if test(metric, spec.count):
            out.append((members[first].ts, point.ts, metric, first, i))
    return out


def _beats(members: list[Point], min_interval: float) -> list[tuple[float, int, int]]:
    """Connections as beats ``(time, first point, last point)``: points closer than
    ``min_interval`` to the beat's first point belong to it."""
    beats: list[tuple[float, int, int]] = []
    for i, point in enumerate(members):
        if beats and point.ts - beats[-1][0] < min_interval:
            beats[-1] = (beats[-1][0], beats[-1][1], i)
        else:
            beats.append((point.ts, i, i))
    return beats


def beacon_stats(intervals: Sequence[float]) -> tuple[float, float]:
    """Mean interval and coefficient of variation (population standard deviation / mean)."""
    mean = sum(intervals) / len(intervals)
    if mean <= 0:
        return mean, math.inf
    variance = sum((x - mean) ** 2 for x in intervals) / len(intervals)
    return mean, math.sqrt(variance) / mean


def _beacon_windows(spec: CorrelationSpec, members: list[Point]) -> list[Window]:
    test = _OPS[spec.op]
    jitter = float(spec.options.get("jitter", 0.0))
    beats = _beats(members, float(spec.options.get("min_interval", 1.0)))
    # prefix sums of the intervals and their squares: mean and variance of any run in O(1)
    gaps = [b[0] - a[0] for a, b in zip(beats, beats[1:], strict=False)]
    sums, squares = [0.0], [0.0]
    for gap in gaps:
        sums.append(sums[-1] + gap)
        squares.append(squares[-1] + gap * gap)
    out: list[Window] = []
    first = 0
    for j, (end, _, last_point) in enumerate(beats):
        while beats[first][0] < end - spec.timespan:
            first += 1
        count = j - first + 1
        if count < 3 or not test(float(count), spec.count):
            continue  # two intervals at least: one interval is always "regular"
        n = count - 1  # intervals first..j-1 are gaps[first:j]
        mean = (sums[j] - sums[first]) / n
        variance = max((squares[j] - squares[first]) / n - mean * mean, 0.0)
        if mean > 0 and math.sqrt(variance) / mean <= jitter + 1e-9:
            out.append((beats[first][0], end, float(count), beats[first][1], last_point))
    return out


def _ordered_windows(spec: CorrelationSpec, members: list[Point]) -> list[Window]:
    """Windows where the referenced rules matched in order, ending at a match of the last one."""
    order = list(spec.rules)
    by_rule: dict[str, list[tuple[int, Point]]] = defaultdict(list)
    for index, point in enumerate(members):
        by_rule[point.rule].append((index, point))
    out: list[Window] = []
    for last_index, last in by_rule.get(order[-1], []):
        limit = last.ts - spec.timespan
        bound = last.ts
        chain = [(last_index, last)]
        for rule in reversed(order[:-1]):
            candidates = [(i, p) for i, p in by_rule.get(rule, [])
                          if limit <= (p.ts if p.start is None else p.start) and p.ts < bound]
            if not candidates:
                break
            chosen = candidates[-1]  # the latest one leaves the most room for earlier stages
            chain.append(chosen)
            bound = chosen[1].ts if chosen[1].start is None else chosen[1].start
        if len(chain) == len(order):
            start = min(p.ts if p.start is None else p.start for _, p in chain)
            first = min(i for i, p in enumerate(members) if p.ts >= start)
            out.append((start, last.ts, float(len(chain)), first, last_index))
    return out


def _merge(key: tuple[Any, ...], values: dict[str, Any], members: list[Point],
           windows: list[Window]) -> list[Episode]:
    episodes: list[Episode] = []
    current: Episode | None = None
    for start, end, metric, first, last in sorted(windows, key=lambda w: (w[1], w[0])):
        if current is None or start > current.end:
            current = Episode(group=key, agency=key[0], group_values=values, start=start,
                              first_window_end=end, end=end, metric=metric, members=members)
            episodes.append(current)
        current.end = max(current.end, end)
        current.metric = max(current.metric, metric)
        current.windows.append((start, end, first, last))
    return episodes


def _describe_beacon(spec: CorrelationSpec, episode: Episode) -> None:
    """The episode's beats, mean interval and coefficient of variation (over all its windows)."""
    first = min(w[2] for w in episode.windows)
    last = max(w[3] for w in episode.windows)
    beats = _beats(episode.members[first:last + 1], float(spec.options.get("min_interval", 1.0)))
    mean, cv = beacon_stats([b[0] - a[0] for a, b in zip(beats, beats[1:], strict=False)])
    episode.details = {"beats": len(beats), "mean_interval_seconds": round(mean, 3),
                       "coefficient_of_variation": round(cv, 4)}


def first_seen(spec: CorrelationSpec, points: Sequence[Point],
               history: dict[tuple[tuple[Any, ...], Any], tuple[float, float]] | None = None) -> CorrelationResult:
    """First sightings: a point whose value (``spec.value_field``) its entity (agency and
    ``group-by``) did not show in the ``timespan`` before it. ``history`` holds, for each
    (entity key, normalised value) seen before the points' window, when it was first and last
    seen. With ``known_entities_only`` an entity must itself have been seen in that timespan, at
    least ``min_history`` seconds before."""
    last_pair: dict[tuple[tuple[Any, ...], Any], float] = {}
    last_entity: dict[tuple[Any, ...], float] = {}
    first_entity: dict[tuple[Any, ...], float] = {}
    for (entity, value), (first, last) in (history or {}).items():
        last_pair[(entity, value)] = last
        last_entity[entity] = max(last, last_entity.get(entity, last))
        first_entity[entity] = min(first, first_entity.get(entity, first))
    known_only = bool(spec.options.get("known_entities_only", True))
    min_history = float(spec.options.get("min_history", 0.0))
    wanted = set(spec.rules)
    missing = 0
    episodes: list[Episode] = []
    for point in sorted((p for p in points if p.rule in wanted), key=lambda p: (p.ts, p.events)):
        grouped = _group_of(spec, point)
        value = point.fields.get(spec.field_for(point.rule, spec.value_field or ""))
        if grouped is None or value is None or value == "":
            missing += 1
            continue
        entity, values = grouped
        pair = (entity, _norm(value))
        since = point.ts - spec.timespan
        previous, known = last_pair.get(pair), last_entity.get(entity)
        settled = known is not None and known >= since and first_entity[entity] <= point.ts - min_history
        if (previous is None or previous < since) and (not known_only or settled):
            group_values = {**values, spec.value_field or "": value}
            episodes.append(Episode(group=(*entity, pair[1]), agency=entity[0], group_values=group_values,
                                    start=point.ts, first_window_end=point.ts, end=point.ts, metric=1.0,
                                    members=[point], windows=[(point.ts, point.ts, 0, 0)]))
        last_pair[pair] = point.ts
        last_entity[entity] = point.ts
        first_entity.setdefault(entity, point.ts)
    episodes.sort(key=lambda e: (e.start, e.group))
    return CorrelationResult(episodes, missing)


def pair_key(agency: str | None, group: Sequence[Any], value: Any) -> tuple[tuple[Any, ...], Any]:
    """The key :func:`first_seen` keeps an entity's value under (its ``history`` keys)."""
    return (agency, *(_norm(v) for v in group)), _norm(value)


def points_from_episodes(rule_id: str, spec: CorrelationSpec, result: CorrelationResult) -> list[Point]:
    """An inner correlation's qualifying windows as points for an outer correlation."""
    points = []
    for episode in result.episodes:
        for start, end, first, last in episode.windows:
            ids = tuple(e for p in episode.members[first:last + 1] for e in p.events)
            points.append(Point(ts=end, rule=rule_id, agency=episode.agency,
                                fields=dict(episode.group_values), events=ids, start=start))
    return points
