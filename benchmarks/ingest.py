"""Kafka -> OpenSearch ingest with one worker, next to the bulk-indexing ceiling of the same run.

Usage::

    python benchmarks/ingest.py [--bootstrap HOST:PORT --opensearch URL] [-n 100000] [--batch-size 5000] [--small 2000]

Without ``--bootstrap``/``--opensearch`` a private devstack (real Kafka and OpenSearch from
Maven Central jars, :mod:`soc.devstack`) is started and stopped at the end.

1. **Input** (not timed): the real lines of ``../shared/data/loghub/OpenSSH/OpenSSH_2k.log``,
   repeated to ``-n`` records, are produced to a fresh single-partition topic (key: an agency).
2. **Ceiling, same documents**: the documents the worker will store -- the same records run
   through the same pipeline (decode, parse, normalize) and shaped exactly as the store writes
   them (``event.ingested``, ``soc.id``, day index) -- are pre-serialised *before* timing and
   bulk-indexed by a bare client loop (:func:`benchmarks.bulk_ceiling.batches` bodies, one
   ``client.bulk`` per batch, nothing else), with the soc index template. Measured before and
   after the worker (the machine is shared); the mean is the ceiling the ratio uses.
3. **Worker**: ``soc kafka worker`` as a subprocess (its own interpreter; its peak RSS is the
   ``VmHWM`` it reports in its final metrics), with ``--until-idle``. Its rate is documents stored over the time from its first record
   taken to its last offset commit: fetch, decode, parse, normalize, serialise, bulk-write and
   commit all inside the timed span, process start-up and group join outside it.
4. For reference, :func:`benchmarks.bulk_ceiling.run` (its own synthetic OpenSSH-shaped
   documents, fewer fields) is printed too.
5. **Worker CPU per event** (issue #12: at most 40 us): the worker's CPU time (user + system,
   from ``wait4``) includes a fixed cost -- interpreter start, imports, connecting, the idle wait
   of ``--until-idle`` -- so the worker also runs over a second topic of ``--small`` records, and
   the slope between the two runs is the CPU per event.

Prints both rates, their ratio (target >= 80%), the worker's peak RSS, and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import bulk_ceiling  # noqa: E402  (sibling benchmark: the ceiling is measured the same way)

LOG = bulk_ceiling.LOG


def produce(bootstrap: str, topic: str, n: int) -> None:
    from kafka import KafkaAdminClient, KafkaProducer
    from kafka.admin import NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, 1, 1)])
    admin.close()
    lines = [ln for ln in LOG.read_bytes().splitlines() if ln.strip()]
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20, batch_size=512 * 1024)
    for i in range(n):
        producer.send(topic, key=b"so-tttt", value=lines[i % len(lines)])
    producer.flush()
    producer.close()


def same_documents(topic: str, n: int, prefix: str) -> list[tuple[str, str, bytes]]:
    """(index, id, body) of the documents the worker stores for this topic, as the store writes them."""
    import orjson

    from soc.agencies import load_agencies
    from soc.ingest.pipeline import IngestPipeline
    from soc.kafka.messages import context_for, inspect, to_record
    from soc.model import iso, now_utc

    agencies = load_agencies()
    key, _ = inspect(topic, b"so-tttt", b"x", None, agencies, "Asia/Ho_Chi_Minh")
    pipeline = IngestPipeline(context_for(key, agencies))
    lines = [ln for ln in LOG.read_bytes().splitlines() if ln.strip()]
    ingested = iso(now_utc())
    stamp = int(time.time() * 1000)
    docs = []
    for i in range(n):
        event = pipeline.process_one(to_record(topic, 0, i, stamp, lines[i % len(lines)], None))
        id_ = event.pop("_id")
        event["event.ingested"] = ingested
        event["soc.id"] = id_
        ts = event["@timestamp"]
        docs.append((f"{prefix}-events-{ts[:4]}.{ts[5:7]}.{ts[8:10]}", id_, orjson.dumps(event)))
    return docs


def ceiling_same(url: str, topic: str, n: int, batch_size: int) -> dict[str, object]:
    """The bare bulk loop over the worker's own documents, pre-serialised (build not timed)."""
    from opensearchpy import OpenSearch

    from soc.store.search import OpenSearchStore

    prefix = f"bench-same-{uuid.uuid4().hex[:8]}"
    OpenSearchStore.from_url("opensearch://" + url.split("://", 1)[1], prefix=prefix, replicas=0,
                             retention_days=None).close()
    payloads = bulk_ceiling.batches(same_documents(topic, n, prefix), batch_size)
    client = OpenSearch(hosts=[url], timeout=300, max_retries=0)
    seconds, statuses = bulk_ceiling.timed_bulk(client, payloads)
    drop(url, prefix)
    client.close()
    return {"docs_per_s": round(n / seconds), "seconds": round(seconds, 3), "statuses": statuses,
            "avg_doc_bytes": round(sum(len(b) for _, b in payloads) / n)}


