"""``soc rules coverage`` (issue #15, item 4): ATT&CK techniques of the loaded rules, the log
sources each needs, and per agency whether those sources sent events recently.

Agencies' connected sources come from a real SQLite store filled through the ingest path (the
project's own regression samples, as two agencies); the CLI runs end to end with typer's runner.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest
from typer.testing import CliRunner

from soc.catalog import default_catalog
from soc.cli import app
from soc.detect.compiler import RuleSet, compile_rules
from soc.detect.coverage import build_coverage, connected_datasets, needed_datasets, techniques_of
from soc.detect.rules import load_rules
from soc.hunt import ingest_files
from soc.store.base import Window
from soc.store.sqlite import SQLiteStore
from tests.conftest import ROOT
from tests.scope_helpers import STORE_KINDS, close_kind, open_kind

SAMPLES = ROOT / "detections" / "regression_data"
LSASS_SAMPLE = SAMPLES / "windows/credential_access/lsass_process_access/1964fc7e-01a3-4848-974a-2b1f2b0f0beb.json"
WEB_SAMPLE = SAMPLES / "web/exploits/product_exploit_requests/a3e03b76-5741-47b8-8838-c094ff1d411d.log"


@cache
def _ruleset() -> RuleSet:
    return compile_rules(load_rules([ROOT / "detections"]))


def test_technique_ids_from_sigma_tags() -> None:
    tags = ["attack.credential-access", "attack.t1003.001", "attack.T1003.002", "attack.s0002", "attack.t1003.001",
            "cve.2021-44228"]
    assert techniques_of(tags) == ["T1003.001", "T1003.002"]


def test_needed_datasets_drop_the_catch_alls() -> None:
    # a Sysmon rule: the catch-all Windows channel dataset goes
    assert needed_datasets(["windows.other", "windows.sysmon"]) == ["windows.sysmon"]
    # a category-only rule (firewall) also lists every Windows dataset: they go
    assert needed_datasets(["firewall.fortigate", "windows.other", "windows.security"]) == ["firewall.fortigate"]
    # a Windows rule on an otherwise unknown channel keeps windows.other
    assert needed_datasets(["windows.other"]) == ["windows.other"]


def test_map_of_the_project_rules_with_agencies() -> None:
    connected = {"so-tttt": {"windows.sysmon", "windows.security"}, "so-tc": {"web.access"}, "ubnd-xa-a": set()}
    cov = build_coverage(_ruleset(), connected, project_dir=ROOT / "detections")
    by_id = {t.id: t for t in cov.techniques}
    lsass = by_id["T1003.001"]
    assert "LSASS Memory Opened For Reading By Unusual Process" in {r.title for r in lsass.rules}
    assert "windows.sysmon" in lsass.datasets
    assert lsass.seen_in() == ["so-tttt"] and lsass.blind_in() == ["so-tc", "ubnd-xa-a"]
    web = by_id["T1190"]
    sqli = next(r for r in web.rules if r.title == "SQL Injection Attempt In Web Request")
    assert sqli.datasets == ("web.access",)  # the Windows catch-alls of category-only rules are gone
    assert "web.access" in web.datasets and "windows.sysmon" in web.datasets  # web shells seen on the host too
    assert web.seen_in() == ["so-tc", "so-tttt"] and web.connected["so-tc"] == ["web.access"]
    assert by_id["T1046"].seen_in() == []  # nobody sends firewall logs here
    assert by_id["T1558.003"].connected["so-tttt"] == ["windows.security"]  # Kerberoasting reads Security
    assert all(r.origin == "project" for t in cov.techniques for r in t.rules)
    assert "credential-access" in lsass.tactics
    # every technique tagged on an alerting rule that can run is in the map, and nothing else
    expected = {t for d in _ruleset().detections.values() if d.output and d.runnable for t in techniques_of(d.info.tags)}
    assert set(by_id) == expected
    assert len(cov.techniques) >= 40


def test_rules_from_a_pack_are_marked(tmp_path: Path) -> None:
    (tmp_path / "pack.yml").write_text(
        "title: Pack Rule\nid: 7d0e2f0c-7c8b-4b5e-9d55-0f1b3a9c2e11\nstatus: test\nauthor: pack\n"
        "tags: [attack.discovery, attack.t1087.001]\nlogsource: {product: windows, service: security}\n"
        "detection: {selection: {winlog.event_id: 4798}, condition: selection}\nlevel: low\n", encoding="utf-8")
    ruleset = compile_rules(load_rules([ROOT / "detections", tmp_path]))
    cov = build_coverage(ruleset, None, project_dir=ROOT / "detections")
    entry = next(t for t in cov.techniques if t.id == "T1087.001")
    assert [(r.title, r.origin) for r in entry.rules] == [("Pack Rule", "pack")]
    assert entry.connected == {} and cov.agencies == []


@pytest.fixture
def store_dir(tmp_path: Path) -> Iterator[Path]:
    """A real SQLite store holding Sysmon events of so-tttt and web access lines of so-tc."""
    data = tmp_path / "data"
    store = SQLiteStore(data / "soc.db", numeric_fields=default_catalog().numeric_fields)
    ingest_files(store, [LSASS_SAMPLE], fmt="auto", timezone="Asia/Ho_Chi_Minh", agency="so-tttt", progress=False)
    ingest_files(store, [WEB_SAMPLE], fmt="auto", timezone="Asia/Ho_Chi_Minh", agency="so-tc", progress=False)
    store.close()
    yield data


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_connected_datasets_from_the_store(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """On SQLite and the real OpenSearch: agencies and the datasets they sent, through the ingest path."""
    store = open_kind(kind, request, tmp_path)
    try:
        ingest_files(store, [LSASS_SAMPLE], fmt="auto", timezone="Asia/Ho_Chi_Minh", agency="so-tttt",  # type: ignore[arg-type]
                     progress=False)
        ingest_files(store, [WEB_SAMPLE], fmt="auto", timezone="Asia/Ho_Chi_Minh", agency="so-tc",  # type: ignore[arg-type]
                     progress=False)
        if hasattr(store, "refresh"):
            store.refresh()  # the search engine: make the writes visible to counts
        found = connected_datasets(store, Window(None, None, "event.ingested"), ["ubnd-xa-a"])
        assert found == {"so-tttt": {"windows.sysmon"}, "so-tc": {"web.access"}, "ubnd-xa-a": set()}
        # a period that ended before anything was ingested: nobody is connected
        assert connected_datasets(store, Window(0, 1, "event.ingested"), ["so-tc"]) == {"so-tc": set()}
    finally:
        close_kind(store)


def _env(store_dir: Path) -> dict[str, str]:
    return {"SOC_DATA_DIR": str(store_dir), "SOC_STORE_URL": "", "SOC_TIMEZONE": "Asia/Ho_Chi_Minh",
            "SOC_RULE_DIRS": "[]", "COLUMNS": "250"}


def test_cli_json(store_dir: Path) -> None:
    result = CliRunner().invoke(app, ["rules", "coverage", "--json", "--since", "1d"], env=_env(store_dir))
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    by_id = {t["technique"]: t for t in doc["techniques"]}
    assert doc["techniques_covered"] == len(by_id) >= 40
    assert {"so-tttt", "so-tc", "ubnd-tinh"} <= set(doc["agencies"])
    assert by_id["T1003.001"]["agencies"]["so-tttt"] == {"connected": True, "datasets": ["windows.sysmon"]}
    assert by_id["T1003.001"]["agencies"]["so-tc"]["connected"] is False
    assert by_id["T1190"]["agencies"]["so-tc"]["connected"] is True
    assert doc["period"]["field"] == "event.ingested"


def test_cli_table_for_one_agency(store_dir: Path) -> None:
    result = CliRunner().invoke(app, ["rules", "coverage", "--agency", "so-tc"], env=_env(store_dir))
    assert result.exit_code == 0, result.output
    assert "ATT&CK techniques" in result.output
    row = next(line for line in result.output.splitlines() if "T1190" in line)
    assert "1/1" in row  # the web rules have data at so-tc
    lsass = next(line for line in result.output.splitlines() if "T1003.001" in line)
    assert "0/1" in lsass and "so-tc" in lsass


def test_cli_offline_needs_no_store(tmp_path: Path) -> None:
    env = {"SOC_DATA_DIR": str(tmp_path / "nowhere"), "SOC_STORE_URL": "sqlite:////nonexistent/dir/soc.db",
           "SOC_RULE_DIRS": "[]", "COLUMNS": "250"}
    result = CliRunner().invoke(app, ["rules", "coverage", "--offline", "--json"], env=env)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["agencies"] == [] and doc["techniques_covered"] >= 40
