"""Event search over a store: what to ask (:class:`EventQuery`, :class:`FieldFilter`), what comes
back (:class:`EventPage`), and the checks both stores rely on (re-exported by
:mod:`soc.store.base`; the stores: :mod:`soc.store.sqlite_search`, :mod:`soc.store.search_events`).

**Checked here, once, for both stores.** A field name is a catalogued field (``ingest/fields.yml``)
or matches :data:`FIELD_NAME` (letters, digits, ``_ . @ -``, no empty dotted part, no leading
``_`` except ``_id``); anything else is a :class:`ValueError` naming the field. Values are data:
strings (no NUL, valid Unicode, bounded lengths), numbers for numeric fields, addresses and
networks for IP fields, times for time fields. A value is never turned into query text: SQLite
binds it as a parameter, the search engine gets it as a ``term``/``terms``/``prefix``/``range``
value or an escaped ``wildcard`` pattern.

**What each operator means** (the same on both stores):

* ``equals`` -- case-insensitive equality, as Sigma (and the keyword normalizer) compare; on a
  list field, any element. Store-owned keys (``event.dataset``, ``organization.id``, ``_id``)
  compare exactly, numbers as numbers, IP fields as addresses (``::ffff:10.1.2.3`` is
  ``10.1.2.3``).
* ``not_equals`` -- not ``equals``: also events without the field.
* ``in`` -- ``equals`` any of a list of values.
* ``prefix`` -- the value starts with (case-insensitive for text fields).
* ``exists`` -- the field has a value (``False``: it has none).
* ``cidr`` -- an IP field's address lies in a network (``10.0.0.0/8``; an address alone is a
  one-address network).
* ``range`` -- ``(gte, lt)`` on a numeric or time field, either bound ``None``; times as epoch
  seconds, aware datetimes or ISO 8601 text.

**Fields the catalogue does not list** compare as text on SQLite; the search engine mapped
them from the first value it saw, so equality is the same (``match`` with ``lenient``: ``123``
finds the number 123, ``abc`` finds nothing), but their top values may come back as numbers
there, and a prefix on one the engine mapped as a number is refused (:mod:`.search_events`).
Catalogue them in ``ingest/fields.yml`` to search them with the same meaning everywhere.

**Free text** (``text``) is a substring of ``message`` or ``event.original`` ignoring case and
diacritics (:func:`soc.text.fold`: ``dang nhap`` finds ``Đăng nhập``, and ``đăng`` finds
``Dang``), as an analyst searches -- unlike the filters, which compare as Sigma does (case
ignored, diacritics significant). SQLite folds the text it reads (:mod:`.sqlite_search`); the
search engine searches a folded copy indexed next to each field (:mod:`.search_mappings`; event
indices made before it existed find the text only as typed).

**Limits**: :data:`MAX_PAGE_SIZE` events per page, :data:`MAX_FILTERS` filters,
:data:`MAX_IN_VALUES` values over all ``in`` lists, :data:`MAX_VALUE_LENGTH` characters per
value, :data:`MAX_PREFIX_LENGTH` per prefix and :data:`MAX_TEXT_LENGTH` for free text (the
search engine builds an automaton for prefixes and substrings and refuses longer ones).

**Cursor.** Pages are keyset pages on ``(@timestamp, event id)``: the cursor names the last
event of a page (``c1.`` and base64url of ``[store dialect, sort value, id, order]``), the next
page starts strictly after it. No offsets: events inserted between pages never shift a page or
repeat one. A cursor is opaque to callers and belongs to the store and order that issued it
(anything else is a :class:`ValueError`).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import math
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from soc.catalog import default_catalog
from soc.model import Event, parse_iso

__all__ = ["EXACT_FIELDS", "FIELD_NAME", "INTERVALS", "MAX_BUCKETS", "MAX_FILTERS", "MAX_IN_VALUES",
           "MAX_PAGE_SIZE", "MAX_PREFIX_LENGTH", "MAX_TEXT_LENGTH", "MAX_TOP_SIZE", "MAX_VALUE_LENGTH", "OPS",
           "TEXT_FIELDS", "TIME_FIELDS", "EventPage", "EventQuery", "FieldFilter", "decode_cursor",
           "encode_cursor", "field_kind", "histogram_zone", "interval_seconds", "query_agencies", "top_field"]

OPS = ("equals", "not_equals", "in", "prefix", "exists", "cidr", "range")
MAX_PAGE_SIZE = 1000
MAX_FILTERS = 64
MAX_IN_VALUES = 500
#: longest value compared whole: the search engine indexes keywords up to 8,191 characters
MAX_VALUE_LENGTH = 8191
#: longest prefix: the search engine refuses prefix automata of more than 1,000 characters
MAX_PREFIX_LENGTH = 1000
#: longest free text: a ``*text*`` automaton of about 400 repeated characters is already
#: refused by the search engine (measured on OpenSearch 2.19); 256 always works
MAX_TEXT_LENGTH = 256
MAX_FIELD_LENGTH = 256
MAX_TOP_SIZE = 1000
#: most (non-empty) histogram buckets one call returns
MAX_BUCKETS = 10_000
MAX_CURSOR_LENGTH = 2048
#: histogram intervals and their length in seconds (``1d`` follows the zone's calendar days)
INTERVALS = {"1m": 60, "5m": 300, "1h": 3600, "1d": 86400}
TIME_FIELDS = ("@timestamp", "event.ingested")
#: the fields free text searches
TEXT_FIELDS = ("message", "event.original")
#: store-owned keys: compared exactly (case-sensitive) on both stores
EXACT_FIELDS = ("event.dataset", "organization.id", "_id")
FIELD_NAME = re.compile(r"[A-Za-z0-9_@-]+(?:\.[A-Za-z0-9_@-]+)*")
_OPS_BY_KIND = {
    "time": {"exists", "range"},
    "date": {"exists", "range"},
    "number": {"equals", "not_equals", "in", "exists", "range"},
    "ip": {"equals", "not_equals", "in", "exists", "cidr"},
    "exact": {"equals", "not_equals", "in", "prefix", "exists"},
    "text": {"equals", "not_equals", "in", "prefix", "exists"},
    "unknown": {"equals", "not_equals", "in", "prefix", "exists"},
}
_LONG_LIMIT = 2**63
#: sort values of a cursor: epoch seconds (SQLite) or milliseconds (search engine), years 0 to 9999
_SORT_LIMIT = 253_402_300_800_000


def field_kind(name: str) -> str:
    """How a field is searched: ``time`` (``@timestamp``, ``event.ingested``), ``date``,
    ``number``, ``ip``, ``exact`` (:data:`EXACT_FIELDS`), ``text`` (catalogued strings and the
    catalogue's dynamic prefixes: keyword text on both stores) or ``unknown`` (any other safe
    name: compared as text). Raises :class:`ValueError` for a name that is not safe."""
    if not isinstance(name, str):
        raise ValueError(f"a field name is text, not {type(name).__name__}")
    return _kind(name)


@lru_cache(maxsize=4096)
def _kind(name: str) -> str:
    if len(name) > MAX_FIELD_LENGTH or not FIELD_NAME.fullmatch(name) or (name.startswith("_") and name != "_id"):
        raise ValueError(f"field {_shown(name)}: a field name is letters, digits and _ . @ - (dotted parts, "
                         f"at most {MAX_FIELD_LENGTH} characters, no leading _ except _id)")
    if name == "soc.id":
        raise ValueError("field 'soc.id' is the search store's copy of the event id: filter on _id")
    if name in TIME_FIELDS:
        return "time"
    if name in EXACT_FIELDS:
        return "exact"
    catalog = default_catalog()
    kind = catalog.field_types.get(name)
    if kind in ("long", "float"):
        return "number"
    if kind in ("ip", "date"):
        return kind
    if kind is not None or name.startswith(catalog.dynamic_prefixes):
        return "text" if kind in (None, "keyword", "text") else "unknown"
    return "unknown"


def _shown(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _text(value: object, what: str, limit: int = MAX_VALUE_LENGTH) -> str:
    """A string value as searched: numbers written as text, no NUL, valid Unicode, bounded."""
    if isinstance(value, bool):
        value = "true" if value else "false"
    elif isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
        value = str(value)
    if not isinstance(value, str):
        raise ValueError(f"{what}: expected text, not {type(value).__name__} {_shown(value)}")
    if len(value) > limit:
        raise ValueError(f"{what}: {len(value):,} characters, at most {limit:,} are searchable")
    if "\x00" in value:
        raise ValueError(f"{what}: NUL characters are not searchable")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{what}: not valid Unicode text (a lone surrogate)") from None
    return value


def _number(value: object, what: str, integral: bool) -> int | float:
    if isinstance(value, bool):
        raise ValueError(f"{what}: expected a number, not {value!r}")
    number: int | float
    if isinstance(value, (int, float)):
        number = value
    elif isinstance(value, str) and len(value) <= 40:
        try:
            number = int(value.strip())
        except ValueError:
            try:
                number = float(value.strip())
            except ValueError:
                raise ValueError(f"{what}: {_shown(value)} is not a number") from None
    else:
        raise ValueError(f"{what}: expected a number, not {type(value).__name__} {_shown(value)}")
    if isinstance(number, float):
        if not math.isfinite(number):
            raise ValueError(f"{what}: {value!r} is not a finite number")
        if integral:
            if not number.is_integer():
                raise ValueError(f"{what}: {value!r} is not a whole number (the field holds whole numbers)")
            number = int(number)
    if isinstance(number, int) and abs(number) >= _LONG_LIMIT:
        raise ValueError(f"{what}: {value!r} is out of range")
    return number


def _address(value: object, what: str) -> str:
    text = _text(value, what, 64)
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        raise ValueError(f"{what}: {_shown(text)} is not an IP address") from None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return str(address)


def _network(value: object, what: str) -> str:
    text = _text(value, what, 64)
    try:
        network = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise ValueError(f"{what}: {_shown(text)} is not an IP network (10.0.0.0/8, 2001:db8::/32)") from None
    mapped = ipaddress.ip_network("::ffff:0:0/96")
    if isinstance(network, ipaddress.IPv6Network) and network.prefixlen >= 96 and network.subnet_of(mapped):
        address = network.network_address.ipv4_mapped
        assert address is not None
        return f"{address}/{network.prefixlen - 96}"  # an IPv4-mapped network is the IPv4 network
    return str(network)


def _time(value: object, what: str) -> float:
    """Epoch seconds of a time bound: a number (epoch seconds), an aware datetime or ISO text."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"{what}: a time needs a zone (an aware datetime)")
        return value.timestamp()
    if isinstance(value, str):
        text = _text(value, what, 64)
        try:
            moment = parse_iso(text.strip())
        except ValueError:
            raise ValueError(f"{what}: {_shown(text)} is not an ISO 8601 time") from None
        if moment.tzinfo is None:
            raise ValueError(f"{what}: {_shown(text)} has no zone (add Z or +07:00)")
        return moment.timestamp()
    return float(_number(value, what, integral=False))


