"""Indicator matching cost per event with 1M live indicators, next to the ingest cost per event.

Usage::

    python benchmarks/intel_match.py [--indicators 1000000] [--events 200000] [--repeat 3]
                                     [--bootstrap HOST:PORT --opensearch URL [-n 50000]]
                                     [--intake 5000 [--intake-only]]

1. **Indicators** (build not timed, but reported): ``--indicators`` live indicators of mixed
   types -- IPv4 addresses 40%, IPv4 networks (/16 to /30, mostly /24) 3%, IPv6 addresses 4%, IPv6 networks
   1%, domains 25%, URLs 10%, SHA-256/SHA-1/MD5 12%, e-mail senders 5% -- of which a few hundred
   are values that occur in the events (so matches happen, as they would), loaded into
   :class:`soc.intel.Matcher` through the same :meth:`~soc.intel.Matcher.load` the service uses.
   Prints the build time and the matcher's memory (``tracemalloc`` peak of the build and the
   matcher's own estimate).
2. **Events**: real lines of ``../shared/data`` run through the project's pipeline (decode,
   parse, normalize: the events as stored): OpenSSH_2k (syslog), Apache access logs, Suricata
   EVE alerts, Zeek (APT29 day 1), repeated to ``--events``.
3. **Matching**: :meth:`Matcher.match` over every event, CPU time (``time.process_time``),
   best of ``--repeat``; printed as µs of CPU per event, overall and per class, with the hits.
4. **The scheduled cycle** on an embedded SQLite store: the same matcher over events read back
   from the store by ingest time (what ``soc run`` does every ``intel.match_interval_seconds``):
   the read and the match-and-record loop, each in µs of CPU per event.
5. **Next to ingest**: the pipeline's own CPU per event over the same events (decode, parse,
   normalize: the part of the ingest worker that is CPU in this process), and -- with
   ``--bootstrap``/``--opensearch`` -- the real Kafka worker's CPU per stored event measured
   as :mod:`benchmarks.ingest` does (``soc kafka worker`` as a subprocess; its ``ru_utime +
   ru_stime`` over the records it stored).
6. **Intake** (``--intake N``; ``--intake-only`` skips the rest): :meth:`IndicatorBook.take` of
   N new indicators, then the same N from another feed (updates), on SQLite and -- with
   ``--opensearch`` -- on OpenSearch: ms per indicator and the extrapolated first sync of 1M.

Goal: matching <= 10 µs of CPU per event with 1M indicators.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import sys
import time
import tracemalloc
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from soc.ingest import Record  # noqa: E402
from soc.ingest.normalize import SourceContext  # noqa: E402
from soc.ingest.parsers import iter_json_records  # noqa: E402
from soc.ingest.pipeline import IngestPipeline  # noqa: E402
from soc.intel import FIELDS, Matcher  # noqa: E402

DATA = Path(os.environ.get("SOC_SHARED_DATA") or ROOT.parent / "shared" / "data")


def _lines(path: Path) -> list[bytes]:
    return [line for line in path.read_bytes().splitlines() if line.strip()]


CLASSES: list[tuple[str, str, Callable[[], list[bytes]]]] = [
    ("syslog sshd (OpenSSH_2k)", "syslog", lambda: _lines(DATA / "loghub/OpenSSH/OpenSSH_2k.log")),
    ("apache access combined", "access", lambda: _lines(DATA / "elastic-examples/apache_logs/apache_logs")),
    ("suricata eve alerts", "json",
     lambda: [raw for _, raw in iter_json_records((DATA / "suricata/samples/wrccdc-2018/alerts-only.json").read_bytes())]),
    ("zeek json (apt29 day1)", "json", lambda: _lines(DATA / "otrf/datasets/compound/apt29/day1/zeek/combined_zeek.log")),
]


def events_of(per_class: int) -> tuple[dict[str, list[dict[str, Any]]], dict[str, float]]:
    """The events of each class as the pipeline makes them, and its CPU µs per event."""
    received = datetime.now(UTC)
    out: dict[str, list[dict[str, Any]]] = {}
    cost: dict[str, float] = {}
    for name, fmt, load in CLASSES:
        raws = load()
        raws = (raws * (per_class // len(raws) + 1))[:per_class]
        records = [Record(raw=r, event_id=str(i), received=received, origin="bench") for i, r in enumerate(raws)]
        pipeline = IngestPipeline(SourceContext(source="bench"), fmt=fmt)
        pipeline.process(records[:1000])
        events: list[dict[str, Any]] = []
        start = time.process_time()
        for i in range(0, len(records), 1000):
            events.extend(pipeline.process(records[i:i + 1000]))
        cost[name] = (time.process_time() - start) / len(records) * 1e6
        out[name] = events
    return out, cost


def seen_values(events: dict[str, list[dict[str, Any]]]) -> dict[str, list[str]]:
    """Values of the matched fields that occur in the events, by kind."""
    ips, domains, urls = set(), set(), set()
    for batch in events.values():
        for event in batch[:5000]:
            for name in ("source.ip", "destination.ip"):
                if isinstance(event.get(name), str):
                    ips.add(event[name])
            for name in ("dns.question.name", "url.domain", "destination.domain"):
                if isinstance(event.get(name), str):
                    domains.add(event[name].lower().rstrip("."))
            if isinstance(event.get("url.full"), str):
                urls.add(event["url.full"])
    return {"ip": sorted(ips), "domain": sorted(domains), "url": sorted(urls)}


def indicator_docs(n: int, seen: dict[str, list[str]], rng: random.Random) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []

    def add(type_: str, value: str, cidr: bool = False) -> None:
        docs.append({"type": type_, "value": value, "cidr": cidr, "matchable": True, "revoked": False})

    # values that occur in the events: a few percent of the event addresses, domains and URLs
    for ip in seen["ip"][::25]:
        add("ipv6" if ":" in ip else "ipv4", ip)
    for domain in seen["domain"][::10]:
        add("domain", domain)
    for url in seen["url"][::10]:
        add("url", url)
    shares = [("ipv4", 0.40), ("ipv4net", 0.03), ("ipv6", 0.04), ("ipv6net", 0.01), ("domain", 0.25), ("url", 0.10),
              ("sha256", 0.05), ("sha1", 0.04), ("md5", 0.03), ("email", 0.05)]
    remaining = n - len(docs)
    for kind, share in shares:
        for _ in range(int(remaining * share)):
            if kind == "ipv4":
                add("ipv4", ".".join(str(rng.randrange(1, 255)) for _ in range(4)))
            elif kind == "ipv4net":
                length = rng.choice((16, 20, 22, 23, 24, 24, 24, 24, 25, 26, 27, 28, 29, 30))
                address = rng.getrandbits(32) & ~((1 << (32 - length)) - 1)
                add("ipv4", f"{address >> 24}.{address >> 16 & 255}.{address >> 8 & 255}.{address & 255}/{length}", True)
            elif kind == "ipv6":
                add("ipv6", "2001:db8:" + ":".join(f"{rng.getrandbits(16):x}" for _ in range(6)))
            elif kind == "ipv6net":
                length = rng.choice((32, 48, 56, 64))
                import ipaddress
                net = ipaddress.ip_network((rng.getrandbits(128) & ~((1 << (128 - length)) - 1), length))
                add("ipv6", str(net), True)
            elif kind == "domain":
                add("domain", f"{uuid.UUID(int=rng.getrandbits(128)).hex[:rng.randrange(6, 16)]}."
                              f"{rng.choice(('com', 'net', 'org', 'ru', 'xyz', 'info', 'vn'))}")
            elif kind == "url":
                add("url", f"http://{uuid.UUID(int=rng.getrandbits(128)).hex[:10]}.example/"
                           f"{uuid.UUID(int=rng.getrandbits(128)).hex[:12]}")
            elif kind in ("sha256", "sha1", "md5"):
                bits = {"sha256": 256, "sha1": 160, "md5": 128}[kind]
                add(kind, f"{rng.getrandbits(bits):0{bits // 4}x}")
            else:
                add("email", f"{uuid.UUID(int=rng.getrandbits(128)).hex[:8]}@{uuid.UUID(int=rng.getrandbits(128)).hex[:8]}.example")
    while len(docs) < n:
        add("ipv4", ".".join(str(rng.randrange(1, 255)) for _ in range(4)))
    return docs[:n]


def cycle_cost(matcher: Matcher) -> dict[str, Any]:
    """The scheduled cycle on an embedded SQLite store: reading the newly stored events back
    (``find_matches`` over the ingest window, only the matched fields) and matching them, CPU µs
    per event; real files ingested by the project's file ingestor first (not timed)."""
    import shutil
    import tempfile

    from soc.hunt import ingest_files
    from soc.intel import IntelMatching
    from soc.store.sqlite import SQLiteStore

    folder = Path(tempfile.mkdtemp(prefix="bench-intel-"))
    store = SQLiteStore(folder / "soc.db")
    try:
        for path in (DATA / "loghub/OpenSSH/OpenSSH_2k.log", DATA / "elastic-examples/apache_logs/apache_logs",
                     DATA / "elastic-examples/suspicious_login_activity/data/auth.log"):
            ingest_files(store, [path], fmt="auto", timezone="UTC", agency="so-tttt", progress=False)
        cycle = IntelMatching(store, retro_hunt_days=0, settle=0.0)
        cycle.matcher = matcher
        start = time.process_time()
        matches = cycle._events(0, time.time() + 60)
        read = (time.process_time() - start) / len(matches) * 1e6
        start = time.process_time()
        alerts = cycle._alerts(matches, cycle.clock(), retrospective=False)
        match = (time.process_time() - start) / len(matches) * 1e6
        return {"events": len(matches), "read_us": read, "match_us": match, "alerts": len(alerts)}
    finally:
        store.close()
        shutil.rmtree(folder, ignore_errors=True)


