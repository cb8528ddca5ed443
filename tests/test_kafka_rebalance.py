"""Rebalance test: two workers in one group over a four-partition topic; the second joins
mid-stream (partitions move to it) and leaves mid-stream (they move back). Exactly one document
per record at the end, every offset committed.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

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

TOTAL = 80_000


@pytest.mark.timeout(600)
def test_a_worker_joining_and_leaving_mid_stream_loses_and_doubles_nothing(
        kafka_bootstrap: str, opensearch_url: str, unique_name: str, tmp_path: Path) -> None:
    topic = group = prefix = unique_name
    lines = real_lines()
    create_topic(kafka_bootstrap, topic, 4)
    produce(kafka_bootstrap, topic, repeat(lines, 40_000), key=spread_key)
    cmd = worker_cmd(kafka_bootstrap, topic, group, opensearch_url, prefix, "--session-timeout-ms", "10000",
                     "--batch-size", "2000", "--metrics-interval", "2", "-v")
    log_a, log_b = tmp_path / "a.log", tmp_path / "b.log"
    a = start_worker(cmd + ["--client-id", "worker-a"], log_a)
    b = None
    try:
        wait_for(lambda: event_count(opensearch_url, prefix) >= 6000, 180, "worker A to make progress")
        b = start_worker(cmd + ["--client-id", "worker-b"], log_b)
        produce(kafka_bootstrap, topic, repeat(lines[::-1], 20_000), key=spread_key)  # more arrives meanwhile
        wait_for(lambda: _stored(log_b) > 0, 180, "worker B to take partitions and store")
        joined_at = event_count(opensearch_url, prefix)
        produce(kafka_bootstrap, topic, repeat(lines[1::2], 20_000), key=spread_key)  # B leaves with work left
        lag_at_leave = group_lag(kafka_bootstrap, group, topic).lag
        b.send_signal(signal.SIGTERM)  # B leaves mid-stream: its partitions go back to A
        assert b.wait(60) == 0, log_b.read_text()[-3000:]
        left_at = event_count(opensearch_url, prefix)
        assert lag_at_leave > 0 and left_at < TOTAL, "B left after the end: not mid-stream"
        wait_for(lambda: group_lag(kafka_bootstrap, group, topic).lag == 0, 300, "A to finish", 1.0)
        a.send_signal(signal.SIGTERM)
        assert a.wait(60) == 0, log_a.read_text()[-3000:]
    finally:
        for proc in (a, b):
            if proc is not None and proc.poll() is None:
                proc.kill()
    final_a = json.loads(log_a.read_text().strip().splitlines()[-1])
    final_b = json.loads(log_b.read_text().strip().splitlines()[-1])
    assert final_a["rebalances"] >= 2 and final_b["stored"] > 0
    status = group_lag(kafka_bootstrap, group, topic)
    assert status.fully_committed and status.dead_letters == 0, status.as_dict()
    ends = {p.partition: p.end for p in status.partitions}
    assert event_count(opensearch_url, prefix) == TOTAL == sum(ends.values())
    assert distinct_ids(opensearch_url, prefix) == expected_ids(topic, ends)
    assert final_a["stored"] + final_b["stored"] == TOTAL  # created once overall
    drop_indices(opensearch_url, prefix)
    print(f"\nrebalance test: A stored {final_a['stored']} ({final_a['existing']} existing, "
          f"{final_a['rebalances']} revocations), B stored {final_b['stored']} ({final_b['existing']} existing); "
          f"B joined at {joined_at}, left at {left_at} documents (group lag {lag_at_leave})")


def _stored(log: Path) -> int:
    """Documents B reported stored in its periodic metrics lines (0 before the first)."""
    best = 0
    for line in log.read_text().splitlines():
        if '"metrics": "soc.kafka.worker"' in line:
            best = max(best, json.loads(line.split(": ", 1)[1]).get("stored", 0))
    return best