def _scalar(kind: str, field_name: str, value: object) -> Any:
    what = f"{field_name}"
    if kind == "number":
        catalog_type = default_catalog().field_types.get(field_name)
        return _number(value, what, integral=catalog_type == "long")
    if kind == "ip":
        return _address(value, what)
    return _text(value, what)


@dataclass(frozen=True, slots=True)
class FieldFilter:
    """One condition on one field: ``op`` is one of :data:`OPS` (see the module docstring).

    ``value``: a scalar for ``equals``/``not_equals``/``prefix``, a list for ``in``, a network
    for ``cidr``, ``(gte, lt)`` (or ``{"gte": .., "lt": ..}``) for ``range``, ``True``/``False``
    for ``exists``. Checked and put in canonical form when made: the stores read
    :attr:`value` as checked (texts, numbers, canonical addresses and networks, epoch seconds
    for time ranges) and :attr:`kind` (:func:`field_kind`)."""

    field: str
    op: str
    value: Any = None
    kind: str = field(init=False, default="", compare=False)

    def __post_init__(self) -> None:
        kind = field_kind(self.field)
        if self.op not in OPS:
            raise ValueError(f"operator {_shown(self.op)}: use one of {', '.join(OPS)}")
        if self.op not in _OPS_BY_KIND[kind]:
            allowed = ", ".join(o for o in OPS if o in _OPS_BY_KIND[kind])
            raise ValueError(f"{self.field} is a{'n' if kind[0] in 'aeiu' else ''} {kind} field: "
                             f"{self.op} does not apply (use {allowed})")
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "value", self._checked(kind))

    def _checked(self, kind: str) -> Any:
        op, value, name = self.op, self.value, self.field
        if op in ("equals", "not_equals"):
            return _scalar(kind, name, value)
        if op == "in":
            if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
                raise ValueError(f"{name} in: expected a list of values, not {type(value).__name__}")
            values = list(value)
            if not values or len(values) > MAX_IN_VALUES:
                raise ValueError(f"{name} in: between 1 and {MAX_IN_VALUES} values, not {len(values)}")
            return tuple(dict.fromkeys(_scalar(kind, name, v) for v in values))
        if op == "prefix":
            text = _text(value, f"{name} prefix", MAX_PREFIX_LENGTH)
            if not text:
                raise ValueError(f"{name} prefix: empty (use exists)")
            return text
        if op == "exists":
            if value is None:
                return True
            if not isinstance(value, bool):
                raise ValueError(f"{name} exists: true or false, not {_shown(value)}")
            return value
        if op == "cidr":
            return _network(value, f"{name} cidr")
        return self._range(kind)

    def _range(self, kind: str) -> tuple[Any, Any]:
        value, name = self.value, self.field
        if isinstance(value, Mapping):
            if set(value) - {"gte", "lt"}:
                raise ValueError(f"{name} range: only gte and lt, not {', '.join(map(str, set(value) - {'gte', 'lt'}))}")
            bounds = (value.get("gte"), value.get("lt"))
        elif isinstance(value, (tuple, list)) and len(value) == 2:
            bounds = (value[0], value[1])
        else:
            raise ValueError(f"{name} range: expected (gte, lt) or {{'gte': .., 'lt': ..}}")
        if bounds == (None, None):
            raise ValueError(f"{name} range: give gte, lt or both")
        if kind == "number":  # fractional bounds on whole-number fields are fine: both stores compare
            gte, lt = (None if b is None else _number(b, f"{name} range", integral=False) for b in bounds)
        else:
            gte, lt = (None if b is None else _time(b, f"{name} range") for b in bounds)
        return gte, lt


