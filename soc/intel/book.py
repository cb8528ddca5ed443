"""The indicator store: one document per indicator (type and normal value) in the store's
``intel_indicators`` collection, on both stores through the document API.

**Dedup across feeds.** The id is :func:`soc.intel.indicators.indicator_id` of the type and
value, so the same address from the national centre and from a CERT is one document: ``sources``
lists the feeds, ``feeds`` holds what each feed said (its object id, confidence, TLP, validity,
revocation, first/last seen). The indicator as a whole takes the highest confidence, the most
restrictive TLP (TLP 2.0 order: clear < green < amber < amber+strict < red), the earliest
``valid_from`` and the latest ``valid_until`` (none if a feed gives none) of the feeds that
have not revoked it; it is ``revoked`` when every feed revoked it or an analyst did.

**Live** means: not revoked, matchable (a value, or a pattern that says "any of these values":
:mod:`soc.intel.patterns`), ``valid_from <= now < valid_until`` on the given clock. Expiry
needs no write: the matcher checks the validity of an indicator at match time.

**Changes** carry ``updated_at`` (the matcher reloads what changed since it last looked) and
``hunt_pending`` (the indicator is new or valid again and has not been searched over the stored
events yet: :mod:`soc.intel.hunting`). Writes are compare-and-set, retried on a lost race.

**Bulk.** :meth:`IndicatorBook.take` reads a feed page's stored indicators with one query per
500 ids and writes the page with one ``put_documents`` (create-only for new indicators,
compare-and-set for the others): a few requests per 5,000 indicators instead of one each. The
writes that lose a race are merged again one by one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from soc.clock import Clock, system_clock
from soc.errors import SocError
from soc.intel.indicators import TLP_LEVELS, IndicatorError, Observable, indicator_id, normalize
from soc.intel.patterns import parse_pattern
from soc.model import iso, parse_iso
from soc.store.base import Conflict, Doc, DocQuery, DocWrite, Store

__all__ = ["INDICATORS", "IndicatorBook", "IntelError", "Item", "is_live"]

log = logging.getLogger(__name__)
INDICATORS = "intel_indicators"
MANUAL = "manual"
_RETRIES = 8
_PAGE = 5000  # indicators merged with one bulk read and one bulk write


class IntelError(SocError):
    """An indicator operation that cannot be done (unknown indicator, invalid value)."""


@dataclass
class Item:
    """One indicator as a feed (or an analyst) gives it, before it is merged into the store.

    Either ``observable`` (a typed value) or ``pattern`` (a STIX pattern: parsed here; a pattern
    that cannot be matched value by value is kept as one unmatchable indicator)."""

    observable: Observable | None = None
    pattern: str | None = None
    ref: str | None = None  # the feed's id of the object (a STIX id, a MISP attribute uuid)
    confidence: int | None = None
    tlp: str | None = None
    valid_from: str | None = None
    valid_until: str | None = None
    revoked: bool = False
    name: str | None = None
    labels: list[str] = field(default_factory=list)


def _tlp_max(values: Iterable[str | None]) -> str | None:
    known = [v for v in values if v in TLP_LEVELS]
    return max(known, key=TLP_LEVELS.index) if known else None


def is_live(body: dict[str, Any], now: datetime) -> bool:
    """Whether an indicator document is live at ``now`` (see the module docstring)."""
    if body.get("revoked") or not body.get("matchable"):
        return False
    at = iso(now)
    return (body.get("valid_from") or "") <= at and (not body.get("valid_until") or at < body["valid_until"])


class IndicatorBook:
    """Indicators in a store: merge from feeds, add and revoke by hand, list, look up."""

    def __init__(self, store: Store, *, clock: Clock = system_clock, workers: int | None = None) -> None:
        """``workers`` is accepted for compatibility and unused: :meth:`take` reads and writes
        a feed page in bulk (one request each per few thousand indicators)."""
        self.store = store
        self.clock = clock
        self.workers = workers

    # -- writing -----------------------------------------------------------------------------
    def take(self, feed: str, items: Iterable[Item], *, confidence: int = 50, tlp: str = "amber",
             valid_days: float | None = None) -> dict[str, int]:
        """Merge a feed's items into the store. Returns counts: ``new``, ``updated``,
        ``unchanged``, ``unmatchable``, ``invalid``."""
        counts = {"new": 0, "updated": 0, "unchanged": 0, "unmatchable": 0, "invalid": 0}
        now = self.clock()
        work: list[tuple[Observable, dict[str, Any]]] = []
        for item in items:
            try:
                entries = self._entries(feed, item, now, confidence, tlp, valid_days)
            except IndicatorError as error:
                log.info("feed %s: %s", feed, error)
                counts["invalid"] += 1
                continue
            for observable, entry in entries:
                if observable.type == "pattern":
                    counts["unmatchable"] += 1
                work.append((observable, entry))
        outcomes: list[str] = []
        for start in range(0, len(work), _PAGE):
            outcomes += self._merge_page(work[start:start + _PAGE], now)
        for outcome in outcomes:
            counts[outcome] += 1
        return counts

    def add(self, type_: str, value: str, *, actor: str, confidence: int = 80, tlp: str = "amber",
            valid_until: str | None = None, note: str | None = None) -> dict[str, Any]:
        """An indicator added by an analyst (feed ``manual``); returns the document body."""
        observable = normalize(type_, value)
        item = Item(observable, confidence=confidence, tlp=tlp, valid_until=valid_until,
                    name=note, labels=[f"added-by:{actor}"])
        self.take(MANUAL, [item], confidence=confidence, tlp=tlp)
        doc = self.get(indicator_id(observable.type, observable.value))
        assert doc is not None
        return doc.body

    def revoke(self, id_or_value: str, *, actor: str, reason: str | None = None) -> dict[str, Any]:
        """Revoke an indicator for every feed (an analyst's decision: it stays revoked even if a
        feed sends it again, until :meth:`restore`)."""
        return self._change(id_or_value, lambda body: body.update(
            revoked=True, revoked_by=actor, revoked_reason=reason, revoked_at=iso(self.clock())))

    def restore(self, id_or_value: str, *, actor: str) -> dict[str, Any]:
        """Undo an analyst's revocation (feeds' own revocations stay)."""
        def undo(body: dict[str, Any]) -> None:
            body.update(revoked_by=None, revoked_reason=None, revoked_at=None, restored_by=actor)
            _summarize(body)
            if not body["revoked"]:
                body["hunt_pending"] = True
        return self._change(id_or_value, undo)

    def mark_hunted(self, id_: str, at: datetime, *, found: int) -> None:
        def done(body: dict[str, Any]) -> None:
            body.update(hunt_pending=False, hunted_at=iso(at), hunt_found=found)
        self._change(id_, done, touch=False)

    def _change(self, id_or_value: str, change: Any, *, touch: bool = True) -> dict[str, Any]:
        for _ in range(_RETRIES):
            doc = self.find_one(id_or_value)
            if doc is None:
                raise IntelError(f"no indicator {id_or_value!r}")
            body = dict(doc.body)
            change(body)
            if touch:
                body["updated_at"] = iso(self.clock())
            try:
                self.store.put(INDICATORS, doc.id, body, expected_version=doc.version)
                return body
            except Conflict:
                continue
        raise IntelError(f"indicator {id_or_value!r}: changed by others too often, try again")

    def _entries(self, feed: str, item: Item, now: datetime, confidence: int, tlp: str,
                 valid_days: float | None) -> list[tuple[Observable, dict[str, Any]]]:
        entry: dict[str, Any] = {
            "feed": feed, "ref": item.ref, "confidence": item.confidence if item.confidence is not None else confidence,
            "tlp": item.tlp if item.tlp in TLP_LEVELS else tlp, "valid_from": _when(item.valid_from),
            "valid_until": _when(item.valid_until), "revoked": bool(item.revoked), "last_seen": iso(now),
            "name": item.name, "labels": list(item.labels)[:20],
        }
        if entry["valid_until"] is None and valid_days:
            entry["valid_until"] = iso(now + timedelta(days=valid_days))
        if item.observable is not None:
            return [(item.observable, entry)]
        if not item.pattern:
            raise IndicatorError("an item without value or pattern")
        parsed = parse_pattern(item.pattern)
        if not parsed.matchable:
            return [(Observable("pattern", item.pattern), dict(entry, unmatchable=parsed.unmatchable))]
        return [(o, dict(entry, pattern=item.pattern)) for o in parsed.observables]

    def _known(self, work: list[tuple[Observable, dict[str, Any]]]) -> dict[str, Doc | None]:
        """The stored documents of the work's indicators, 500 ids per query (None: not stored):
        one read per page of a feed instead of one per indicator."""
        ids = list(dict.fromkeys(indicator_id(o.type, o.value) for o, _ in work))
        known: dict[str, Doc | None] = dict.fromkeys(ids)
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            page = self.store.query_documents(DocQuery(INDICATORS, filters=[("id", "in", chunk)], size=500,
                                                       track_total=0))
            known.update({d.id: d for d in page.docs})
        return known

    def _merge_page(self, work: list[tuple[Observable, dict[str, Any]]], now: datetime) -> list[str]:
        """Merge a page of a feed: the stored indicators read in bulk, every item merged in
        memory (in order: two items of one value merge as two single merges would), one bulk
        write of compare-and-sets (create-only for new ones). A write that loses its race
        (another feed or process wrote the indicator since the read) is merged again on its own."""
        known = self._known(work)
        state: dict[str, tuple[int | None, dict[str, Any] | None]] = {
            id_: (doc.version, doc.body) if doc is not None else (None, None) for id_, doc in known.items()}
        outcomes: list[str] = []
        items_of: dict[str, list[int]] = {}
        changed: dict[str, dict[str, Any]] = {}
        for i, (observable, entry) in enumerate(work):
            id_ = indicator_id(observable.type, observable.value)
            version, body = state[id_]
            outcome, merged = _merged(observable, entry, body, now)
            outcomes.append(outcome)
            items_of.setdefault(id_, []).append(i)
            if merged is not None:
                state[id_] = (version, merged)
                changed[id_] = merged
        writes = [DocWrite(id_, body, expected_version=state[id_][0] or 0) for id_, body in changed.items()]
        results = self.store.put_documents(INDICATORS, writes) if writes else []
        for write, result in zip(writes, results, strict=True):
            if isinstance(result, int):
                continue
            if not isinstance(result, Conflict):
                log.info("indicator %s: bulk write failed (%s); writing it on its own", write.id, result)
            for i in items_of[write.id]:  # again, one by one, from what is stored now
                outcomes[i] = self._merge(*work[i], now)
        return outcomes

    def _merge(self, observable: Observable, entry: dict[str, Any], now: datetime) -> str:
        """One item merged on its own: read, merge, compare-and-set, retried on a lost race."""
        id_ = indicator_id(observable.type, observable.value)
        for _ in range(_RETRIES):
            doc = self.store.get(INDICATORS, id_)
            outcome, body = _merged(observable, entry, doc.body if doc is not None else None, now)
            if body is None:
                return outcome
            try:
                self.store.put(INDICATORS, id_, body, expected_version=doc.version if doc is not None else 0)
            except Conflict:
                continue
            return outcome
        raise IntelError(f"indicator {observable.value!r}: changed by others too often")

    # -- reading -----------------------------------------------------------------------------
    def get(self, id_: str) -> Doc | None:
        return self.store.get(INDICATORS, id_)

    def find_one(self, id_or_value: str) -> Doc | None:
        """By id, or by value (its type guessed; an address, domain, URL, hash or e-mail)."""
        doc = self.store.get(INDICATORS, id_or_value)
        if doc is not None:
            return doc
        from soc.intel.indicators import guess_type
        try:
            observable = guess_type(id_or_value)
        except IndicatorError:
            return None
        return self.store.get(INDICATORS, indicator_id(observable.type, observable.value))

    def iter_all(self) -> Iterator[Doc]:
        return self.store.iter_all(INDICATORS)

    def changed_since(self, since: str | None, *, page: int = 1000) -> Iterator[Doc]:
        """Indicators written at or after ``since`` (ISO text; None: all), oldest change first."""
        filters = [("updated_at", "range", (since, None))] if since else []
        cursor = None
        while True:
            result = self.store.query_documents(DocQuery(INDICATORS, filters=filters, sort=("updated_at",),
                                                         size=page, cursor=cursor, track_total=0))
            yield from result.docs
            cursor = result.cursor
            if not cursor:
                return

    def search_all(self, *, feed: str | None = None, cidr: bool | None = None) -> Iterator[Doc]:
        """Every indicator (of ``feed``; only networks or no networks with ``cidr``), in pages."""
        filters: list[tuple[str, str, Any]] = []
        if feed:
            filters.append(("sources", "equals", feed))
        if cidr is not None:
            filters.append(("cidr", "equals", cidr))
        cursor = None
        while True:
            result = self.store.query_documents(DocQuery(INDICATORS, filters=filters, size=1000, cursor=cursor,
                                                         track_total=0))
            yield from result.docs
            cursor = result.cursor
            if not cursor:
                return

    def hunt_pending(self, *, limit: int = 1000) -> list[Doc]:
        return self.store.find(INDICATORS, {"hunt_pending": True}, limit=limit)

    def search(self, *, type_: str | None = None, feed: str | None = None, live: bool | None = None,
               text: str | None = None, size: int = 100, cursor: str | None = None) -> tuple[list[Doc], str | None, int]:
        """A page of indicators (newest change first) for the CLI and API."""
        filters: list[tuple[str, str, Any]] = []
        if type_:
            filters.append(("type", "equals", type_))
        if feed:
            filters.append(("sources", "equals", feed))
        if live is not None:
            filters.append(("revoked", "equals", not live))
        result = self.store.query_documents(DocQuery(INDICATORS, filters=filters, text=text or None,
                                                     text_fields=("value", "feeds.name") if text else (),
                                                     sort=("updated_at",), order="desc", size=size, cursor=cursor))
        docs = result.docs
        if live:
            now = self.clock()
            docs = [d for d in docs if is_live(d.body, now)]
        return docs, result.cursor, result.total


def _merged(observable: Observable, entry: dict[str, Any], stored: dict[str, Any] | None,
            now: datetime) -> tuple[str, dict[str, Any] | None]:
    """A feed's entry merged into the stored body (None: not stored yet): the outcome (``new``,
    ``updated``, ``unchanged``) and the body to write (None: nothing to write -- the same entry
    was seen this hour already)."""
    stamp = iso(now)
    if stored is None:
        body = {"type": observable.type, "value": observable.value, "cidr": observable.cidr,
                "first_seen": stamp, "feeds": [dict(entry, first_seen=stamp)]}
        _summarize(body)
        body.update(updated_at=stamp, hunt_pending=not body["revoked"] and body["matchable"])
        return "new", body
    body = dict(stored)
    was_live = is_live(body, now)
    feeds = [dict(f) for f in body.get("feeds") or []]
    old = next((f for f in feeds if f["feed"] == entry["feed"]), None)
    same = False
    if old is not None:
        same = all(old.get(k) == entry.get(k) for k in entry if k != "last_seen")
        if same and old.get("last_seen", "")[:13] == stamp[:13]:
            return "unchanged", None  # seen this hour already: no write
        feeds[feeds.index(old)] = dict(entry, first_seen=old.get("first_seen", stamp))
    else:
        feeds.append(dict(entry, first_seen=stamp))
    body["feeds"] = feeds
    _summarize(body)
    body["updated_at"] = stamp
    if is_live(body, now) and not was_live:
        body["hunt_pending"] = True
    return ("unchanged" if same else "updated"), body


def _when(text: str | None) -> str | None:
    if not text:
        return None
    try:
        return iso(parse_iso(str(text)))
    except ValueError:
        return None


def _summarize(body: dict[str, Any]) -> None:
    """The indicator's own fields from its feeds' entries (see the module docstring)."""
    feeds = body.get("feeds") or []
    standing = [f for f in feeds if not f.get("revoked")]
    basis = standing or feeds
    body["sources"] = sorted({f["feed"] for f in feeds})
    body["confidence"] = max((int(f.get("confidence") or 0) for f in basis), default=0)
    body["tlp"] = _tlp_max(f.get("tlp") for f in basis) or "amber"
    starts = [f.get("valid_from") for f in basis]
    body["valid_from"] = min((s for s in starts if s), default=None)
    ends = [f.get("valid_until") for f in basis]
    body["valid_until"] = None if any(e is None for e in ends) else max(ends, default=None)
    body["last_seen"] = max((f.get("last_seen") or "" for f in feeds), default=None)
    body["revoked"] = bool(body.get("revoked_by")) or not standing
    body["matchable"] = body.get("type") != "pattern"
    reasons = [f["unmatchable"] for f in feeds if f.get("unmatchable")]
    body["unmatchable"] = reasons[0] if reasons and body.get("type") == "pattern" else None
    patterns = [f["pattern"] for f in feeds if f.get("pattern")]
    body["pattern"] = patterns[0] if patterns else None
