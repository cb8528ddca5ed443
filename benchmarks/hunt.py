"""Throughput and peak memory of ``soc hunt`` with the SigmaHQ rules for syslog-type logs.

Builds N syslog events (default 1,000,000) by repeating the real files in ../shared/data
(loghub OpenSSH_2k and Linux_2k, elastic-examples auth.log), selects the SigmaHQ rules whose log
source travels over syslog (Linux of every kind, webserver, proxy, DNS, firewall, network devices,
Zeek, OpenCanary: ~490 rules) plus the project's detections/, and runs one hunt in this process.
Prints events/s (ingest, rules, total), events/s per core used, and peak RSS.

    .venv/bin/python benchmarks/hunt.py [--events 1000000] [--sigma ../shared/data/sigma]
"""

from __future__ import annotations

import argparse
import itertools
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
INPUTS = [
    DATA / "loghub/OpenSSH/OpenSSH_2k.log",
    DATA / "loghub/Linux/Linux_2k.log",
    DATA / "elastic-examples/suspicious_login_activity/data/auth.log",
]
SYSLOG_PRODUCTS = {"linux", "zeek", "opencanary", "cisco", "fortigate", "fortios", "huawei", "juniper", "paloalto"}
SYSLOG_CATEGORIES = {"webserver", "proxy", "dns", "firewall"}


def syslog_rules(sigma: Path) -> list[Path]:
    """SigmaHQ rule files whose log source is one that arrives over syslog."""
    chosen = []
    for folder in ("rules", "rules-emerging-threats", "rules-threat-hunting"):
        for path in sorted((sigma / folder).rglob("*.yml")):
            try:
                rule = yaml.safe_load(path.read_text(encoding="utf-8"))
            except yaml.YAMLError:
                continue
            logsource = (rule or {}).get("logsource") or {}
            if logsource.get("product") in SYSLOG_PRODUCTS or logsource.get("category") in SYSLOG_CATEGORIES \
                    or logsource.get("service") in {"apache", "nginx"}:
                chosen.append(path)
    return chosen


def build_input(target: Path, events: int) -> int:
    lines = [line for path in INPUTS for line in path.read_bytes().splitlines(keepends=True)]
    with target.open("wb") as out:
        for line in itertools.islice(itertools.cycle(lines), events):
            out.write(line)
    return events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--sigma", type=Path, default=DATA / "sigma")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    from soc.detect.compiler import compile_rules
    from soc.detect.rules import load_rules
    from soc.hunt import run_hunt

    rules = syslog_rules(args.sigma)
    started = time.perf_counter()
    ruleset = compile_rules(load_rules([*rules, ROOT / "detections"]))
    compile_seconds = time.perf_counter() - started
    runnable = len(ruleset.runnable())
    with tempfile.TemporaryDirectory(prefix="soc-bench-") as tmp:
        source = Path(tmp) / "syslog.log"
        build_input(source, args.events)
        size = source.stat().st_size
        cpu0 = time.process_time()
        started = time.perf_counter()
        result = run_hunt([source], [], timezone="Asia/Ho_Chi_Minh", ruleset=ruleset, workdir=Path(tmp))
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu0
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    cores = max(cpu / wall, 1.0)
    ingest, detect = result.seconds["ingest"], result.seconds["detect"]
    print(f"input            {result.events:,} syslog events ({size / 2**20:.0f} MiB), built from "
          + ", ".join(p.name for p in INPUTS))
    print(f"rules            {len(rules)} SigmaHQ syslog-type rules + detections/: {len(ruleset.detections)} "
          f"compiled ({runnable} runnable) in {compile_seconds:.1f}s; {result.rules_run} applied to these events")
    print(f"ingest           {ingest:.1f}s  {result.events / ingest:,.0f} events/s")
    print(f"rules            {detect:.1f}s  {result.events / detect:,.0f} events/s")
    print(f"total (hunt)     {wall:.1f}s  {result.events / wall:,.0f} events/s  "
          f"({cores:.2f} cores busy: {result.events / wall / cores:,.0f} events/s per core)")
    print(f"alerts           {len(result.alerts):,}")
    print(f"peak memory      {peak_mib:,.0f} MiB RSS")
    print(f"machine          {os.cpu_count()} cores, Python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