def intake_cost(store: Any, n: int) -> dict[str, Any]:
    """Taking in a feed page: ``IndicatorBook.take`` of ``n`` new IPv4 indicators (one merge
    of every value, read and written in bulk), then the same values again from a second feed
    (``n`` updates of stored indicators); wall time, ms per indicator and the first sync of 1M
    indicators extrapolated from the new ones."""
    from soc.intel.book import IndicatorBook, Item
    from soc.intel.indicators import normalize

    book = IndicatorBook(store)
    values = [f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}" for i in range(1, n + 1)]
    start = time.perf_counter()
    counts = book.take("bench-a", [Item(normalize("ipv4", v)) for v in values])
    new = time.perf_counter() - start
    assert counts["new"] == n, counts
    start = time.perf_counter()
    counts = book.take("bench-b", [Item(normalize("ipv4", v), confidence=90) for v in values])
    updated = time.perf_counter() - start
    assert counts["updated"] == n, counts
    return {"indicators": n, "new_ms_each": round(new / n * 1000, 3), "updated_ms_each": round(updated / n * 1000, 3),
            "first_sync_1m_minutes": round(new / n * 1_000_000 / 60, 1)}


def intake(n: int, url: str | None) -> None:
    """:func:`intake_cost` on a fresh SQLite store and, with ``url``, on OpenSearch under a fresh
    index prefix (deleted at the end)."""
    import shutil
    import tempfile

    from soc.store.sqlite import SQLiteStore

    folder = Path(tempfile.mkdtemp(prefix="bench-intake-"))
    try:
        store = SQLiteStore(folder / "soc.db")
        print(f"intake sqlite:     {intake_cost(store, n)}")
        store.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if url:
        from soc.store import open_store

        prefix = f"bench-intake-{uuid.uuid4().hex[:8]}"
        search: Any = open_store("opensearch://" + url.split("://", 1)[1], prefix=prefix, replicas=0)
        try:
            print(f"intake opensearch: {intake_cost(search, n)}")
        finally:
            search.transport.request("DELETE", f"/{prefix}-docs-*", params={"ignore_unavailable": True,
                                                                          "allow_no_indices": True})
            search.close()


