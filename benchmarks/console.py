"""Server time of the analyst console at 1,000,000 alerts, on SQLite and on OpenSearch.

Seeds N alerts (default 1,000,000) over 50 agencies and 300 rules with the events they point to,
their triage history, incidents (with notes and tasks) -- benchmarks/console_seed.py says what
the data looks like -- into a SQLite store and into a real OpenSearch 2.19 node (the devstack's,
from the Maven Central jars, no Docker), then measures p50/p95 server time over ``--reps``
repetitions (default 30, after 3 untimed warm-ups; each repetition with other filters or ids),
acting as an analyst (every agency) and as an agency user (one agency; five agencies of
different sizes in turn), of:

queue first page    open alerts newest first, 50, with the total (``GET /alerts``)
filtered page       one of: level, rule, agency, host, user, source IP, free text, time range
group-by 2 fields   counts per (agency, rule), (rule, status), (level, agency), (status, level)
alert detail        the alert, its history, its events
incident timeline   the incident and its timeline (alerts, their changes, notes, tasks, reports)
dashboard           30 days: per day and level, per agency, top rules, open incidents per agency
event search        a page of events (filter or free text, 1 h to 7 days) and its histogram

Where the console has the page (a route of the console app answers it), the page itself is
timed over HTTP (``fastapi.testclient``, a logged-in session: server time = request wall
time in process); otherwise the service calls the page makes (``App.acting_as(principal)``,
the helpers of ``soc/web/api``) are timed, and the table says which (``via``).

The seeded stores are kept in ``.cache/bench-console-N-sqlite`` and
``.cache/bench-console-N-opensearch`` (the node's data folder): a second run skips seeding.

    .venv/bin/python benchmarks/console.py [-n 1000000] [--stores sqlite,opensearch] [--reps 30]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).resolve().parent)]

import console_ops as ops  # noqa: E402
from console_seed import Plan, agency_tree, seed  # noqa: E402

from soc.app import App  # noqa: E402
from soc.clock import fixed_clock  # noqa: E402
from soc.config import Settings  # noqa: E402
from soc.config_auth import AuthSettings  # noqa: E402
from soc.devstack import maven, processes  # noqa: E402
from soc.devstack import opensearch as opensearch_server  # noqa: E402
from soc.devstack.common import DEFAULT_CACHE_DIR  # noqa: E402
from soc.store import search_mappings as maps  # noqa: E402
from soc.store.sqlite_doc_fields import ensure_field_tables  # noqa: E402
from soc.store.sqlite_schema import _INDEXES  # noqa: E402
from soc.store.sqlite_sql import _transaction  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "bench"
SEED_VERSION = 2
#: JVM of the benchmark's node: a bigger heap than the test node's and the C2 compiler
OPENSEARCH_JAVA_OPTS = "-Xms2g -Xmx2g -XX:TieredStopAtLevel=4"


def cache_dir(n: int, kind: str) -> Path:
    return ROOT / ".cache" / f"bench-console-{n}-{kind}"


def settings_for(folder: Path) -> Settings:
    auth = AuthSettings(argon2_time_cost=1, argon2_memory_kib=19456, argon2_parallelism=1)
    return Settings(data_dir=folder / "data", auth=auth)


def read_meta(folder: Path) -> dict[str, Any] | None:
    path = folder / "meta.json"
    if not path.is_file():
        return None
    meta = json.loads(path.read_text())
    return meta if meta.get("version") == SEED_VERSION and meta.get("complete") else None


def write_meta(folder: Path, meta: dict[str, Any]) -> None:
    (folder / "meta.json").write_text(json.dumps({**meta, "version": SEED_VERSION, "complete": True}, indent=1))


# -- SQLite -------------------------------------------------------------------------------------
def sqlite_root(n: int, now: datetime | None) -> tuple[App, dict[str, Any]]:
    """The service layer over the seeded SQLite store (seeding it first when it is not cached)."""
    folder = cache_dir(n, "sqlite")
    meta = read_meta(folder)
    if meta is not None and now is not None and datetime.fromisoformat(meta["now"]) != now:
        meta = None  # seeded for another moment than the other store's data: seed it again
    if meta is None:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    stamp = datetime.fromisoformat(meta["now"]) if meta else now or _now()
    root = App(settings_for(folder), store_url=f"sqlite:///{folder / 'soc.db'}", clock=fixed_clock(stamp))
    root.__dict__["_agencies"] = agency_tree()
    if meta is None:
        store: Any = root.base_store

        def docs(collection: str, bodies: list[dict[str, Any]]) -> None:
            conn = store._conn()
            conn.execute("PRAGMA cache_size = -1048576")  # 1 GiB while seeding (this connection)
            rows = [(collection, b["id"], orjson.dumps(b).decode()) for b in bodies]
            with _transaction(conn, immediate=True):
                conn.executemany("INSERT OR IGNORE INTO docs (collection, id, version, body) VALUES (?, ?, 1, ?)",
                                 rows)

        conn = store._conn()
        _without_indexes(conn)
        meta = _seed(root, n, stamp, docs, lambda events: _check(store.write_events(events), store, events))
        t0 = time.monotonic()
        ensure_field_tables(conn)  # the field tables filled from the documents, then indexed
        conn.executescript(_INDEXES)
        meta["index_seconds"] = round(time.monotonic() - t0, 1)
        write_meta(folder, meta)
    meta["size_mib"] = round(sum(p.stat().st_size for p in folder.glob("soc.db*")) / 2**20)
    return root, meta


def _without_indexes(conn: Any) -> None:
    """Seeding: no field tables, triggers or event indexes yet (the store builds them once from
    the documents when it opens: :func:`ensure_field_tables`), so that a batch does not rewrite
    every page of every index."""
    with _transaction(conn, immediate=True):
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
            conn.execute(f"DROP TRIGGER {name}")
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND "
                                    "(name LIKE 'doc_fields_%' OR name LIKE 'doc_values_%')").fetchall():
            conn.execute(f"DROP TABLE {name}" if name != "doc_fields_meta" else "DELETE FROM doc_fields_meta")
        for name in ("events_ingested", "events_ts", "events_dataset_ts"):
            conn.execute(f"DROP INDEX IF EXISTS {name}")


def shared_now(n: int) -> datetime | None:
    """The moment the seeded data of ``n`` alerts ends (the data is drawn from it: both stores
    must have the same), from the OpenSearch cache (the slower one to seed), else SQLite's."""
    for kind in ("opensearch", "sqlite"):
        meta = read_meta(cache_dir(n, kind))
        if meta is not None:
            return datetime.fromisoformat(meta["now"])
    return None


