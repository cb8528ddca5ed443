"""The in-memory indicator matcher: which live indicators an event's addresses, domains, URLs,
hashes and mail senders hit, in a few microseconds per event with a million indicators.

* **Exact values** (addresses, domains, URLs, hashes, e-mail addresses) are keys of one ``dict``
  (the values are in normal form: :mod:`soc.intel.indicators`); the entry is a small shared tuple
  ``(type, valid_from, valid_until)`` -- most indicators share one, so a million of them cost
  little more than their keys.
* **Networks** (CIDR indicators) are flattened into sorted, disjoint address intervals, one
  array per IP version, each interval holding every network that covers it; an address is
  found with one binary search (``bisect``) whatever the number of networks or prefix lengths.
  The intervals are rebuilt when networks change (at the next match).
* **Domains** also match their parents: an indicator ``evil.example`` hits
  ``cdn.evil.example`` (walked label by label, a dictionary look-up each).
* **Validity** is checked at match time against the time given (epoch seconds), so an
  indicator expires or becomes valid without a rebuild; a revoked one is removed.

:meth:`Matcher.match` reads the ECS fields of :data:`FIELDS` from a flat event (or a
:class:`~soc.store.base.Match`'s fields) and returns :class:`Hit` values.
"""

from __future__ import annotations

import socket
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from soc.intel.indicators import indicator_id

__all__ = ["FIELDS", "Hit", "Matcher"]

#: the event fields checked, by what they hold
IP_FIELDS = ("source.ip", "destination.ip", "client.ip", "server.ip", "host.ip", "related.ip")
DOMAIN_FIELDS = ("dns.question.name", "url.domain", "destination.domain", "source.domain", "client.domain",
                 "server.domain", "related.hosts")
URL_FIELDS = ("url.full", "url.original")
HASH_FIELDS = ("file.hash.md5", "file.hash.sha1", "file.hash.sha256", "process.hash.md5", "process.hash.sha1",
               "process.hash.sha256", "related.hash")
EMAIL_FIELDS = ("email.from.address", "email.sender.address", "email.reply_to.address")
FIELDS = IP_FIELDS + DOMAIN_FIELDS + URL_FIELDS + HASH_FIELDS + EMAIL_FIELDS

_Entry = tuple[str, float | None, float | None]  # (type, valid_from, valid_until) in epoch seconds
_V4, _V6 = socket.AF_INET, socket.AF_INET6


@dataclass(frozen=True, slots=True)
class Hit:
    """An event value that hit a live indicator."""

    field: str
    value: str  # as in the event
    type: str
    indicator: str  # the indicator's normal value (a network for CIDR indicators)

    @property
    def indicator_id(self) -> str:
        return indicator_id(self.type, self.indicator)


class _Networks:
    """CIDR networks of one IP version as disjoint sorted intervals (see the module docstring)."""

    def __init__(self, family: int) -> None:
        self.family = family
        self.bits = 32 if family == _V4 else 128
        self.nets: dict[tuple[int, int], tuple[str, _Entry]] = {}  # (first, last) -> (text, entry)
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.covers: list[tuple[tuple[str, _Entry], ...]] = []
        self.dirty = False

    def add(self, text: str, entry: _Entry) -> None:
        address, _, length = text.partition("/")
        first = int.from_bytes(socket.inet_pton(self.family, address), "big")
        size = 1 << (self.bits - int(length))
        first &= ~(size - 1)
        self.nets[(first, first + size - 1)] = (text, entry)
        self.dirty = True

    def remove(self, text: str) -> None:
        for key, (net, _) in list(self.nets.items()):
            if net == text:
                del self.nets[key]
                self.dirty = True

    def rebuild(self) -> None:
        opens: dict[int, list[tuple[int, int]]] = {}
        closes: dict[int, list[tuple[int, int]]] = {}
        for first, last in self.nets:
            opens.setdefault(first, []).append((first, last))
            closes.setdefault(last + 1, []).append((first, last))
        starts: list[int] = []
        ends: list[int] = []
        covers: list[tuple[tuple[str, _Entry], ...]] = []
        active: set[tuple[int, int]] = set()
        bounds = sorted(set(opens) | set(closes))
        for index, bound in enumerate(bounds):
            active.difference_update(closes.get(bound, ()))
            active.update(opens.get(bound, ()))
            if active and index + 1 < len(bounds):
                # most specific network first
                ordered = sorted(active, key=lambda n: n[1] - n[0])
                starts.append(bound)
                ends.append(bounds[index + 1] - 1)
                covers.append(tuple(self.nets[n] for n in ordered))
        self.starts, self.ends, self.covers, self.dirty = starts, ends, covers, False

    def find(self, number: int) -> tuple[tuple[str, _Entry], ...]:
        index = bisect_right(self.starts, number) - 1
        if index >= 0 and number <= self.ends[index]:
            return self.covers[index]
        return ()