def run_worker(bootstrap: str, topic: str, url: str, prefix: str, batch_size: int) -> dict[str, object]:
    cmd = [sys.executable, "-m", "soc.cli", "kafka", "worker", "-b", bootstrap, "-t", topic, "-g", topic,
           "--store-url", "opensearch://" + url.split("://", 1)[1], "--index-prefix", prefix, "--replicas", "0",
           "--dead-letter-topic", f"{topic}.dlq", "--batch-size", str(batch_size), "--until-idle", "5"]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=err, env={**os.environ, "PYTHONPATH": str(ROOT)})
        _, code, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(code)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise SystemExit(f"worker failed:\n{err.read().decode()[-3000:]}")
        metrics = json.loads(out.read().decode().strip().splitlines()[-1])
    seconds = metrics["last_commit_at"] - metrics["first_record_at"]
    return {"stored": metrics["stored"], "seconds": round(seconds, 3),
            "docs_per_s": round(metrics["stored"] / seconds), "rss_mib": metrics.get("peak_rss_mib"),
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 2), "batches": metrics["batches"],
            "dead_letters": metrics["dead_letters"], "retries": metrics["retries"]}


def drop(url: str, prefix: str) -> None:
    from opensearchpy import OpenSearch

    client = OpenSearch(hosts=[url], timeout=120)
    client.indices.delete(index=f"{prefix}-*", params={"allow_no_indices": "true"})
    for name in ("events", "docs"):
        client.indices.delete_index_template(name=f"{prefix}-{name}", ignore=[404])
    client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", help="Kafka host:port; default: start a devstack")
    parser.add_argument("--opensearch", help="OpenSearch URL; default: start a devstack")
    parser.add_argument("-n", type=int, default=100_000, help="records (default 100,000)")
    parser.add_argument("--batch-size", type=int, default=5000, help="documents per bulk request (both sides)")
    parser.add_argument("--small", type=int, default=2000, help="records of the second worker run (CPU slope)")
    args = parser.parse_args()
    if not LOG.exists():
        sys.exit(f"real data not found at {LOG} (clone the shared data next to the repo)")
    state_dir = None
    bootstrap, url = args.bootstrap, args.opensearch
    if not bootstrap or not url:
        from soc import devstack

        state_dir = bulk_ceiling.bench_dir("bench-ingest-")
        state = devstack.up(state_dir, kafka=not bootstrap, search=not url)
        bootstrap = bootstrap or state["kafka_bootstrap"]
        url = url or state["opensearch_url"]
    topic = f"bench-ingest-{uuid.uuid4().hex[:8]}"
    try:
        produce(bootstrap, topic, args.n)
        same_1 = ceiling_same(url, topic, args.n, args.batch_size)
        worker = run_worker(bootstrap, topic, url, topic, args.batch_size)
        drop(url, topic)
        same_2 = ceiling_same(url, topic, args.n, args.batch_size)
        synthetic = bulk_ceiling.run(url, args.n, args.batch_size, True, False)
        small_topic = f"{topic}-small"
        produce(bootstrap, small_topic, args.small)
        small = run_worker(bootstrap, small_topic, url, small_topic, args.batch_size)
        drop(url, small_topic)
    finally:
        if state_dir is not None:
            from soc import devstack

            devstack.down(state_dir)
            shutil.rmtree(state_dir, ignore_errors=True)
    ceiling = (same_1["docs_per_s"] + same_2["docs_per_s"]) / 2  # type: ignore[operator]
    ratio = worker["docs_per_s"] / ceiling  # type: ignore[operator]
    cpu_us = (worker["cpu_s"] - small["cpu_s"]) / (args.n - args.small) * 1e6  # type: ignore[operator]
    print(f"ceiling, same documents pre-serialised, bare bulk loop: {same_1['docs_per_s']:,} and "
          f"{same_2['docs_per_s']:,} docs/s (mean {ceiling:,.0f}; {same_1['avg_doc_bytes']} bytes/doc)")
    print(f"worker (Kafka -> decode/parse/normalize -> bulk -> commit): {worker['docs_per_s']:,} docs/s "
          f"({worker['stored']:,} in {worker['seconds']} s, {worker['batches']} bulk requests, "
          f"{worker['cpu_s']} s CPU), peak RSS {worker['rss_mib']} MiB")
    print(f"ratio: {ratio:.0%} of the ceiling (target 80%)")
    print(f"worker CPU per event: {cpu_us:.1f} us (slope between {args.small:,} records, {small['cpu_s']} s CPU, "
          f"and {args.n:,}; target 40 us)")
    print(f"(reference: benchmarks/bulk_ceiling.py's synthetic OpenSSH documents: {synthetic['docs_per_s']:,} docs/s, "
          f"{synthetic['avg_doc_bytes']} bytes/doc)")
    print(json.dumps({"n": args.n, "batch_size": args.batch_size,
                      "ceiling_same_docs_per_s": [same_1["docs_per_s"], same_2["docs_per_s"]],
                      "worker": worker, "ratio": round(ratio, 3), "worker_small": small,
                      "worker_cpu_us_per_event": round(cpu_us, 1),
                      "bulk_ceiling_synthetic_docs_per_s": synthetic["docs_per_s"],
                      "load_avg": os.getloadavg(), "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}))


if __name__ == "__main__":
    main()
