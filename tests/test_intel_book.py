"""The indicator store on both stores: dedup across feeds, expiry, revocation (by a feed and by an
analyst), unmatchable patterns kept and reported, CSV and STIX bundle feeds, the hand list."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from soc.config_intel import FeedSettings, IntelSettings
from soc.intel import (
    HAND_LIST,
    FeedPoller,
    IndicatorBook,
    IntelMatching,
    Item,
    is_live,
    load_hand_list,
    normalize,
)
from soc.model import iso
from soc.store.base import Store
from soc.store.sqlite import SQLiteStore
from tests.conftest import ROOT
from tests.search_helpers import drop, open_search_store

NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


class Clock:
    def __init__(self, at: datetime) -> None:
        self.now = at

    def __call__(self) -> datetime:
        return self.now


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


def test_dedup_expiry_and_revocation(store: Store) -> None:
    clock = Clock(NOW)
    book = IndicatorBook(store, clock=clock)
    ip = normalize("ip", "198.51.100.7")
    assert book.take("national", [Item(ip, ref="indicator--1", confidence=60, tlp="green",
                                       valid_until=iso(NOW + timedelta(days=10)))])["new"] == 1
    assert book.take("cert", [Item(ip, confidence=90, tlp="amber+strict")])["updated"] == 1
    assert book.take("cert", [Item(ip, confidence=90, tlp="amber+strict")])["unchanged"] == 1
    store.refresh()
    doc = book.find_one("198.51.100.7")
    assert doc is not None
    body = doc.body
    assert body["sources"] == ["cert", "national"] and len(body["feeds"]) == 2
    assert body["confidence"] == 90 and body["tlp"] == "amber+strict"
    assert body["valid_until"] is None  # one feed gives no end: no end
    assert is_live(body, NOW) and body["hunt_pending"] is True

    # a feed revokes: the other feed still vouches for it, with its own figures
    book.take("cert", [Item(ip, revoked=True)])
    body = book.get(doc.id).body  # type: ignore[union-attr]
    assert not body["revoked"] and body["confidence"] == 60 and body["tlp"] == "green"
    assert body["valid_until"] == iso(NOW + timedelta(days=10))
    clock.now = NOW + timedelta(days=11)
    assert not is_live(body, clock.now)  # expired: no write needed
    clock.now = NOW

    # an analyst revokes: revoked for every feed, even when a feed sends it again
    book.revoke("198.51.100.7", actor="lead", reason="CDN address")
    book.take("national", [Item(ip, confidence=60, tlp="green")])
    body = book.get(doc.id).body  # type: ignore[union-attr]
    assert body["revoked"] and body["revoked_by"] == "lead"
    book.restore(doc.id, actor="lead")
    assert not book.get(doc.id).body["revoked"]  # type: ignore[union-attr]

    # a pattern that cannot be matched value by value is kept and reported
    counts = book.take("national", [Item(pattern="[ipv4-addr:value = '1.2.3.4' AND ipv4-addr:value = '5.6.7.8']"),
                                    Item(pattern="[domain-name:value = 'x.example' OR url:value = 'https://y.example/a']"),
                                    Item(None)])
    assert counts == {"new": 3, "updated": 0, "unchanged": 0, "unmatchable": 1, "invalid": 1}
    store.refresh()
    docs, _, total = book.search(type_="pattern")
    assert total == 1 and docs[0].body["matchable"] is False and "AND" in docs[0].body["unmatchable"]
    live = {d.body["value"] for d in book.search(live=True)[0]}
    assert {"198.51.100.7", "x.example", "https://y.example/a"} <= live


def test_a_large_feed_page_is_merged_concurrently_without_doubles(store: Store) -> None:
    book = IndicatorBook(store, clock=Clock(NOW), workers=8)
    items = [Item(normalize("ip", f"192.0.2.{i % 60}")) for i in range(120)]  # every value twice
    assert book.take("bulk", items) == {"new": 60, "updated": 0, "unchanged": 60, "unmatchable": 0, "invalid": 0}
    items = [Item(normalize("ip", f"192.0.2.{i}"), confidence=99) for i in range(90)]
    assert book.take("bulk", items) == {"new": 30, "updated": 60, "unchanged": 0, "unmatchable": 0, "invalid": 0}
    store.refresh()
    docs = list(book.search_all(feed="bulk"))
    assert len(docs) == 90 and all(d.body["confidence"] == 99 and len(d.body["feeds"]) == 1 for d in docs)


def test_csv_and_stix_bundle_feeds(tmp_path: Path) -> None:
    (tmp_path / "iocs.csv").write_text("value,kind,comment\n"
                                       "d41d8cd98f00b204e9800998ecf8427e,md5,empty file\n"
                                       "phish@bad.example,email,\n"
                                       "not a value,,\n")
    bundle = {"type": "bundle", "id": "bundle--1", "objects": [
        {"type": "marking-definition", "id": "marking-definition--custom", "name": "TLP:RED"},
        {"type": "indicator", "id": "indicator--a", "pattern_type": "stix", "pattern": "[url:value = 'https://x.example/p']",
         "valid_from": "2026-01-01T00:00:00Z", "valid_until": "2026-02-01T00:00:00Z",
         "object_marking_refs": ["marking-definition--custom"]},
        {"type": "indicator", "id": "indicator--b", "pattern_type": "sigma", "pattern": "title: x"},
        {"type": "indicator", "id": "indicator--c", "pattern_type": "stix", "revoked": True,
         "pattern": "[domain-name:value = 'gone.example']"},
        {"type": "malware", "id": "malware--1", "name": "x"},
    ]}
    (tmp_path / "bundle.json").write_text(json.dumps(bundle))
    store = SQLiteStore(tmp_path / "soc.db")
    try:
        poller = FeedPoller(store, [
            FeedSettings(name="agency-csv", kind="csv", path=tmp_path / "iocs.csv", type_column="kind"),
            FeedSettings(name="bundle", kind="stix", path=tmp_path / "bundle.json"),
            FeedSettings(name="missing", kind="list", path=tmp_path / "nope.txt")], clock=Clock(NOW))
        statuses = poller.poll_all()
        assert statuses["agency-csv"]["last_counts"]["new"] == 2 and statuses["agency-csv"]["last_counts"]["invalid"] == 1
        assert statuses["bundle"]["last_counts"] == {"new": 2, "updated": 0, "unchanged": 0, "unmatchable": 0,
                                                     "invalid": 1}
        assert "nope.txt" in statuses["missing"]["last_error"]  # one broken feed: the others polled
        book = IndicatorBook(store, clock=Clock(NOW))
        url = book.find_one("https://x.example/p")
        assert url is not None and url.body["tlp"] == "red" and not is_live(url.body, NOW)  # expired in February
        gone = book.find_one("gone.example")
        assert gone is not None and gone.body["revoked"]
        assert book.find_one("phish@bad.example") is not None
    finally:
        store.close()


def test_a_scheduled_poll_is_skipped_when_another_process_polled_the_feed_recently(tmp_path: Path) -> None:
    """``soc run`` and every ``soc detect`` schedule the feeds: the second process does not poll a
    feed again within 90% of its interval; a poll asked for by hand always polls."""
    (tmp_path / "ips.txt").write_text("198.51.100.7\n")
    store = SQLiteStore(tmp_path / "soc.db")
    try:
        clock = Clock(NOW)
        feeds = [FeedSettings(name="agency", kind="list", path=tmp_path / "ips.txt", interval_minutes=60)]
        first, second = FeedPoller(store, feeds, clock=clock), FeedPoller(store, feeds, clock=clock)
        assert first.poll("agency", when_due=True)["polls"] == 1
        clock.now = NOW + timedelta(minutes=50)
        assert second.poll("agency", when_due=True)["polls"] == 1  # polled 50 minutes ago by the other
        assert second.poll("agency")["polls"] == 2  # by hand: now
        clock.now = NOW + timedelta(minutes=50 + 55)
        assert second.poll("agency", when_due=True)["polls"] == 3  # 55 minutes after the last: due
    finally:
        store.close()


def test_hand_list_moves_onto_the_store_and_the_playbook_action_reads_it(tmp_path: Path) -> None:
    listing = tmp_path / "threat_intel.yml"
    listing.write_text((ROOT / "playbooks" / "data" / "threat_intel.yml").read_text(encoding="utf-8"))
    store = SQLiteStore(tmp_path / "soc.db")
    try:
        book = IndicatorBook(store)
        counts = load_hand_list(book, listing)
        assert counts["new"] == 4 and counts["invalid"] == 0
        assert book.find_one("222.186.56.220").body["sources"] == [HAND_LIST]  # type: ignore[union-attr]
        # an entry removed from the file is revoked for the hand list
        listing.write_text("ips:\n  - 24.151.103.17\n")
        assert load_hand_list(book, listing)["removed"] == 3
        assert book.find_one("222.186.56.220").body["revoked"]  # type: ignore[union-attr]

        # the enrichment action looks the store up: a feed's indicator, a network, a parent domain
        from soc.playbooks.actions.enrich import threat_intel
        from soc.playbooks.registry import ActionContext

        book.take("national", [Item(normalize("domain", "c2.example")), Item(normalize("ip", "185.220.100.0/22"))])

        class Runner:
            class config:  # noqa: N801 -- stands for the runner's playbook settings
                data_folder = tmp_path
            settings = None

        ctx = ActionContext(store=store, runner=Runner(), run_id="r", playbook_id="p", step_id="s", key="k",  # type: ignore[arg-type]
                            attempt=1, actor="soc")
        out = threat_intel(ctx, ips=["24.151.103.17", "185.220.101.5", "222.186.56.220", "8.8.8.8"],
                           domains=["www.c2.example", "example"])
        assert out["malicious"] and out["checked"] == 6
        assert [(h["value"], h["matched"], h["source"]) for h in out["hits"]] == [
            ("24.151.103.17", "24.151.103.17", HAND_LIST), ("185.220.101.5", "185.220.100.0/22", "national"),
            ("www.c2.example", "c2.example", "national")]
    finally:
        store.close()


def test_settings_refuse_incomplete_feeds() -> None:
    with pytest.raises(ValueError, match="needs url"):
        FeedSettings(name="x", kind="taxii")
    with pytest.raises(ValueError, match="url or path"):
        FeedSettings(name="x", kind="misp")
    with pytest.raises(ValueError, match="unique"):
        IntelSettings(feeds=[FeedSettings(name="a", kind="list", path=Path("a")),
                             FeedSettings(name="a", kind="list", path=Path("b"))])
    assert IntelSettings().retro_hunt_days == 30


def test_sightings_are_queued_for_shared_indicators(tmp_path: Path) -> None:
    from soc.hunt import ingest_files
    from soc.intel import SIGHTINGS
    from tests.conftest import shared

    store = SQLiteStore(tmp_path / "soc.db")
    try:
        ingest_files(store, [shared("loghub", "OpenSSH", "OpenSSH_2k.log")], fmt="auto", timezone="UTC",
                     agency="so-tttt", progress=False)
        book = IndicatorBook(store)
        book.take("national", [Item(normalize("ip", "112.95.230.3"), ref="indicator--0a1b2c3d-0000-4000-8000-000000000001")])
        book.take("local", [Item(normalize("ip", "5.188.10.180"))])
        matching = IntelMatching(store, retro_hunt_days=3650, settle=0.0, sightings=True, share_feeds=["national"])
        figures = matching.run_once()
        assert figures["alerts"] > 0
        queued = [d.body for d in store.iter_all(SIGHTINGS)]
        assert len(queued) == 1 and queued[0]["feed"] == "national" and queued[0]["status"] == "queued"
        sighting = queued[0]["sighting"]
        assert sighting["type"] == "sighting" and sighting["sighting_of_ref"].startswith("indicator--0a1b2c3d")
        national = [d.body for d in store.find("alerts", {"rule.id": "intel-indicator-match"}, limit=1000)
                    if d.body["intel"]["value"] == "112.95.230.3"]
        assert sighting["count"] == len(national) > 1  # one sighting per indicator and day, counted
    finally:
        store.close()


def test_the_service_schedules_feeds_matching_hand_list_and_sightings(tmp_path: Path) -> None:
    from apscheduler.schedulers.background import BackgroundScheduler

    from soc.intel.schedule import HandListWatch, register_intel_jobs

    listing = tmp_path / "threat_intel.yml"
    listing.write_text("ips:\n  - 203.0.113.9\n")
    store = SQLiteStore(tmp_path / "soc.db")
    try:
        settings = IntelSettings(sightings=True, feeds=[
            FeedSettings(name="ncsc", kind="taxii", url="https://taxii.example/c/", share_sightings=True,
                         interval_minutes=30),
            FeedSettings(name="mail", kind="list", path=tmp_path / "mail.txt")])
        poller = FeedPoller(store, settings.feeds)
        scheduler = BackgroundScheduler(timezone="UTC")
        register_intel_jobs(scheduler, settings, poller, IntelMatching(store), listing)
        jobs = {job.id: job for job in scheduler.get_jobs()}
        assert set(jobs) == {"intel-hand-list", "intel-feed-ncsc", "intel-feed-mail", "intel-matching",
                             "intel-sightings"}
        assert jobs["intel-feed-ncsc"].trigger.interval.total_seconds() == 1800
        disabled = BackgroundScheduler(timezone="UTC")
        register_intel_jobs(disabled, IntelSettings(enabled=False), poller, IntelMatching(store), listing)
        assert disabled.get_jobs() == []

        watch = HandListWatch(poller, listing)
        assert watch() is not None and watch() is None  # loaded once; again only when the file changes
        assert poller.status(HAND_LIST)["last_taken"] == 1
    finally:
        store.close()
