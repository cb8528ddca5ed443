"""Indicators from feeds matched against real stored events, on SQLite and on OpenSearch: the live
cycle raises alerts, a later indicator finds earlier events (retro-hunt, alerts marked
retrospective), revoked and expired indicators raise nothing new.

Events: loghub's OpenSSH_2k.log (real brute force from a few dozen addresses). Feeds: a MISP feed
folder and a plain list written in the test's folder, polled by the real poller.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from soc.config_intel import FeedSettings
from soc.detect.engine import ALERTS
from soc.hunt import ingest_files
from soc.intel import INTEL_RULE_ID, FeedPoller, IndicatorBook, IntelMatching, Item, normalize
from soc.model import iso
from soc.store.base import EventQuery, Store
from soc.store.sqlite import SQLiteStore
from tests.conftest import shared
from tests.search_helpers import drop, open_search_store

MISP_IP = "187.141.143.180"  # 80 brute-force lines in OpenSSH_2k
LIST_IP = "5.188.10.180"
LATER_IP = "103.99.0.122"
REVOKED_LATER = "183.62.140.253"
EVENT_UUID = "5f1c2e9a-8b3d-4c6e-9a7f-0d1e2f3a4b5c"


class Offset:
    """The real time plus an offset the test moves (events are stamped with the real ingest time)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


