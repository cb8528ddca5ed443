"""Fast checks of the Kafka path's pure parts (no servers): the record format, the dead-letter
format round trip, and the commit-target rule of the worker's batch bookkeeping."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from soc.agencies import Agency, AgencyTree
from soc.kafka import deadletters as dl
from soc.kafka.messages import Coordinates, Malformed, inspect, to_record
from soc.kafka.worker import _Batch
from soc.model import kafka_event_id

AGENCIES = AgencyTree(agencies=(Agency(id="so-tttt", name="Sở TT&TT", networks=["10.2.0.0/16"]),),
                    unknown=Agency(id="unknown", name="Chưa xác định"))


def test_the_key_names_the_agency_and_a_suffix_after_a_slash_is_ignored() -> None:
    key, peer = inspect("logs", b"so-tttt/fw01", b"line", [("soc.peer", b"10.2.0.9")], AGENCIES, "Asia/Ho_Chi_Minh")
    assert (key.agency, key.fmt, key.source, peer) == ("so-tttt", "auto", "kafka:logs", "10.2.0.9")
    key, _ = inspect("logs", None, b"line", [("soc.peer", b"10.2.0.9")], AGENCIES, "UTC")
    assert key.agency is None  # resolved from the peer's network by the pipeline context
    key, _ = inspect("logs", None, b"line", None, AGENCIES, "UTC")
    assert key.agency == "unknown"


@pytest.mark.parametrize(("key", "value", "headers", "reason"), [
    (b"so-tttt", None, None, "no value"),
    (b"nope", b"x", None, "unknown agency 'nope'"),
    (b"\xff", b"x", None, "key is not UTF-8"),
    (b"so-tttt", b"x", [("soc.format", b"bogus")], "unknown format 'bogus'"),
    (b"so-tttt", b"x", [("soc.timezone", b"Mars/Base")], "unknown time zone"),
])
def test_malformed_records_say_why(key: bytes, value: bytes | None, headers: list[tuple[str, bytes]] | None,
                                   reason: str) -> None:
    with pytest.raises(Malformed, match=reason):
        inspect("logs", key, value, headers, AGENCIES, "Asia/Ho_Chi_Minh")


def test_the_record_gives_the_id_and_receive_time() -> None:
    record = to_record("logs", 2, 41, 1_764_600_000_123, b"x", "10.2.0.9")
    assert record.event_id == kafka_event_id("logs", 2, 41)
    assert record.received.timestamp() == 1_764_600_000.123
    assert record.origin == "logs/2/41"


def test_a_dead_letter_round_trips_through_kafka_headers() -> None:
    letter = dl.DeadLetter(reason="oversized (9 bytes > 4)", stage=dl.STAGE_PIPELINE,
                           coordinates=Coordinates("logs", 1, 7), timestamp_ms=123, key=b"so-tttt",
                           value=b"\xff\x00raw", headers=[("soc.peer", b"10.2.0.9")])
    sent = letter.to_kafka()
    back = dl.DeadLetter.from_kafka(SimpleNamespace(topic="logs.dlq", partition=0, offset=5, **sent))
    assert (back.reason, back.stage, back.coordinates, back.timestamp_ms) == (letter.reason, letter.stage,
                                                                             letter.coordinates, 123)
    assert (back.key, back.value, back.headers) == (b"so-tttt", b"\xff\x00raw", [("soc.peer", b"10.2.0.9")])
    assert back.event_id == kafka_event_id("logs", 1, 7) and back.dlq_offset == (0, 5)


def test_commit_targets_stop_at_the_first_unsettled_record() -> None:
    batch = _Batch()
    batch.end = {"p0": 110, "p1": 60}
    batch.open["p0"] = {100, 104, 109}
    batch.open["p1"] = set()
    assert batch.commit_targets({}) == {"p0": 100, "p1": 60}
    batch.open["p0"] -= {100}
    assert batch.commit_targets({"p1": 60}) == {"p0": 104}  # p1 did not move: nothing to commit
    batch.open["p0"].clear()
    assert batch.commit_targets({"p0": 104, "p1": 60}) == {"p0": 110}


def test_release_rewinds_revoked_partitions_to_their_first_open_record() -> None:
    batch = _Batch()
    batch.end = {"p0": 10, "p1": 20}
    batch.open["p0"] = {5, 6}
    batch.open["p1"] = {15}
    batch.events = {"a": {}, "b": {}, "c": {}}
    batch.where = {"a": ("p0", 5), "b": ("p0", 6), "c": ("p1", 15)}
    assert batch.release({"p0"}) == {"p0": 5}
    assert set(batch.events) == {"c"} and "p0" not in batch.end
    assert batch.commit_targets({}) == {"p1": 15}
