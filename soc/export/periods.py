"""Reporting periods in the report's zone: ``2026-11-30`` (daily), ``2026-W48`` (weekly),
``2026-11`` (monthly), ``2026-Q4`` (quarterly), ``2026-H2`` (semiannual), ``2026`` (annual)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from soc.model import iso

PERIOD_TYPES = ("daily", "weekly", "monthly", "quarterly", "semiannual", "annual")


@dataclass(frozen=True)
class ReportPeriod:
    type: str
    label: str
    start: datetime  # aware, local zone
    end: datetime

    @property
    def start_utc(self) -> str:
        return iso(self.start)

    @property
    def end_utc(self) -> str:
        return iso(self.end)

    def previous(self) -> ReportPeriod:
        return period_containing(self.type, self.start - timedelta(seconds=1))


def _month_add(year: int, month: int, n: int) -> tuple[int, int]:
    index = year * 12 + month - 1 + n
    return index // 12, index % 12 + 1


def period_containing(kind: str, moment: datetime) -> ReportPeriod:
    tz = moment.tzinfo
    d = moment.date()

    def at(day: date) -> datetime:
        return datetime(day.year, day.month, day.day, tzinfo=tz)

    if kind == "daily":
        return ReportPeriod(kind, d.isoformat(), at(d), at(d + timedelta(days=1)))
    if kind == "weekly":
        monday = d - timedelta(days=d.weekday())
        year, week, _ = monday.isocalendar()
        return ReportPeriod(kind, f"{year}-W{week:02d}", at(monday), at(monday + timedelta(days=7)))
    months = {"monthly": 1, "quarterly": 3, "semiannual": 6, "annual": 12}
    if kind not in months:
        raise ValueError(f"unknown period type {kind!r}; use one of {', '.join(PERIOD_TYPES)}")
    n = months[kind]
    first_month = (d.month - 1) // n * n + 1
    start = datetime(d.year, first_month, 1, tzinfo=tz)
    ey, em = _month_add(d.year, first_month, n)
    end = datetime(ey, em, 1, tzinfo=tz)
    label = {"monthly": f"{d.year}-{first_month:02d}", "quarterly": f"{d.year}-Q{(first_month - 1) // 3 + 1}",
             "semiannual": f"{d.year}-H{1 if first_month == 1 else 2}", "annual": f"{d.year}"}[kind]
    return ReportPeriod(kind, label, start, end)


def parse_period(kind: str, text: str | None, tz: str, now: datetime | None = None) -> ReportPeriod:
    """The period ``text`` names, or (``None``) the last complete period before ``now``."""
    zone = ZoneInfo(tz)
    if not text:
        current = period_containing(kind, (now or datetime.now(UTC)).astimezone(zone))
        return current.previous()
    patterns = {
        "daily": (r"(\d{4})-(\d{2})-(\d{2})", lambda m: date(int(m[1]), int(m[2]), int(m[3]))),
        "weekly": (r"(\d{4})-W(\d{2})", lambda m: date.fromisocalendar(int(m[1]), int(m[2]), 1)),
        "monthly": (r"(\d{4})-(\d{2})", lambda m: date(int(m[1]), int(m[2]), 1)),
        "quarterly": (r"(\d{4})-Q([1-4])", lambda m: date(int(m[1]), (int(m[2]) - 1) * 3 + 1, 1)),
        "semiannual": (r"(\d{4})-H([12])", lambda m: date(int(m[1]), 1 if m[2] == "1" else 7, 1)),
        "annual": (r"(\d{4})", lambda m: date(int(m[1]), 1, 1)),
    }
    if kind not in patterns:
        raise ValueError(f"unknown period type {kind!r}; use one of {', '.join(PERIOD_TYPES)}")
    pattern, to_date = patterns[kind]
    match = re.fullmatch(pattern, text.strip())
    if not match:
        examples = {"daily": "2026-11-30", "weekly": "2026-W48", "monthly": "2026-11", "quarterly": "2026-Q4",
                    "semiannual": "2026-H2", "annual": "2026"}
        raise ValueError(f"--period {text!r} is not a {kind} period; write it like {examples[kind]}")
    day = to_date(match)
    return period_containing(kind, datetime(day.year, day.month, day.day, tzinfo=zone))
