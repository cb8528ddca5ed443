"""Fixed cost, cost per event and peak memory of ``soc hunt`` on Windows events with SigmaHQ's Windows rules.

    .venv/bin/python benchmarks/hunt_windows.py [--sizes 2000 10000] [--sigma ../shared/data/sigma]

**Corpus** (built at run time, not timed): the real Windows events (Sysmon, Security,
PowerShell...) of OTRF's atomic datasets, ``../shared/data/otrf/datasets/atomic/windows/*/host/*.zip``
(one JSON event per line): the same share of each archive, evenly spaced through each recording
and interleaved, so that a small corpus still holds every kind of host and attack; a corpus larger than the events read repeats them, each repetition varied
(host name, user name, time, process ids) so it is not the same event again.

**Rules**: ``rules/windows`` of SigmaHQ (``--sigma``), nothing else.

**Runs**: each one a ``soc hunt`` process of its own (``--format jsonl``; CPU time, wall time and
peak RSS from ``wait4``). The *previous* engine (no compiled-rule cache; the fields rules read
left as virtual columns over each event's JSON document) and the *new* one (compiled-rule cache
warm; those fields materialised once per event) each run over 1 event -- the **fixed cost** --
and, both with the warm cache (so that only the evaluation differs), over the smaller and the
larger corpus: the **cost per event** is the slope between these two
(CPU ms per event; wall too), so the fixed cost is not spread over the events; **events per
CPU-second** is the larger corpus over its CPU time less the fixed cost. The new engine also runs
once with the cache off and once with it cold (parse, convert and store every rule). The alert
ids of both engines on the larger corpus are compared.

The machine may be shared: CPU time is the figure that counts; the load average is printed with
each run. Prints a table and, last, one JSON line. Goals (issue 12, 2 cores): fixed cost <= 5 s
warm, <= 0.55 ms per event, <= 205 MB peak with 10,000 events.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("SOC_SHARED_DATA") or ROOT.parent / "shared" / "data")  # as tests/conftest.py
OTRF = DATA / "otrf" / "datasets" / "atomic" / "windows"


def _lines(archive: Path) -> Iterator[bytes]:
    with zipfile.ZipFile(archive) as z:
        for name in z.namelist():
            if name.endswith("/"):
                continue
            with z.open(name) as f:
                for line in f:
                    if line.strip():
                        yield line.rstrip(b"\r\n")


def real_events(limit: int) -> list[dict[str, object]]:
    """``limit`` events (or all there are), the same share of each archive, evenly spaced through
    each recording (so the attack inside it is sampled, not only its first minutes), interleaved
    one archive after the other."""
    archives = sorted(OTRF.glob("*/host/*.zip"))
    if not archives:
        sys.exit(f"OTRF Windows datasets not found under {OTRF} (clone the shared data next to the repo)")
    share = -(-limit // len(archives))
    picked: list[list[bytes]] = []
    for archive in archives:
        lines = list(_lines(archive))
        step = max(1, len(lines) // share)
        picked.append(lines[::step][:share])
    events: list[dict[str, object]] = []
    for line in itertools.chain.from_iterable(itertools.zip_longest(*picked)):
        if line is None:
            continue
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            events.append(event)
    return events[:limit]


_PID_KEYS = ("ProcessId", "ProcessID", "ParentProcessId", "NewProcessId", "SourceProcessId", "TargetProcessId",
             "ExecutionProcessID")
_USER_KEYS = ("SubjectUserName", "TargetUserName", "AccountName", "User")
_HOST_KEYS = ("Hostname", "Computer", "host", "SourceHostname")
_TIME = re.compile(r"^(\d{4})-")


def varied(event: dict[str, object], k: int) -> dict[str, object]:
    """Repetition ``k`` (>= 1) of a real event: other host, user, year, process ids."""
    out = dict(event)
    for key in _HOST_KEYS:
        if isinstance(out.get(key), str):
            out[key] = f"R{k}-{out[key]}"
    for key in _USER_KEYS:
        value = out.get(key)
        if isinstance(value, str) and value and value not in ("-", "SYSTEM"):
            out[key] = f"{value}{k}"
    for key in _PID_KEYS:
        value = out.get(key)
        if isinstance(value, int):
            out[key] = value + 100_000 * k
        elif isinstance(value, str) and value.isdigit():
            out[key] = str(int(value) + 100_000 * k)
        elif isinstance(value, str) and value.lower().startswith("0x"):
            try:
                out[key] = hex(int(value, 16) + 100_000 * k)
            except ValueError:
                pass
    for key in ("@timestamp", "EventTime", "EventReceivedTime", "UtcTime", "TimeCreated"):
        value = out.get(key)
        if isinstance(value, str) and _TIME.match(value):
            out[key] = _TIME.sub(lambda m: f"{int(m.group(1)) - k}-", value, count=1)
    return out


def build_corpus(target: Path, pool: list[dict[str, object]], n: int) -> None:
    with target.open("w", encoding="utf-8") as out:
        for i, event in enumerate(itertools.islice(itertools.cycle(pool), n)):
            k = i // len(pool)
            out.write(json.dumps(event if k == 0 else varied(event, k), ensure_ascii=False) + "\n")


#: ``soc hunt`` as the previous engine ran it: no compiled-rule cache (set in the environment) and
#: the fields rules read left as virtual columns over the JSON document
PREVIOUS = ("import functools, sys\nimport soc.hunt\n"
            "soc.hunt.run_hunt = functools.partial(soc.hunt.run_hunt, materialise=False)\n"
            "from soc.cli.main import main\nsys.argv[0] = 'soc'\nmain()\n")


def hunt(corpus: Path, rules: Path, data_dir: Path, *, cache: bool, out_dir: Path,
         previous: bool = False) -> dict[str, object]:
    """One ``soc hunt`` process: CPU and wall seconds, peak RSS, alerts and rules that matched."""
    env = {**os.environ, "SOC_DATA_DIR": str(data_dir), "SOC_DETECTION__RULE_CACHE": "true" if cache else "false",
           "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": "0"}
    cmd = [sys.executable, *(["-c", PREVIOUS] if previous else ["-m", "soc.cli"]), "hunt", str(corpus),
           "--rules", str(rules), "--format", "jsonl", "--timezone", "UTC", "--no-progress",
           "--allow-rule-errors", "--allow-no-rules"]
    with tempfile.TemporaryFile(dir=out_dir) as stdout, tempfile.TemporaryFile(dir=out_dir) as stderr:
        load = os.getloadavg()[0]
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=out_dir, env=env, stdout=stdout, stderr=stderr)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        code = os.waitstatus_to_exitcode(status)
        stdout.seek(0)
        stderr.seek(0)
        err = stderr.read().decode("utf-8", "replace")
        if code != 0:
            sys.exit(f"soc hunt failed ({code}):\n{err[-3000:]}")
        alerts = [json.loads(line) for line in stdout.read().decode("utf-8").splitlines() if line.strip()]
    summary = next((line for line in err.splitlines() if " events from " in line), "")
    return {"cpu_s": round(usage.ru_utime + usage.ru_stime, 3), "wall_s": round(wall, 3),
            "rss_mib": round(usage.ru_maxrss / 1024, 1), "alerts": len(alerts),
            "rules_matched": len({a["rule"]["id"] for a in alerts}),
            "events_matched": sum(int(a.get("event_count") or 0) for a in alerts if a.get("kind") != "correlation"),
            "alert_ids": sorted(a["id"] for a in alerts), "load": round(load, 2), "summary": summary.strip()}


def figures(one: dict[str, object], lo: dict[str, object], hi: dict[str, object], small: int,
            large: int) -> dict[str, float]:
    def f(run: dict[str, object], key: str) -> float:
        return float(run[key])  # type: ignore[arg-type]

    return {"fixed_cpu_s": f(one, "cpu_s"), "fixed_wall_s": f(one, "wall_s"),
            "ms_per_event_cpu": (f(hi, "cpu_s") - f(lo, "cpu_s")) / (large - small) * 1000,
            "ms_per_event_wall": (f(hi, "wall_s") - f(lo, "wall_s")) / (large - small) * 1000,
            "events_per_cpu_s": large / max(f(hi, "cpu_s") - f(one, "cpu_s"), 1e-9),
            "peak_rss_mib": f(hi, "rss_mib"), "rules_matched": f(hi, "rules_matched"), "alerts": f(hi, "alerts")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=[2000, 10000], metavar=("SMALL", "LARGE"),
                        help="the two corpus sizes of the slope (default 2,000 and 10,000)")
    parser.add_argument("--pool", type=int, default=None,
                        help="real events read before repeating (default: the larger size)")
    parser.add_argument("--sigma", type=Path, default=DATA / "sigma")
    args = parser.parse_args()
    small, large = sorted(args.sizes)
    rules = args.sigma / "rules" / "windows"
    if not rules.is_dir():
        sys.exit(f"SigmaHQ Windows rules not found at {rules}")
    pool = real_events(args.pool or large)
    runs: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory(prefix="soc-bench-win-") as tmp:
        folder = Path(tmp)
        corpora = {}
        for n in (1, small, large):
            corpora[n] = folder / f"windows-{n}.json"
            build_corpus(corpora[n], pool, n)
        data_dir = folder / "data"
        runs["previous, 1 event, no cache"] = hunt(corpora[1], rules, folder / "nocache", cache=False,
                                                   out_dir=folder, previous=True)
        runs["new, 1 event, no cache"] = hunt(corpora[1], rules, folder / "nocache", cache=False, out_dir=folder)
        runs["new, 1 event, cold cache"] = hunt(corpora[1], rules, data_dir, cache=True, out_dir=folder)
        for n in (1, small, large):
            runs[f"new, {n:,} events"] = hunt(corpora[n], rules, data_dir, cache=True, out_dir=folder)
        for n in (1, small, large):  # the same warm cache: the slope is the evaluation's alone
            runs[f"previous, {n:,} events"] = hunt(corpora[n], rules, data_dir, cache=True, out_dir=folder,
                                                   previous=True)
    old = figures(*(runs[f"previous, {n:,} events"] for n in (1, small, large)), small, large)
    new = figures(*(runs[f"new, {n:,} events"] for n in (1, small, large)), small, large)
    old["fixed_cpu_s"] = float(runs["previous, 1 event, no cache"]["cpu_s"])  # type: ignore[arg-type]
    old["fixed_wall_s"] = float(runs["previous, 1 event, no cache"]["wall_s"])  # type: ignore[arg-type]
    same = runs[f"previous, {large:,} events"]["alert_ids"] == runs[f"new, {large:,} events"]["alert_ids"]
    summary = str(runs["previous, 1 event, no cache"]["summary"])
    print(f"corpus   {len(pool):,} real OTRF Windows events sampled evenly from "
          f"{len(list(OTRF.glob('*/host/*.zip')))} archives; corpora of 1, {small:,} and {large:,} events")
    print(f"rules    {rules} ({summary.split('; ')[1] if '; ' in summary else ''})")
    print(f"{'run (new: warm rule cache)':30s}{'CPU s':>8s}{'wall s':>8s}{'peak RSS MiB':>14s}{'alerts':>8s}"
          f"{'rules':>7s}{'load':>7s}")
    for name, r in runs.items():
        print(f"{name:30s}{r['cpu_s']:8.2f}{r['wall_s']:8.2f}{r['rss_mib']:14.0f}{r['alerts']:8,}"
              f"{r['rules_matched']:7,}{r['load']:7.2f}")
    print(f"{'':30s}{'previous':>12s}{'new':>12s}  goal")
    rows = (("fixed cost, CPU s", "fixed_cpu_s", "{:.2f}", "<= 5 s (warm cache)"),
            ("fixed cost, wall s", "fixed_wall_s", "{:.2f}", ""),
            ("ms per event, CPU", "ms_per_event_cpu", "{:.3f}", "<= 0.55"),
            ("ms per event, wall", "ms_per_event_wall", "{:.3f}", ""),
            ("events per CPU second", "events_per_cpu_s", "{:,.0f}", ""),
            (f"peak RSS MiB ({large:,} events)", "peak_rss_mib", "{:.0f}", "<= 205 MB"),
            ("rules matched", "rules_matched", "{:.0f}", ""), ("alerts", "alerts", "{:.0f}", ""))
    for label, key, fmt, goal in rows:
        print(f"{label:30s}{fmt.format(old[key]):>12s}{fmt.format(new[key]):>12s}  {goal}")
    print(f"fixed cost: previous without a rule cache; new with a warm one ({runs['new, 1 event, cold cache']['cpu_s']:.2f}"
          f" s CPU cold, {runs['new, 1 event, no cache']['cpu_s']:.2f} s with the cache off). Per event: both with the "
          "warm cache, so the slope is the evaluation's")
    print(f"same alert ids, previous and new, {large:,} events: {'yes' if same else 'NO'}")
    print(f"machine  {os.cpu_count()} cores, Python {sys.version.split()[0]}, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} (CPU figures count; wall time waits for other work)")
    print(json.dumps({"sizes": [small, large], "pool": len(pool), "previous": old, "new": new, "same_alert_ids": same,
                      "runs": {k: {kk: vv for kk, vv in v.items() if kk not in ("summary", "alert_ids")}
                               for k, v in runs.items()},
                      "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}))


if __name__ == "__main__":
    main()