def _now() -> datetime:
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def _check(result: Any, store: Any, events: list[dict[str, Any]]) -> None:
    for _ in range(20):
        if result.rejected:
            raise SystemExit(f"events rejected: {result.rejected[:3]}")
        if not result.retryable:
            return
        time.sleep(1)
        wanted = set(result.retryable)
        result = store.write_events([e for e in events if e["_id"] in wanted])
    raise SystemExit("events still refused after 20 retries")


def _seed(root: App, n: int, stamp: datetime, docs: Callable[..., None], events: Callable[..., None],
          writers: int = 1) -> dict[str, Any]:
    print(f"seeding {n:,} alerts into {root.base_store!r} ...", file=sys.stderr)
    t0 = time.monotonic()
    plan = Plan(n, stamp)
    counts = seed(plan, docs, events, writers=writers)
    seconds = round(time.monotonic() - t0, 1)
    print(f"  seeded in {seconds:,} s: {counts}", file=sys.stderr)
    return {"now": stamp.isoformat(), "seed_seconds": seconds, "counts": counts}


# -- OpenSearch ---------------------------------------------------------------------------------
class Node:
    """A one-node OpenSearch whose data folder is the benchmark's cache (kept across runs)."""

    def __init__(self, folder: Path):
        ports = processes.free_ports(2)
        folder.mkdir(parents=True, exist_ok=True)
        self.entry: dict[str, Any] = {"pid": None, "port": ports[0], "transport_port": ports[1],
                                      "run_dir": str(folder), "data_dir": str(folder / "node"),
                                      "log": str(folder / "server.log")}

    def start(self) -> str:
        os.environ["SOC_DEVSTACK_JAVA_OPTS"] = OPENSEARCH_JAVA_OPTS
        libs = maven.fetch(DEFAULT_CACHE_DIR, quiet=True)
        print(f"starting OpenSearch on port {self.entry['port']} ({OPENSEARCH_JAVA_OPTS}) ...", file=sys.stderr)
        opensearch_server.start_opensearch(self.entry, libs["opensearch"], 300)
        print(f"  ready in {self.entry['start_seconds']} s", file=sys.stderr)
        return f"opensearch://127.0.0.1:{self.entry['port']}"

    def rss_mib(self) -> float | None:
        return processes.rss_mib(self.entry.get("pid"))

    def stop(self) -> None:
        processes.terminate(self.entry.get("pid"), self.entry["run_dir"], 60)


