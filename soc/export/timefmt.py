"""Time text for the forms: stored UTC ISO text shown in the report's zone."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from soc.model import parse_iso


def local(text: str, tz: str) -> datetime:
    return parse_iso(text).astimezone(ZoneInfo(tz))


def local_iso(text: str | None, tz: str) -> str | None:
    """``2026-12-01T03:04:05.123Z`` -> ``2026-12-01T10:04:05+07:00`` (seconds precision)."""
    if not text:
        return None
    return local(text, tz).replace(microsecond=0).isoformat()


def form_date(text: str, tz: str, year_digits: int = 4) -> str:
    value = local(text, tz)
    return value.strftime("%d/%m/%Y" if year_digits == 4 else "%d/%m/%y")


def form_time(text: str, tz: str) -> str:
    return local(text, tz).strftime("%H:%M")


def form_datetime(text: str, tz: str) -> str:
    """THỜI GIAN THỰC HIỆN BÁO CÁO: dd/mm/yyyy hh:mm."""
    return local(text, tz).strftime("%d/%m/%Y %H:%M")
