"""Indicator matching in the scheduled detection cycle, the retro-hunt, and sightings.

**The cycle** (:meth:`IntelMatching.run_once`) reads the events stored since its watermark on
ingest time (``event.ingested``, like the rules: :mod:`soc.detect.scheduler`) -- the window
``[watermark - overlap, now - settle)`` -- with only the fields the matcher reads, on either
store (:meth:`~soc.store.base.Store.find_matches` without a predicate), and checks each against
the in-memory :class:`~soc.intel.matcher.Matcher`, which it first brings up to date with the
indicators changed since it last looked. A window with more events than
``max_events_per_cycle`` is halved until it fits (the rest comes next cycle). The watermark is
saved with a compare-and-set (``intel_state``), so two processes never move it backwards;
re-reading the overlap never duplicates, because alerts are create-only by id.

**Alerts** carry the indicator (type, value, the event field and value that hit it), its feeds,
confidence and TLP; rule ``intel-indicator-match``. Their id is
:func:`soc.model.alert_id_for_events` of ``intel:<indicator id>`` and the event: one alert per
indicator and event, whoever finds it first -- the cycle or the retro-hunt.

**Retro-hunt** (:meth:`IntelMatching.hunt`): indicators that are new or valid again
(``hunt_pending``) and live are searched over the last ``retro_hunt_days`` of stored events
(event time) with field-value queries the store runs (``in`` of up to 500 values per field, a
``cidr`` query per network); the events found are checked by a matcher holding just those
indicators, and their alerts are marked ``retrospective``. A domain is hunted by equality (its
sub-domains are found by the live cycle, not by the hunt).

**Sightings**: with ``intel.sightings`` on, a match on an indicator from a feed with
``share_sightings`` queues a STIX 2.1 ``sighting`` of the feed's indicator object in
``intel_sightings`` (status ``queued``), for sending back to the feed's publisher.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from soc.clock import Clock, system_clock
from soc.detect.engine import ALERTS, ENTITY_FIELDS
from soc.intel.book import IndicatorBook, is_live
from soc.intel.matcher import (
    DOMAIN_FIELDS,
    EMAIL_FIELDS,
    FIELDS,
    HASH_FIELDS,
    IP_FIELDS,
    URL_FIELDS,
    Hit,
    Matcher,
)
from soc.model import alert_id_for_events, iso
from soc.store.base import Conflict, EventQuery, FieldFilter, Match, Store, StoreError, Window

__all__ = ["INTEL_RULE_ID", "INTEL_STATE", "SIGHTINGS", "IntelMatching"]

log = logging.getLogger(__name__)
INTEL_STATE = "intel_state"
SIGHTINGS = "intel_sightings"
INTEL_RULE_ID = "intel-indicator-match"
_STATE_ID = "matching"
#: the fields a retro-hunt searches, by indicator type
HUNT_FIELDS = {"ipv4": IP_FIELDS, "ipv6": IP_FIELDS, "domain": DOMAIN_FIELDS, "url": URL_FIELDS,
               "md5": HASH_FIELDS, "sha1": HASH_FIELDS, "sha256": HASH_FIELDS, "email": EMAIL_FIELDS}
MAX_HUNT_EVENTS = 10_000  # per query: an indicator that hits more is an indicator of little worth
_IN_BATCH = 500
_SIGHTING_NS = uuid.UUID("6f0b5a4e-3c1d-4f7a-9e2b-1a8c7d5e4f30")


def _level(confidence: int) -> str:
    return "high" if confidence >= 75 else "medium" if confidence >= 40 else "low"


class IntelMatching:
    """Matches stored events against the live indicators (see the module docstring)."""

    def __init__(self, store: Store, *, clock: Clock = system_clock, retro_hunt_days: int = 30,
                 max_events: int = 200_000, overlap: float = 120.0, settle: float = 5.0,
                 initial_lookback: float = 86400.0, sightings: bool = False,
                 share_feeds: Iterable[str] = (), enrich: Callable[[dict[str, Any]], None] | None = None,
                 on_alerts: Callable[[list[dict[str, Any]]], None] | None = None) -> None:
        """``enrich`` completes each alert before it is recorded (the affected system's priority);
        ``on_alerts`` is called with the alerts a cycle or a hunt recorded (the playbooks react)."""
        self.store = store
        self.clock = clock
        self.book = IndicatorBook(store, clock=clock)
        self.matcher = Matcher()
        self.retro_hunt_days = retro_hunt_days
        self.max_events = max_events
        self.overlap, self.settle, self.initial_lookback = overlap, settle, initial_lookback
        self.sightings = sightings
        self.share_feeds = set(share_feeds)
        self.enrich = enrich
        self.on_alerts = on_alerts
        self._since: str | None = None
        self._bodies: dict[str, dict[str, Any]] = {}

    # -- indicators --------------------------------------------------------------------------
    def refresh(self) -> int:
        """Bring the matcher up to date with the indicators changed since the last refresh (all
        of them the first time). Returns how many documents were read."""
        since = self._since
        if since is not None:  # writes of other processes may become visible a little late
            since = iso(datetime.fromisoformat(since.replace("Z", "+00:00")) - timedelta(seconds=self.overlap))
        read = 0
        newest = self._since
        for doc in self.book.changed_since(since):  # streamed: a first load of 1M is not held twice
            self.matcher.load((doc.body,))
            self._bodies.pop(doc.id, None)
            stamp = doc.body.get("updated_at")
            if stamp and (newest is None or stamp > newest):
                newest = stamp
            read += 1
        self._since = newest
        return read

    def _indicator(self, id_: str) -> dict[str, Any] | None:
        if id_ not in self._bodies:
            doc = self.book.get(id_)
            if doc is None:
                return None
            self._bodies[id_] = doc.body
        return self._bodies[id_]

    # -- the cycle ---------------------------------------------------------------------------
    def run_once(self) -> dict[str, Any]:
        """Match the events stored since the watermark; returns the cycle's figures."""
        started = time.perf_counter()
        self.refresh()
        now_dt = self.clock()
        now = now_dt.timestamp()
        doc = self.store.get(INTEL_STATE, _STATE_ID)
        state = dict(doc.body) if doc else {}
        watermark = state.get("watermark")
        start = (watermark if watermark is not None else now - self.initial_lookback) - self.overlap
        end = now - self.settle
        if watermark is not None and end <= watermark:
            return {"events": 0, "alerts": 0, "skipped": True,
                    "hunt": self.hunt() if self.retro_hunt_days else {}}
        matches = self._events(start, end)
        if len(matches) >= self.max_events:
            while len(matches) >= self.max_events and end - start > 1.0:
                end = start + (end - start) / 2
                matches = self._events(start, end)
        created = self._alerts(matches, now_dt, retrospective=False)
        figures = {"events": len(matches), "alerts": len(created), "window": [start, end],
                   "indicators": self.matcher.size, "duration": round(time.perf_counter() - started, 4)}
        state.update(watermark=max(end, watermark or 0), last_run=iso(now_dt), last_events=len(matches),
                     last_alerts=len(created), total_alerts=int(state.get("total_alerts", 0)) + len(created),
                     indicators=self.matcher.size, last_duration=figures["duration"])
        try:
            self.store.put(INTEL_STATE, _STATE_ID, state, expected_version=doc.version if doc else 0)
        except Conflict:
            log.info("intel matching: another process moved the watermark meanwhile; keeping theirs")
        figures["hunt"] = self.hunt() if self.retro_hunt_days else {}
        return figures

    def _events(self, start: float, end: float) -> list[Match]:
        fields = list(dict.fromkeys([*FIELDS, *ENTITY_FIELDS]))
        return self.store.find_matches(None, None, Window(start, end, "event.ingested"), fields, self.max_events)

    def _alerts(self, matches: Sequence[Match], now: datetime, *, retrospective: bool,
                matcher: Matcher | None = None) -> list[dict[str, Any]]:
        matcher = matcher or self.matcher
        at = now.timestamp()
        created: list[dict[str, Any]] = []
        candidates: list[dict[str, Any]] = []
        for match in matches:
            fields = match.fields
            for name in ("related.ip", "related.hosts", "related.hash"):
                value = fields.get(name)
                if isinstance(value, str) and value.startswith("["):  # a list, as SQLite's column gives it
                    fields = dict(fields, **{name: orjson.loads(value)})
            seen: set[str] = set()
            for hit in matcher.match(fields, at):
                if hit.indicator_id in seen:
                    continue
                seen.add(hit.indicator_id)
                alert = self._alert(match, hit, now, retrospective)
                if alert is not None:
                    candidates.append(alert)
        if self.store.dialect == "dsl" and len(candidates) > 20:
            # a search store answers each create over the network: several at once
            with ThreadPoolExecutor(max_workers=8, thread_name_prefix="soc-intel-alerts") as pool:
                fresh = list(pool.map(lambda a: self.store.create(ALERTS, a["id"], a), candidates))
        else:
            fresh = [self.store.create(ALERTS, a["id"], a) for a in candidates]
        for alert, new in zip(candidates, fresh, strict=True):
            if new:
                created.append(alert)
                self._sighting(alert, now)
        if created and self.on_alerts is not None:
            self.on_alerts(created)
        return created

    def _alert(self, match: Match, hit: Hit, now: datetime, retrospective: bool) -> dict[str, Any] | None:
        body = self._indicator(hit.indicator_id)
        if body is None or not is_live(body, now):
            return None  # revoked or expired since the matcher was loaded
        confidence = int(body.get("confidence") or 0)
        seen_at = iso(datetime.fromtimestamp(match.ts, UTC))
        alert: dict[str, Any] = {
            "id": alert_id_for_events(f"intel:{hit.indicator_id}", "1", [match.id]),
            "rule": {"id": INTEL_RULE_ID, "title": f"Threat-intel indicator: {hit.type} {hit.indicator}",
                     "level": _level(confidence), "author": ", ".join(body.get("sources") or []),
                     "tags": ["threat-intel", f"tlp:{body.get('tlp')}"], "version": "1", "status": "stable",
                     "description": "An event holds a value of a live threat-intel indicator.",
                     "references": [], "falsepositives": []},
            "detected_at": iso(now), "status": "new", "kind": "event", "@timestamp": seen_at,
            "first_seen": seen_at, "last_seen": seen_at, "agency": match.agency, "event_count": 1,
            "event_ids": [match.id], "group": {}, "group_key": "",
            "entities": {f: [v] for f in ENTITY_FIELDS if (v := match.fields.get(f)) not in (None, "")},
            "intel": {"indicator_id": hit.indicator_id, "type": hit.type, "value": hit.indicator,
                      "field": hit.field, "matched": hit.value, "sources": body.get("sources") or [],
                      "confidence": confidence, "tlp": body.get("tlp"),
                      "refs": [f["ref"] for f in body.get("feeds") or [] if f.get("ref")][:20]},
            "retrospective": retrospective,
        }
        if self.enrich is not None:
            self.enrich(alert)
        return alert

    def _sighting(self, alert: dict[str, Any], now: datetime) -> None:
        """Count the alert in the day's sighting of each shared feed's indicator object: one
        STIX ``sighting`` per indicator object and day (UTC), its ``count``, ``first_seen`` and
        ``last_seen`` growing with each alert; a sighting already sent goes back to the queue as
        a new version (a later ``modified``)."""
        if not self.sightings:
            return
        body = self._indicator(alert["intel"]["indicator_id"]) or {}
        stamp = iso(now)
        for feed in body.get("feeds") or []:
            ref = feed.get("ref")
            if feed.get("feed") not in self.share_feeds or not isinstance(ref, str) or not ref.startswith("indicator--"):
                continue
            sid = f"sighting--{uuid.uuid5(_SIGHTING_NS, f'{ref}|{stamp[:10]}')}"
            for _ in range(8):
                doc = self.store.get(SIGHTINGS, sid)
                if doc is None:
                    sighting = {"type": "sighting", "spec_version": "2.1", "id": sid, "created": stamp,
                                "modified": stamp, "sighting_of_ref": ref, "count": 1,
                                "first_seen": alert["first_seen"], "last_seen": alert["last_seen"]}
                    if self.store.create(SIGHTINGS, sid, {"status": "queued", "feed": feed["feed"], "queued_at": stamp,
                                                          "alert_ids": [alert["id"]], "sighting": sighting}):
                        break
                    continue
                entry = dict(doc.body)
                old = entry["sighting"]
                sighting = dict(old, count=int(old.get("count", 0)) + 1,
                                first_seen=min(old["first_seen"], alert["first_seen"]),
                                last_seen=max(old["last_seen"], alert["last_seen"]))
                if entry.get("status") != "queued":  # sent: a new version goes out
                    sighting["modified"] = max(stamp, old["modified"][:-1] + "1Z" if stamp <= old["modified"] else stamp)
                entry.update(sighting=sighting, status="queued", alert_ids=[*entry.get("alert_ids", [])[-99:], alert["id"]])
                try:
                    self.store.put(SIGHTINGS, sid, entry, expected_version=doc.version)
                    break
                except Conflict:
                    continue

    # -- retro-hunt --------------------------------------------------------------------------
    def hunt(self, *, days: int | None = None, ids: Sequence[str] | None = None) -> dict[str, int]:
        """Search the stored events of the last ``days`` (default: the setting) for the
        indicators waiting for a hunt (or those of ``ids``); returns figures."""
        now = self.clock()
        days = self.retro_hunt_days if days is None else days
        candidates = list(self.book.hunt_pending() if ids is None else filter(None, map(self.book.get, ids)))
        docs = [d for d in candidates if is_live(d.body, now)]
        for doc in candidates:  # revoked or expired while waiting: nothing to hunt, ever (valid later: kept)
            body = doc.body
            if ids is None and not is_live(body, now) and (
                    body.get("revoked") or not body.get("matchable")
                    or (body.get("valid_until") and body["valid_until"] <= iso(now))):
                self.book.mark_hunted(doc.id, now, found=0)
        if not docs:
            return {"indicators": 0, "events": 0, "alerts": 0}
        matcher = Matcher()
        matcher.load(d.body for d in docs)
        start = (now - timedelta(days=days)).timestamp()
        found: dict[str, Match] = {}
        for type_, fields in HUNT_FIELDS.items():
            bodies = [d.body for d in docs if d.body["type"] == type_]
            exact = [b["value"] for b in bodies if not b.get("cidr")]
            for name in fields:
                for i in range(0, len(exact), _IN_BATCH):
                    self._search(name, "in", exact[i:i + _IN_BATCH], start, now.timestamp(), found)
                for body in bodies:
                    if body.get("cidr"):
                        self._search(name, "cidr", body["value"], start, now.timestamp(), found)
        self._bodies.clear()
        created = self._alerts(list(found.values()), now, retrospective=True, matcher=matcher)
        hits_by_indicator: dict[str, int] = {}
        for alert in created:
            key = alert["intel"]["indicator_id"]
            hits_by_indicator[key] = hits_by_indicator.get(key, 0) + 1
        for doc in docs:
            try:
                self.book.mark_hunted(doc.id, now, found=hits_by_indicator.get(doc.id, 0))
            except Exception as error:  # noqa: BLE001 - the hunt itself is done; the mark is retried next time
                log.warning("indicator %s: could not mark as hunted: %s", doc.id, error)
        return {"indicators": len(docs), "events": len(found), "alerts": len(created)}

    def _search(self, name: str, op: str, value: Any, start: float, end: float, found: dict[str, Match]) -> None:
        try:
            query = EventQuery(filters=[FieldFilter(name, op, value)], start=start, end=end, order="asc", size=1000)
        except ValueError as error:
            log.debug("retro-hunt: %s %s skipped: %s", name, op, error)
            return
        read = 0
        while read < MAX_HUNT_EVENTS:
            try:
                page = self.store.search_events(query)
            except (StoreError, ValueError) as error:
                log.warning("retro-hunt on %s: %s", name, error)
                return
            for event in page.events:
                event_id = event.get("_id")
                if event_id and event_id not in found:
                    fields = {f: event.get(f) for f in (*FIELDS, *ENTITY_FIELDS) if event.get(f) is not None}
                    ts = datetime.fromisoformat(str(event["@timestamp"]).replace("Z", "+00:00")).timestamp()
                    found[event_id] = Match(event_id, ts, event.get("organization.id"), fields)
            read += len(page.events)
            if not page.cursor:
                return
            query = EventQuery(filters=query.filters, start=start, end=end, order="asc", size=1000, cursor=page.cursor)
