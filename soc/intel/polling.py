"""Polling the configured feeds (``intel.feeds``) into the indicator store, with per-feed status.

Each feed's status is a document in ``intel_feeds`` (id: the feed's name): last poll, last
success, last error, consecutive errors, objects read and indicators taken (last poll and in
all), and the feed's cursor (TAXII: the ``added_after`` date and the objects taken at it; MISP:
the newest event timestamp read). A failed poll keeps the cursor, so the next one asks again
for the same objects; the error is in the status, the other feeds still poll.

Files and folders are read from disk; URLs through :mod:`soc.outgoing` (https, verified TLS, no
redirects, bounded answers) with the feed's bearer token.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from soc.clock import Clock, system_clock
from soc.config_intel import FeedSettings
from soc.intel.book import IndicatorBook, IntelError, Item
from soc.intel.feeds import misp_items, read_csv, read_list, stix_items
from soc.intel.taxii_client import poll_collection
from soc.model import iso
from soc.outgoing import Destination, open_client, read_text
from soc.store.base import Conflict, Store

__all__ = ["FEEDS", "MAX_FEED_BYTES", "FeedPoller"]

log = logging.getLogger(__name__)
FEEDS = "intel_feeds"
MAX_FEED_BYTES = 256 * 1024 * 1024


class FeedPoller:
    """Polls feeds into an :class:`IndicatorBook` and records each feed's status."""

    def __init__(self, store: Store, feeds: list[FeedSettings], *, clock: Clock = system_clock) -> None:
        self.store = store
        self.feeds = {f.name: f for f in feeds}
        self.clock = clock
        self.book = IndicatorBook(store, clock=clock)

    def status(self, name: str) -> dict[str, Any]:
        doc = self.store.get(FEEDS, name)
        return dict(doc.body) if doc else {"name": name, "polls": 0}

    def statuses(self) -> list[dict[str, Any]]:
        """Every configured feed's status (also feeds never polled), then others recorded
        (``manual``, ``hand-list``)."""
        recorded = {d.id: d.body for d in self.store.iter_all(FEEDS)}
        out = []
        for name, feed in self.feeds.items():
            body = dict(recorded.pop(name, {"name": name, "polls": 0}))
            body.update(kind=feed.kind, interval_minutes=feed.interval_minutes, configured=True)
            body.pop("at_cursor", None)
            out.append(body)
        for _name, body in sorted(recorded.items()):
            body = dict(body, configured=False)
            body.pop("at_cursor", None)
            out.append(body)
        return out

    def poll_all(self) -> dict[str, dict[str, Any]]:
        return {name: self.poll(name) for name in self.feeds}

    def poll(self, name: str, *, when_due: bool = False) -> dict[str, Any]:
        """Poll one configured feed now; returns its new status (errors are recorded, not raised).
        ``when_due`` (the schedule): not when another process (``soc run`` and each ``soc detect``
        schedule the feeds) polled it less than 90% of its interval ago -- that status is returned."""
        feed = self.feeds.get(name)
        if feed is None:
            raise IntelError(f"no feed {name!r} in intel.feeds")
        doc = self.store.get(FEEDS, name)
        state = dict(doc.body) if doc else {"name": name, "polls": 0, "total_taken": 0}
        at = self.clock()
        if when_due and _polled_within(state, at, feed.interval_minutes * 60 * 0.9):
            return state
        started = time.monotonic()
        state.update(kind=feed.kind, last_poll=iso(at), polls=int(state.get("polls", 0)) + 1)
        try:
            items, read, cursor_changes = self._read(feed, state)
            counts = self.book.take(name, items, confidence=feed.confidence, tlp=feed.tlp, valid_days=feed.valid_days)
        except Exception as error:  # one broken feed never stops the others
            log.warning("feed %s: poll failed: %s", name, error)
            state.update(last_error=f"{type(error).__name__}: {error}"[:1000],
                         consecutive_errors=int(state.get("consecutive_errors", 0)) + 1,
                         last_duration=round(time.monotonic() - started, 3))
        else:
            taken = counts["new"] + counts["updated"]
            state.update(cursor_changes, last_ok=iso(at), last_error=None, consecutive_errors=0, last_read=read,
                         last_counts=counts, last_taken=taken, total_taken=int(state.get("total_taken", 0)) + taken,
                         last_duration=round(time.monotonic() - started, 3))
        self._save(name, state)
        return state

    def record(self, name: str, counts: dict[str, int], *, kind: str) -> None:
        """Record a load that was not a configured poll (the hand list, a file loaded by hand)."""
        doc = self.store.get(FEEDS, name)
        state = dict(doc.body) if doc else {"name": name, "polls": 0, "total_taken": 0}
        taken = counts.get("new", 0) + counts.get("updated", 0)
        at = iso(self.clock())
        state.update(kind=kind, last_poll=at, last_ok=at, last_error=None, polls=int(state.get("polls", 0)) + 1,
                     last_counts=counts, last_taken=taken, total_taken=int(state.get("total_taken", 0)) + taken)
        self._save(name, state)

    def _save(self, name: str, state: dict[str, Any]) -> None:
        for _ in range(5):
            doc = self.store.get(FEEDS, name)
            try:
                self.store.put(FEEDS, name, state, expected_version=doc.version if doc else 0)
                return
            except Conflict:  # another process polled meanwhile: last writer's status wins
                continue

    # -- reading feeds -----------------------------------------------------------------------
    def _read(self, feed: FeedSettings, state: dict[str, Any]) -> tuple[list[Item], int, dict[str, Any]]:
        if feed.kind == "taxii":
            assert feed.url
            poll = poll_collection(feed.url, cursor=state.get("cursor"), at_cursor=state.get("at_cursor"),
                                   token=feed.token(), allow_http=feed.allow_http, ca=feed.ca,
                                   timeout=feed.timeout_seconds, page_size=feed.page_size)
            return (list(stix_items(poll.objects)), len(poll.objects),
                    {"cursor": poll.cursor, "at_cursor": poll.at_cursor, "last_pages": poll.pages,
                     "last_repeated": poll.skipped})
        if feed.kind == "misp":
            items, cursor, events = misp_items(lambda file: self._text(feed, file), state.get("cursor"))
            return items, events, {"cursor": cursor}
        text = self._text(feed, None)
        if feed.kind == "list":
            items = list(read_list(text))
        elif feed.kind == "csv":
            items = list(read_csv(text, column=feed.column, type_column=feed.type_column))
        else:
            data = orjson.loads(text)
            items = list(stix_items(data.get("objects") or [] if isinstance(data, dict) else data))
        return items, len(items), {}

    def _text(self, feed: FeedSettings, file: str | None) -> str:
        """A feed file: ``file`` inside the feed's folder or URL, or the feed's own file/URL."""
        if feed.path is not None:
            path = Path(feed.path) / file if file else Path(feed.path)
            with path.open("rb") as handle:
                data = handle.read(MAX_FEED_BYTES + 1)
            if len(data) > MAX_FEED_BYTES:
                raise IntelError(f"{path}: larger than {MAX_FEED_BYTES} bytes")
            return data.decode("utf-8", "replace")
        assert feed.url
        url = feed.url.rstrip("/") + "/" + file if file else feed.url
        token = feed.token()
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        destination = Destination(url, ca=feed.ca, allow_http=feed.allow_http, http_setting="intel.feeds[].allow_http",
                                  read_timeout=feed.timeout_seconds)
        with open_client(destination) as client, client.stream("GET", url, headers=headers) as response:
            if response.status_code != 200:
                raise IntelError(f"{url}: HTTP {response.status_code}")
            return read_text(response, MAX_FEED_BYTES)


def _polled_within(state: dict[str, Any], at: datetime, seconds: float) -> bool:
    last = state.get("last_poll")
    if not isinstance(last, str):
        return False
    try:
        then = datetime.fromisoformat(last.replace("Z", "+00:00"))
    except ValueError:
        return False
    return timedelta(0) <= at - then < timedelta(seconds=seconds)
