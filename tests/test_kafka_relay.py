"""Relay test: real syslog lines sent over UDP and TCP reach the syslog-to-Kafka relay, are
published keyed by the agency their sender's address belongs to, and a worker stores them with
that agency, the sender's address and the exact original text.
"""

from __future__ import annotations

import socket
import time

import pytest

from soc.agencies import Agency, AgencyTree
from soc.kafka.relay import SyslogRelay
from soc.kafka.worker import IngestWorker, WorkerConfig
from tests.search_helpers import store_url
from tests.test_kafka_support import (
    create_topic,
    drop_indices,
    event_count,
    search,
    shared,
    wait_for,
)

pytestmark = [pytest.mark.kafka, pytest.mark.search]


def _agencies() -> AgencyTree:
    return AgencyTree(agencies=(Agency(id="so-test", name="Sở Thử nghiệm", level="province", networks=["127.0.0.0/8"]),),
                    unknown=Agency(id="unknown", name="Chưa xác định"))


@pytest.mark.timeout(300)
def test_syslog_udp_and_tcp_through_kafka_into_the_store(kafka_bootstrap: str, opensearch_url: str,
                                                          unique_name: str) -> None:
    topic = group = prefix = unique_name
    create_topic(kafka_bootstrap, topic, 2)
    lines = [ln for ln in shared("loghub", "OpenSSH", "OpenSSH_2k.log").read_text(encoding="utf-8").splitlines()
             if ln.strip()][:300]
    udp_lines, tcp_lines = lines[:100], lines[100:]
    agencies = _agencies()
    relay = SyslogRelay(kafka_bootstrap, topic, udp="127.0.0.1:0", tcp="127.0.0.1:0", agencies=agencies).start()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            for line in udp_lines:
                udp.sendto(line.encode(), relay.udp_address)
                time.sleep(0.001)
        with socket.create_connection(relay.tcp_address) as tcp:
            newline, counted = tcp_lines[:100], tcp_lines[100:]
            tcp.sendall(b"".join(ln.encode() + b"\n" for ln in newline))  # RFC 6587 non-transparent framing
            tcp.sendall(b"".join(b"%d %s" % (len(ln.encode()), ln.encode()) for ln in counted))  # octet counting
        wait_for(lambda: relay.sent >= len(lines), 60, "the relay to publish every message")
    finally:
        relay.stop()
    assert (relay.sent, relay.failed) == (len(lines), 0)

    config = WorkerConfig(bootstrap=kafka_bootstrap, topics=[topic], group=group, store_url=store_url(opensearch_url),
                          dead_letter_topic=f"{topic}.dlq", index_prefix=prefix, index_replicas=0)
    metrics = IngestWorker(config, agencies=agencies).run(until_idle=3)
    assert (metrics.stored, metrics.dead_letters) == (len(lines), 0)
    assert event_count(opensearch_url, prefix) == len(lines)
    client = search(opensearch_url)
    try:
        hits = client.search(index=f"{prefix}-events-*", body={"size": 1000, "query": {"match_all": {}}})["hits"]["hits"]
    finally:
        client.close()
    docs = [h["_source"] for h in hits]
    assert sorted(d["event.original"] for d in docs) == sorted(lines)
    assert {d["organization.id"] for d in docs} == {"so-test"}
    assert {d["organization.name"] for d in docs} == {"Sở Thử nghiệm"}
    assert {d["log.source.address"] for d in docs} == {"127.0.0.1"}
    assert {d["soc.source"] for d in docs} == {"syslog"}
    assert {d["event.dataset"] for d in docs} >= {"linux.sshd"}
    drop_indices(opensearch_url, prefix)
