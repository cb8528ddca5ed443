"""``soc detect`` runs what ``soc run`` schedules besides the rules: indicator matching of the
newly stored events (with ``intel.enabled``; ``--no-intel`` leaves it to another process) and,
on a search store with ``search_sources``, the rules over the logs queried in place.

Events: loghub's OpenSSH_2k.log (real brute force from a few dozen addresses), ingested by the
file ingestor; the indicator is one of its attacking addresses.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from soc.cli import app
from soc.hunt import ingest_files
from soc.intel import INTEL_RULE_ID, IndicatorBook, Item, normalize
from soc.store.base import EventQuery, Store
from soc.store.search import OpenSearchStore
from soc.store.sqlite import SQLiteStore
from tests.conftest import shared
from tests.search_helpers import store_url
from tests.test_inplace_winlogbeat import RULE, winlogbeat_index  # noqa: F401 -- the fixture
from tests.test_search_detection import SSH_RULES

ATTACKER = "187.141.143.180"  # 80 brute-force lines in OpenSSH_2k
#: the matching cycle reads up to "now - settle": the events were just stored
ENV = {"SOC_DETECTION__SETTLE_SECONDS": "0"}


def _intel_alerts(store: Store) -> list[dict[str, Any]]:
    store.refresh()
    return [d.body for d in store.find("alerts", {"rule.id": INTEL_RULE_ID}, limit=10_000)]


def test_soc_detect_once_runs_indicator_matching(tmp_path: Path) -> None:
    path = tmp_path / "soc.db"
    store = SQLiteStore(path)
    try:
        ingest_files(store, [shared("loghub", "OpenSSH", "OpenSSH_2k.log")], fmt="auto", timezone="UTC",
                     agency="so-tttt", progress=False)  # type: ignore[arg-type]
        page = store.search_events(EventQuery(filters=[("source.ip", "equals", ATTACKER)], size=1000))
        attacked = {e["_id"] for e in page.events}
        assert len(attacked) >= 80
        IndicatorBook(store).take("ncsc-list", [Item(normalize("ipv4", ATTACKER), confidence=90)])
        args = ["detect", "--store-url", f"sqlite:///{path}", "--rules", str(SSH_RULES), "--once", "--settle", "0",
                "--owner", "cron", "--quiet"]

        skipped = CliRunner().invoke(app, [*args, "--no-intel"], env=ENV)
        assert skipped.exit_code == 0, skipped.output
        assert _intel_alerts(store) == [] and "indicator matching" not in skipped.output

        ran = CliRunner().invoke(app, args, env=ENV)
        assert ran.exit_code == 0, ran.output
        alerts = _intel_alerts(store)
        assert {a["event_ids"][0] for a in alerts} == attacked
        assert all(a["intel"]["value"] == ATTACKER and a["agency"] == "so-tttt" for a in alerts)
        assert re.search(rf"indicator matching: \d+ events, {len(attacked)} new alerts", ran.output), ran.output

        again = CliRunner().invoke(app, args, env=ENV)  # the watermark moved: nothing new
        assert again.exit_code == 0, again.output
        assert len(_intel_alerts(store)) == len(attacked)
    finally:
        store.close()


@pytest.mark.search
def test_soc_detect_once_runs_the_rules_of_search_sources(winlogbeat_index: tuple[OpenSearchStore, str, int],  # noqa: F811
                                                          tmp_path: Path) -> None:
    store, pattern, _ = winlogbeat_index
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "rule.yml").write_bytes(shared(*RULE).read_bytes())
    url = store_url(store.transport.endpoint.hosts[0])
    env = {**ENV, "SOC_SEARCH_SOURCES": json.dumps([{"name": "wlb", "index": pattern}]),
           "SOC_INTEL__ENABLED": "false"}
    result = CliRunner().invoke(app, ["detect", "--store-url", url, "--index-prefix", store.prefix, "--replicas", "0",
                                      "--rules", str(rules), "--once", "--owner", "cron"], env=env)
    assert result.exit_code == 0, result.output
    runs = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    # the rule runs on the in-place source (its own watermark) next to the store's own events
    assert [r["rule"] for r in runs].count("d95de845-b83c-4a9a-8a6a-4fc802ebf6c0") == 2
    assert all(r["recorded"] and not r["error"] for r in runs)
    assert "1 rules on search source wlb" in result.output
    state = store.get("rule_state.wlb", "d95de845-b83c-4a9a-8a6a-4fc802ebf6c0")
    assert state is not None and state.body["watermark"] > 0
