"""Timestamp texts found in logs -> ``datetime`` (aware when the text has a zone, else naive).

The normalizer applies the time model (zones, year inference, future checks); parsers only
turn text into a datetime without losing what the text did or did not say:

- a zone or offset in the text -> an aware datetime;
- no zone -> a naive datetime (the source's configured zone applies later);
- no year (RFC 3164 ``Mmm dd hh:mm:ss``) -> the year :data:`PROVISIONAL_YEAR` and
  ``Parsed.year_missing = True``. 2000 is a leap year, so ``Feb 29`` always constructs; the
  normalizer replaces the year with the one nearest to the receive time.

Nothing here raises on bad input: every function returns ``None`` when it cannot read a value.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

PROVISIONAL_YEAR = 2000

MONTHS: dict[str, int] = {}
for _i, _name in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1):
    MONTHS[_name] = MONTHS[_name.capitalize()] = MONTHS[_name.upper()] = _i

_UTC_NAMES = frozenset({"Z", "z", "UTC", "utc", "GMT", "gmt", "UT", "Zulu"})
_OFFSETS: dict[str, timezone | None] = {}
_OFFSET = re.compile(r"([+-])(\d\d):?(\d\d)")


def tz_from_text(text: str) -> timezone | None:
    """``Z``/``UTC``/``GMT``/``+07:00``/``-0700`` -> a fixed timezone; anything else ``None``.

    Zone abbreviations other than UTC/GMT (``CDT``, ``AEST``, ``ICT``) are ambiguous, so they
    give ``None`` and the source's configured zone applies.
    """
    if text in _UTC_NAMES:
        return UTC
    tz = _OFFSETS.get(text, False)
    if tz is not False:
        return tz  # type: ignore[return-value]
    m = _OFFSET.fullmatch(text)
    result: timezone | None = None
    if m:
        minutes = int(m.group(2)) * 60 + int(m.group(3))
        if minutes < 24 * 60:
            result = UTC if minutes == 0 else timezone(timedelta(minutes=-minutes if m.group(1) == "-" else minutes))
    if len(_OFFSETS) < 1024:
        _OFFSETS[text] = result
    return result


def fraction_us(frac: str | None) -> int:
    """Fractional-second digits (any length) -> microseconds, truncated."""
    if not frac:
        return 0
    return int((frac + "000000")[:6])


_ISO = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)(?:[T ](\d\d):(\d\d)(?::(\d\d)(?:[.,](\d{1,9}))?)?)?\s?(Z|[+-]\d\d:?\d\d|UTC|GMT)?"
)


def parse_iso(text: str) -> datetime | None:
    """ISO 8601 / RFC 3339 and their common relatives (space separator, ``+0700``,
    nanosecond fractions, trailing ``UTC``). Aware when the text carries a zone."""
    m = _ISO.match(text.strip()) if text else None
    if not m:
        return None
    y, mo, d, hh, mm, ss, frac, tz = m.groups()
    try:
        ts = datetime(int(y), int(mo), int(d), int(hh or 0), int(mm or 0), int(ss or 0), fraction_us(frac))
    except ValueError:
        return None
    if tz:
        zone = tz_from_text(tz)
        if zone is not None:
            ts = ts.replace(tzinfo=zone)
    return ts


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def from_epoch(value: float | int | str | None) -> datetime | None:
    """Unix time in s, ms, us or ns (told apart by magnitude) -> aware UTC datetime.

    Integers (and integer text) are converted exactly; floats keep microsecond precision
    as far as the float allows."""
    if value is None or isinstance(value, bool):
        return None
    try:
        if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
            number = int(value)
            if number <= 0:
                return None
            micros = number * 1_000_000
            for _ in range(3):
                if micros < 10**17:  # below ~ year 5138 in microseconds
                    break
                micros //= 1000
            return _EPOCH + timedelta(microseconds=micros)
        seconds = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if seconds != seconds or seconds <= 0:  # NaN or not after 1970
        return None
    for _ in range(3):
        if seconds < 1e11:
            break
        seconds /= 1000.0
    try:
        return _EPOCH + timedelta(seconds=seconds)
    except (OverflowError, ValueError):
        return None


_BSD = re.compile(r"([A-Za-z]{3}) +(\d{1,2}) (?:(\d{4}) )?(\d{1,2}):(\d\d):(\d\d)(?:\.(\d{1,9}))?(?: ([A-Za-z]{1,5}|[+-]\d\d:?\d\d))?")


def parse_bsd(text: str) -> tuple[datetime | None, bool]:
    """``Mmm dd [yyyy] hh:mm:ss[.frac] [zone]`` -> (datetime, year_missing)."""
    m = _BSD.match(text.strip()) if text else None
    if not m:
        return None, False
    mon, day, year, hh, mm, ss, frac, tz = m.groups()
    month = MONTHS.get(mon)
    if month is None:
        return None, False
    try:
        ts = datetime(int(year) if year else PROVISIONAL_YEAR, month, int(day), int(hh), int(mm), int(ss), fraction_us(frac))
    except ValueError:
        return None, False
    if tz:
        zone = tz_from_text(tz)
        if zone is not None:
            ts = ts.replace(tzinfo=zone)
    return ts, year is None


def parse_any(text: str) -> tuple[datetime | None, bool]:
    """Best effort for a timestamp value of unknown shape (JSON/kv fields).

    Tries ISO 8601, then epoch numbers, then BSD ``Mmm dd``. Returns (datetime, year_missing).
    """
    if not text:
        return None, False
    text = text.strip()
    first = text[:1]
    if first.isdigit():
        if len(text) >= 10 and text[4:5] in "-/" and text[:4].isdigit():
            ts = parse_iso(text.replace("/", "-", 2) if text[4] == "/" else text)
            if ts is not None:
                return ts, False
        if text.replace(".", "", 1).isdigit() and len(text) >= 9:
            return from_epoch(text), False
        return None, False
    if first.isalpha():
        return parse_bsd(text)
    return None, False
