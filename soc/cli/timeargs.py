"""``--since`` and ``--until``: the one way every command reads a time from the analyst.

Accepted (anything else exits 2 listing these forms):

* an ISO 8601 date or date and time, with or without a zone: ``2026-12-07``,
  ``2026-12-07T08:30``, ``2026-12-07 08:30:15``, ``2026-12-07T01:30:00Z``,
  ``2026-12-07T08:30+07:00``. Without a zone it is in the analyst's zone (``settings.zone``);
  a date alone is its midnight there;
* a time back from now: ``30s``, ``15m``, ``2h``, ``7d``, ``2w``;
* ``now``, ``today`` (midnight in the analyst's zone), ``yesterday`` (the midnight before).

Typer parses the option text into a :class:`TimeArg` (the form is checked there, so a typo is
a usage error, exit 2); the command then resolves it with the analyst's zone and the CLI clock
(:data:`cli_clock`, which tests replace with :func:`soc.clock.fixed_clock`) into a
:class:`TimeRange` -- half-open ``[since, until)`` in UTC, compared with stored ISO text by
:meth:`TimeRange.bounds` or :meth:`TimeRange.contains`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Annotated

import typer

from soc.clock import Clock, system_clock
from soc.model import iso, parse_iso

__all__ = ["FORMS", "SinceOption", "TimeArg", "TimeRange", "UntilOption", "cli_clock", "cli_now", "parse_time_arg",
           "time_range"]

#: the clock relative times are counted from; tests set ``soc.cli.timeargs.cli_clock``
cli_clock: Clock = system_clock

FORMS = ("an ISO 8601 date or time (2026-12-07, 2026-12-07T08:30, 2026-12-07T08:30+07:00, "
         "2026-12-07T01:30Z; without a zone it is in the analyst's zone, a date alone is its midnight), "
         "a time back from now (30s, 15m, 2h, 7d, 2w), now, today or yesterday")

_RELATIVE = re.compile(r"^(\d{1,6})\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}(:?\d{2})?)?$", re.I)


@dataclass(frozen=True, slots=True)
class TimeArg:
    """A checked ``--since``/``--until`` value, not yet placed in a zone: ``kind`` is
    ``relative`` (``ago`` back from now), ``day`` (midnight of ``day`` in the analyst's zone),
    ``today``/``yesterday`` (that midnight of the current day or the one before),
    ``local`` (a wall time in the analyst's zone), ``exact`` (an aware time) or ``now``."""

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


def _bad(text: str, why: str = "is not a time") -> typer.BadParameter:
    return typer.BadParameter(f"{text!r} {why}; use {FORMS}")


def parse_time_arg(value: str | TimeArg) -> TimeArg:
    """Check the form of a ``--since``/``--until`` text (typer's ``parser``); raises
    :class:`typer.BadParameter` (exit 2) with the accepted forms."""
    if isinstance(value, TimeArg):
        return value
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


SinceOption = Annotated[TimeArg | None, typer.Option(
    "--since", parser=parse_time_arg, metavar="TIME", show_default=False,
    help="From this time on: 2026-12-07, 2026-12-07T08:30, 2026-12-07T08:30+07:00, 2h, 7d, today, "
         "yesterday (no zone: the analyst's; a date: its midnight).")]
UntilOption = Annotated[TimeArg | None, typer.Option(
    "--until", parser=parse_time_arg, metavar="TIME", show_default=False,
    help="Before this time (same forms as --since).")]


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


def time_range(since: TimeArg | None, until: TimeArg | None, zone: tzinfo, *,
               clock: Clock | None = None) -> TimeRange:
    """Resolve ``--since``/``--until`` in the analyst's ``zone`` at the CLI clock's now;
    exits 2 when ``--since`` is not before ``--until``."""
    now = (clock or cli_clock)()
    start = since.resolve(zone, now) if since else None
    end = until.resolve(zone, now) if until else None
    if start is not None and end is not None and start >= end:
        raise typer.BadParameter(f"--since {since.text if since else ''!r} ({iso(start)}) is not before "
                                 f"--until {until.text if until else ''!r} ({iso(end)}): nothing can lie "
                                 "between them")
    return TimeRange(start, end)


def cli_now() -> datetime:
    """Now, by the CLI clock (:data:`cli_clock`): deadlines and lateness shown by commands."""
    return cli_clock()