class Matcher:
    """Live indicators in memory (see the module docstring). Not thread-safe for writes: one
    thread updates and matches (the matching cycle); readers of :attr:`size` are fine."""

    def __init__(self) -> None:
        self.exact: dict[str, _Entry] = {}
        self._nets = {4: _Networks(_V4), 6: _Networks(_V6)}
        self._shared: dict[_Entry, _Entry] = {}

    # -- building ----------------------------------------------------------------------------
    def add(self, type_: str, value: str, *, cidr: bool = False, valid_from: float | None = None,
            valid_until: float | None = None) -> None:
        """Add (or replace) a live indicator; values in normal form."""
        entry = (type_, valid_from, valid_until)
        entry = self._shared.setdefault(entry, entry) if valid_from is None and valid_until is None else entry
        if cidr:
            self._nets[4 if type_ == "ipv4" else 6].add(value, entry)
        else:
            self.exact[value] = entry

    def remove(self, type_: str, value: str, *, cidr: bool = False) -> None:
        if cidr:
            self._nets[4 if type_ == "ipv4" else 6].remove(value)
        else:
            self.exact.pop(value, None)

    def load(self, docs: Iterable[Mapping[str, Any]]) -> int:
        """Add or remove each indicator document's value as it is live or not (revoked,
        unmatchable); validity is kept for match time. Returns how many are now held."""
        from soc.model import parse_iso

        def epoch(text: str | None) -> float | None:
            return parse_iso(text).timestamp() if text else None

        for body in docs:
            type_, value, cidr = body.get("type"), body.get("value"), bool(body.get("cidr"))
            if not isinstance(type_, str) or not isinstance(value, str):
                continue
            if body.get("revoked") or not body.get("matchable"):
                self.remove(type_, value, cidr=cidr)
            else:
                self.add(type_, value, cidr=cidr, valid_from=epoch(body.get("valid_from")),
                         valid_until=epoch(body.get("valid_until")))
        return self.size

    @property
    def size(self) -> int:
        return len(self.exact) + sum(len(n.nets) for n in self._nets.values())

    # -- matching ----------------------------------------------------------------------------
    def match(self, event: Mapping[str, Any], now: float) -> list[Hit]:
        """The live indicators ``event`` hits at ``now`` (epoch seconds), at most one hit per
        field value and indicator."""
        hits: list[Hit] = []
        exact = self.exact
        get = event.get
        for name in IP_FIELDS:
            value = get(name)
            if value is None:
                continue
            for item in (value if isinstance(value, list) else (value,)):
                self._ip(name, item, now, hits)
        for name in DOMAIN_FIELDS:
            value = get(name)
            if value is None:
                continue
            for item in (value if isinstance(value, list) else (value,)):
                if not isinstance(item, str):
                    continue
                domain = item.lower().rstrip(".")
                while True:
                    entry = exact.get(domain)
                    if entry is not None and entry[0] == "domain" and _valid(entry, now):
                        hits.append(Hit(name, item, "domain", domain))
                        break
                    dot = domain.find(".")
                    if dot < 0:
                        break
                    domain = domain[dot + 1:]
        for name in URL_FIELDS:
            value = get(name)
            if isinstance(value, str):
                entry = exact.get(value)
                key = value
                if entry is None and "://" in value:
                    key = _fold_url(value)
                    entry = exact.get(key)
                if entry is not None and entry[0] == "url" and _valid(entry, now):
                    hits.append(Hit(name, value, "url", key))
        for name in HASH_FIELDS + EMAIL_FIELDS:
            value = get(name)
            if value is None:
                continue
            for item in (value if isinstance(value, list) else (value,)):
                if isinstance(item, str):
                    key = item.lower()
                    entry = exact.get(key)
                    if entry is not None and _valid(entry, now) and entry[0] not in ("ipv4", "ipv6", "domain", "url"):
                        hits.append(Hit(name, item, entry[0], key))
        return hits

    def _ip(self, name: str, item: Any, now: float, hits: list[Hit]) -> None:
        if not isinstance(item, str):
            return
        entry = self.exact.get(item)
        if entry is not None and entry[0] in ("ipv4", "ipv6") and _valid(entry, now):
            hits.append(Hit(name, item, entry[0], item))
        version = 6 if ":" in item else 4
        nets = self._nets[version]
        if not nets.nets:
            return
        if nets.dirty:
            nets.rebuild()
        try:
            number = int.from_bytes(socket.inet_pton(nets.family, item), "big")
        except OSError:
            return
        for text, cover in nets.find(number):
            if _valid(cover, now):
                hits.append(Hit(name, item, cover[0], text))

    def memory_bytes(self) -> int:
        """An estimate of the memory the matcher holds (keys, entries, tables, intervals)."""
        import sys
        total = sys.getsizeof(self.exact) + sum(sys.getsizeof(k) for k in self.exact)
        total += sum(sys.getsizeof(e) for e in {id(e): e for e in self.exact.values()}.values())
        for nets in self._nets.values():
            total += sys.getsizeof(nets.nets) + sum(sys.getsizeof(n[0]) + 100 for n in nets.nets.values())
            total += sys.getsizeof(nets.starts) + sys.getsizeof(nets.ends) + sys.getsizeof(nets.covers)
            total += sum(sys.getsizeof(s) for s in nets.starts) * 2 + sum(sys.getsizeof(c) for c in nets.covers)
        return total


def _valid(entry: _Entry, now: float) -> bool:
    start, end = entry[1], entry[2]
    return (start is None or start <= now) and (end is None or now < end)


def _fold_url(url: str) -> str:
    """The matcher's cheap version of :func:`soc.intel.indicators.normalize_url`: scheme and
    host lowered, default port and a lone ``/`` path dropped."""
    scheme, _, rest = url.partition("://")
    slash = rest.find("/")
    host, path = (rest, "") if slash < 0 else (rest[:slash], rest[slash:])
    scheme = scheme.lower()
    host = host.lower()
    if scheme == "http" and host.endswith(":80"):
        host = host[:-3]
    elif scheme == "https" and host.endswith(":443"):
        host = host[:-4]
    if path == "/":
        path = ""
    fragment = path.find("#")
    if fragment >= 0:
        path = path[:fragment]
    return f"{scheme}://{host}{path}"
