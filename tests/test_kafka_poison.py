"""Poison test: malformed, oversized, non-UTF-8 and empty records, and documents the mapping
really rejects, mixed into a stream of real log lines. Every one ends in the dead-letter topic
with its reason, its exact bytes and its coordinates; every good line is stored; offsets are
fully committed. Then ``soc kafka dlq replay`` after a fix stores what the fix allows, under
the event ids of the original coordinates, and a second replay writes nothing new.

What the mapping rejects was measured on OpenSearch 2.19 (``ignore_malformed`` absorbs a bad
IP, number or date -- the event is stored without that field): a concrete value where the
template maps an object. Two real shapes produce it: an ECS-style JSON document (``@timestamp``
+ ``event`` object, kept at the top level by the JSON parser) with ``"user": "root"`` or
``"host": "web01"``, and generic JSON whose key is an object in one document and text in
another of the same day.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from soc.kafka.deadletters import read_dead_letters
from soc.kafka.worker import IngestWorker, WorkerConfig
from soc.model import kafka_event_id
from tests.conftest import ROOT
from tests.search_helpers import store_url
from tests.test_kafka_support import (
    create_topic,
    distinct_ids,
    drop_indices,
    event_count,
    group_lag,
    real_lines,
)

pytestmark = [pytest.mark.kafka, pytest.mark.search]

ECS_USER = b'{"@timestamp":"2026-11-30T10:00:00Z","event":{"kind":"event"},"user":"root","message":"su: session opened"}'
ECS_HOST = b'{"@timestamp":"2026-11-30T10:00:01Z","ecs":{"version":"8.11"},"host":"web01","message":"nginx reload"}'
JSON_OBJECT = b'{"time":"2026-11-30T10:00:02Z","app":{"name":"portal"},"message":"app as object"}'
JSON_TEXT = b'{"time":"2026-11-30T10:00:03Z","app":"portal","message":"app as text"}'
GARBAGE = b'{"this is": not json at all'


def _send_all(bootstrap: str, topic: str, items: list[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]]
              ) -> list[int]:
    """Send in order to partition 0; returns each record's offset."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_request_size=4 * 1024 * 1024)
    try:
        futures = [producer.send(topic, key=k, value=v, headers=h, partition=0) for k, v, h in items]
        producer.flush()
        return [f.get(30).offset for f in futures]
    finally:
        producer.close()


def _cli(*args: str, cwd: Path) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "soc.cli", "kafka", *args], cwd=cwd, capture_output=True, text=True,
                         timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr[-3000:]
    return {"stdout": out.stdout, "stderr": out.stderr}


