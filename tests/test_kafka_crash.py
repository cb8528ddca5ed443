"""Crash test: 200,000 real log lines through Kafka into OpenSearch while the worker is
SIGKILLed at random moments and restarted; the store ends with exactly 200,000 documents, each
id once, and the group's committed offsets equal the end offsets.

Runs the worker as a subprocess (``python -m soc.cli kafka worker``) against the session's real
Kafka and OpenSearch. Slow (about two minutes on two shared cores), marked ``slow``; not skipped.
"""

from __future__ import annotations

import random
import signal
import subprocess
import time
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
    worker_cmd,
)

pytestmark = [pytest.mark.kafka, pytest.mark.search, pytest.mark.slow]

TOTAL = 200_000
PARTITIONS = 3
KILLS = 4


@pytest.mark.timeout(900)
def test_sigkill_at_random_moments_loses_and_doubles_nothing(
        kafka_bootstrap: str, opensearch_url: str, unique_name: str, tmp_path: Path) -> None:
    topic = group = prefix = unique_name
    create_topic(kafka_bootstrap, topic, PARTITIONS)
    assert produce(kafka_bootstrap, topic, repeat(real_lines(), TOTAL), key=spread_key) == TOTAL
    cmd = worker_cmd(kafka_bootstrap, topic, group, opensearch_url, prefix,
                     "--session-timeout-ms", "6000", "--batch-size", "5000")
    log = tmp_path / "worker.log"
    rng = random.Random()
    started = time.monotonic()
    kills = []
    for _ in range(KILLS):
        before = event_count(opensearch_url, prefix)
        proc = start_worker(cmd, log)
        # let it make a random amount of progress (it has to join the group and may wait out
        # the killed member's 6 s session first: commits happen every 5,000 records), then kill
        # it at a random moment -- mid-batch, mid-bulk or right after a commit
        target = before + rng.randint(1, 30_000)
        deadline = time.monotonic() + 120
        while event_count(opensearch_url, prefix) < target and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()[-3000:]
            time.sleep(0.2)
        time.sleep(rng.uniform(0.0, 1.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        status = group_lag(kafka_bootstrap, group, topic)
        kills.append((event_count(opensearch_url, prefix), status.lag))
    assert any(stored < TOTAL for stored, _ in kills), f"every kill came after the end: {kills}"
    # the last run goes to the end and exits once idle with everything committed
    proc = start_worker(cmd + ["--until-idle", "8"], log)
    try:
        proc.wait(600)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(log.read_text()[-3000:]) from None
    assert proc.returncode == 0, log.read_text()[-3000:]
    elapsed = time.monotonic() - started

    assert event_count(opensearch_url, prefix) == TOTAL
    status = group_lag(kafka_bootstrap, group, topic)
    ends = {p.partition: p.end for p in status.partitions}
    assert sum(ends.values()) == TOTAL
    assert status.fully_committed and status.lag == 0, status.as_dict()
    assert status.dead_letters == 0
    ids = distinct_ids(opensearch_url, prefix)  # asserts each id is stored once
    assert ids == expected_ids(topic, ends)
    drop_indices(opensearch_url, prefix)
    print(f"\ncrash test: {TOTAL:,} records, {KILLS} SIGKILLs at (stored, lag) {kills}, "
          f"{elapsed:.0f} s from first start to fully committed")
