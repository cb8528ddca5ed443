"""The indexing ceiling: how fast OpenSearch takes our events through a bare ``_bulk`` loop.

Usage::

    python benchmarks/bulk_ceiling.py [URL] [-n 100000] [--batch-size 5000] [--no-template]

``URL`` is an OpenSearch node (``http://127.0.0.1:9200``); without it a private node is
started with :func:`soc.devstack.up` (and stopped at the end). The documents are built
*before* timing from the real lines of ``../shared/data/loghub/OpenSSH/OpenSSH_2k.log``
(repeated until there are ``-n``), shaped like the store writes them: flat ECS keys,
``@timestamp``, ``event.ingested``, ``soc.id``, ``event.original``..., one
``{"create": {"_index": "<prefix>-events-YYYY.MM.DD", "_id": ...}}`` action each, serialised
with orjson into one bytes body per batch. The timed loop is only ``client.bulk(body)`` plus
counting the item statuses -- no soc code, no opensearch-py helpers -- so the figure is what
the server and one client connection can do: the ceiling the Kafka ingest worker is compared
against.

By default the soc index template is installed first (setup, not timed), so the mapping is
the production one (keyword + lowercase normalizer...); ``--no-template`` measures default
dynamic mapping instead. The benchmark indices are deleted at the end unless ``--keep``.
Prints a summary and, last, one JSON line with the figures.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DATA = Path(os.environ.get("SOC_SHARED_DATA") or ROOT.parent / "shared" / "data")  # as tests/conftest.py
LOG = DATA / "loghub" / "OpenSSH" / "OpenSSH_2k.log"
ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
YEAR = 2025

_LINE = re.compile(r"^(\w{3} +\d+ \d\d:\d\d:\d\d) (\S+) (\S+?)\[(\d+)\]: (.*)$")
_IP = re.compile(r"\b(\d{1,3}(?:\.\d{1,3}){3})\b")
_USER = re.compile(r"(?:for (?:invalid user )?|user[= ])([\w.-]+)")
_PORT = re.compile(r"port (\d+)")


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def build_documents(n: int, prefix: str) -> list[tuple[str, str, bytes]]:
    """``n`` (index, id, JSON body) triples from the OpenSSH sample, shaped like stored events."""
    lines = LOG.read_text(encoding="utf-8", errors="replace").splitlines()
    ingested = _iso(datetime.now(ZoneInfo("UTC")))
    docs: list[tuple[str, str, bytes]] = []
    offset = 0
    offsets = []
    for line in lines:
        offsets.append(offset)
        offset += len(line.encode()) + 1
    rep = 0
    while len(docs) < n:
        for line, off in zip(lines, offsets, strict=True):
            if len(docs) >= n:
                break
            m = _LINE.match(line)
            if not m:
                continue
            stamp, host, program, pid, message = m.groups()
            local = datetime.strptime(f"{YEAR} {stamp}", "%Y %b %d %H:%M:%S").replace(tzinfo=ZONE)
            ts = (local + timedelta(milliseconds=rep)).astimezone(ZoneInfo("UTC"))
            id_ = hashlib.blake2b(f"file|{LOG}|{off}|{rep}".encode(), digest_size=16).hexdigest()
            doc: dict[str, object] = {
                "@timestamp": _iso(ts), "event.created": ingested, "event.ingested": ingested,
                "event.original": line, "message": message, "event.dataset": "linux.sshd",
                "event.module": "sshd", "event.kind": "event", "event.timezone": "Asia/Ho_Chi_Minh",
                "host.name": host, "host.hostname": host, "process.name": program, "process.pid": int(pid),
                "log.syslog.appname": program, "log.syslog.procid": pid,
                "organization.id": "so-tttt", "organization.name": "Sở Thông tin và Truyền thông",
                "soc.time.raw": stamp, "soc.time.zone": "source", "soc.time.year": "inferred",
                "soc.parse.status": "parsed", "soc.id": id_,
            }
            if ip := _IP.search(message):
                doc["source.ip"] = ip.group(1)
            if user := _USER.search(message):
                doc["user.name"] = user.group(1)
            if port := _PORT.search(message):
                doc["source.port"] = int(port.group(1))
            if message.startswith("Failed password"):
                doc.update({"event.category": "authentication", "event.outcome": "failure",
                            "event.action": "ssh_login"})
            docs.append((f"{prefix}-events-{ts.strftime('%Y.%m.%d')}", id_, orjson.dumps(doc)))
        rep += 1
    return docs


def batches(docs: list[tuple[str, str, bytes]], size: int) -> list[tuple[int, bytes]]:
    out = []
    for start in range(0, len(docs), size):
        chunk = docs[start:start + size]
        body = b"".join(b'{"create":{"_index":"%s","_id":"%s"}}\n%s\n' % (index.encode(), id_.encode(), doc)
                        for index, id_, doc in chunk)
        out.append((len(chunk), body))
    return out


def timed_bulk(client: Any, payloads: list[tuple[int, bytes]]) -> tuple[float, dict[int, int]]:
    """The timed loop: one bulk request per pre-serialised batch, nothing else. Returns the
    seconds it took and the count of each item status."""
    statuses: dict[int, int] = {}
    t0 = time.perf_counter()
    for _, body in payloads:
        resp = client.bulk(body=body, params={"filter_path": "errors,items.*.status,items.*.error"})
        for item in resp["items"]:
            status = next(iter(item.values()))["status"]
            statuses[status] = statuses.get(status, 0) + 1
    return time.perf_counter() - t0, statuses


def run(url: str, n: int, batch_size: int, template: bool, keep: bool) -> dict[str, object]:
    from opensearchpy import OpenSearch

    prefix = f"bench-ceiling-{int(time.time())}"
    if template:
        from soc.store.search import OpenSearchStore

        OpenSearchStore.from_url("opensearch://" + url.split("://", 1)[1], prefix=prefix, replicas=0,
                                 retention_days=None).close()
    client = OpenSearch(hosts=[url], timeout=300, max_retries=0)
    t0 = time.perf_counter()
    docs = build_documents(n, prefix)
    payloads = batches(docs, batch_size)
    build_seconds = time.perf_counter() - t0
    body_bytes = sum(len(body) for _, body in payloads)
    seconds, statuses = timed_bulk(client, payloads)
    client.indices.refresh(index=f"{prefix}-events-*")
    stored = client.count(index=f"{prefix}-events-*")["count"]
    if not keep:
        client.indices.delete(index=f"{prefix}-events-*")
        if template:
            for name in ("events", "docs"):
                client.indices.delete_index_template(name=f"{prefix}-{name}", ignore=[404])
    client.close()
    return {"docs": n, "batch_size": batch_size, "template": template, "seconds": round(seconds, 3),
            "docs_per_s": round(n / seconds), "mb_per_s": round(body_bytes / seconds / 1e6, 1),
            "avg_doc_bytes": round(body_bytes / n), "statuses": statuses, "stored": stored,
            "build_seconds": round(build_seconds, 2), "url": url}


def bench_dir(prefix: str) -> Path:
    """A fresh private folder for a benchmark's devstack under the repository's ``.cache``,
    creating ``.cache`` first: in a fresh clone only the test suite would have made it."""
    from soc import devstack

    cache = Path(devstack.DEFAULT_CACHE_DIR)
    cache.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=cache))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", nargs="?", help="OpenSearch URL; default: start one with soc.devstack")
    parser.add_argument("-n", type=int, default=100_000, help="documents to index (default 100,000)")
    parser.add_argument("--batch-size", type=int, default=5000, help="documents per _bulk request")
    parser.add_argument("--no-template", action="store_true", help="skip the soc index template")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark indices")
    args = parser.parse_args()
    if not LOG.exists():
        sys.exit(f"real data not found at {LOG} (clone the shared data next to the repo)")
    state_dir = None
    url = args.url
    if url is None:
        from soc import devstack

        state_dir = bench_dir("bench-ceiling-")
        url = devstack.up(state_dir, kafka=False, search=True)["opensearch_url"]
    try:
        figures = run(url, args.n, args.batch_size, not args.no_template, args.keep)
    finally:
        if state_dir is not None:
            from soc import devstack

            devstack.down(state_dir)
            shutil.rmtree(state_dir, ignore_errors=True)
    print(f"{figures['docs']:,} docs in {figures['seconds']} s with batches of {figures['batch_size']:,}: "
          f"{figures['docs_per_s']:,} docs/s, {figures['mb_per_s']} MB/s "
          f"({figures['avg_doc_bytes']} bytes/doc; statuses {figures['statuses']}; stored {figures['stored']:,}; "
          f"template {'soc' if figures['template'] else 'none'})")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
