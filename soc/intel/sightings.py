"""Sending queued sightings back to the feeds they are about.

:class:`~soc.intel.matching.IntelMatching` queues a STIX 2.1 ``sighting`` in ``intel_sightings``
(``status: queued``) for each alert on an indicator of a feed with ``share_sightings``. Here they
go out: for a TAXII feed, POSTed to the feed's collection (``taxii2-client``'s ``add_objects``,
through :class:`~soc.intel.taxii_client.PolicySession`: :mod:`soc.outgoing`'s rules and the feed's
token), at most ``batch`` per request. An entry is marked ``sent`` (with the server's status id)
or, after a failure, keeps ``queued`` with ``attempts`` and ``last_error`` (retried at the next
run) until ``max_attempts``, then ``failed``. Feeds of other kinds have no way back: their
sightings stay queued for an analyst to forward (``status`` stays visible in the store).
"""

from __future__ import annotations

import logging
from typing import Any

from taxii2client.common import _HTTPConnection
from taxii2client.v21 import Collection

from soc.clock import Clock, system_clock
from soc.config_intel import FeedSettings
from soc.intel.matching import SIGHTINGS
from soc.intel.taxii_client import PolicySession
from soc.model import iso
from soc.store.base import Conflict, Store

__all__ = ["send_sightings"]

log = logging.getLogger(__name__)


def send_sightings(store: Store, feeds: list[FeedSettings], *, clock: Clock = system_clock, batch: int = 100,
                   max_attempts: int = 8) -> dict[str, int]:
    """Send the queued sightings of the TAXII feeds; returns counts ``sent``, ``failed``, ``waiting``."""
    counts = {"sent": 0, "failed": 0, "waiting": 0}
    by_name = {f.name: f for f in feeds if f.kind == "taxii" and f.url}
    queued = store.find(SIGHTINGS, {"status": "queued"}, limit=10_000)
    for name in sorted({d.body.get("feed") for d in queued} & set(by_name)):
        feed = by_name[name]
        docs = [d for d in queued if d.body.get("feed") == name]
        for start in range(0, len(docs), batch):
            chunk = docs[start:start + batch]
            try:
                status = _post(feed, [d.body["sighting"] for d in chunk])
            except Exception as error:  # the server is down, the token refused: retried next time
                log.warning("feed %s: sending %d sightings failed: %s", name, len(chunk), error)
                for doc in chunk:
                    attempts = int(doc.body.get("attempts", 0)) + 1
                    gave_up = attempts >= max_attempts
                    _update(store, doc.id, doc.version, dict(doc.body, attempts=attempts,
                                                             last_error=f"{type(error).__name__}: {error}"[:500],
                                                             status="failed" if gave_up else "queued"))
                    counts["failed" if gave_up else "waiting"] += 1
                continue
            for doc in chunk:
                _update(store, doc.id, doc.version, dict(doc.body, status="sent", sent_at=iso(clock()),
                                                         taxii_status=status, last_error=None))
                counts["sent"] += 1
    return counts


def _post(feed: FeedSettings, objects: list[dict[str, Any]]) -> str | None:
    assert feed.url
    conn = _HTTPConnection(version="2.1")
    conn.session = PolicySession(allow_http=feed.allow_http, ca=feed.ca, timeout=feed.timeout_seconds,
                                 token=feed.token())
    collection = Collection(feed.url if feed.url.endswith("/") else feed.url + "/", conn=conn)
    status = collection.add_objects({"objects": objects}, wait_for_completion=False)
    return getattr(status, "id", None)


def _update(store: Store, id_: str, version: int, body: dict[str, Any]) -> None:
    try:
        store.put(SIGHTINGS, id_, body, expected_version=version)
    except Conflict:  # another process sent it meanwhile
        pass
