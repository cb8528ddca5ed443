"""The compiled-rule cache (:mod:`soc.detect.rulecache`): the same rule set as compiling afresh,
nothing compiled the second time, a changed file compiled again, a bad entry ignored and rebuilt."""

from __future__ import annotations

import dataclasses
import os
import pickle
import shutil
from pathlib import Path

import pytest

from soc.config import Settings
from soc.detect.compiler import RuleSet, compile_rules
from soc.detect.rulecache import RuleCache, context_key, load_compiled, rule_cache_dir
from soc.detect.rules import load_rules
from soc.hunt import run_hunt
from tests.conftest import ROOT, SHARED_DATA, shared

DETECTIONS = ROOT / "detections"
LOGS = [("elastic-examples", "suspicious_login_activity", "data", "auth.log"), ("loghub", "OpenSSH", "OpenSSH_2k.log")]


def _same(a: RuleSet, b: RuleSet) -> None:
    """Equal rule sets: the same rules in the same order, each with the same compiled form and report."""
    assert list(a.detections) == list(b.detections)
    for key, detection in a.detections.items():
        assert dataclasses.asdict(detection) == dataclasses.asdict(b.detections[key]), key
    assert [vars(p) for p in a.problems] == [vars(p) for p in b.problems]
    assert a.dialect == b.dialect


def _alert_ids(ruleset: RuleSet) -> list[str]:
    result = run_hunt([shared(*parts) for parts in LOGS], ruleset, timezone="Asia/Ho_Chi_Minh")
    return sorted(a["id"] for a in result.alerts)


def test_second_load_compiles_nothing_and_gives_identical_detections(tmp_path: Path) -> None:
    plain = compile_rules(load_rules([DETECTIONS]))
    first = load_compiled([DETECTIONS], cache_dir=tmp_path / "cache")
    second = load_compiled([DETECTIONS], cache_dir=tmp_path / "cache")
    rules = sum(1 for d in plain.detections.values())
    assert first.cache is not None and first.cache.compiled == rules and first.cache.from_cache == 0
    assert second.cache is not None and second.cache.compiled == 0 and second.cache.from_cache == rules
    assert str(second.cache) == f"{rules} rules from cache, 0 compiled"
    _same(plain, first)
    _same(plain, second)
    assert any(d.kind == "correlation" for d in second.detections.values())
    assert any(not d.output for d in second.detections.values()), "generate: false was not exercised"
    ids = _alert_ids(plain)
    assert ids and _alert_ids(second) == ids


@pytest.mark.parametrize("dialect", ["sqlite", "dsl"])
def test_sigmahq_rules_from_the_cache_equal_a_fresh_compilation(tmp_path: Path, dialect: str) -> None:
    if not (SHARED_DATA / "sigma").is_dir():
        pytest.skip(f"SigmaHQ rules not found at {SHARED_DATA / 'sigma'}")
    dirs = [SHARED_DATA / "sigma/rules/windows/builtin", SHARED_DATA / "sigma/rules/linux", DETECTIONS]
    plain = compile_rules(load_rules(dirs), dialect=dialect)
    load_compiled(dirs, dialect, cache_dir=tmp_path)
    cached = load_compiled(dirs, dialect, cache_dir=tmp_path)
    assert cached.cache is not None and cached.cache.compiled == 0
    _same(plain, cached)


def test_changed_rule_file_is_recompiled(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(DETECTIONS, rules)
    load_compiled([rules], cache_dir=tmp_path / "cache")
    changed = next(p for p in sorted(rules.rglob("*.yml")) if "title:" in p.read_text(encoding="utf-8")
                   and "correlation:" not in p.read_text(encoding="utf-8") and "regression_data" not in p.parts)
    text = changed.read_text(encoding="utf-8")
    changed.write_text(text.replace("title: ", "title: Changed ", 1), encoding="utf-8")
    again = load_compiled([rules], cache_dir=tmp_path / "cache")
    assert again.cache is not None and again.cache.compiled == 1
    assert again.cache.from_cache == len(again.detections) - 1
    assert any(d.info.title.startswith("Changed ") and d.info.path == str(changed) for d in again.detections.values())
    _same(compile_rules(load_rules([rules])), again)


def test_corrupted_or_foreign_entries_are_ignored_and_rebuilt(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    plain = compile_rules(load_rules([DETECTIONS]))
    load_compiled([DETECTIONS], cache_dir=cache)
    entries = sorted(cache.glob("*.pickle"))
    marker = tmp_path / "executed"
    entries[0].write_bytes(b"\x80\x05garbage")  # corrupted
    entries[1].write_bytes(pickle.dumps(("soc-rule-cache", 1, entries[1].stem, (os.system, (f"touch {marker}",)))))
    entries[2].write_bytes(pickle.dumps(_Evil(marker)))  # a foreign class whose loading would run code
    wrong_key = pickle.loads(entries[3].read_bytes())  # noqa: S301 (written by this test's own run)
    entries[4].write_bytes(pickle.dumps(("soc-rule-cache", 1, "another-key", wrong_key[3])))  # someone else's
    again = load_compiled([DETECTIONS], cache_dir=cache)
    assert not marker.exists()
    assert again.cache is not None and again.cache.rebuilt == 4 and again.cache.compiled >= 4
    _same(plain, again)
    third = load_compiled([DETECTIONS], cache_dir=cache)
    assert third.cache is not None and third.cache.compiled == 0 and third.cache.rebuilt == 0


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, ...]:
        return (os.system, (f"touch {self.marker}",))


def test_a_cache_folder_others_may_write_is_not_used(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o777)
    cache.chmod(0o777)
    assert not RuleCache(cache).usable
    ruleset = load_compiled([DETECTIONS], cache_dir=cache)
    assert ruleset.cache is None and not list(cache.iterdir())
    _same(compile_rules(load_rules([DETECTIONS])), ruleset)


def test_the_cache_key_follows_the_dialect_and_the_setting_names_the_folder(tmp_path: Path) -> None:
    assert context_key("sqlite") != context_key("dsl")
    assert rule_cache_dir(Settings(data_dir=tmp_path)) == tmp_path / "rule-cache"
    assert rule_cache_dir(Settings(data_dir=tmp_path, detection={"rule_cache": False})) is None
    assert rule_cache_dir(Settings(data_dir=tmp_path, detection={"rule_cache_dir": tmp_path / "x"})) == tmp_path / "x"


def test_hunt_summary_says_how_many_rules_came_from_the_cache(tmp_path: Path) -> None:
    load_compiled([DETECTIONS], cache_dir=tmp_path)
    ruleset = load_compiled([DETECTIONS], cache_dir=tmp_path)
    result = run_hunt([shared(*LOGS[0])], ruleset, timezone="Asia/Ho_Chi_Minh")
    assert f"; {len(ruleset.detections)} rules from cache, 0 compiled" in result.summary()
