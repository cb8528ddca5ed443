"""Regression tests of the project's Sigma rules: run each rule's sample logs, count its alerts.

Layout (like SigmaHQ's regression data; the full convention is in ``detections/README.md``)::

    detections/regression_data/<folder of the rule file>/<rule file stem>/info.yml
    detections/regression_data/<folder of the rule file>/<rule file stem>/<rule id>.log
    detections/regression_data/<folder of the rule file>/<rule file stem>/<rule id>_negative.log

One ``info.yml`` per rule file. ``rule_metadata`` lists the alerting rules of that file the
samples test; every entry of ``regression_tests_info`` names one sample (``path``), how to read it
(``type``: log | json | jsonl | evtx, optional ``format``: a parser name, default ``auto``), the
rule it is for (``rule_id``; may be left out when ``rule_metadata`` has one rule) and the exact
number of alerts of that rule the sample must produce (``match_count``).

Each sample goes through the same path as ``soc hunt``: :func:`soc.hunt.run_hunt` (ingest into a
scratch store, run every rule that applies), with one rule set compiled once for all samples.
Alerts of other rules in a sample are ignored: a near-miss for one rule may well be a hit for
another. Coverage: every alerting rule of a file under the detections folder needs a test with
``match_count`` > 0 and one with 0 (:func:`coverage_gaps`); ``soc rules test`` is the command.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from soc.detect.compiler import RuleSet, compile_rules
from soc.detect.rules import load_rules
from soc.hunt import HuntError, run_hunt

#: time zone of sample lines that carry none (RFC 3164 syslog): the province's
SAMPLE_TIMEZONE = "Asia/Ho_Chi_Minh"
#: sample types and the parser they imply (``format`` in info.yml overrides)
TYPES = {"log": "auto", "json": "json", "jsonl": "json", "evtx": "auto"}


@dataclass(frozen=True)
class RegressionResult:
    """One regression test (one sample, one rule): what was expected and what came out."""

    rule_id: str
    title: str
    test: str
    expected: int | None
    got: int | None
    ok: bool
    message: str = ""
    info: str = ""  # the info.yml this test comes from
    sample: str = ""

    def __str__(self) -> str:
        state = "ok  " if self.ok else "FAIL"
        return f"{state} {self.title} [{self.test}] expected {self.expected}, got {self.got} {self.message}".rstrip()


def info_files(detections_dir: Path) -> list[Path]:
    """Every ``info.yml`` under ``<detections_dir>/regression_data``."""
    return sorted((Path(detections_dir) / "regression_data").rglob("info.yml"))


def resolve_sample(path: str, info: Path, detections_dir: Path) -> Path:
    """A sample path from info.yml: absolute, relative to the project root (the folder holding
    ``detections/``, SigmaHQ style), or relative to the info.yml's folder."""
    candidate = Path(path)
    if candidate.is_absolute():
        return candidate
    for base in (Path(detections_dir).resolve().parent, info.parent):
        if (base / candidate).exists():
            return base / candidate
    return Path(detections_dir).resolve().parent / candidate