def worker_cpu(bootstrap: str, url: str, n: int) -> dict[str, Any]:
    """The Kafka worker's CPU per stored event, as benchmarks/ingest.py runs it."""
    import ingest  # the sibling benchmark

    topic = f"bench-intel-{uuid.uuid4().hex[:8]}"
    ingest.produce(bootstrap, topic, n)
    try:
        result = ingest.run_worker(bootstrap, topic, url, topic, 5000)
    finally:
        ingest.drop(url, topic)
    result["cpu_us_per_event"] = round(result["cpu_s"] / result["stored"] * 1e6, 1)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--indicators", type=int, default=1_000_000)
    ap.add_argument("--events", type=int, default=200_000, help="events in all (spread over the classes)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--bootstrap", help="Kafka host:port: also measure the real ingest worker's CPU per event")
    ap.add_argument("--opensearch", help="OpenSearch URL (with --bootstrap)")
    ap.add_argument("-n", type=int, default=50_000, help="records for the worker measurement")
    ap.add_argument("--intake", type=int, default=0, metavar="N",
                    help="also time taking in N new indicators, then N updates (SQLite; with --opensearch also there)")
    ap.add_argument("--intake-only", action="store_true", help="only the intake figures (no matching)")
    args = ap.parse_args()
    if args.intake_only:
        print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)")
        intake(args.intake or 5000, args.opensearch)
        return
    if not DATA.is_dir():
        sys.exit(f"real data not found at {DATA}")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)")
    events, pipeline_cost = events_of(args.events // len(CLASSES))
    rng = random.Random(13)
    docs = indicator_docs(args.indicators, seen_values(events), rng)

    gc.collect()
    tracemalloc.start()
    started = time.perf_counter()
    matcher = Matcher()
    matcher.load(docs)
    matcher.match({"source.ip": "10.0.0.1", "related.ip": ["2001:db8::1"]}, time.time())  # builds the intervals
    build = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del docs
    gc.collect()
    print(f"matcher: {matcher.size:,} live indicators, built in {build:.1f} s; memory: "
          f"{matcher.memory_bytes() / 2**20:,.0f} MiB (the matcher's estimate: tables, value strings, entries, "
          f"intervals); allocated by the build {peak / 2**20:,.0f} MiB (tracemalloc peak; the value strings "
          f"are shared with the indicator documents, which are not counted)")
    print(f"fields checked per event: {len(FIELDS)}")
    print(f"{'class':28s} {'events':>8s} {'hits':>7s} {'match µs/event':>15s} {'pipeline µs/event':>18s}")
    now = time.time()
    total_events = 0
    total_cpu = 0.0
    gc.disable()
    for name, batch in events.items():
        best = float("inf")
        hits = 0
        for _ in range(args.repeat):
            start = time.process_time()
            hits = 0
            for event in batch:
                if matcher.match(event, now):
                    hits += 1
            best = min(best, time.process_time() - start)
        total_events += len(batch)
        total_cpu += best
        print(f"{name:28s} {len(batch):8,d} {hits:7,d} {best / len(batch) * 1e6:15.2f} {pipeline_cost[name]:18.2f}")
    gc.enable()
    per_event = total_cpu / total_events * 1e6
    print(f"matching: {per_event:.2f} µs of CPU per event over {total_events:,} events "
          f"with {matcher.size:,} indicators (goal <= 10 µs)")
    pipeline_mean = sum(pipeline_cost.values()) / len(pipeline_cost)
    print(f"ingest pipeline (decode, parse, normalize; same events): {pipeline_mean:.1f} µs of CPU per event "
          f"(mean over the classes): matching adds {per_event / pipeline_mean:.0%}")
    cycle = cycle_cost(matcher)
    print(f"scheduled cycle on SQLite ({cycle['events']:,} stored events of OpenSSH, Apache, auth.log): reading them "
          f"back {cycle['read_us']:.1f} µs of CPU per event, matching {cycle['match_us']:.1f} µs (hits are not "
          f"recorded here: the generated indicators are not in this store)")
    if args.bootstrap and args.opensearch:
        worker = worker_cpu(args.bootstrap, args.opensearch, args.n)
        print(f"ingest worker (Kafka -> pipeline -> OpenSearch bulk -> commit, OpenSSH_2k lines): "
              f"{worker['cpu_us_per_event']} µs of CPU per stored event ({worker['stored']:,} events, "
              f"{worker['cpu_s']} s CPU, {worker['docs_per_s']:,} events/s)")
    if args.intake:
        intake(args.intake, args.opensearch)


if __name__ == "__main__":
    main()