@pytest.fixture(params=["sqlite", pytest.param("opensearch", marks=pytest.mark.search)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        store: Any = SQLiteStore(tmp_path / "soc.db")
        yield store
        store.close()
    else:
        store = open_search_store(request.getfixturevalue("opensearch_url"), request.getfixturevalue("unique_name"))
        yield store
        drop(store)


def write_misp_feed(folder: Path) -> None:
    """A MISP feed as misp-feed servers publish it: manifest.json and one file per event."""
    folder.mkdir()
    event = {"Event": {
        "uuid": EVENT_UUID, "info": "SSH brute force campaign", "date": "2025-12-10", "timestamp": "1765400000",
        "Tag": [{"name": "tlp:green"}],
        "Attribute": [
            {"uuid": "a1", "type": "ip-src", "category": "Network activity", "to_ids": True, "value": MISP_IP,
             "timestamp": "1765400000"},
            {"uuid": "a2", "type": "ip-src", "category": "Network activity", "to_ids": False, "value": "10.9.9.9",
             "timestamp": "1765400000", "comment": "context only: not for detection"},
            {"uuid": "a3", "type": "domain|ip", "category": "Network activity", "to_ids": True,
             "value": "c2.brute.example|203.0.113.50", "timestamp": "1765400000"},
        ],
        "Object": [{"name": "file", "Attribute": [
            {"uuid": "a4", "type": "sha256", "to_ids": True, "timestamp": "1765400000",
             "value": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}]}],
    }}
    (folder / f"{EVENT_UUID}.json").write_text(json.dumps(event))
    manifest = {EVENT_UUID: {"info": "SSH brute force campaign", "timestamp": "1765400000",
                             "Tag": [{"name": "tlp:green"}], "Orgc": {"name": "CERT-EXAMPLE"}}}
    (folder / "manifest.json").write_text(json.dumps(manifest))


def events_with(store: Store, ip: str) -> set[str]:
    page = store.search_events(EventQuery(filters=[("source.ip", "equals", ip)], size=1000))
    return {e["_id"] for e in page.events}


def intel_alerts(store: Store) -> list[dict[str, Any]]:
    store.refresh()
    return [d.body for d in store.find(ALERTS, {"rule.id": INTEL_RULE_ID}, limit=10_000)]


def by_value(alerts: list[dict[str, Any]], value: str) -> list[dict[str, Any]]:
    return [a for a in alerts if a["intel"]["value"] == value]


def copy_event(store: Store, template_id: str, new_id: str, ip: str) -> dict[str, Any]:
    (event,) = store.get_events([template_id])
    event = {k: v for k, v in event.items() if k != "event.ingested"}
    event.update({"_id": new_id, "source.ip": ip})
    return event


def test_feeds_match_stored_events_live_and_retrospectively(store: Store, tmp_path: Path) -> None:
    ingest_files(store, [shared("loghub", "OpenSSH", "OpenSSH_2k.log")], fmt="auto", timezone="UTC",
                 agency="so-tttt", progress=False)  # type: ignore[arg-type]
    store.refresh()
    misp_events, list_events = events_with(store, MISP_IP), events_with(store, LIST_IP)
    assert len(misp_events) >= 80 and len(list_events) >= 20

    write_misp_feed(tmp_path / "misp")
    (tmp_path / "list.txt").write_text(f"# from the national centre, by e-mail\n{LIST_IP}\n{MISP_IP}\nbad.example\n")
    clock = Offset()
    poller = FeedPoller(store, [FeedSettings(name="cert-misp", kind="misp", path=tmp_path / "misp", confidence=60),
                               FeedSettings(name="ncsc-list", kind="list", path=tmp_path / "list.txt",
                                            confidence=90, tlp="amber")], clock=clock)
    statuses = poller.poll_all()
    assert statuses["cert-misp"]["last_error"] is None
    assert statuses["cert-misp"]["last_counts"]["new"] == 3  # to_ids only: the address, the domain, the hash
    assert statuses["ncsc-list"]["last_counts"] == {"new": 2, "updated": 1, "unchanged": 0, "unmatchable": 0,
                                                   "invalid": 0}
    store.refresh()
    book = IndicatorBook(store, clock=clock)
    shared_ip = book.find_one(MISP_IP)
    assert shared_ip is not None and shared_ip.body["sources"] == ["cert-misp", "ncsc-list"]  # one indicator
    assert shared_ip.body["confidence"] == 90 and shared_ip.body["tlp"] == "amber"  # highest, most restrictive

    matching = IntelMatching(store, clock=clock, retro_hunt_days=3650, overlap=0.0, settle=0.0)
    figures = matching.run_once()
    assert figures["alerts"] == len(misp_events) + len(list_events)
    alerts = intel_alerts(store)
    assert {a["event_ids"][0] for a in by_value(alerts, MISP_IP)} == misp_events
    assert {a["event_ids"][0] for a in by_value(alerts, LIST_IP)} == list_events
    first = by_value(alerts, MISP_IP)[0]
    assert first["retrospective"] is False and first["agency"] == "so-tttt"
    assert first["intel"]["sources"] == ["cert-misp", "ncsc-list"] and first["intel"]["tlp"] == "amber"
    assert first["intel"]["field"] == "source.ip" and first["rule"]["level"] == "high"
    # the hunt of the new indicators found the same events: the same alert ids, nothing twice
    assert figures["hunt"]["alerts"] == 0 and figures["hunt"]["indicators"] == 5
    assert matching.run_once()["alerts"] == 0  # a second cycle: nothing new

    # a later indicator finds the events stored before it arrived (retro-hunt)
    later_events = events_with(store, LATER_IP)
    assert later_events
    book.add("ip", LATER_IP, actor="lead", confidence=70, tlp="red")
    store.refresh()
    figures = matching.run_once()
    assert figures["events"] == 0  # nothing new stored: only the hunt can find them
    assert figures["hunt"] == {"indicators": 1, "events": len(later_events), "alerts": len(later_events)}
    later = by_value(intel_alerts(store), LATER_IP)
    assert {a["event_ids"][0] for a in later} == later_events
    assert all(a["retrospective"] is True and a["intel"]["tlp"] == "red" for a in later)
    doc = book.find_one(LATER_IP)
    assert doc is not None and doc.body["hunt_pending"] is False and doc.body["hunt_found"] == len(later_events)

    # revoked and expired indicators raise nothing new; a live one still does
    book.revoke(MISP_IP, actor="lead", reason="shared hosting, false positive")
    book.take("short-lived", [Item(normalize("ip", REVOKED_LATER), valid_until=iso(clock() + timedelta(hours=1)))])
    template = sorted(misp_events)[0]
    store.write_events([copy_event(store, template, "intel-test-revoked", MISP_IP),
                        copy_event(store, template, "intel-test-expired", REVOKED_LATER),
                        copy_event(store, template, "intel-test-live", LIST_IP)])
    store.refresh()
    before = len(intel_alerts(store))
    clock.offset = timedelta(hours=2)  # the short-lived indicator has expired
    figures = matching.run_once()
    assert figures["events"] == 3
    new = [a for a in intel_alerts(store) if a["event_ids"][0].startswith("intel-test-")]
    assert [(a["event_ids"][0], a["intel"]["value"]) for a in new] == [("intel-test-live", LIST_IP)]
    assert len(intel_alerts(store)) == before + 1