def _tests(info: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    doc = yaml.safe_load(info.read_text(encoding="utf-8")) or {}
    if not isinstance(doc, dict):
        raise ValueError("info.yml must be a mapping")
    tests = doc.get("regression_tests_info") or []
    metadata = doc.get("rule_metadata") or []
    if not tests or not metadata:
        raise ValueError("info.yml needs rule_metadata and regression_tests_info")
    return doc, tests


@dataclass(frozen=True)
class RegressionCase:
    """One well-formed entry of an info.yml: the sample, how to read it, the rule and the count.

    For running the samples elsewhere than :func:`run_regression`'s SQLite hunts (the test that
    runs them all on OpenSearch), so the reading of info.yml is not duplicated."""

    info: Path
    name: str
    rule_id: str
    expected: int
    sample: Path
    fmt: str


def regression_cases(detections_dir: Path) -> tuple[list[RegressionCase], list[str]]:
    """Every test of every info.yml under ``detections_dir/regression_data`` whose rule, count and
    type are readable, and a message for each one that is not (which :func:`run_regression`
    reports as a failed result too)."""
    detections_dir = Path(detections_dir)
    cases: list[RegressionCase] = []
    problems: list[str] = []
    for info in info_files(detections_dir):
        try:
            doc, tests = _tests(info)
        except (ValueError, yaml.YAMLError) as error:
            problems.append(f"{info}: {error}")
            continue
        ids = [str(m.get("id")) for m in doc["rule_metadata"] if isinstance(m, dict)]
        for test in tests:
            name = str(test.get("name", "unnamed test"))
            rule_id = str(test.get("rule_id") or (ids[0] if len(ids) == 1 else ""))
            expected = test.get("match_count")
            kind = str(test.get("type", "log"))
            if not rule_id or not isinstance(expected, int) or isinstance(expected, bool) or expected < 0 \
                    or kind not in TYPES:
                problems.append(f"{info} [{name}]: needs a rule_id, a non-negative match_count and a known type")
                continue
            cases.append(RegressionCase(info, name, rule_id, expected,
                                        resolve_sample(str(test.get("path", "")), info, detections_dir),
                                        str(test.get("format") or TYPES[kind])))
    return cases, problems


def run_regression(detections_dir: Path, rule_dirs: list[Path] | None = None, *,
                   require_coverage: bool = True) -> list[RegressionResult]:
    """Run every regression test under ``detections_dir/regression_data``.

    ``rule_dirs`` are the rule folders to compile (default: ``detections_dir`` itself); they are
    compiled once and reused for every sample. A malformed info.yml, a missing sample or a rule
    id that is not loaded gives a failed result naming the problem rather than an exception.
    With ``require_coverage`` (the default), every alerting rule whose file lies under
    ``detections_dir`` and that lacks a positive or a negative test adds a failed result
    (see :func:`coverage_gaps`).
    """
    detections_dir = Path(detections_dir)
    ruleset = compile_rules(load_rules(rule_dirs or [detections_dir]))
    cache: dict[tuple[Path, str], tuple[Counter[str], list[str]]] = {}
    results: list[RegressionResult] = []
    for info in info_files(detections_dir):
        results.extend(_run_info(info, detections_dir, ruleset, cache))
    if require_coverage:
        results.extend(coverage_gaps(detections_dir, ruleset))
    return results


def tested_rules(detections_dir: Path) -> dict[str, set[str]]:
    """Rule id -> the kinds of test it has (``positive``: match_count > 0, ``negative``: 0),
    from every readable info.yml under ``detections_dir/regression_data``."""
    kinds: dict[str, set[str]] = {}
    for info in info_files(detections_dir):
        try:
            doc, tests = _tests(info)
        except (ValueError, yaml.YAMLError):
            continue
        ids = [str(m.get("id")) for m in doc["rule_metadata"] if isinstance(m, dict)]
        for test in tests:
            rule_id = str(test.get("rule_id") or (ids[0] if len(ids) == 1 else ""))
            count = test.get("match_count")
            if rule_id and isinstance(count, int) and not isinstance(count, bool):
                kinds.setdefault(rule_id, set()).add("positive" if count > 0 else "negative")
    return kinds


def coverage_gaps(detections_dir: Path, ruleset: RuleSet) -> list[RegressionResult]:
    """A failed result for each alerting rule from a file under ``detections_dir`` that has no
    positive test or no negative test. Rules only referenced by correlations (``generate: false``
    or named and used by a correlation) are covered through the correlation's tests."""
    root = Path(detections_dir).resolve()
    kinds = tested_rules(detections_dir)
    gaps: list[RegressionResult] = []
    for rule_id, detection in sorted(ruleset.detections.items()):
        path = Path(detection.info.path).resolve() if detection.info.path else None
        if not detection.output or path is None or not path.is_relative_to(root):
            continue
        missing = {"positive", "negative"} - kinds.get(rule_id, set())
        if missing:
            gaps.append(RegressionResult(
                rule_id, detection.info.title, "coverage", None, None, False,
                f"no {' and no '.join(sorted(missing, reverse=True))} regression test: add samples under "
                f"{Path(detections_dir) / 'regression_data'} (see detections/README.md)",
                "", str(detection.info.path)))
    return gaps


def _run_info(info: Path, detections_dir: Path, ruleset: RuleSet,
              cache: dict[tuple[Path, str], tuple[Counter[str], list[str]]]) -> Iterable[RegressionResult]:
    where = str(info)
    try:
        doc, tests = _tests(info)
    except (ValueError, yaml.YAMLError) as error:
        yield RegressionResult("", "", "", None, None, False, f"{info}: {error}", where)
        return
    titles = {str(m.get("id")): str(m.get("title", "")) for m in doc["rule_metadata"] if isinstance(m, dict)}
    for test in tests:
        name = str(test.get("name", "unnamed test"))
        rule_id = str(test.get("rule_id") or (next(iter(titles)) if len(titles) == 1 else ""))
        expected = test.get("match_count")
        title = titles.get(rule_id) or (ruleset.detections[rule_id].info.title if rule_id in ruleset.detections else "")

        def result(got: int | None, ok: bool, message: str = "", sample: str = "",
                   _id: str = rule_id, _title: str = title, _name: str = name, _expected: Any = expected
                   ) -> RegressionResult:
            return RegressionResult(_id, _title, _name, _expected, got, ok, message, where, sample)

        if not rule_id:
            yield result(None, False, "the test names no rule_id and rule_metadata lists several rules")
            continue
        if not isinstance(expected, int) or isinstance(expected, bool) or expected < 0:
            yield result(None, False, "match_count must be a non-negative integer")
            continue
        if rule_id not in ruleset.detections:
            yield result(None, False, f"rule {rule_id} is not loaded from the rule folders")
            continue
        if not ruleset.detections[rule_id].output:
            yield result(None, False, "rule raises no alerts of its own (only referenced by correlations): test the correlation")
            continue
        kind = str(test.get("type", "log"))
        if kind not in TYPES:
            yield result(None, False, f"unknown type {kind!r} (use {', '.join(TYPES)})")
            continue
        sample = resolve_sample(str(test.get("path", "")), info, detections_dir)
        fmt = str(test.get("format") or TYPES[kind])
        try:
            counts, errors = _hunt(sample, fmt, ruleset, cache)
        except HuntError as error:
            yield result(None, False, f"cannot read sample: {error}", str(sample))
            continue
        got = counts.get(rule_id, 0)
        problems = [e for e in errors if rule_id in e]
        message = "; ".join(problems)
        yield result(got, got == expected and not problems, message, str(sample))


def _hunt(sample: Path, fmt: str, ruleset: RuleSet,
          cache: dict[tuple[Path, str], tuple[Counter[str], list[str]]]) -> tuple[Counter[str], list[str]]:
    """Alerts per rule id for one sample file (each file is hunted once per format)."""
    key = (sample.resolve(), fmt)
    if key not in cache:
        hunt = run_hunt([sample], ruleset, fmt=fmt, timezone=SAMPLE_TIMEZONE)
        counts = Counter(str(alert["rule"]["id"]) for alert in hunt.alerts)
        cache[key] = (counts, list(hunt.rule_errors))
    return cache[key]


def main(argv: list[str] | None = None) -> int:
    """``python -m soc.regression [DETECTIONS_DIR]``: print every result, exit 1 on a failure."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    results = run_regression(Path(args[0] if args else "detections"))
    for item in results:
        print(item)
    failed = sum(not r.ok for r in results)
    print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
