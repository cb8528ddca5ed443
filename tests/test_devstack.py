"""The devstack's real servers: Apache Kafka (KRaft) and OpenSearch 2.19, started once per session
by the ``tests.servers`` plugin (or reused from ``SOC_TEST_KAFKA_BOOTSTRAP`` /
``SOC_TEST_OPENSEARCH_URL``)."""

from __future__ import annotations

import json
import time
from contextlib import closing

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConnectionError as OSConnectionError

from soc import devstack as ds

# Also registered by tests/conftest.py; registering the same plugin name twice is a no-op.


def _json(**fields) -> bytes:
    return json.dumps(fields).encode()


def _consume(consumer: KafkaConsumer, want: int, deadline_s: float = 60.0) -> list:
    records: list = []
    deadline = time.monotonic() + deadline_s
    while len(records) < want and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=500).values():
            records.extend(batch)
    return records


@pytest.mark.kafka
def test_kafka_cluster_is_a_single_kraft_broker(kafka_bootstrap: str) -> None:
    with closing(KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id="soc-test")) as admin:
        cluster = admin.describe_cluster()
    brokers = cluster["brokers"]
    assert len(brokers) == 1
    host, port = kafka_bootstrap.rsplit(":", 1)
    assert (brokers[0]["host"], brokers[0]["port"]) == (host, int(port))


@pytest.mark.kafka
def test_kafka_produce_consume_and_commit(kafka_bootstrap: str, unique_name: str) -> None:
    topic, group = f"{unique_name}-events", f"{unique_name}-group"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id="soc-test")
    try:
        admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
        producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
        sent = [producer.send(topic, key=f"host-{i}".encode(), value=_json(n=i), partition=i % 3)
                for i in range(9)]
        metas = [f.get(timeout=30) for f in sent]
        producer.flush()
        assert sorted({m.partition for m in metas}) == [0, 1, 2]

        consumer = KafkaConsumer(
            topic, bootstrap_servers=kafka_bootstrap, group_id=group,
            auto_offset_reset="earliest", enable_auto_commit=False,
        )
        try:
            records = _consume(consumer, 9)
            assert sorted(json.loads(r.value)["n"] for r in records) == list(range(9))
            assert {r.partition for r in records} == {0, 1, 2}
            consumer.commit()
            for p in range(3):
                assert consumer.committed(TopicPartition(topic, p)) == 3
        finally:
            consumer.close()

        # The group resumes after its committed offsets: a new member sees only the new record.
        producer.send(topic, key=b"host-late", value=_json(n=99), partition=1).get(timeout=30)
        producer.close()
        consumer = KafkaConsumer(
            topic, bootstrap_servers=kafka_bootstrap, group_id=group,
            auto_offset_reset="earliest", enable_auto_commit=False,
        )
        try:
            records = _consume(consumer, 1)
            records += _consume(consumer, 1, deadline_s=1.0)  # anything more would be a bug
            assert [json.loads(r.value)["n"] for r in records] == [99]
        finally:
            consumer.close()
    finally:
        admin.delete_topics([topic])
        admin.close()


LOWERCASE_TEMPLATE = {
    "template": {
        "settings": {
            "number_of_shards": 1,
            "number_of_replicas": 0,
            "analysis": {
                "normalizer": {
                    # lowercase + asciifolding come from the analysis-common module
                    "lc": {"type": "custom", "filter": ["lowercase", "asciifolding"]},
                },
            },
        },
        "mappings": {
            "properties": {
                "@timestamp": {"type": "date"},
                "host": {"type": "keyword", "normalizer": "lc"},
                "message": {"type": "text"},
                "risk": {"type": "scaled_float", "scaling_factor": 100},  # mapper-extras module
                "hits": {"type": "integer"},
            },
        },
    },
}


