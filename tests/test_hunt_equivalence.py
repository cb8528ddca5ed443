"""The hunt's fast paths give exactly the alerts and matches of the plain ones, on real data.

* ``run_hunt(fresh_store=True)`` (episodes merged in memory, alerts written at the end) against
  ``fresh_store=False`` (the service's path: a store look-up and compare-and-set per episode),
  on the real auth.log, OpenSSH and Linux logs, with ``detections/`` and with the SigmaHQ rules
  for syslog-type logs that the benchmark uses;
* the scratch store a hunt uses (``durable=False``: no unique index, ids kept in a set) against
  the whole store contract;
* the keyword prefilter of :meth:`SQLiteStore.find_matches_many` against rule-by-rule
  :meth:`SQLiteStore.find_matches` (no prefilter), for every SigmaHQ keyword rule, over the real
  lines plus lines built from each rule's own patterns (so that the rules do match, in mixed
  case), and :func:`keyword_requirement` on hand-made predicates.
"""

from __future__ import annotations

import random
import re
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

import tests.test_store_contract as contract
from soc.catalog import default_catalog
from soc.detect.compiler import RuleSet, compile_rules
from soc.detect.rules import load_rules
from soc.hunt import run_hunt
from soc.store.base import Window
from soc.store.sqlite import SQLiteStore, fold_ascii, keyword_requirement, literal_finder
from tests.conftest import ROOT, SHARED_DATA, shared

FILES = [("elastic-examples", "suspicious_login_activity", "data", "auth.log"),
         ("loghub", "OpenSSH", "OpenSSH_2k.log"), ("loghub", "Linux", "Linux_2k.log")]


def _sigma_ruleset() -> RuleSet:
    if not (SHARED_DATA / "sigma").is_dir():
        pytest.skip(f"SigmaHQ rules not found at {SHARED_DATA / 'sigma'}")
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from hunt import syslog_rules  # benchmarks/hunt.py: the benchmark's rule selection
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return compile_rules(load_rules([*syslog_rules(SHARED_DATA / "sigma"), ROOT / "detections"]))


@pytest.fixture(scope="module")
def sigma_ruleset() -> RuleSet:
    return _sigma_ruleset()


def _alerts(files: list[Path], ruleset: RuleSet, fresh: bool) -> list[dict]:
    result = run_hunt(files, ruleset, timezone="Asia/Ho_Chi_Minh", fresh_store=fresh)
    return sorted(({k: v for k, v in a.items() if k != "detected_at"} for a in result.alerts),
                  key=lambda a: a["id"])


@pytest.mark.parametrize("rules", ["detections", "sigma"])
def test_fresh_store_path_gives_the_service_paths_alerts(rules: str, sigma_ruleset: RuleSet) -> None:
    ruleset = compile_rules(load_rules([ROOT / "detections"])) if rules == "detections" else sigma_ruleset
    files = [shared(*parts) for parts in FILES]
    for chosen in [[f] for f in files] + [files]:
        fast, plain = _alerts(chosen, ruleset, True), _alerts(chosen, ruleset, False)
        assert [(a["id"], a["event_count"]) for a in fast] == [(a["id"], a["event_count"]) for a in plain]
        assert fast == plain
    assert any(a["kind"] == "correlation" for a in fast), "the correlation path was not exercised"


class TestScratchSQLiteStore(contract.TestSQLiteStore):
    """The store contract, on the scratch store of hunts."""

    @staticmethod
    def _open(path: Path) -> SQLiteStore:
        return SQLiteStore(path, durable=False, numeric_fields=default_catalog().numeric_fields)


