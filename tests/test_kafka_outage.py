"""Outage test: the search engine is stopped during ingestion. The worker pauses its
partitions (it fetches nothing more, its memory stays one batch), retries with backoff, stays
in the group, and catches up when the engine is back: nothing lost, nothing doubled. Then a
SIGTERM makes it finish, commit and leave the group at once.
"""

from __future__ import annotations

import json
import signal
import socket
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.servers import SearchControl
from tests.test_kafka_support import (
    create_topic,
    distinct_ids,
    drop_indices,
    event_count,
    expected_ids,
    group_lag,
    produce,
    real_lines,
    repeat,
    spread_key,
    start_worker,
    wait_for,
    worker_cmd,
)

pytestmark = [pytest.mark.kafka, pytest.mark.search, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _metrics(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics.json", timeout=5) as resp:
        return json.loads(resp.read())


def _group_state(bootstrap: str, group: str) -> str:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        return str(admin.describe_groups([group])[group]["group_state"])
    finally:
        admin.close()


@pytest.mark.timeout(600)
def test_search_engine_outage_pauses_retries_and_catches_up(
        kafka_bootstrap: str, search_control: SearchControl, unique_name: str, tmp_path: Path) -> None:
    url = search_control.url
    topic = group = prefix = unique_name
    lines = real_lines()
    create_topic(kafka_bootstrap, topic, 2)
    produce(kafka_bootstrap, topic, repeat(lines, 20_000), key=spread_key)
    port = _free_port()
    log = tmp_path / "worker.log"
    proc = start_worker(worker_cmd(kafka_bootstrap, topic, group, url, prefix, "--metrics-port", str(port),
                                   "--session-timeout-ms", "10000", "--batch-size", "2000", "-v"), log)
    try:
        wait_for(lambda: event_count(url, prefix) >= 2000, 120, "the first documents")
        search_control.stop()
        produce(kafka_bootstrap, topic, repeat(lines[::-1], 10_000), key=spread_key)  # more arrives meanwhile
        wait_for(lambda: _metrics(port)["paused"], 90, "the worker to pause")
        paused = _metrics(port)
        time.sleep(6)
        still = _metrics(port)
        assert still["paused"] and still["consumed"] == paused["consumed"], "it kept fetching while paused"
        assert still["store_failures"] + still["retries"] > paused["store_failures"] + paused["retries"] - 1
        assert still["retries"] > 0 and still["store_failures"] > 0
        assert proc.poll() is None
        search_control.start()
        wait_for(lambda: group_lag(kafka_bootstrap, group, topic).lag == 0, 300, "the worker to catch up", 1.0)
        wait_for(lambda: not _metrics(port)["paused"], 30, "the worker to resume")
        assert _group_state(kafka_bootstrap, group) == "Stable"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    assert "pausing consumption" in text and "consumption resumed" in text
    # graceful stop: the member left the group (no waiting for its session to expire)
    assert _group_state(kafka_bootstrap, group) == "Empty"
    status = group_lag(kafka_bootstrap, group, topic)
    assert status.fully_committed and status.dead_letters == 0, status.as_dict()
    ends = {p.partition: p.end for p in status.partitions}
    assert event_count(url, prefix) == 30_000 == sum(ends.values())
    assert distinct_ids(url, prefix) == expected_ids(topic, ends)
    drop_indices(url, prefix)
    final = json.loads(text.strip().splitlines()[-1])
    print(f"\noutage test: retries {final['retries']}, store failures {final['store_failures']}, "
          f"stored {final['stored']}, existing {final['existing']}")
