"""Times as analysts write them: the one parser of ``since``/``until`` for every front door.

The shell (``--since``/``--until``, :mod:`soc.cli.timeargs`) and the HTTP API (``since=``,
``until=`` query parameters, :mod:`soc.web.listing`) both read times here, so ``2h`` or
``yesterday`` means the same in both. Accepted:

* an ISO 8601 date or date and time, with or without a zone: ``2026-12-07``,
  ``2026-12-07T08:30``, ``2026-12-07 08:30:15``, ``2026-12-07T01:30:00Z``,
  ``2026-12-07T08:30+07:00``. Without a zone it is in the analyst's zone (``settings.zone``);
  a date alone is its midnight there;
* a time back from now: ``30s``, ``15m``, ``2h``, ``7d``, ``2w``;
* ``now``, ``today`` (midnight in the analyst's zone), ``yesterday`` (the midnight before).

:func:`parse_time` checks the form (a :class:`ValueError` listing the forms otherwise) into a
:class:`TimeArg`; :meth:`TimeArg.resolve` places it in a zone at a given now; :func:`resolve_range`
turns a ``since``/``until`` pair into a :class:`TimeRange` -- half-open ``[since, until)`` in
UTC, compared with stored ISO text by :meth:`TimeRange.bounds` or :meth:`TimeRange.contains`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from soc.model import iso, parse_iso

__all__ = ["FORMS", "MAX_TEXT", "TimeArg", "TimeRange", "parse_time", "resolve_range"]

FORMS = ("an ISO 8601 date or time (2026-12-07, 2026-12-07T08:30, 2026-12-07T08:30+07:00, "
         "2026-12-07T01:30Z; without a zone it is in the analyst's zone, a date alone is its midnight), "
         "a time back from now (30s, 15m, 2h, 7d, 2w), now, today or yesterday")
#: longest time text looked at (anything longer is no time)
MAX_TEXT = 64

_RELATIVE = re.compile(r"^(\d{1,6})\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}(:?\d{2})?)?$", re.I)


@dataclass(frozen=True, slots=True)
class TimeArg:
    """A checked time text, not yet placed in a zone: ``kind`` is ``relative`` (``ago`` back
    from now), ``day`` (midnight of ``day`` in the analyst's zone), ``today``/``yesterday``
    (that midnight of the current day or the one before), ``local`` (a wall time in the
    analyst's zone), ``exact`` (an aware time) or ``now``."""

    text: str
    kind: str
    ago: timedelta | None = None
    day: date | None = None
    moment: datetime | None = None

    def resolve(self, zone: tzinfo, now: datetime) -> datetime:
        """The aware UTC time this names, for an analyst in ``zone`` at ``now``."""
        if self.kind == "relative" and self.ago is not None:
            return (now - self.ago).astimezone(UTC)
        if self.kind == "day" and self.day is not None:
            return datetime.combine(self.day, time(), zone).astimezone(UTC)
        if self.kind == "local" and self.moment is not None:
            return self.moment.replace(tzinfo=zone).astimezone(UTC)
        if self.kind == "exact" and self.moment is not None:
            return self.moment.astimezone(UTC)
        if self.kind in ("today", "yesterday"):
            day = now.astimezone(zone).date() - timedelta(days=1 if self.kind == "yesterday" else 0)
            return datetime.combine(day, time(), zone).astimezone(UTC)
        return now.astimezone(UTC)


def _bad(text: str, why: str = "is not a time") -> ValueError:
    return ValueError(f"{text!r} {why}; use {FORMS}")


def parse_time(value: str | TimeArg) -> TimeArg:
    """Check the form of a time text; raises :class:`ValueError` naming the accepted forms."""
    if isinstance(value, TimeArg):
        return value
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise _bad(str(value)[:MAX_TEXT])
    text = value.strip()
    word = text.lower()
    if word in ("now", "today", "yesterday"):
        return TimeArg(text, word)
    relative = _RELATIVE.match(word)
    if relative:
        return TimeArg(text, "relative", ago=timedelta(**{_UNITS[relative.group(2)]: int(relative.group(1))}))
    if _DATE.match(text):
        try:
            return TimeArg(text, "day", day=date.fromisoformat(text))
        except ValueError as error:
            raise _bad(text, f"is not a date ({error})") from None
    if _DATETIME.match(text):
        try:
            moment = datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
        except ValueError as error:
            raise _bad(text, f"is not a time ({error})") from None
        return TimeArg(text, "exact" if moment.tzinfo else "local", moment=moment)
    raise _bad(text)


@dataclass(frozen=True, slots=True)
class TimeRange:
    """``[start, end)`` in UTC; ``None`` is open."""

    start: datetime | None = None
    end: datetime | None = None

    @property
    def bounded(self) -> bool:
        return self.start is not None or self.end is not None

    def bounds(self) -> tuple[str | None, str | None]:
        """The bounds as stored ISO text (:func:`soc.model.iso`), for ``store.find(start=, end=)``."""
        return (iso(self.start) if self.start else None, iso(self.end) if self.end else None)

    def contains(self, value: str | datetime | None) -> bool:
        """Whether a stored time (ISO text or aware datetime) lies in the range; a missing
        time lies in it only when the range is open on both sides."""
        if not self.bounded:
            return True
        if value in (None, ""):
            return False
        moment = parse_iso(value) if isinstance(value, str) else value
        assert moment is not None
        return (self.start is None or moment >= self.start) and (self.end is None or moment < self.end)


def resolve_range(since: str | TimeArg | None, until: str | TimeArg | None, zone: tzinfo,
                  now: datetime, *, names: tuple[str, str] = ("since", "until")) -> TimeRange:
    """``since``/``until`` (texts or checked :class:`TimeArg`) placed in the analyst's ``zone``
    at ``now``; :class:`ValueError` when a form is wrong or ``since`` is not before ``until``
    (``names``: how the two are called in the message, e.g. ``--since``/``--until``)."""
    first = parse_time(since) if since is not None else None
    last = parse_time(until) if until is not None else None
    start = first.resolve(zone, now) if first else None
    end = last.resolve(zone, now) if last else None
    if start is not None and end is not None and start >= end:
        raise ValueError(f"{names[0]} {first.text if first else ''!r} ({iso(start)}) is not before "
                         f"{names[1]} {last.text if last else ''!r} ({iso(end)}): nothing can lie between them")
    return TimeRange(start, end)
