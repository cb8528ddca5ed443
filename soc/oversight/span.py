"""The time range a dashboard or scorecard covers, and its buckets in the analyst's zone.

``since``/``until`` are read by the one parser of the shell and the API
(:mod:`soc.timeexpr`: ``30d``, ``2026-01-01``, ``today``...); the default is the last 30 days.
The range is cut into buckets the charts draw -- hours up to two days, days up to 62 days,
weeks (from Monday) up to a year and a bit, months beyond -- aligned on the zone's midnights.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo

from soc.timeexpr import resolve_range

__all__ = ["DEFAULT_SINCE", "MAX_DAYS", "Bucket", "Span", "span_of"]

DEFAULT_SINCE = "30d"
#: the longest range (a few years of yearly assessments)
MAX_DAYS = 3 * 366


@dataclass(frozen=True)
class Bucket:
    start: datetime  # aware, in the span's zone
    end: datetime


@dataclass(frozen=True)
class Span:
    """``[start, end)`` (aware UTC), the zone, the bucket ``unit`` (``hour``, ``day``, ``week``,
    ``month``) and the buckets; ``since``/``until`` as the user wrote them (for the form)."""

    start: datetime
    end: datetime
    zone: tzinfo
    unit: str
    buckets: tuple[Bucket, ...]
    since: str
    until: str

    @property
    def hours(self) -> float:
        return (self.end - self.start).total_seconds() / 3600


def _unit(days: float) -> str:
    return "hour" if days <= 2 else "day" if days <= 62 else "week" if days <= 380 else "month"


def _floor(moment: datetime, unit: str, zone: tzinfo) -> datetime:
    local = moment.astimezone(zone)
    if unit == "hour":
        return local.replace(minute=0, second=0, microsecond=0)
    day = local.date()
    if unit == "week":
        day -= timedelta(days=day.weekday())
    elif unit == "month":
        day = day.replace(day=1)
    return datetime.combine(day, time(), zone)


def _next(moment: datetime, unit: str, zone: tzinfo) -> datetime:
    if unit == "hour":
        return (moment + timedelta(hours=1)).astimezone(zone)
    day = moment.date()
    if unit == "day":
        day += timedelta(days=1)
    elif unit == "week":
        day += timedelta(days=7)
    else:
        day = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return datetime.combine(day, time(), zone)


def span_of(since: str | None, until: str | None, zone: tzinfo, now: datetime) -> Span:
    """The span of ``since``/``until`` (texts as analysts write them; empty: the defaults) at
    ``now``; :class:`ValueError` saying what is wrong."""
    since, until = (since or "").strip(), (until or "").strip()
    found = resolve_range(since or DEFAULT_SINCE, until or None, zone, now)
    start, end = found.start, found.end or now
    assert start is not None
    if start >= end:
        raise ValueError("since is not before until: nothing can lie between them")
    if end - start > timedelta(days=MAX_DAYS):
        raise ValueError(f"the range is longer than {MAX_DAYS} days: choose a shorter one")
    unit = _unit((end - start).total_seconds() / 86400)
    buckets, moment = [], _floor(start, unit, zone)
    while moment < end:
        following = _next(moment, unit, zone)
        buckets.append(Bucket(max(moment, start.astimezone(zone)), min(following, end.astimezone(zone))))
        moment = following
    return Span(start, end, zone, unit, tuple(buckets), since, until)
