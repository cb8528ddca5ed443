"""Helpers for the Kafka ingest tests (no tests here): real log lines, topics, workers, counts.

Everything runs against the session's real Kafka and OpenSearch (``tests/servers.py``); each
test uses its own topic, group and index prefix (from ``unique_name``), so tests never see
each other's data.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from tests.conftest import ROOT, shared
from tests.search_helpers import store_url

#: Real log lines (loghub, elastic examples): syslog sshd/kernel/su..., Apache error and access logs.
SOURCES = (
    ("loghub", "OpenSSH", "OpenSSH_2k.log"),
    ("loghub", "Linux", "Linux_2k.log"),
    ("loghub", "Apache", "Apache_2k.log"),
    ("elastic-examples", "suspicious_login_activity", "data", "auth.log"),
    ("elastic-examples", "apache_logs", "apache_logs"),
)


def real_lines() -> list[bytes]:
    """Every non-empty, UTF-8, single-line message of :data:`SOURCES`, as bytes."""
    out: list[bytes] = []
    for parts in SOURCES:
        for line in shared(*parts).read_bytes().splitlines():
            if not line.strip():
                continue
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                continue
            out.append(line)
    return out


def repeat(lines: list[bytes], n: int) -> Iterator[bytes]:
    """``n`` lines cycling through ``lines``."""
    for i in range(n):
        yield lines[i % len(lines)]


def create_topic(bootstrap: str, name: str, partitions: int = 1) -> None:
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="soc-test-admin")
    try:
        admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        admin.close()
    wait_for(lambda: _partitions(bootstrap, name) == partitions, 30, f"topic {name} ready")


def _partitions(bootstrap: str, topic: str) -> int:
    from kafka import KafkaConsumer

    c = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        return len(c.partitions_for_topic(topic) or ())
    finally:
        c.close()


def spread_key(i: int) -> bytes:
    """Agency key with a device suffix, so one agency's records spread over the partitions."""
    return b"so-tttt/host%d" % (i % 16)


def produce(bootstrap: str, topic: str, values: Iterable[bytes | None], *,
            key: bytes | None | Callable[[int], bytes] = b"so-tttt",
            headers: list[tuple[str, bytes]] | None = None) -> int:
    """Send ``values`` (acks=all) and wait for every acknowledgement; returns how many. ``key``
    may be a function of the record's index."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20, batch_size=512 * 1024,
                             max_request_size=8 * 1024 * 1024)
    n = 0
    futures = []
    try:
        for value in values:
            k = key(n) if callable(key) else key
            futures.append(producer.send(topic, key=k, value=value, headers=headers or []))
            n += 1
            if len(futures) >= 20_000:
                producer.flush()
                assert all(f.succeeded() for f in futures)
                futures = []
        producer.flush()
        assert all(f.succeeded() for f in futures)
    finally:
        producer.close()
    return n


def worker_cmd(bootstrap: str, topic: str, group: str, opensearch_url: str, prefix: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "soc.cli", "kafka", "worker", "-b", bootstrap, "-t", topic, "-g", group,
            "--store-url", store_url(opensearch_url), "--index-prefix", prefix,
            "--dead-letter-topic", f"{topic}.dlq", "--replicas", "0", *extra]


def start_worker(cmd: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(log_path, "ab") as log:
        return subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)


def search(opensearch_url: str) -> Any:
    from opensearchpy import OpenSearch

    return OpenSearch(hosts=[opensearch_url], timeout=120)


def drop_indices(opensearch_url: str, prefix: str) -> None:
    """Delete a test's indices and templates (a session's node has a 1,000-shard limit)."""
    client = search(opensearch_url)
    try:
        client.indices.delete(index=f"{prefix}-*", params={"allow_no_indices": "true", "ignore_unavailable": "true"})
        for name in ("events", "docs"):
            client.indices.delete_index_template(name=f"{prefix}-{name}", ignore=[404])
    finally:
        client.close()


def event_count(opensearch_url: str, prefix: str) -> int:
    """Documents in the test's event indices (after a refresh); retries a busy node (429)."""
    from opensearchpy.exceptions import TransportError

    client = search(opensearch_url)
    try:
        for attempt in range(10):
            try:
                client.indices.refresh(index=f"{prefix}-events-*", params={"allow_no_indices": "true"})
                return int(client.count(index=f"{prefix}-events-*", params={"allow_no_indices": "true"})["count"])
            except TransportError as error:
                if error.status_code != 429 or attempt == 9:
                    raise
                time.sleep(1)
        raise AssertionError("unreachable")
    finally:
        client.close()


def distinct_ids(opensearch_url: str, prefix: str) -> set[str]:
    """Every ``soc.id`` in the event indices (exact, by composite aggregation paging)."""
    client = search(opensearch_url)
    ids: set[str] = set()
    after = None
    try:
        client.indices.refresh(index=f"{prefix}-events-*", params={"allow_no_indices": "true"})
        while True:
            comp: dict[str, Any] = {"size": 10_000, "sources": [{"id": {"terms": {"field": "soc.id"}}}]}
            if after:
                comp["after"] = after
            resp = client.search(index=f"{prefix}-events-*", body={"size": 0, "aggs": {"ids": {"composite": comp}}})
            buckets = resp["aggregations"]["ids"]["buckets"]
            for b in buckets:
                assert b["doc_count"] == 1, f"id {b['key']['id']} stored {b['doc_count']} times"
                ids.add(b["key"]["id"])
            after = resp["aggregations"]["ids"].get("after_key")
            if not buckets or not after:
                return ids
    finally:
        client.close()


def wait_for(check: Any, timeout: float, what: str, interval: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def group_lag(bootstrap: str, group: str, topic: str) -> Any:
    from soc.kafka.status import group_status

    return group_status(bootstrap, group, [topic], f"{topic}.dlq")


def expected_ids(topic: str, partitions: dict[int, int]) -> set[str]:
    """Event ids of every offset ``0..end`` of each partition."""
    from soc.model import kafka_event_id

    return {kafka_event_id(topic, p, o) for p, end in partitions.items() for o in range(end)}
