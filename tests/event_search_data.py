"""Seeded events for the event-search tests (``tests/test_event_search*.py``), the stores they
run on (SQLite and the real OpenSearch, same expectations) and an oracle: what a query should
return, computed in Python from the events themselves.

The events: two agencies, several hosts, users (one Vietnamese, mixed case), IPv4 and IPv6
addresses (one IPv4-mapped), status codes and ports, a list field (``tags``), a dynamic-prefix
field (``kv.action``), a field the catalogue does not list (``custom.note``), texts that look
like SQL or Lucene syntax, over two days with several events per second (ties for the keyset).
"""

from __future__ import annotations

import ipaddress
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from soc.catalog import default_catalog
from soc.model import Event, iso
from soc.store.base import EventQuery, Store
from soc.store.sqlite import SQLiteStore
from soc.text import fold
from tests.search_helpers import drop, open_search_store

T0 = datetime(2025, 3, 1, 16, 30, tzinfo=UTC)  # 23:30 in Asia/Ho_Chi_Minh: day buckets differ by zone
AGENCIES = ("so-a", "so-b")
HOSTS = ("web-01", "DB-01", "mail-01")
USERS = ("root", "Root", "alice", "Đức", "bob", "ĐỨC")
IPS = ("10.0.0.5", "10.0.1.7", "192.168.1.20", "2001:db8::1", "::ffff:10.0.0.9", "203.0.113.50")
SPECIAL_MESSAGES = (
    "GET /login?q=' OR 1=1 -- HTTP/1.1",
    "\"; DROP TABLE events; --",
    "a OR b",
    "wildcard x*y and what?",
    "path C:\\Windows\\System32 (cmd)",
    "user:root field:value",
    '{"$ne": 1}',
    "Đăng nhập thất bại cho người dùng Đức",
    "100% done_now",
)


def seed_events() -> list[Event]:
    """60 ordinary events and the special ones, in no particular order."""
    events: list[Event] = []
    for i in range(60):
        ts = T0 + timedelta(minutes=7 * (i // 3), seconds=(i % 3) // 2)  # pairs share a second
        event: Event = {
            "_id": f"e-{(i * 37) % 60:02d}-{i:02d}",
            "@timestamp": iso(ts),
            "event.dataset": "linux.sshd" if i % 4 else "web.access",
            "organization.id": AGENCIES[i % 2],
            "host.name": HOSTS[i % 3],
            "user.name": USERS[i % len(USERS)],
            "source.ip": IPS[i % len(IPS)],
            "source.port": 40000 + i,
            "http.response.status_code": (200, 404, 500, 503)[i % 4],
            "message": f"{'Failed' if i % 2 else 'Accepted'} password for {USERS[i % len(USERS)]} from "
                       f"{IPS[i % len(IPS)]} port {40000 + i}",
            "event.original": f"<38>sshd[{1000 + i}]: line {i}",
        }
        if i % 5 == 0:
            event["tags"] = ["SSH", "auth"] if i % 10 == 0 else ["web"]
        if i % 6 == 0:
            event["kv.action"] = "Blocked" if i % 12 == 0 else "allowed"
        if i % 7 == 0:
            event["custom.note"] = f"Note-{i % 3}"
        if i % 8 == 0:
            event["event.created"] = iso(ts - timedelta(seconds=30))
        events.append(event)
    for j, message in enumerate(SPECIAL_MESSAGES):
        events.append({"_id": f"s-{j:02d}", "@timestamp": iso(T0 + timedelta(hours=30, seconds=j)),
                       "event.dataset": "generic.text", "organization.id": AGENCIES[j % 2],
                       "host.name": "Web-01", "user.name": "eve", "message": message,
                       "event.original": message.upper()})
    # lists in fields SQLite keeps in columns, and a text that starts like a JSON list
    events.append({"_id": "l-00", "@timestamp": iso(T0 + timedelta(hours=31)), "event.dataset": "generic.text",
                   "organization.id": "so-a", "user.name": ["Alice", "Mallory"], "host.name": "[edge] gw",
                   "source.ip": ["10.9.0.1", "2001:db8::7"], "message": "list values"})
    events.append({"_id": "l-01", "@timestamp": iso(T0 + timedelta(hours=31)), "event.dataset": "generic.text",
                   "organization.id": "so-b", "user.name": [], "host.name": "[]", "message": "empty list"})
    return events


def open_sqlite(path: Path) -> SQLiteStore:
    return SQLiteStore(path, numeric_fields=default_catalog().numeric_fields)


#: the stores every test runs on (``params`` of a test module's ``kind`` fixture)
STORE_KINDS = ["sqlite", pytest.param("opensearch", marks=pytest.mark.search)]


def fresh_store(kind: str, request: pytest.FixtureRequest, tmp: Path) -> Iterator[Store]:
    """An empty store of ``kind`` (the OpenSearch one under a fresh prefix, dropped after)."""
    if kind == "sqlite":
        store: Store = open_sqlite(tmp / "soc.db")
        yield store
        store.close()
        return
    url = request.getfixturevalue("opensearch_url")
    search = open_search_store(url, f"t-evs-{uuid.uuid4().hex[:10]}")
    yield search
    drop(search)


def seeded_store(kind: str, request: pytest.FixtureRequest, tmp: Path) -> Iterator[Store]:
    """A store of ``kind`` holding :func:`seed_events`."""
    for store in fresh_store(kind, request, tmp):
        result = store.write_events(seed_events())
        assert (result.created, result.rejected, result.retryable) == (len(seed_events()), [], [])
        store.refresh()
        yield store


# -- the oracle -----------------------------------------------------------------------------------
def values(event: Event, field: str) -> list[Any]:
    value = event.get(field)
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def text_of(value: Any) -> str:
    return str(value).lower()


def address(value: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        found = ipaddress.ip_address(str(value))
    except ValueError:
        return None
    if isinstance(found, ipaddress.IPv6Address) and found.ipv4_mapped is not None:
        return found.ipv4_mapped
    return found


def order(events: list[Event], descending: bool = True) -> list[str]:
    """Ids in the stores' order: ``@timestamp`` then id."""
    keyed = sorted(events, key=lambda e: (e["@timestamp"], e["_id"]), reverse=descending)
    return [e["_id"] for e in keyed]


def expected(events: list[Event], test: Callable[[Event], bool], descending: bool = True) -> list[str]:
    return order([e for e in events if test(e)], descending)


def contains(text: str) -> Callable[[Event], bool]:
    """Free text as both stores search it: a substring, ignoring case and diacritics."""
    needle = fold(text)
    return lambda e: any(needle in fold(str(e.get(f) or "")) for f in ("message", "event.original"))


def equals(field: str, wanted: Any) -> Callable[[Event], bool]:
    return lambda e: any(text_of(v) == text_of(wanted) for v in values(e, field))


def all_ids(store: Store, query: EventQuery) -> list[str]:
    """Every id a query returns, following the cursor page by page."""
    out: list[str] = []
    cursor = None
    while True:
        page = store.search_events(EventQuery(**{**_fields(query), "cursor": cursor}))
        out.extend(e["_id"] for e in page.events)
        cursor = page.cursor
        if cursor is None:
            return out


def _fields(query: EventQuery) -> dict[str, Any]:
    return {name: getattr(query, name) for name in ("filters", "text", "start", "end", "time_field",
                                                    "agencies", "order", "size")}


def top(events: list[Event], field: str, size: int, key: Callable[[Any], Any] = text_of) -> list[tuple[Any, int]]:
    counts: Counter[Any] = Counter()
    for event in events:
        counts.update({key(v) for v in values(event, field)} - {None})
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:size]