def opensearch_root(n: int, node: Node, now: datetime | None) -> tuple[App, dict[str, Any]]:
    folder = cache_dir(n, "opensearch")
    meta = read_meta(folder)
    stamp = datetime.fromisoformat(meta["now"]) if meta else now or _now()
    url = node.start()
    root = App(settings_for(folder), store_url=url, clock=fixed_clock(stamp),
               store_options={"prefix": PREFIX, "replicas": 0, "query_timeout": 120})
    root.__dict__["_agencies"] = agency_tree()
    store: Any = root.base_store
    if meta is None:
        store._call("DELETE", f"/{PREFIX}-*", params={"expand_wildcards": "all"}, what="dropping old indices")
        for collection in ("alerts", "alert_history", "incidents", "tasks"):
            store._create_index(store._doc_index(collection))
        _index_settings(store, "-1")

        def docs(collection: str, bodies: list[dict[str, Any]]) -> None:
            index = store._doc_index(collection).encode()
            lines = b"".join(b'{"create":{"_index":"%s","_id":%s}}\n%s\n' % (
                index, orjson.dumps(b["id"]), orjson.dumps({**b, maps.DOC_ID_FIELD: b["id"]})) for b in bodies)
            resp = store.transport.request("POST", "/_bulk", params={"filter_path": "errors,items.*.error"},
                                           body=lines, ndjson=True, timeout=600)
            if resp.get("errors"):
                raise SystemExit(f"bulk write of {collection} failed: {str(resp)[:500]}")

        first = [True]

        def events(batch: list[dict[str, Any]]) -> None:
            _check(store.write_events(batch), store, batch)
            if first[0]:  # the day indices exist now: no refresh while seeding
                first[0] = False
                _index_settings(store, "-1")

        meta = _seed(root, n, stamp, docs, events, writers=2)
        _index_settings(store, None)
        t0 = time.monotonic()
        store._call("POST", f"/{PREFIX}-*/_refresh", what="refresh")
        store._call("POST", f"/{PREFIX}-*/_flush", what="flush")
        meta["refresh_seconds"] = round(time.monotonic() - t0, 1)
        write_meta(folder, meta)
    stats = store._call("GET", f"/{PREFIX}-*/_stats/store,docs", what="index sizes")
    meta["size_mib"] = round(stats["_all"]["primaries"]["store"]["size_in_bytes"] / 2**20)
    meta["segments"] = store._call("GET", f"/{PREFIX}-*/_stats/segments", what="segments")["_all"]["primaries"][
        "segments"]["count"]
    return root, meta


def _index_settings(store: Any, refresh: str | None) -> None:
    store._call("PUT", f"/{PREFIX}-*/_settings", body={"index": {"refresh_interval": refresh}},
                what="index settings")


# -- report -------------------------------------------------------------------------------------
def table(rows: list[dict[str, Any]]) -> str:
    head = f"{'operation':<20} {'as':<8} {'store':<11} {'via':<8} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}  goal      met"
    lines = [head, "-" * len(head)]
    for r in rows:
        goal = f"p95 < {r['goal_ms']:,}" if r["goal_ms"] else "-"
        met = "-" if not r["goal_ms"] else "yes" if r["p95"] < r["goal_ms"] else "NO"
        lines.append(f"{r['op']:<20} {r['as']:<8} {r['store']:<11} {r['via']:<8} {r['p50']:>8.1f} {r['p95']:>8.1f} "
                     f"{r['max']:>8.1f}  {goal:<9} {met}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=1_000_000, help="alerts (default 1,000,000)")
    parser.add_argument("--stores", default="sqlite,opensearch", help="sqlite, opensearch or both")
    parser.add_argument("--reps", type=int, default=30, help="timed repetitions per operation (default 30)")
    parser.add_argument("--only", default="", help="comma-separated operations to run (default: all)")
    parser.add_argument("--via", choices=("auto", "page", "service"), default="auto",
                        help="time the console page (auto: where the console has it) or the service calls")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--seed-only", action="store_true", help="seed the stores (when not cached), measure nothing")
    parser.add_argument("--now", type=datetime.fromisoformat,
                        help="where the seeded data ends (default: that of a store already seeded, else this hour)")
    args = parser.parse_args()
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    load_before = os.getloadavg()
    rows: list[dict[str, Any]] = []
    report: dict[str, Any] = {"n": args.n, "reps": args.reps, "stores": {}}
    node: Node | None = None
    now = args.now or shared_now(args.n) or _now()
    try:
        for kind in stores:
            if kind == "sqlite":
                root, meta = sqlite_root(args.n, now)
            elif kind == "opensearch":
                node = Node(cache_dir(args.n, "opensearch"))
                root, meta = opensearch_root(args.n, node, now)
            else:
                raise SystemExit(f"unknown store {kind!r}: use sqlite or opensearch")
            with root:
                if not args.seed_only:
                    print(f"measuring on {kind} ({meta['counts']}) ...", file=sys.stderr)
                    plan = Plan(args.n, datetime.fromisoformat(meta["now"]))
                    rows += ops.measure(root, plan, kind, args.reps, only, args.via)
                if node is not None:
                    meta["opensearch_rss_mib"] = node.rss_mib()
                report["stores"][kind] = meta
            if node is not None:
                node.stop()
                node = None
    finally:
        if node is not None:
            node.stop()
    report["rows"] = rows
    report["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    report["load_before"], report["load_after"] = load_before, os.getloadavg()
    print()
    print(table(rows))
    print()
    for kind, meta in report["stores"].items():
        extra = f", OpenSearch RSS {meta['opensearch_rss_mib']:,.0f} MiB" if meta.get("opensearch_rss_mib") else ""
        print(f"{kind}: {meta['counts']}; seeded in {meta['seed_seconds']:,} s (cached after the first run); "
              f"{meta['size_mib']:,} MiB on disk{extra}")
    print(f"peak RSS of this process: {report['peak_rss_mib']:,} MiB; load average before "
          f"{'/'.join(f'{x:.2f}' for x in load_before)}, after {'/'.join(f'{x:.2f}' for x in report['load_after'])} "
          f"({os.cpu_count()} cores)")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
