"""Throughput and peak memory of ``soc hunt`` with the SigmaHQ rules for syslog-type logs.

Builds N syslog events (default 1,000,000; ``--quick``: 200,000) by repeating the real files in
../shared/data (loghub OpenSSH_2k and Linux_2k, elastic-examples auth.log), selects the SigmaHQ
rules whose log source travels over syslog (Linux of every kind, webserver, proxy, DNS, firewall,
network devices, Zeek, OpenCanary: ~490 rules) plus the project's detections/, and runs one hunt
in this process.

The machine may be shared, so wall-clock time says little about the code: the figure that counts
is **events per CPU second** (CPU time of this process and of any children it waited for, user +
system), i.e. events/s per core. Both are printed, with the split per phase (read + parse, store
write, rule evaluation, alert recording), the load average while it ran, and the peak resident
memory (``ru_maxrss`` of this process and of its children).

    .venv/bin/python benchmarks/hunt.py [--events 1000000 | --quick] [--sigma ../shared/data/sigma]
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
DATA = Path(os.environ.get("SOC_SHARED_DATA") or ROOT.parent / "shared" / "data")  # as tests/conftest.py
INPUTS = [
    DATA / "loghub/OpenSSH/OpenSSH_2k.log",
    DATA / "loghub/Linux/Linux_2k.log",
    DATA / "elastic-examples/suspicious_login_activity/data/auth.log",
]
SYSLOG_PRODUCTS = {"linux", "zeek", "opencanary", "cisco", "fortigate", "fortios", "huawei", "juniper", "paloalto"}
SYSLOG_CATEGORIES = {"webserver", "proxy", "dns", "firewall"}
PHASES = (("read", "read + parse"), ("write", "store write"), ("evaluate", "rule evaluation"),
          ("record", "alert recording"))


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
    # records are split at LF only (a CR inside a line is content); blank ones are no events:
    # leave them out, so that N lines are N events
    lines = [line + b"\n" for path in INPUTS for line in path.read_bytes().split(b"\n") if line.strip()]
    with target.open("wb") as out:
        for line in itertools.islice(itertools.cycle(lines), events):
            out.write(line)
    return events


def cpu_seconds() -> float:
    """User + system CPU of this process and of the children it waited for."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def peak_rss_mib() -> tuple[float, float]:
    """Peak resident memory (MiB) of this process, and of its largest waited-for child."""
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="200,000 events")
    parser.add_argument("--sigma", type=Path, default=DATA / "sigma")
    args = parser.parse_args()
    events = 200_000 if args.quick else args.events

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
        build_input(source, events)
        size = source.stat().st_size
        load_before = os.getloadavg()[0]
        cpu0 = cpu_seconds()
        started = time.perf_counter()
        result = run_hunt([source], ruleset, timezone="Asia/Ho_Chi_Minh", workdir=Path(tmp))
        wall = time.perf_counter() - started
        cpu = cpu_seconds() - cpu0
        load_after = os.getloadavg()[0]
    rss_self, rss_children = peak_rss_mib()
    n = result.events
    print(f"input            {n:,} syslog events ({size / 2**20:.0f} MiB), built from "
          + ", ".join(p.name for p in INPUTS))
    print(f"rules            {len(rules)} SigmaHQ syslog-type rules + detections/: {len(ruleset.detections)} "
          f"compiled ({runnable} runnable) in {compile_seconds:.1f}s (not counted below); "
          f"{result.rules_run} applied to these events")
    print(f"{'phase':17s}{'CPU s':>8s}{'wall s':>8s}{'us/event':>10s}{'events/CPU s':>14s}")
    for key, label in PHASES:
        c, w = getattr(result, "cpu_seconds", {}).get(key, 0.0), result.seconds.get(key, 0.0)
        print(f"  {label:15s}{c:8.2f}{w:8.2f}{c / n * 1e6:10.1f}{n / c if c else 0:14,.0f}")
    c = cpu - sum(getattr(result, "cpu_seconds", {}).get(k, 0.0) for k, _ in PHASES)
    w = wall - sum(result.seconds.get(k, 0.0) for k, _ in PHASES)
    print(f"  {'other':15s}{c:8.2f}{w:8.2f}{c / n * 1e6:10.1f}{'':14s}  (scratch store set-up and removal)")
    print(f"  {'total (hunt)':15s}{cpu:8.2f}{wall:8.2f}{cpu / n * 1e6:10.1f}{n / cpu:14,.0f}")
    print(f"events/s per core {n / cpu:,.0f} (events / CPU seconds; target 40,000)")
    print(f"events/s wall     {n / wall:,.0f} ({cpu / wall:.2f} cores busy on average; "
          f"load average {load_before:.1f} -> {load_after:.1f} on {os.cpu_count()} cores: "
          "wall time includes waiting for other work on this machine)")
    print(f"alerts            {len(result.alerts):,}")
    print(f"peak memory       {rss_self:,.0f} MiB RSS (this process; children: {rss_children:,.0f} MiB; "
          "target < 1024)")
    print(f"machine           {os.cpu_count()} cores, Python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
