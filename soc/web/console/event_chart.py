"""The time histogram of an event search, as bars the page draws in SVG (no JavaScript, no chart
library): the store counts the events per interval (:meth:`soc.store.base.Store.event_histogram`,
buckets aligned in the analyst's zone), and here the interval is chosen so that the range fits in
at most :data:`MAX_BARS` bars -- days are grouped by several when even one bar a day is too many
-- and the empty intervals are filled in, so that the bars are proportional to time.

Each bar knows its interval, so the page links it to the same search narrowed to that interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from soc.store.base import EventQuery
from soc.store.event_query import INTERVALS

__all__ = ["MAX_BARS", "Bar", "Chart", "histogram", "slots"]

MAX_BARS = 120
#: the drawing's size in SVG units (the page scales it to its width)
WIDTH, HEIGHT = 1000, 120


@dataclass(frozen=True, slots=True)
class Bar:
    start: datetime
    end: datetime
    count: int
    x: float
    width: float
    height: float
    url: str


@dataclass(frozen=True, slots=True)
class Chart:
    bars: tuple[Bar, ...]
    start: datetime
    end: datetime
    peak: int
    total: int
    step: timedelta
    days: bool
    width: int = WIDTH
    height: int = HEIGHT


def _align(moment: datetime, seconds: int, zone: tzinfo) -> datetime:
    """The start of the interval holding ``moment``, on the wall clock of ``zone`` (as the
    store aligns buckets)."""
    local = moment.astimezone(zone)
    if seconds >= 86400:
        return datetime(local.year, local.month, local.day, tzinfo=zone)
    offset = (local.utcoffset() or timedelta(0)).total_seconds()
    ts = moment.timestamp()
    return datetime.fromtimestamp((ts + offset) // seconds * seconds - offset, zone)


def slots(start: datetime, end: datetime, zone: tzinfo) -> tuple[str, int, int]:
    """The store interval for ``[start, end)``, how many of them one bar holds, and the bars."""
    span = max((end - start).total_seconds(), 1.0)
    for name, seconds in INTERVALS.items():
        if span / seconds <= MAX_BARS:
            return name, 1, math.ceil(span / seconds) + 1
    days = math.ceil(span / 86400)
    group = math.ceil(days / MAX_BARS)
    return "1d", group, math.ceil(days / group) + 1


def _epoch(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def _range(who: Any, query: EventQuery) -> tuple[datetime, datetime] | None:
    """The time range the chart covers: the query's own on ``@timestamp``, else from the
    oldest to the newest matching event (two one-event reads)."""
    start = _epoch(query.start) if query.time_field == "@timestamp" else None
    end = _epoch(query.end) if query.time_field == "@timestamp" else None
    search = who.services.store.search_events
    if start is None:
        oldest = search(replace(query, order="asc", size=1, cursor=None)).events
        if not oldest:
            return None
        start = datetime.fromisoformat(str(oldest[0]["@timestamp"]).replace("Z", "+00:00"))
    if end is None:
        if query.start is not None and query.time_field == "@timestamp":
            end = who.services.clock()
        else:
            newest = search(replace(query, order="desc", size=1, cursor=None)).events
            if not newest:
                return None
            end = datetime.fromisoformat(str(newest[0]["@timestamp"]).replace("Z", "+00:00")) + timedelta(seconds=1)
    return (start, end) if start < end else (start, start + timedelta(minutes=1))


def histogram(who: Any, query: EventQuery, form: Any) -> Chart | None:
    """The chart of the events ``query`` matches (``form``: the search, for the bars' links)."""
    bounds = _range(who, query)
    if bounds is None:
        return None
    start, end = bounds
    settings = who.services.settings
    zone = settings.zone
    interval, group, count = slots(start, end, zone)
    seconds = INTERVALS[interval]
    origin = _align(start, seconds, zone)
    step = timedelta(seconds=seconds * group)
    sums = [0] * count
    for bucket, n in who.services.store.event_histogram(query, interval, zone=settings.timezone):
        index = int((bucket - origin).total_seconds() // step.total_seconds())
        if 0 <= index < count:
            sums[index] += n
    while len(sums) > 1 and sums[-1] == 0 and origin + step * (len(sums) - 1) >= end:
        sums.pop()
    peak = max(sums) or 1
    width = WIDTH / len(sums)
    bars = []
    for i, n in enumerate(sums):
        first = origin + step * i
        local = form.url(since=first.astimezone(zone).strftime("%Y-%m-%dT%H:%M:%S"),
                         until=(first + step).astimezone(zone).strftime("%Y-%m-%dT%H:%M:%S"),
                         time_field="@timestamp", cursor="")
        height = 0.0 if n == 0 else max(1.5, (HEIGHT - 4) * n / peak)
        bars.append(Bar(first, first + step, n, round(i * width, 2), round(max(width - 1, 0.6), 2),
                        round(height, 2), local))
    return Chart(tuple(bars), origin, origin + step * len(sums), max(sums), sum(sums), step, seconds * group >= 86400)
