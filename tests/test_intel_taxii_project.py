"""The province polls the national centre's TAXII 2.1 collection -- this project's own server
(``soc serve``, served by uvicorn in the test: tests/taxii_server_helpers.py) -- with the feed
poller and ``taxii2-client``; an event of ``../shared/data`` holding one of the indicators raises an
alert, a second indicator added later finds an event stored before it arrived (retro-hunt), and a
revocation published later raises nothing new."""

from __future__ import annotations

from pathlib import Path

from taxii2client.v21 import Collection

from soc.config_intel import FeedSettings
from soc.detect.engine import ALERTS
from soc.hunt import ingest_files
from soc.intel import INTEL_RULE_ID, FeedPoller, IndicatorBook, IntelMatching, send_sightings
from soc.store.base import EventQuery
from soc.store.sqlite import SQLiteStore
from tests.conftest import shared
from tests.taxii_server_helpers import NATIONAL, BearerAuth, envelope, indicator, served

FIRST, LATER = "187.141.143.180", "103.99.0.122"  # brute-force sources in OpenSSH_2k


def test_poll_the_projects_taxii_server_match_hunt_and_revoke(tmp_path: Path) -> None:
    province = SQLiteStore(tmp_path / "province.db")
    try:
        ingest_files(province, [shared("loghub", "OpenSSH", "OpenSSH_2k.log")], fmt="auto", timezone="UTC",
                     agency="so-tttt", progress=False)

        def events_with(ip: str) -> set[str]:
            page = province.search_events(EventQuery(filters=[("source.ip", "equals", ip)], size=1000))
            return {e["_id"] for e in page.events}

        def alerts_for(ip: str) -> list[dict]:
            return [d.body for d in province.find(ALERTS, {"rule.id": INTEL_RULE_ID}, limit=10_000)
                    if d.body["intel"]["value"] == ip]

        with served(tmp_path / "national") as srv:
            writer = srv.token(f"taxii:{NATIONAL}:read", f"taxii:{NATIONAL}:write", name="center")
            (tmp_path / "token").write_text(srv.token(f"taxii:{NATIONAL}:read", f"taxii:{NATIONAL}:write",
                                                      name="province") + "\n")
            center = Collection(srv.collection_url(NATIONAL), auth=BearerAuth(writer))
            center.add_objects(envelope([indicator(1, value=FIRST), indicator(2)]), wait_for_completion=False)

            feed = FeedSettings(name="national", kind="taxii", url=srv.collection_url(NATIONAL),
                                token_file=tmp_path / "token", page_size=1,  # one object per page: paging used
                                share_sightings=True)
            poller = FeedPoller(province, [feed])
            status = poller.poll("national")
            assert status["last_error"] is None and status["last_read"] == 2 and status["last_pages"] >= 2
            matching = IntelMatching(province, retro_hunt_days=3650, settle=0.0, overlap=0.0, sightings=True,
                                     share_feeds=["national"])
            matching.run_once()
            first = alerts_for(FIRST)
            assert {a["event_ids"][0] for a in first} == events_with(FIRST)
            assert first and not any(a["retrospective"] for a in first)
            assert first[0]["intel"]["sources"] == ["national"]
            assert first[0]["intel"]["refs"] == [indicator(1)["id"]]
            # the matches go back to the centre as STIX sightings of its indicator
            assert send_sightings(province, [feed]) == {"sent": 1, "failed": 0, "waiting": 0}
            [told] = center.get_objects(type="sighting")["objects"]  # one per indicator and day, counted
            assert told["sighting_of_ref"] == indicator(1)["id"] and told["count"] == len(first)
            assert send_sightings(province, [feed])["sent"] == 0  # sent once

            # a second indicator, published later: the next poll takes only it, the hunt finds the old events
            center.add_objects(envelope([indicator(3, value=LATER)]), wait_for_completion=False)
            status = poller.poll("national")
            assert status["last_read"] == 2 and status["last_taken"] == 1  # (our sighting came back too: skipped)
            figures = matching.run_once()
            later = alerts_for(LATER)
            assert figures["events"] == 0 and {a["event_ids"][0] for a in later} == events_with(LATER)
            assert later and all(a["retrospective"] for a in later)

            # the centre revokes the first one (a new version): nothing new is raised for it
            revoked = dict(indicator(1, value=FIRST, modified="2026-12-06T00:00:00.000Z"), revoked=True)
            center.add_objects(envelope([revoked]), wait_for_completion=False)
            assert poller.poll("national")["last_read"] == 1
            doc = IndicatorBook(province).find_one(FIRST)
            assert doc is not None and doc.body["revoked"]
        (event,) = province.get_events([sorted(events_with(FIRST))[0]])
        province.write_events([{**{k: v for k, v in event.items() if k != "event.ingested"}, "_id": "again-1"}])
        assert matching.run_once()["events"] == 1
        assert len(alerts_for(FIRST)) == len(first)
    finally:
        province.close()