def _filters(items: Iterable[Any] | None) -> tuple[FieldFilter, ...]:
    if items is None:
        return ()
    if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Iterable):
        raise ValueError("filters: a list of (field, op, value) or FieldFilter")
    out = []
    for item in items:
        if isinstance(item, FieldFilter):
            out.append(item)
        elif isinstance(item, (tuple, list)) and len(item) in (2, 3):
            out.append(FieldFilter(*item))
        else:
            raise ValueError(f"filter {_shown(item)}: expected (field, op, value) or a FieldFilter")
        if len(out) > MAX_FILTERS:
            raise ValueError(f"at most {MAX_FILTERS} filters")
    if sum(len(f.value) for f in out if f.op == "in") > MAX_IN_VALUES:
        raise ValueError(f"at most {MAX_IN_VALUES} values over all in filters")
    return tuple(out)


def _agencies(agencies: Collection[str] | None, what: str = "agencies") -> frozenset[str] | None:
    if agencies is None:
        return None
    if isinstance(agencies, (str, bytes, Mapping)) or not isinstance(agencies, Iterable):
        raise ValueError(f"{what}: a collection of agency ids, not {type(agencies).__name__}")
    out = set()
    for agency in agencies:
        if not isinstance(agency, str):
            raise ValueError(f"{what}: an agency id is text, not {type(agency).__name__}")
        out.add(_text(agency, f"{what}: agency id", MAX_FIELD_LENGTH))
    return frozenset(out)