@pytest.mark.timeout(600)
def test_poison_records_go_to_the_dead_letter_topic_and_replay_is_idempotent(
        kafka_bootstrap: str, opensearch_url: str, unique_name: str, tmp_path: Path) -> None:
    topic = group = prefix = unique_name
    dlq = f"{topic}.dlq"
    create_topic(kafka_bootstrap, topic, 1)
    good = real_lines()[::9][:2000]
    real = good[0]
    k = b"so-tttt"
    poison: dict[str, tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]] = {
        "oversized": (k, real + b" " + b"A" * 70_000, []),
        "not UTF-8": (k, real.replace(b"sshd", b"ssh\xe9d\xff"), []),
        "tombstone": (k, None, []),
        "empty": (k, b"  \r\n", []),
        "unknown agency": (b"so-khong-ton-tai/fw1", real, []),
        "unknown format": (k, real, [("soc.format", b"nope")]),
        "bad key": (b"\xff\xfe", real, []),
        "ecs user": (k, ECS_USER, []),
        "ecs host": (k, ECS_HOST, []),
        "json object": (k, JSON_OBJECT, []),
        "json text": (k, JSON_TEXT, []),  # rejected: json.app is an object in the same day index
        "garbage": (k, GARBAGE, []),  # not poison: stored as a pipeline_error event
    }
    items: list[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]] = []
    where: dict[str, int] = {}
    names = list(poison)
    for i, line in enumerate(good):
        items.append((k, line, []))
        if i % 150 == 75 and names:
            name = names.pop(0)
            where[name] = len(items)
            items.append(poison[name])
    assert not names
    offsets = _send_all(kafka_bootstrap, topic, items)
    coords = {name: f"{topic}/0/{offsets[i]}" for name, i in where.items()}

    config = WorkerConfig(bootstrap=kafka_bootstrap, topics=[topic], group=group, store_url=store_url(opensearch_url),
                          dead_letter_topic=dlq, index_prefix=prefix, index_replicas=0, batch_size=500)
    metrics = IngestWorker(config).run(until_idle=3)

    expected_dead = {"oversized", "not UTF-8", "tombstone", "empty", "unknown agency", "unknown format", "bad key",
                     "ecs user", "ecs host", "json text"}
    letters = list(read_dead_letters(kafka_bootstrap, dlq))
    by_coords = {str(d.coordinates): d for d in letters}
    assert set(by_coords) == {coords[n] for n in expected_dead}, by_coords.keys()
    reasons = {name: by_coords[coords[name]].reason for name in expected_dead}
    assert reasons["oversized"].startswith("oversized (")
    assert reasons["not UTF-8"].startswith("not UTF-8")
    assert "no value" in reasons["tombstone"] and "empty record" in reasons["empty"]
    assert "unknown agency 'so-khong-ton-tai'" in reasons["unknown agency"]
    assert "unknown format 'nope'" in reasons["unknown format"] and "key is not UTF-8" in reasons["bad key"]
    for name in ("ecs user", "ecs host", "json text"):
        assert reasons[name].startswith("store rejected: mapper_parsing_exception"), reasons[name]
        assert by_coords[coords[name]].stage == "store"
    for name in expected_dead:  # the exact bytes, key and original headers travel with the reason
        letter = by_coords[coords[name]]
        key, value, headers = poison[name]
        assert (letter.key, letter.value, letter.headers) == (key, value, headers)
        assert letter.event_id == kafka_event_id(topic, 0, int(coords[name].rsplit("/", 1)[1]))
    assert metrics.dead_letters == len(expected_dead)

    stored = len(items) - len(expected_dead)
    assert event_count(opensearch_url, prefix) == stored
    status = group_lag(kafka_bootstrap, group, topic)
    assert status.fully_committed and status.dead_letters == len(expected_dead), status.as_dict()
    ids = distinct_ids(opensearch_url, prefix)
    assert kafka_event_id(topic, 0, offsets[where["garbage"]]) in ids  # unparseable text is stored, not lost

    listing = _cli("dlq", "list", "-b", kafka_bootstrap, "--dead-letter-topic", dlq, cwd=ROOT)["stdout"]
    assert f"{len(expected_dead)} dead letters in {dlq}" in listing
    assert "[store] store rejected: mapper_parsing_exception: object mapping for [user]" in listing
    assert "3  store rejected: mapper_parsing_exception" in listing

    # the fix: a larger size limit, non-UTF-8 kept as soc.raw_b64, the missing agency added
    workdir = tmp_path / "fixed"
    shutil.copytree(ROOT / "ingest", workdir / "ingest")
    agencies_file = workdir / "ingest" / "agencies.yml"
    agencies = yaml.safe_load(agencies_file.read_text(encoding="utf-8"))
    agencies["agencies"].append({"id": "so-khong-ton-tai", "name": "Sở mới", "level": "province"})
    agencies_file.write_text(yaml.safe_dump(agencies, allow_unicode=True), encoding="utf-8")
    replay = ["dlq", "replay", "-b", kafka_bootstrap, "--dead-letter-topic", dlq,
              "--store-url", store_url(opensearch_url), "--index-prefix", prefix, "--replicas", "0",
              "--max-message-bytes", "200000", "--invalid-utf8", "store"]
    first = json.loads(_cli(*replay, cwd=workdir)["stdout"].strip().splitlines()[-1])
    fixed = {"oversized", "not UTF-8", "unknown agency"}
    assert (first["read"], first["created"], first["existing"]) == (len(expected_dead), len(fixed), 0), first
    assert {f["coordinates"] for f in first["still_failing"]} == {coords[n] for n in expected_dead - fixed}
    second = json.loads(_cli(*replay, cwd=workdir)["stdout"].strip().splitlines()[-1])
    assert (second["created"], second["existing"]) == (0, len(fixed)), second
    assert event_count(opensearch_url, prefix) == stored + len(fixed)
    after = distinct_ids(opensearch_url, prefix)
    assert after - ids == {kafka_event_id(topic, 0, offsets[where[n]]) for n in fixed}
    drop_indices(opensearch_url, prefix)
