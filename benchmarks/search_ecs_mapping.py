"""What the ECS mappings cost on the search engine: write time, index size, rule query time.

Usage::

    python benchmarks/search_ecs_mapping.py --opensearch http://127.0.0.1:9200 [-n 50000] [--repeat 7]

The same events -- real lines of ``../shared/data`` (loghub OpenSSH_2k, Apache access logs) run
through the project's pipeline, repeated to ``-n``, each with a process command line of 40 to
400 characters -- are written into two stores on the node:

* **ECS** (the current template): ECS types (``match_only_text``, ``wildcard``, ``keyword``) plus
  the ``lc`` lowercase keyword multi-field of every catalogue string;
* **old**: the mapping before issue #14, every string one keyword with the lowercase normalizer.

Printed per store: bulk write time (events per second), primary store size after a flush and a
force-merge to one segment, and the median time of two compiled Sigma queries
(``message contains`` on ``message.lc``/``message``, and ``process.command_line contains``),
``--repeat`` runs each, plus the case-insensitive ``wildcard`` query on the ``wildcard`` field
that finds a substring of any length. Nothing is asserted: numbers vary with the machine's load.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from soc.ingest import Record  # noqa: E402
from soc.ingest.normalize import SourceContext  # noqa: E402
from soc.ingest.pipeline import IngestPipeline  # noqa: E402
from soc.store.base import Window  # noqa: E402
from soc.store.search import OpenSearchStore  # noqa: E402

DATA = Path(os.environ.get("SOC_SHARED_DATA") or ROOT.parent / "shared" / "data")
OLD_KEYWORD = {"type": "keyword", "normalizer": "soc_lowercase", "ignore_above": 8191}


def events(n: int, command_line: bool = True) -> list[dict[str, Any]]:
    context = SourceContext(source="bench", agency_id="so-a", agency_name="so-a", zone=ZoneInfo("UTC"))
    pipeline = IngestPipeline(context, fmt="auto")
    lines = (DATA / "loghub" / "OpenSSH" / "OpenSSH_2k.log").read_bytes().splitlines()
    lines += (DATA / "elastic-examples" / "apache_logs" / "apache_logs").read_bytes().splitlines()[:2000]
    received = datetime.now(UTC)
    base = pipeline.process([Record(raw=line, event_id=f"l{i}", received=received, origin="bench")
                             for i, line in enumerate(lines)])
    rng = random.Random(7)
    words = ["powershell.exe", "-NoProfile", "-enc", "cmd.exe", "/c", "whoami", "net", "user", "Invoke-Expression",
             "C:\\Windows\\System32\\rundll32.exe", "regsvr32", "/s", "/u", "http://example.test/a.ps1"]
    out = []
    for i in range(n):
        event = dict(base[i % len(base)])
        event["_id"] = f"b{i}"
        event["@timestamp"] = "2025-03-01T08:00:00.000Z"
        if command_line:
            event["process.command_line"] = " ".join(rng.choice(words) for _ in range(rng.randint(4, 40)))
        out.append(event)
    return out


def old_index(store: OpenSearchStore) -> None:
    store.transport.request("DELETE", f"/_index_template/{store.prefix}-events")
    store.transport.request("PUT", f"/{store.prefix}-events-2025.03.01", body={
        "settings": {"index": {"number_of_replicas": 0, "mapping.ignore_malformed": True,
                               "query.default_field": ["message"],
                               "analysis": {"normalizer": {"soc_lowercase": {"type": "custom",
                                                                             "filter": ["lowercase"]}}}}},
        "mappings": {"dynamic_templates": [{"strings": {"match_mapping_type": "string", "mapping": OLD_KEYWORD}}],
                     "properties": {"@timestamp": {"type": "date"}, "source": {"properties": {"ip": {"type": "ip"}}},
                                    "event": {"properties": {"dataset": {"type": "keyword"},
                                                             "ingested": {"type": "date"}}},
                                    "soc": {"properties": {"id": {"type": "keyword"}}}}}})


def measure(store: OpenSearchStore, batch: list[dict[str, Any]], queries: dict[str, Any], repeat: int) -> None:
    start = time.perf_counter()
    for i in range(0, len(batch), 5000):
        result = store.write_events(batch[i:i + 5000])
        assert not result.rejected and not result.retryable, result
    took = time.perf_counter() - start
    index = f"{store.prefix}-events-2025.03.01"
    store.transport.request("POST", f"/{index}/_refresh")
    store.transport.request("POST", f"/{index}/_forcemerge", params={"max_num_segments": 1})
    size = store.transport.request("GET", f"/{index}/_stats/store")["_all"]["primaries"]["store"]["size_in_bytes"]
    print(f"  write: {len(batch):,} events in {took:.1f} s ({len(batch) / took:,.0f}/s); "
          f"index {size / 1e6:.1f} MB ({size / len(batch):.0f} bytes/event)")
    for name, where in queries.items():
        times, count = [], 0
        for _ in range(repeat):
            t0 = time.perf_counter()
            count = store.count_matches(where, None, Window())
            times.append(time.perf_counter() - t0)
        print(f"  {name}: {count:,} events, median {statistics.median(times) * 1000:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--opensearch", required=True, help="http://host:port of an OpenSearch 2.x node")
    parser.add_argument("-n", type=int, default=50_000, help="events per store")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--no-command-line", action="store_true",
                        help="events without process.command_line (what the wildcard field costs)")
    args = parser.parse_args()
    batch = events(args.n, command_line=not args.no_command_line)
    url = "opensearch://" + args.opensearch.split("://", 1)[1]
    tag = uuid.uuid4().hex[:8]
    print(f"{args.n:,} events; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    for label, ecs in (("ECS mapping (current)", True), ("old mapping (lowercase keywords)", False)):
        store = OpenSearchStore.from_url(url, prefix=f"bench-{'ecs' if ecs else 'old'}-{tag}", replicas=0,
                                         retention_days=None)
        try:
            if not ecs:
                old_index(store)
            suffix = ".lc" if ecs else ""
            queries = {
                "Sigma message contains": {"query_string": {
                    "query": f"message{suffix}:*failed\\ password\\ for\\ invalid*", "allow_leading_wildcard": True}},
                "Sigma command line contains": {"query_string": {
                    "query": f"process.command_line{suffix}:*invoke\\-expression*", "allow_leading_wildcard": True}},
            }
            if ecs:
                queries["wildcard field, any length"] = {"wildcard": {"process.command_line": {
                    "value": "*invoke-expression*", "case_insensitive": True}}}
            print(label)
            measure(store, batch, queries, args.repeat)
        finally:
            store.transport.request("DELETE", f"/{store.prefix}-events-*", params={"allow_no_indices": True})
            for name in ("events", "docs", "kibana-alerts"):
                try:
                    store.transport.request("DELETE", f"/_index_template/{store.prefix}-{name}")
                except Exception:  # noqa: BLE001 -- already gone
                    pass
            store.close()


if __name__ == "__main__":
    main()
