"""Noise budget: every project rule over the benign baselines of ``../shared/data``, alerts per rule.

    .venv/bin/python benchmarks/noise.py [--rules detections] [--sample N] [--json]

A rule that raises alerts on benign data costs analysts time every day, so each such alert needs a
documented reason: an entry in ``detections/regression_data/noise_budget.yml`` naming the rule, the
baseline, the largest count accepted and why (a true positive inside a "benign" sample, a tool the
rule cannot tell from an attacker...). Alerts beyond the allowance, or on a baseline with no entry,
are *unexplained*; ``tests/test_noise_budget.py`` fails on them. Allowances no rule uses any more are
reported as stale.

**Baselines** (real logs written by others, read where ``SOC_SHARED_DATA`` points, default
``../shared/data``):

- ``apache_access``: elastic-examples ``apache_logs``, 10,000 access-log lines of a public blog;
- ``loghub_apache``, ``loghub_linux``, ``loghub_openssh``: loghub's 2k-line Apache error,
  Linux syslog and OpenSSH samples (OpenSSH and Linux hold real Internet brute force: the SSH
  rules' alerts there are true positives and listed as such);
- ``wazuh_benign``: every ``pass`` line of the Wazuh ruleset tests whose expected Wazuh alert level
  is 0-3 (ignored, low-priority system and successful/authorised events), about 600 lines of ~90
  products;
- ``evtx_windows``: the pyevtx-rs sample logs ``sysmon.evtx``, ``security.evtx``, ``system.evtx``
  (a workstation and a domain controller in ordinary use);
- ``otrf_security_auditing``: OTRF's Log4Shell Windows Security events (39 filtering-platform,
  object-access and process events; the attack itself is on the Linux host, not in these).

``--sample N`` keeps every k-th line of a text baseline so at most N lines are read (the test uses
it to stay fast; the printed table says when a baseline was sampled). Prints one row per rule that
fired and, with ``--json``, the whole result as one JSON document.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from soc.detect.compiler import RuleSet, compile_rules  # noqa: E402
from soc.detect.rules import load_rules  # noqa: E402
from soc.hunt import run_hunt  # noqa: E402
from soc.regression import SAMPLE_TIMEZONE  # noqa: E402

SHARED = Path(os.environ.get("SOC_SHARED_DATA") or ROOT.parent / "shared" / "data")
ALLOWANCES = ROOT / "detections" / "regression_data" / "noise_budget.yml"
#: the Wazuh alert levels taken as benign: 0 ignored, 1-2 low-priority system events, 3 successful/authorised
WAZUH_BENIGN_LEVELS = frozenset({0, 1, 2, 3})


@dataclass(frozen=True)
class Baseline:
    name: str
    description: str
    files: tuple[str, ...]  # relative to the shared data folder
    lines: Callable[[Path], list[str]] | None = None  # builds the text to hunt (else the files as they are)


def wazuh_benign_lines(shared: Path) -> list[str]:
    """Every ``log N pass`` line of the Wazuh ruleset tests whose case expects alert level 0-3."""
    out: list[str] = []
    for path in sorted((shared / "wazuh-tests").glob("*.ini")):
        pending: list[str] = []
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("["):
                pending = []
            match = re.match(r"log \d+ pass = (.*)", line)
            if match:
                pending.append(match.group(1))
            level = re.match(r"alert\s*=\s*(\d+)\s*$", line)
            if level:
                if int(level.group(1)) in WAZUH_BENIGN_LEVELS:
                    out.extend(pending)
                pending = []
    return out


BASELINES: tuple[Baseline, ...] = (
    Baseline("apache_access", "elastic-examples apache_logs (10,000 access-log lines)",
             ("elastic-examples/apache_logs/apache_logs",)),
    Baseline("loghub_apache", "loghub Apache_2k.log (error log)", ("loghub/Apache/Apache_2k.log",)),
    Baseline("loghub_linux", "loghub Linux_2k.log (RHEL syslog, real SSH brute force)", ("loghub/Linux/Linux_2k.log",)),
    Baseline("loghub_openssh", "loghub OpenSSH_2k.log (real SSH brute force)", ("loghub/OpenSSH/OpenSSH_2k.log",)),
    Baseline("wazuh_benign", "wazuh-tests lines expecting alert level 0-3", ("wazuh-tests",), wazuh_benign_lines),
    Baseline("evtx_windows", "pyevtx-rs sysmon.evtx, security.evtx, system.evtx",
             ("evtx/sysmon.evtx", "evtx/security.evtx", "evtx/system.evtx")),
    Baseline("otrf_security_auditing", "OTRF Log4Shell Windows Security events (39)",
             ("otrf/datasets/compound/Log4Shell/unzipped/"
              "securityauditing_log4shell_cve2021_44228_java_serialized_object_2022-05-13045400.json",)),
)


@dataclass
class BaselineResult:
    name: str
    events: int
    sampled: bool
    seconds: float
    counts: Counter[str] = field(default_factory=Counter)  # rule id -> alerts


def _sampled(lines: list[str], sample: int | None) -> tuple[list[str], bool]:
    if not sample or len(lines) <= sample:
        return lines, False
    step = -(-len(lines) // sample)
    return lines[::step], True


def run_baseline(baseline: Baseline, ruleset: RuleSet, shared: Path = SHARED, sample: int | None = None) -> BaselineResult:
    """Hunt one baseline with ``ruleset``; alerts per rule id."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="soc-noise-") as tmp:
        paths: list[Path] = []
        sampled = False
        if baseline.lines is not None:
            lines, sampled = _sampled(baseline.lines(shared), sample)
            path = Path(tmp) / f"{baseline.name}.log"
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
            paths.append(path)
        for rel in baseline.files if baseline.lines is None else ():
            source = shared / rel
            if source.suffix == ".evtx" or sample is None:
                paths.append(source)
                continue
            lines, cut = _sampled(source.read_text(encoding="utf-8", errors="replace").splitlines(), sample)
            sampled = sampled or cut
            path = Path(tmp) / source.name
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
            paths.append(path)
        hunt = run_hunt(paths, ruleset, timezone=SAMPLE_TIMEZONE)
    counts = Counter(str(alert["rule"]["id"]) for alert in hunt.alerts)
    return BaselineResult(baseline.name, hunt.events, sampled, time.perf_counter() - started, counts)


