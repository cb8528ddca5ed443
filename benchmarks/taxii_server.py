"""The TAXII 2.1 server's store side: how long adding N objects in one request takes, and how
long a client needs to page through them (docs/taxii.md).

Usage::

    python benchmarks/taxii_server.py [-n 5000] [--limit 1000] [--opensearch URL]

Always on a fresh SQLite store in a temporary folder; with ``--opensearch`` (or
``SOC_TEST_OPENSEARCH_URL``) also on that node under a fresh index prefix (deleted at the end).
Measured through :class:`soc.intel.taxii_objects.TaxiiObjects` -- what ``POST .../objects/`` and
``GET .../objects/`` do after HTTP: ``add`` (validation, lookup of existing versions, the
sequence block, one bulk create of the objects) and ``page`` (one document query per
page). Prints one line per store and, last, one JSON line with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from soc.intel.taxii_objects import Filters, TaxiiObjects  # noqa: E402
from soc.store.base import Store  # noqa: E402


def indicator(n: int) -> dict[str, Any]:
    address = f"198.51.{n // 250 % 250}.{n % 250 + 1}"
    return {"type": "indicator", "spec_version": "2.1", "id": f"indicator--{uuid.uuid5(uuid.NAMESPACE_URL, str(n))}",
            "created": "2026-12-01T00:00:00.000Z", "modified": "2026-12-01T00:00:00.000Z",
            "name": f"ipv4 {address}", "pattern": f"[ipv4-addr:value = '{address}']", "pattern_type": "stix",
            "valid_from": "2026-12-01T00:00:00Z"}


def measure(store: Store, count: int, limit: int) -> dict[str, float]:
    objects = TaxiiObjects(store)
    envelope = [indicator(n) for n in range(count)]
    start = time.perf_counter()
    result = objects.add("bench", envelope)
    added = time.perf_counter() - start
    assert len(result.successes) == count and not result.failures
    start, seen, pages, cursor = time.perf_counter(), 0, 0, None
    while True:
        page = objects.page("bench", Filters(), limit, cursor)
        seen, pages = seen + len(page.records), pages + 1
        if not page.more:
            break
        cursor = page.next
    paged = time.perf_counter() - start
    assert seen == count
    return {"objects": count, "add_seconds": round(added, 3), "add_us_per_object": round(added / count * 1e6, 1),
            "pages": pages, "page_seconds": round(paged, 3), "page_ms_each": round(paged / pages * 1000, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=5000, help="objects in the one request (default 5000)")
    parser.add_argument("--limit", type=int, default=1000, help="objects per page (default 1000)")
    parser.add_argument("--opensearch", default=os.environ.get("SOC_TEST_OPENSEARCH_URL"),
                        help="also an OpenSearch node (default: SOC_TEST_OPENSEARCH_URL)")
    args = parser.parse_args()
    figures: dict[str, Any] = {"load_average": os.getloadavg()[0], "cpus": os.cpu_count()}

    from soc.store.sqlite import SQLiteStore

    with tempfile.TemporaryDirectory() as folder:
        sqlite = SQLiteStore(Path(folder) / "soc.db")
        figures["sqlite"] = measure(sqlite, args.n, args.limit)
        sqlite.close()
    print("sqlite     ", figures["sqlite"])
    if args.opensearch:
        from soc.store import open_store

        prefix = f"bench-taxii-{uuid.uuid4().hex[:8]}"
        search: Any = open_store("opensearch://" + args.opensearch.split("://", 1)[1], prefix=prefix, replicas=0)
        try:
            figures["opensearch"] = measure(search, args.n, args.limit)
        finally:
            search.transport.request("DELETE", f"/{prefix}-docs-*,{prefix}-events-*",
                                     params={"ignore_unavailable": True, "allow_no_indices": True})
            for name in ("events", "docs", "kibana-alerts"):
                try:
                    search.transport.request("DELETE", f"/_index_template/{prefix}-{name}")
                except Exception:  # noqa: BLE001 -- best effort: a template that was never made
                    pass
            search.close()
        print("opensearch ", figures["opensearch"])
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
