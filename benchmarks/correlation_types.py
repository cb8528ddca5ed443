"""Cost of the correlation types of issue #15: ``value_sum`` and ``beaconing`` windows, and the
``first_seen`` baseline asked of the store as one aggregation instead of every past match.

    .venv/bin/python benchmarks/correlation_types.py [--points 200000] [--history 200000]
                                                      [--opensearch http://127.0.0.1:9200]

**Windows** (pure Python, :mod:`soc.detect.correlate`): ``--points`` firewall sessions spread
over 2,000 address pairs and 24 hours, each with a byte count; one pair in ten beacons every 600
s (+- 20 s). Timed: ``event_count`` (the reference), ``value_sum`` and ``beaconing`` over the same points.

**Baseline** (a store): ``--history`` SSH logins over 30 days by 500 accounts, each from its
three usual addresses, are written to a scratch SQLite store (and to OpenSearch with ``--opensearch``), then
the ``first_seen`` baseline of "New Login Source For An Administrative Account" before the last
day is built twice: with ``Store.aggregate_matches`` (what the engine does: one row per account
and address) and, for comparison, by pulling every past match with ``find_matches``.

**Sum pre-check**: ``--points`` FortiGate night sessions (up to 10 MB each, 500 machines to 20
external addresses, over 6 hours) in a scratch store: the ``value_sum`` pre-check of "Large Outbound Transfer To One
External Address At Night" (one aggregation; no pair reaches 500 MB in an hour) against reading
every match of its base rule, which is what the window logic would otherwise need; each is run
once to warm up (columns prepared, caches filled), then timed.

The machine may be shared: the load average is printed. Prints a table and, last, one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from soc.catalog import default_catalog  # noqa: E402
from soc.detect.compiler import CorrelationSpec, compile_rules  # noqa: E402
from soc.detect.correlate import Point, correlate, pair_key  # noqa: E402
from soc.detect.firstseen import baseline  # noqa: E402
from soc.detect.rules import load_rules  # noqa: E402
from soc.model import iso  # noqa: E402
from soc.store.base import Store, Window  # noqa: E402
from soc.store.sqlite import SQLiteStore  # noqa: E402

FIRST_SEEN = "53857040-7650-4156-bab9-210f1f3ecde0"
SUM = "8e2b6a47-1d3c-4f95-b0e8-7c5a2d9f4e13"
DAY = 86400.0
START = 1_795_000_000.0


def _points(n: int) -> list[Point]:
    rng = random.Random(15)
    out = []
    for i in range(n):
        pair = i % 2000
        ts = (START + (i // 2000) * 600 + rng.uniform(-20, 20)) if pair % 10 == 0 else START + rng.uniform(0, DAY)
        out.append(Point(ts, "r", "a", {"source.ip": f"10.0.{pair // 250}.{pair % 250}", "destination.ip": "45.77.12.34",
                                        "source.bytes": rng.randrange(100, 10_000_000)}, (f"e{i}",)))
    return out


def _time(fn: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


def windows(n: int) -> dict[str, Any]:
    points = _points(n)
    base = {"rules": ("r",), "group_by": ("source.ip", "destination.ip"), "timespan": 6 * 3600.0}
    specs = {
        "event_count": CorrelationSpec(type="event_count", op="gte", count=100.0, **base),
        "value_sum": CorrelationSpec(type="value_sum", op="gt", count=500e6, value_field="source.bytes", **base),
        "beaconing": CorrelationSpec(type="beaconing", op="gte", count=12.0,
                                     options={"jitter": 0.15, "min_interval": 5.0}, **base),
    }
    out = {}
    for name, spec in specs.items():
        seconds, result = _time(lambda spec=spec: correlate(spec, points))
        out[name] = {"seconds": round(seconds, 3), "points_per_second": round(n / seconds), "episodes": len(result.episodes)}
    return out


def _events(n: int) -> list[dict[str, Any]]:
    rng = random.Random(7)
    events = []
    for i in range(n):
        ts = START + (i / n) * 30 * DAY
        account = rng.randrange(500)
        user = f"user{account}"
        ip = f"10.{account % 2}.{account % 50}.{(account * 3 + rng.randrange(3)) % 250}"  # 3 usual addresses
        stamp = iso(datetime.fromtimestamp(ts, UTC))
        events.append({"_id": f"bench-{i}", "@timestamp": stamp, "event.dataset": "linux.sshd",
                       "organization.id": "agency-a", "event.action": "ssh_login", "event.outcome": "success",
                       "user.name": user, "source.ip": ip, "host.name": "srv-01",
                       "message": f"Accepted password for {user} from {ip} port 22 ssh2"})
    return events


def history(store: Store, dialect: str, n: int) -> dict[str, Any]:
    events = _events(n)
    for start in range(0, n, 5000):
        store.write_events(events[start:start + 5000])
    store.refresh()
    rules = compile_rules(load_rules([ROOT / "detections" / "correlations", ROOT / "detections" / "linux" / "ssh",
                                      ROOT / "detections" / "firewall" / "fortigate"]), dialect=dialect)
    detection = rules.detections[FIRST_SEEN]
    spec = detection.correlation
    assert spec is not None
    before = START + 29 * DAY
    agg_seconds, seen = _time(lambda: baseline(store, rules.detections, spec, before))
    window = Window(before - spec.timespan, before, "@timestamp")

    def pulled() -> int:
        keys = set()
        for rule_id in spec.rules:
            child = rules.detections[rule_id]
            for m in store.find_matches(child.where, child.datasets, window, ["user.name", "source.ip"], 10_000_000):
                keys.add(pair_key(m.agency, [m.fields.get("user.name")], m.fields.get("source.ip")))
        return len(keys)

    pull_seconds, pairs = _time(pulled)
    assert pairs == len(seen), (pairs, len(seen))
    return {"events": n, "pairs": len(seen), "aggregation_seconds": round(agg_seconds, 3),
            "pull_every_match_seconds": round(pull_seconds, 3)}


def _traffic(n: int) -> list[dict[str, Any]]:
    """FortiGate-shaped night sessions (the fields the rule reads), 10 MB at most each."""
    rng = random.Random(9)
    events = []
    for i in range(n):
        ts = START + rng.uniform(0, 6 * 3600)
        src = f"10.10.{rng.randrange(4)}.{rng.randrange(125)}"  # 500 machines, 20 destinations each at most
        events.append({"_id": f"fw-{i}", "@timestamp": iso(datetime.fromtimestamp(ts, UTC)),
                       "event.dataset": "firewall.fortigate", "organization.id": "agency-a",
                       "observer.product": "FortiGate", "fortigate.type": "traffic", "fortigate.time": "01:00:00",
                       "event.action": "close", "source.ip": src, "destination.ip": f"45.77.{rng.randrange(20)}.9",
                       "destination.port": 443, "source.bytes": rng.randrange(1000, 10_000_000),
                       "message": f"traffic {src}"})
    return events


def traffic(store: Store, dialect: str, n: int) -> dict[str, Any]:
    """The value_sum pre-check (one aggregation) against reading every match of the night rule."""
    from soc.detect.aggregate import may_qualify

    events = _traffic(n)
    for start in range(0, n, 5000):
        store.write_events(events[start:start + 5000])
    store.refresh()
    rules = compile_rules(load_rules([ROOT / "detections" / "correlations", ROOT / "detections" / "linux" / "ssh",
                                      ROOT / "detections" / "firewall" / "fortigate"]), dialect=dialect)
    spec = rules.detections[SUM].correlation
    assert spec is not None
    window = Window(None, None, "@timestamp")
    child = rules.detections[spec.rules[0]]

    def check() -> bool:
        return may_qualify(store, rules.detections, spec, window)

    def read() -> list[Any]:
        return store.find_matches(child.where, child.datasets, window, ["source.ip", "destination.ip", "source.bytes"],
                                  10_000_000)

    check(), read()  # warm: columns prepared, caches filled, for both alike
    check_seconds, possible = _time(check)
    read_seconds, matches = _time(read)
    return {"events": n, "matches": len(matches), "may_qualify": possible,
            "pre_check_seconds": round(check_seconds, 3), "read_every_match_seconds": round(read_seconds, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=200_000)
    parser.add_argument("--history", type=int, default=200_000)
    parser.add_argument("--opensearch", default=None, help="http://host:port of an OpenSearch to measure too")
    args = parser.parse_args()
    report: dict[str, Any] = {"load_average": os.getloadavg()}
    report["windows"] = windows(args.points)
    for name, figures in report["windows"].items():
        print(f"{name:12} {args.points:>9,} points  {figures['seconds']:7.3f} s  "
              f"{figures['points_per_second']:>10,}/s  {figures['episodes']} episodes")
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(Path(tmp) / "soc.db", numeric_fields=default_catalog().numeric_fields)
        report["sqlite"] = history(store, "sqlite", args.history)
        store.close()
        store = SQLiteStore(Path(tmp) / "fw.db", numeric_fields=default_catalog().numeric_fields)
        report["sqlite_sum"] = traffic(store, "sqlite", args.points)
        store.close()
    if args.opensearch:
        from tests.search_helpers import drop, open_search_store

        store = open_search_store(args.opensearch, f"bench-types-{os.getpid()}")
        try:
            report["opensearch"] = history(store, "dsl", args.history)
        finally:
            drop(store)
        store = open_search_store(args.opensearch, f"bench-fw-{os.getpid()}")
        try:
            report["opensearch_sum"] = traffic(store, "dsl", args.points)
        finally:
            drop(store)
    for kind in ("sqlite", "opensearch"):
        if kind in report:
            f = report[kind]
            print(f"first_seen baseline on {kind}: {f['events']:,} past logins, {f['pairs']:,} pairs: "
                  f"aggregation {f['aggregation_seconds']:.3f} s, pulling every match {f['pull_every_match_seconds']:.3f} s")
    for kind in ("sqlite_sum", "opensearch_sum"):
        if kind in report:
            f = report[kind]
            print(f"value_sum pre-check on {kind[:-4]}: {f['events']:,} night sessions ({f['matches']:,} matches), "
                  f"may qualify: {f['may_qualify']}: aggregation {f['pre_check_seconds']:.3f} s, "
                  f"reading every match {f['read_every_match_seconds']:.3f} s")
    print(f"load average {report['load_average']}")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