def load_allowances(path: Path = ALLOWANCES) -> dict[tuple[str, str], dict[str, Any]]:
    """``(rule id, baseline) -> {max, reason, title}`` from the allowance file; each entry needs a reason."""
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else None
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for entry in (doc or {}).get("allowances") or []:
        reason = str(entry.get("reason") or "").strip()
        if not reason:
            raise ValueError(f"{path}: the allowance for {entry.get('rule')} on {entry.get('baseline')} gives no reason")
        out[(str(entry["rule"]), str(entry["baseline"]))] = {
            "max": int(entry["max"]), "reason": reason, "title": str(entry.get("title", ""))}
    return out


@dataclass(frozen=True)
class Verdict:
    rule: str
    title: str
    baseline: str
    alerts: int
    allowed: int
    reason: str

    @property
    def explained(self) -> bool:
        return self.alerts <= self.allowed


def judge(results: Iterable[BaselineResult], ruleset: RuleSet,
          allowances: dict[tuple[str, str], dict[str, Any]]) -> tuple[list[Verdict], list[tuple[str, str]]]:
    """Every (rule, baseline) that fired, against its allowance; and the allowances nothing used
    (stale: the rule is gone, or it no longer fires there)."""
    verdicts: list[Verdict] = []
    used: set[tuple[str, str]] = set()
    for result in results:
        for rule, alerts in sorted(result.counts.items()):
            allowance = allowances.get((rule, result.name))
            if allowance:
                used.add((rule, result.name))
            title = ruleset.detections[rule].info.title if rule in ruleset.detections else rule
            verdicts.append(Verdict(rule, title, result.name, alerts, allowance["max"] if allowance else 0,
                                    allowance["reason"] if allowance else ""))
    stale = sorted(key for key in allowances if key not in used)
    return verdicts, stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=Path, default=ROOT / "detections")
    parser.add_argument("--sample", type=int, default=None, help="at most N lines per text baseline")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    ruleset = compile_rules(load_rules([args.rules]))
    alerting = [d for d in ruleset.detections.values() if d.output and d.runnable]
    results = [run_baseline(b, ruleset, sample=args.sample) for b in BASELINES]
    verdicts, stale = judge(results, ruleset, load_allowances())
    load = os.getloadavg()
    if args.json:
        print(json.dumps({"baselines": [{"name": r.name, "events": r.events, "sampled": r.sampled,
                                         "seconds": round(r.seconds, 2), "alerts": dict(r.counts)} for r in results],
                          "verdicts": [v.__dict__ | {"explained": v.explained} for v in verdicts],
                          "stale": stale, "rules": len(alerting), "load": load}, ensure_ascii=False, indent=1))
    else:
        print(f"{len(alerting)} alerting rules over {len(results)} benign baselines (load average {load[0]:.2f})")
        for r in results:
            print(f"  {r.name:24} {r.events:>7} events{' (sampled)' if r.sampled else ''}  "
                  f"{sum(r.counts.values()):>4} alerts  {r.seconds:5.1f} s")
        print()
        print(f"{'alerts':>6} {'allowed':>7}  {'baseline':24} rule")
        for v in sorted(verdicts, key=lambda v: (v.explained, v.baseline, v.title)):
            mark = "" if v.explained else "  <-- UNEXPLAINED"
            print(f"{v.alerts:>6} {v.allowed:>7}  {v.baseline:24} {v.title}{mark}")
        silent = len({d.info.id for d in alerting} - {v.rule for v in verdicts})
        print(f"\n{silent} of {len(alerting)} alerting rules raised nothing on any baseline;"
              f" {sum(not v.explained for v in verdicts)} unexplained; {len(stale)} stale allowances"
              f"; {time.perf_counter() - started:.1f} s")
        for rule, baseline in stale:
            print(f"  stale allowance: {rule} on {baseline}")
    return 1 if any(not v.explained for v in verdicts) else 0


if __name__ == "__main__":
    raise SystemExit(main())