@pytest.mark.search
def test_opensearch_index_search_delete(opensearch_url: str, unique_name: str) -> None:
    client = OpenSearch(hosts=[opensearch_url], timeout=30)
    info = client.info()
    assert info["version"]["distribution"] == "opensearch"
    assert info["version"]["number"].startswith("2.19.")

    template, index = f"{unique_name}-tpl", f"{unique_name}-events"
    client.indices.put_index_template(
        name=template, body={"index_patterns": [f"{unique_name}-*"], **LOWERCASE_TEMPLATE},
    )
    try:
        client.index(index=index, id="1", refresh=True, body={
            "@timestamp": "2026-01-05T10:00:00Z", "host": "DC01.Corp.Example",
            "message": "An account failed to log on", "risk": 0.75, "hits": 1,
        })
        client.index(index=index, id="2", refresh=True, body={
            "@timestamp": "2026-01-05T10:01:00Z", "host": "WS-Ärzte-07",
            "message": "A new process has been created", "risk": 0.1, "hits": 1,
        })
        assert client.cluster.health(index=index, wait_for_status="green")["status"] == "green"

        def term_ids(value: str) -> list[str]:
            res = client.search(index=index, body={"query": {"term": {"host": value}}})
            return sorted(h["_id"] for h in res["hits"]["hits"])

        # The lowercase normalizer makes exact keyword matches case-insensitive.
        assert term_ids("dc01.corp.example") == ["1"]
        assert term_ids("DC01.CORP.EXAMPLE") == ["1"]
        assert term_ids("ws-arzte-07") == ["2"]  # asciifolding
        assert term_ids("dc01") == []  # still a keyword, not full text

        res = client.search(index=index, body={"query": {"match": {"message": "failed logon"}}})
        assert [h["_id"] for h in res["hits"]["hits"]][:1] == ["1"]
        res = client.search(index=index, body={"size": 0, "query": {"range": {"risk": {"gte": 0.5}}}})
        assert res["hits"]["total"]["value"] == 1

        # Painless (lang-painless) and _delete_by_query (reindex module).
        client.update(index=index, id="1", refresh=True,
                      body={"script": {"source": "ctx._source.hits += params.n", "params": {"n": 2}}})
        assert client.get(index=index, id="1")["_source"]["hits"] == 3
        res = client.delete_by_query(index=index, refresh=True, body={"query": {"term": {"host": "WS-ARZTE-07"}}})
        assert res["deleted"] == 1

        client.delete(index=index, id="1", refresh=True)
        assert client.count(index=index)["count"] == 0
    finally:
        client.indices.delete(index=index, ignore_unavailable=True)
        client.indices.delete_index_template(name=template)
    assert not client.indices.exists(index=index)


@pytest.mark.kafka
@pytest.mark.search
def test_search_outage_and_restart_keeps_data(search_control, kafka_bootstrap: str, unique_name: str) -> None:
    url = search_control.url
    client = OpenSearch(hosts=[url], timeout=30, max_retries=0)
    index = f"{unique_name}-events"
    client.index(index=index, id="a", refresh=True, body={"host": "srv-1", "message": "before outage"})

    search_control.stop()
    assert not search_control.running
    with pytest.raises(OSConnectionError):
        client.info()
    # Kafka is unaffected by the search-engine outage.
    with closing(KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id="soc-test")) as admin:
        assert isinstance(admin.list_topics(), list)

    search_control.start()
    assert search_control.running
    assert search_control.url == url
    try:
        assert client.get(index=index, id="a")["_source"]["message"] == "before outage"
        assert client.count(index=index)["count"] == 1
    finally:
        client.indices.delete(index=index, ignore_unavailable=True)


@pytest.mark.kafka
@pytest.mark.search
def test_devstack_status_of_own_servers(devstack) -> None:
    state_dir = devstack.get("own_state_dir")
    if state_dir is None:  # both servers external (e.g. started by .ci/run): nothing of ours to inspect
        assert devstack["started"] == []
        return
    st = ds.status(state_dir)
    assert st["running"] is True
    for name in devstack["started"]:
        entry = st[name]
        assert entry["running"] and entry["listening"]
        assert entry["rss_mib"] and entry["rss_mib"] > 50
        assert entry["log"] and entry["start_seconds"] > 0
    saved = json.loads((state_dir / ds.STATE_FILE).read_text())
    assert saved["kafka_bootstrap"] == devstack["kafka_bootstrap"] or "kafka" not in devstack["started"]
    assert saved["opensearch_url"] == devstack["opensearch_url"] or "opensearch" not in devstack["started"]
