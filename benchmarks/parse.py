"""Parse + normalize throughput per real file class.

Usage: ``python benchmarks/parse.py [--min-lines 50000] [--repeat 3] [--batch 1000] [--only windows]``

Reads the real samples under ``../shared/data`` (see its README), repeats each sample until
it has at least ``--min-lines`` lines, and prints, per class: lines/s and microseconds per
line for parsing alone (``soc.ingest.parsers.parse`` with the class's format) and for the
whole pipeline (decode + parse + normalize, ``IngestPipeline.process`` over batches of
``--batch`` records, as sources deliver them; one huge batch would mostly measure the cyclic
garbage collector walking tens of thousands of live event dicts). The best of
``--repeat`` runs is reported (the usual way to measure CPU cost without scheduler noise), in
CPU time of this process (``time.process_time``), not wall time: on a shared 2-core machine
the wall time mostly measures the other processes (``--wall`` measures wall time instead).
The design target is 40,000 events/s per core, i.e. well under 25 us per line for the whole
pipeline; typical syslog should stay under ~15 us.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from soc.ingest import Record  # noqa: E402
from soc.ingest.normalize import SourceContext  # noqa: E402
from soc.ingest.parsers import iter_json_records, parse  # noqa: E402
from soc.ingest.pipeline import IngestPipeline  # noqa: E402

DATA = Path(os.environ.get("SOC_SHARED_DATA") or ROOT.parent / "shared" / "data")  # as tests/conftest.py
_WAZUH_LOG = re.compile(r"^log \d+ (?:pass|fail) = (.*)$")


def _lines(path: Path) -> list[bytes]:
    return [line for line in path.read_bytes().splitlines() if line.strip()]


def _array(path: Path) -> list[bytes]:
    return [raw for _, raw in iter_json_records(path.read_bytes())]


def _wazuh(*names: str) -> Callable[[], list[bytes]]:
    def load() -> list[bytes]:
        out = []
        for name in names:
            for line in (DATA / "wazuh-tests" / f"{name}.ini").read_text(encoding="utf-8", errors="replace").splitlines():
                m = _WAZUH_LOG.match(line)
                if m:
                    out.append(m.group(1).strip().encode())
        return out

    return load


CLASSES: list[tuple[str, str, Callable[[], list[bytes]]]] = [
    ("syslog sshd (OpenSSH_2k)", "syslog", lambda: _lines(DATA / "loghub/OpenSSH/OpenSSH_2k.log")),
    ("syslog auth.log (elastic)", "syslog", lambda: _lines(DATA / "elastic-examples/suspicious_login_activity/data/auth.log")),
    ("syslog mixed (Linux_2k)", "syslog", lambda: _lines(DATA / "loghub/Linux/Linux_2k.log")),
    ("syslog auto-detected", "auto", lambda: _lines(DATA / "loghub/OpenSSH/OpenSSH_2k.log")),
    ("apache access combined", "access", lambda: _lines(DATA / "elastic-examples/apache_logs/apache_logs")),
    ("apache error (Apache_2k)", "access", lambda: _lines(DATA / "loghub/Apache/Apache_2k.log")),
    ("fortigate kv (wazuh)", "kv", _wazuh("fortigate")),
    ("cef / leef (wazuh)", "auto", _wazuh("fireeye", "panda_paps")),
    ("auditd (wazuh + otrf)", "auditd", _wazuh("auditd", "audit_scp")),
    ("zeek json (apt29 day1)", "json", lambda: _lines(DATA / "otrf/datasets/compound/apt29/day1/zeek/combined_zeek.log")),
    ("suricata eve array", "json", lambda: _array(DATA / "suricata/samples/wrccdc-2018/alerts-only.json")),
    ("windows wazuh json", "json", _wazuh("win_event_channel", "win_security", "sysmon_eid_1", "sysmon_eid_3", "powershell")),
    ("windows azure sysmon", "json", lambda: _lines(DATA / "otrf/datasets/compound/Log4Shell/unzipped/sysmon_log4shell_cve2021_44228_java_serialized_object_2022-05-13045800.json")),
    ("linux sysmon over syslog", "json", lambda: _lines(DATA / "otrf/datasets/compound/Log4Shell/unzipped/syslog_sysmon_log4shell_cve2021_44228_jndi_reference_2022-05-11181020.json")),
]


def _best(fn: Callable[[], object], repeat: int, clock: Callable[[], float] = time.process_time) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = clock()
        fn()
        best = min(best, clock() - start)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--min-lines", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--batch", type=int, default=1000, help="records per pipeline.process call (as a source delivers them)")
    ap.add_argument("--wall", action="store_true", help="measure wall time (perf_counter) instead of this process's CPU time")
    ap.add_argument("--only", action="append", default=[], help="only the classes whose name holds this text (repeatable)")
    args = ap.parse_args()
    if not DATA.is_dir():
        sys.exit(f"real data not found at {DATA}")
    received = datetime.now(UTC)
    print(f"{'wall' if args.wall else 'CPU'} time, best of {args.repeat}; load average {os.getloadavg()[0]:.2f}")
    print(f"{'class':32s} {'lines':>7s} {'parse l/s':>11s} {'us/line':>8s} {'pipeline l/s':>13s} {'us/line':>8s}")
    for name, fmt, load in CLASSES:
        if args.only and not any(part.lower() in name.lower() for part in args.only):
            continue
        sample = load()
        if not sample:
            continue
        raws = (sample * (args.min_lines // len(sample) + 1))[: max(args.min_lines, len(sample))]
        texts = [r.decode("utf-8", "replace") for r in raws]
        records = [Record(raw=r, event_id=str(i), received=received, origin="bench") for i, r in enumerate(raws)]
        pipeline = IngestPipeline(SourceContext(source="bench"), fmt=fmt)
        pipeline.process(records[:2000])  # warm caches and imports

        def parse_all(texts: list[str] = texts, fmt: str = fmt) -> None:
            for text in texts:
                parse(text, fmt)

        def run_pipeline(records: list[Record] = records, pipeline: IngestPipeline = pipeline, size: int = args.batch) -> None:
            for start in range(0, len(records), size):  # sources deliver batches; the sink frees them
                pipeline.process(records[start : start + size])

        clock = time.perf_counter if args.wall else time.process_time
        t_parse = _best(parse_all, args.repeat, clock)
        t_pipe = _best(run_pipeline, args.repeat, clock)
        n = len(raws)
        print(f"{name:32s} {n:7d} {n / t_parse:11,.0f} {t_parse / n * 1e6:8.2f} {n / t_pipe:13,.0f} {t_pipe / n * 1e6:8.2f}")


if __name__ == "__main__":
    main()