@dataclass(frozen=True, slots=True)
class EventQuery:
    """What to search (see the module docstring).

    ``filters``: :class:`FieldFilter` or ``(field, op, value)`` tuples, all must hold;
    ``text``: free text in ``message``/``event.original``; ``start``/``end``: ``[start, end)``
    on ``time_field`` (``@timestamp`` or ``event.ingested``; epoch seconds or aware datetimes);
    ``agencies``: only events whose ``organization.id`` is one of them (``None``: any; empty:
    none); ``order``: ``desc`` (newest first) or ``asc``; ``size``: events per page (1 to
    :data:`MAX_PAGE_SIZE`); ``cursor``: where the previous page ended (:attr:`EventPage.cursor`).
    Invalid input raises :class:`ValueError` here, before any store sees it."""

    filters: tuple[FieldFilter, ...] = ()
    text: str | None = None
    start: float | None = None
    end: float | None = None
    time_field: str = "@timestamp"
    agencies: frozenset[str] | None = None
    order: str = "desc"
    size: int = 100
    cursor: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "filters", _filters(self.filters))
        text = None if self.text is None else _text(self.text, "free text", MAX_TEXT_LENGTH)
        object.__setattr__(self, "text", text or None)
        for name in ("start", "end"):
            value = getattr(self, name)
            object.__setattr__(self, name, None if value is None else _time(value, name))
        if self.time_field not in TIME_FIELDS:
            raise ValueError(f"time_field {_shown(self.time_field)}: use {' or '.join(TIME_FIELDS)}")
        object.__setattr__(self, "agencies", _agencies(self.agencies))
        if self.order not in ("desc", "asc"):
            raise ValueError(f"order {_shown(self.order)}: use desc or asc")
        if isinstance(self.size, bool) or not isinstance(self.size, int) or not 1 <= self.size <= MAX_PAGE_SIZE:
            raise ValueError(f"size {_shown(self.size)}: a page holds 1 to {MAX_PAGE_SIZE} events")
        if self.cursor == "":
            object.__setattr__(self, "cursor", None)
        elif self.cursor is not None and (not isinstance(self.cursor, str) or len(self.cursor) > MAX_CURSOR_LENGTH):
            raise ValueError("invalid cursor: use the cursor of the previous page as it was given")