def test_scratch_store_writes_are_idempotent_within_and_across_batches(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db", durable=False)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    events = [{"_id": f"e{i % 3}", "@timestamp": now, "message": str(i)} for i in range(5)]
    first = store.write_events(events)
    assert (first.created, first.existing) == (3, 2)
    again = store.write_events(events[:2] + [{"_id": "bad"}])
    assert (again.created, again.existing, len(again.rejected)) == (0, 2, 1)
    assert store.count_events() == {"": 3}
    assert [e["message"] for e in store.get_events(["e2", "e0"])] == ["2", "0"]  # the first one wins
    assert store.purge_events(datetime.now(UTC).timestamp() + 10) == 3
    assert store.write_events(events[:1]).created == 1  # purged ids can come back


# ---- keyword prefilter ----------------------------------------------------------------------


def test_keyword_requirement_reads_predicates() -> None:
    like = "message LIKE '{}' ESCAPE '\\'"
    assert keyword_requirement(like.format("%Foo%")) == {"foo"}
    escaped = like.format("%x\\_y%")
    assert keyword_requirement(f"({like.format('%a%bcd%')} OR {escaped}) AND "
                               f"({like.format('%@%')} OR {like.format('%:%')})") in ({"bcd", "x_y"}, {"@", ":"})
    assert keyword_requirement(f"`process.name`='cron' AND {like.format('%) REPLACE (%')}") == {") replace ("}
    assert keyword_requirement("`message` LIKE '%It''s%'") == {"it's"}
    assert keyword_requirement("message LIKE '%5%'") == {"5"}
    assert keyword_requirement("MESSAGE like '%Upper%'") == {"upper"}  # names and words in any case
    assert keyword_requirement("`process.name` LIKE '%cron%'") is None  # another column requires nothing
    for opaque in (f"NOT {like.format('%x%')}", f"{like.format('%x%')} OR a = 1", "message NOT LIKE '%q%'",
                   f"x BETWEEN 1 AND 2 AND {like.format('%q%')}", like.format("%%"), "message = 'x'",
                   f"({like.format('%x%')}"):
        assert keyword_requirement(opaque) is None, opaque


def test_literal_finder_finds_every_literal_anywhere() -> None:
    literals = ["abc", "x/y", "zz", "a", "/tmp/", "() { :;};", "'quoted'", "ünï", "b" * 5]
    finder = literal_finder(literals)
    rng = random.Random(7)
    for literal in literals:
        for _ in range(20):
            pad = "".join(rng.choice("qrstuvw .:/-") for _ in range(rng.randint(0, 12)))
            assert finder.search(pad + literal + pad[::-1]), literal
    assert not finder.search("qrstuvw")
    assert not literal_finder([]).search("anything")


def _instances(pattern: str, rng: random.Random) -> str:
    """A message LIKE ``pattern`` (ESCAPE '\\') matches: wildcards filled, ASCII case scrambled."""
    out, i = [], 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            out.append(pattern[i + 1])
            i += 2
            continue
        out.append(rng.choice(["", " ", "x1 "]) if char == "%" else rng.choice("ab7") if char == "_" else char)
        i += 1
    return "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in "".join(out))


def test_prefiltered_scan_matches_rule_by_rule(sigma_ruleset: RuleSet, tmp_path: Path) -> None:
    rules = [d for d in sigma_ruleset.runnable()
             if d.kind == "event" and isinstance(d.where, str) and keyword_requirement(d.where) is not None]
    assert len(rules) > 40
    rng = random.Random(1)
    messages = [line for parts in FILES for line in shared(*parts).read_text(errors="replace").splitlines()[:500]]
    for rule in rules:
        patterns = [p.replace("''", "'") for p in re.findall(r"LIKE '((?:[^']|'')*)'", rule.where)]
        messages.append(" ".join(_instances(p, rng) for p in patterns))  # every atom true
        messages.append(_instances(rng.choice(patterns), rng))  # one atom true
    messages += ["", "Ünicode ÄÖ message", "ΑΣ final sigma"]
    store = SQLiteStore(tmp_path / "kw.db", durable=False, numeric_fields=default_catalog().numeric_fields)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    store.write_events([{"_id": f"e{i}", "@timestamp": now, "event.dataset": "linux.syslog", "message": m,
                         "process.name": "crontab" if i % 3 == 0 else "sshd"} for i, m in enumerate(messages)])
    store.PREFILTER_MIN_ATOMS = 0  # always prefilter
    window = Window(None, None, "@timestamp")
    fields = ["message"]
    store.prepare_fields({f for r in rules for f in r.fields})
    together = store.find_matches_many([r.where for r in rules], None, window, fields, 10**6)
    matched = 0
    for rule, found in zip(rules, together, strict=True):
        alone = store.find_matches(rule.where, None, window, fields, 10**6)
        assert [m.id for m in found] == [m.id for m in alone], rule.info.title
        matched += bool(alone)
        finder = literal_finder(keyword_requirement(rule.where) or ())
        assert all(finder.search(fold_ascii(m.fields["message"])) for m in alone), rule.info.title
    assert matched > len(rules) // 2  # the built lines do exercise the rules


def test_file_event_ids_are_file_event_id() -> None:
    from soc.ingest.sources.files import _file_event_ids
    from soc.model import file_event_id

    for path in ("/var/log/auth.log", "/tmp/ünï cödé#3.1", ""):
        ids = _file_event_ids(path)
        for offset in (0, 1, 123456789, 2**40):
            assert ids(offset) == file_event_id(path, offset)
