"""Hostile input through every filter of event search, on SQLite and the real OpenSearch.

Each input -- SQL quotes and comments, Lucene and query-DSL syntax, JSON where text is
expected, overlong values, Unicode look-alikes, NUL, lone surrogates -- goes through every
operator, free text, the agency filter, field names, cursors, histogram intervals and zones,
and top values. The answer is always one of two: exactly the events the oracle says match (the
value is data, compared literally), or a :class:`ValueError` saying what is wrong -- and the
ValueError comes exactly when the input is invalid, never instead of an answer. Never a
``StoreError``, an SQL error or a search-engine error.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import math
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest

from soc.model import Event, parse_iso
from soc.store.base import EventQuery, FieldFilter, Store
from soc.store.event_query import (
    MAX_PREFIX_LENGTH,
    MAX_TEXT_LENGTH,
    MAX_VALUE_LENGTH,
    encode_cursor,
)
from tests.event_search_data import (
    STORE_KINDS,
    contains,
    expected,
    order,
    seed_events,
    seeded_store,
    text_of,
    top,
    values,
)

EVENTS = seed_events()

HOSTILE = [
    "' OR 1=1 --", "' OR ''='", '"; DROP TABLE events; --', "1; SELECT * FROM docs", "/* comment */", "`", "]",
    "a OR b", "*", "?", "field:value", "user.name:root", "(", ")", "\\", "\\\\", "~", "NOT root", "root^2",
    '{"$ne": 1}', '{"match_all": {}}', '{"query": {"match_all": {}}}', "$.foo", '$."user.name"',
    "%", "_", "%root%", "x" * 100_000, "y" * 5000, "é" * 3000,
    "ｒｏｏｔ", "rооt", "ROOT\u200b", "\u202eroot", "r\u0307oot", "a\x00b", "\x00", "\ud800", "\x1b[31mroot",
    "", " ", "\n", "NULL", "null", "true", "0", "-1", "1e309", "NaN", "10.0.0.5", "10.0.0.0/8", "::ffff:10.0.0.9",
    "2025-03-01T16:30:00Z", "2025-03-01T16:30:00", "root", "a OR b", "GET /login?q=' OR 1=1 -- HTTP/1.1",
]
HOSTILE_IDS = [repr(h)[:30] + (f"..{len(h)}" if len(h) > 30 else "") for h in HOSTILE]


@pytest.fixture(scope="module", params=STORE_KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def seeded(kind: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    yield from seeded_store(kind, request, tmp_path_factory.mktemp("hostile"))


# -- what is valid: small oracles of their own -------------------------------------------------------
def text_ok(value: str, limit: int = MAX_VALUE_LENGTH) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in value and len(value) <= limit


def ip_of(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        found = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    if isinstance(found, ipaddress.IPv6Address) and found.ipv4_mapped is not None:
        return found.ipv4_mapped
    return found


def in_v6(address: ipaddress.IPv4Address | ipaddress.IPv6Address,
          network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    """Containment as the search engine sees it: IPv4 as IPv4-mapped IPv6 on both sides."""
    def v6(a: ipaddress.IPv4Address | ipaddress.IPv6Address) -> int:
        return int(a) + (0xFFFF << 32 if a.version == 4 else 0)

    first = v6(network.network_address)
    return first <= v6(address) < first + network.num_addresses


def number_of(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and float(number).is_integer() else None


def time_of(value: str) -> float | None:
    try:
        moment = parse_iso(value)
    except ValueError:
        return None
    return moment.timestamp() if moment.tzinfo else None


def ids(store: Store, query: EventQuery) -> list[str]:
    page = store.search_events(query)
    assert page.cursor is None and page.total == len(page.events)
    return [e["_id"] for e in page.events]


def check(store: Store, valid: bool, make: Callable[[], EventQuery], oracle: Callable[[Event], bool]) -> None:
    """Valid input: exactly the oracle's events (and their histogram and top values add up).
    Invalid input: a ValueError, raised before any store sees the query."""
    if not valid:
        with pytest.raises(ValueError):
            make()
        return
    query = make()
    want = expected(EVENTS, oracle)
    assert ids(store, query) == want
    assert sum(n for _, n in store.event_histogram(query, "1d", zone="Asia/Ho_Chi_Minh")) == len(want)
    chosen = [e for e in EVENTS if oracle(e)]
    assert store.top_values(query, "user.name", 3) == top(chosen, "user.name", 3)


def q(*filters: tuple[str, str, Any], **options: Any) -> Callable[[], EventQuery]:
    return lambda: EventQuery(filters=list(filters), size=1000, **options)


def lowered_equals(field: str, value: str) -> Callable[[Event], bool]:
    return lambda e: any(text_of(v) == value.lower() for v in values(e, field))


def lowered_prefix(field: str, value: str) -> Callable[[Event], bool]:
    return lambda e: any(text_of(v).startswith(value.lower()) for v in values(e, field))


@pytest.mark.parametrize("h", HOSTILE, ids=HOSTILE_IDS)
def test_hostile_values_in_text_filters(seeded: Store, h: str) -> None:
    ok = text_ok(h)
    for field in ("user.name", "message", "custom.note", "kv.action", "tags"):
        check(seeded, ok, q((field, "equals", h)), lowered_equals(field, h))
        check(seeded, ok, q((field, "not_equals", h)), lambda e, f=field: not lowered_equals(f, h)(e))
        check(seeded, ok, q((field, "in", [h, "root"])),
              lambda e, f=field: lowered_equals(f, h)(e) or lowered_equals(f, "root")(e))
        check(seeded, ok and text_ok(h, MAX_PREFIX_LENGTH) and h != "", q((field, "prefix", h)),
              lowered_prefix(field, h))
    for field in ("organization.id", "event.dataset", "_id"):
        check(seeded, ok, q((field, "equals", h)), lambda e, f=field: e[f] == h)
        check(seeded, ok and text_ok(h, MAX_PREFIX_LENGTH) and h != "", q((field, "prefix", h)),
              lambda e, f=field: e[f].startswith(h))


@pytest.mark.parametrize("h", HOSTILE, ids=HOSTILE_IDS)
def test_hostile_free_text_and_agencies(seeded: Store, h: str) -> None:
    check(seeded, text_ok(h, MAX_TEXT_LENGTH), q(text=h), contains(h))
    check(seeded, text_ok(h, 256), q(agencies=[h]), lambda e: e["organization.id"] == h)
    check(seeded, text_ok(h, 256), q(agencies=[h, "so-a"]), lambda e: e["organization.id"] in (h, "so-a"))


@pytest.mark.parametrize("h", HOSTILE, ids=HOSTILE_IDS)
def test_hostile_values_in_typed_filters(seeded: Store, h: str) -> None:
    address = ip_of(h) if text_ok(h, 64) else None
    network = None
    if text_ok(h, 64):
        try:
            network = ipaddress.ip_network(h.strip(), strict=False)
        except ValueError:
            network = None
    check(seeded, address is not None, q(("source.ip", "equals", h)),
          lambda e: any(ip_of(str(v)) == address for v in values(e, "source.ip")))
    check(seeded, network is not None, q(("source.ip", "cidr", h)),
          lambda e: any((a := ip_of(str(v))) is not None and network is not None and in_v6(a, network)
                        for v in values(e, "source.ip")))
    number = number_of(h.strip()) if len(h) <= 40 else None
    check(seeded, number is not None, q(("http.response.status_code", "equals", h)),
          lambda e: e.get("http.response.status_code") == number)
    check(seeded, number is not None, q(("source.port", "range", (h, None))),
          lambda e: number is not None and "source.port" in e and e["source.port"] >= number)
    moment = time_of(h.strip()) if text_ok(h, 64) else None
    check(seeded, moment is not None, q(("@timestamp", "range", (None, h))),
          lambda e: moment is not None and parse_iso(e["@timestamp"]).timestamp() < moment)
    check(seeded, False, q(("user.name", "range", (h, None))), lambda e: False)
    check(seeded, False, q(("user.name", "cidr", h)), lambda e: False)


@pytest.mark.parametrize("h", HOSTILE, ids=HOSTILE_IDS)
def test_hostile_field_names_operators_and_options(seeded: Store, h: str) -> None:
    import re

    safe = bool(re.fullmatch(r"[A-Za-z0-9_@-]+(\.[A-Za-z0-9_@-]+)*", h)) and len(h) <= 256 \
        and (not h.startswith("_") or h == "_id")
    if h in ("null", "NULL", "true", "0", "-1", "NaN", "root", "1e309"):
        assert safe, h
    # an unknown but safe field name: nothing has it
    check(seeded, safe, q((h, "equals", "x")), lambda e: h == "_id" and e["_id"] == "x")
    check(seeded, safe, q((h, "exists", True)), lambda e: h == "_id")
    with pytest.raises(ValueError):
        FieldFilter("user.name", h, "root")
    with pytest.raises(ValueError):
        EventQuery(order=h)
    with pytest.raises(ValueError):
        EventQuery(time_field=h)
    with pytest.raises(ValueError):
        EventQuery(size=h)  # type: ignore[arg-type]
    if h:
        with pytest.raises(ValueError):
            seeded.search_events(EventQuery(cursor=h))
    with pytest.raises(ValueError):
        seeded.event_histogram(EventQuery(), h)
    with pytest.raises(ValueError):
        seeded.event_histogram(EventQuery(), "1h", zone=h)
    if safe and h != "_id":
        assert seeded.top_values(EventQuery(), h) == []
    elif not safe:
        with pytest.raises(ValueError):
            seeded.top_values(EventQuery(), h)


NOT_TEXT = [{"$ne": 1}, {"match_all": {}}, ["root"], None, float("nan"), float("inf"), object(), b"root"]


@pytest.mark.parametrize("value", NOT_TEXT, ids=[repr(v)[:20] for v in NOT_TEXT])
def test_values_of_the_wrong_type_are_refused(value: Any) -> None:
    for op in ("equals", "not_equals", "prefix"):
        with pytest.raises(ValueError):
            FieldFilter("user.name", op, value)
    with pytest.raises(ValueError):
        FieldFilter("user.name", "in", [value])
    with pytest.raises(ValueError):
        FieldFilter("http.response.status_code", "equals", value)
    with pytest.raises(ValueError):
        FieldFilter("source.port", "range", (value, None))
    if value is not None:  # exists=None means exists, text=None no free text
        with pytest.raises(ValueError):
            FieldFilter("tags", "exists", value)
        with pytest.raises(ValueError):
            EventQuery(text=value)
    with pytest.raises(ValueError):
        EventQuery(agencies=[value])


@pytest.mark.parametrize("options", [
    {"filters": "user.name=root"}, {"filters": [("user.name",)]}, {"filters": [{"user.name": "root"}]},
    {"filters": [("user.name", "equals", "x")] * 65}, {"filters": [("user.name", "in", ["a"] * 501)]},
    {"filters": [("user.name", "in", "root")]}, {"filters": [("user.name", "in", [])]},
    {"filters": [("source.port", "range", (None, None))]}, {"filters": [("source.port", "range", {"$gt": 1})]},
    {"filters": [("source.port", "range", (1, 2, 3))]}, {"filters": [("http.response.status_code", "equals", 1.5)]},
    {"filters": [("http.response.status_code", "equals", 2**64)]}, {"filters": [("@timestamp", "equals", "x")]},
    {"filters": [("soc.id", "equals", "x")]}, {"filters": [("user.name", "exists", "yes")]},
    {"agencies": "so-a"}, {"size": 0}, {"size": 1001}, {"size": True}, {"size": 1.5}, {"start": "yesterday"},
    {"start": datetime(2025, 1, 1)}, {"end": float("inf")}, {"time_field": "ts"},
], ids=lambda o: repr(o)[:40])
def test_malformed_queries_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        EventQuery(**options)


def forged(payload: Any) -> str:
    return "c1." + base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def test_forged_cursors(seeded: Store, kind: str) -> None:
    dialect = "sqlite" if kind == "sqlite" else "dsl"
    bad = ["c1.", "c1.!!!", "c2." + forged([dialect, 1, "x", "desc"])[3:], forged([dialect, "1", "x", "desc"]),
           forged([dialect, 1, "", "desc"]), forged([dialect, 1, "x" * 600, "desc"]), forged([dialect, 1e300, "x", "desc"]),
           forged([dialect, True, "x", "desc"]), forged([dialect, 1, 5, "desc"]), forged([dialect, 1, "x", "sideways"]),
           forged({"$ne": 1}), forged([dialect, 1, "x"]), "c1." + "A" * 5000, forged(["other", 1, "x", "desc"])]
    for cursor in bad:
        with pytest.raises(ValueError):
            seeded.search_events(EventQuery(cursor=cursor))
    # a well-formed cursor naming any position is just a position: the ids after it
    all_desc = order(EVENTS)
    middle = next(e for e in EVENTS if e["_id"] == all_desc[20])
    at = parse_iso(middle["@timestamp"]).timestamp()
    value = at if kind == "sqlite" else round(at * 1000)
    for event_id in (middle["_id"], "' OR 1=1 --", '{"match_all": {}}', "\u202e"):
        page = seeded.search_events(EventQuery(size=1000, cursor=encode_cursor(dialect, value, event_id, "desc")))
        got = [e["_id"] for e in page.events]
        assert got == [i for i in all_desc if (ts_of(i), i) < (middle["@timestamp"], event_id)]


def ts_of(event_id: str) -> str:
    return next(e["@timestamp"] for e in EVENTS if e["_id"] == event_id)


def test_the_store_is_unharmed(seeded: Store) -> None:
    """After all of the above the events are all there, unchanged."""
    assert seeded.search_events(EventQuery()).total == len(EVENTS)
    assert seeded.count_events() == {"": len(EVENTS)}


def test_the_largest_in_list(seeded: Store) -> None:
    wanted = [f"user-{i}" for i in range(497)] + ["ALICE", "đức", "' OR 1=1 --"]
    check(seeded, True, q(("user.name", "in", wanted)),
          lambda e: lowered_equals("user.name", "alice")(e) or lowered_equals("user.name", "Đức")(e))


@pytest.mark.parametrize("odd", [["user.name"], {"a": 1}, 5, None, ("x",)], ids=repr)
def test_odd_types_anywhere_are_a_value_error(seeded: Store, odd: Any) -> None:
    with pytest.raises(ValueError):
        FieldFilter(odd, "equals", "x")
    with pytest.raises(ValueError):
        seeded.event_histogram(EventQuery(), odd)
    with pytest.raises(ValueError):
        seeded.top_values(EventQuery(), odd)
    if not isinstance(odd, int):
        with pytest.raises(ValueError):
            seeded.top_values(EventQuery(), "user.name", odd)
    if odd is not None:
        with pytest.raises(ValueError):
            seeded.event_histogram(EventQuery(), "1h", zone=odd)
        with pytest.raises(ValueError):
            seeded.search_events(EventQuery(), agencies=odd if not isinstance(odd, (list, tuple)) else [odd])
        with pytest.raises(ValueError):
            EventQuery(cursor=odd)