@dataclass(frozen=True, slots=True)
class EventPage:
    """One page of events in the query's order, the cursor of the next page (``None``: this is
    the last) and how many events match in all. ``total_exact`` is ``False`` when ``total`` is
    a lower bound (the search engine counts up to a bound; SQLite always counts exactly)."""

    events: list[Event]
    cursor: str | None
    total: int
    total_exact: bool = True


def query_agencies(query: EventQuery, agencies: Collection[str] | None) -> frozenset[str] | None:
    """The agency filter of a search: the query's own, narrowed by the ``agencies`` argument of
    the store method (the one :class:`~soc.store.scoped.ScopedStore` fills in)."""
    extra = _agencies(agencies)
    if extra is None:
        return query.agencies
    return extra if query.agencies is None else query.agencies & extra


def encode_cursor(dialect: str, sort_value: int | float, event_id: str, order: str) -> str:
    """The cursor after the event with this sort value and id (see the module docstring)."""
    raw = json.dumps([dialect, sort_value, event_id, order], separators=(",", ":"), ensure_ascii=True)
    return "c1." + base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, dialect: str, order: str) -> tuple[int | float, str]:
    """``(sort value, event id)`` of a cursor issued by :func:`encode_cursor` for this store
    dialect and order; anything else raises :class:`ValueError`."""
    bad = "invalid cursor: use the cursor of the previous page as it was given"
    if not isinstance(cursor, str) or not cursor.startswith("c1.") or len(cursor) > MAX_CURSOR_LENGTH:
        raise ValueError(bad)
    body = cursor[3:]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        data = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise ValueError(bad) from None
    if not (isinstance(data, list) and len(data) == 4 and isinstance(data[2], str) and data[3] in ("asc", "desc")
            and isinstance(data[1], (int, float)) and not isinstance(data[1], bool)
            and math.isfinite(data[1]) and abs(data[1]) < _SORT_LIMIT and 0 < len(data[2]) <= 512):
        raise ValueError(bad)
    if dialect == "dsl" and not isinstance(data[1], int):  # epoch milliseconds
        raise ValueError(bad)
    if data[0] != dialect:
        raise ValueError("invalid cursor: it was issued by another kind of store")
    if data[3] != order:
        raise ValueError(f"invalid cursor: it continues a search in {data[3]} order, not {order}")
    return data[1], data[2]


def interval_seconds(interval: str) -> int:
    """The length of a histogram interval (:data:`INTERVALS`)."""
    if not isinstance(interval, str) or interval not in INTERVALS:
        raise ValueError(f"interval {_shown(interval)}: use one of {', '.join(INTERVALS)}")
    return INTERVALS[interval]


def histogram_zone(zone: str | tzinfo) -> ZoneInfo:
    """The zone histogram buckets follow: an IANA name (``Asia/Ho_Chi_Minh``) or a ZoneInfo."""
    if isinstance(zone, ZoneInfo):
        return zone
    if not isinstance(zone, str) or len(zone) > 64:
        raise ValueError(f"zone {_shown(zone)}: an IANA time zone name such as Asia/Ho_Chi_Minh")
    try:
        return ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"zone {_shown(zone)}: not a known IANA time zone") from None


def top_field(name: str) -> str:
    """The kind of a field whose top values are asked for (not a time field)."""
    kind = field_kind(name)
    if kind in ("time", "date"):
        raise ValueError(f"{name} is a time field: use the histogram instead of top values")
    return kind
