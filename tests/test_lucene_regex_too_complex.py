"""A Sigma ``|re`` regex the search engine cannot run fails the rule loudly (issue #15).

Some SigmaHQ regexes translate exactly (soc/detect/lucene_regex.py) but their automaton is past
the engine's 10,000 determinized states (a bounded repetition after an unanchored start). A
``query_string`` over an index whose default field is ``*`` (the engine's default; shippers'
indices that ``dsl-inplace`` queries) is *lenient* and then finds nothing without a word. So
(soc/detect/search_backend.py) the managed dialect's query_string says ``lenient: false``, and
the in-place dialect (lenient, for its shippers' field types) adds each regexp as a ``regexp``
probe: the search fails, the rule's run reports the error with what to do, and rule health
shows it. On the
real OpenSearch, with the SigmaHQ rule itself (``../shared/data/sigma``) and the suggested
rewrite of it (``.{1,64}`` -> ``.*``), which runs and fires.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from soc.detect.compiler import RuleSet, compile_rules
from soc.detect.engine import DetectionEngine
from soc.detect.lucene_regex import TOO_COMPLEX_ADVICE, explain_engine_error
from soc.detect.rules import load_rules
from soc.detect.scheduler import RULE_STATE, RuleRunner, Timing
from soc.model import iso
from soc.store.base import Window
from soc.store.search import OpenSearchStore
from soc.store.search_client import OpenSearchTransport, parse_url
from tests.conftest import shared
from tests.search_helpers import drop, open_search_store, store_url

pytestmark = pytest.mark.search

SIGMA_RULE = ("sigma", "rules-threat-hunting", "windows", "powershell", "powershell_script",
              "posh_ps_registry_reconnaissance.yml")
RULE_ID = "064060aa-09fb-4636-817f-020a32aa7e9e"
REWRITTEN_ID = "7d0b9a52-3c1e-4f3a-9b77-2f1d6c0e8a11"
# spelled as the rule spells it: its |re has no (?i), so the in-place (case-keeping) query is case-sensitive
SCRIPT = "Get-ChildItem -Path HKLM:\\SYSTEM\\currentcontrolset\\services\\ | Select-Object Name"


def _rules(folder: Path) -> None:
    """The SigmaHQ rule as shipped, and the same rule with ``.{1,64}`` rewritten as ``.*``."""
    text = Path(shared(*SIGMA_RULE)).read_text(encoding="utf-8")
    assert "(Get-Item|gci|Get-ChildItem).{1,64}-Path.{1,64}" in text and RULE_ID in text
    (folder / "shipped.yml").write_text(text, encoding="utf-8")
    rewritten = text.replace(RULE_ID, REWRITTEN_ID).replace(".{1,64}", ".*")
    (folder / "rewritten.yml").write_text(rewritten, encoding="utf-8")


def _event(id_: str, script: str, **extra: Any) -> dict[str, Any]:
    return {"_id": id_, "@timestamp": iso(datetime(2025, 3, 1, 8, 0, tzinfo=UTC)), "event.dataset": "windows.powershell",
            "winlog.channel": "Microsoft-Windows-PowerShell/Operational", "winlog.event_id": 4104,
            "winlog.event_data.ScriptBlockText": script, **extra}


@pytest.fixture
def search_store(opensearch_url: str, unique_name: str) -> Iterator[OpenSearchStore]:
    store = open_search_store(opensearch_url, unique_name)
    yield store
    drop(store)


def _compiled(tmp_path: Path, dialect: str) -> RuleSet:
    _rules(tmp_path)
    ruleset = compile_rules(load_rules([tmp_path]), dialect=dialect)
    assert set(ruleset.detections) == {RULE_ID, REWRITTEN_ID}
    return ruleset


def test_the_advice_is_added_to_too_complex_errors_only() -> None:
    error = "StoreError: HTTP 400: Determinizing .*(gci).{1,64} would require more than 10000 effort."
    assert explain_engine_error(error) == f"{error} -- {TOO_COMPLEX_ADVICE}"
    assert explain_engine_error(explain_engine_error(error)) == explain_engine_error(error)
    assert explain_engine_error("QueryTimeout: 30 s") == "QueryTimeout: 30 s"


def test_a_too_complex_regex_is_a_rule_error_not_zero_hits(tmp_path: Path, search_store: OpenSearchStore) -> None:
    ruleset = _compiled(tmp_path, "dsl")
    events = [_event("recon", SCRIPT), _event("benign", "Get-Date | Out-File C:\\temp\\now.txt")]
    assert search_store.write_events(events).created == 2
    search_store.refresh()
    results = {r.rule_id: r for r in DetectionEngine(search_store, ruleset).run_all(
        ruleset.runnable(), Window())}
    failed = results[RULE_ID]
    assert failed.error is not None and failed.matches == 0
    assert "Determinizing" in failed.error and "get\\-childitem" in failed.error  # names the regexp
    assert failed.error.endswith(TOO_COMPLEX_ADVICE)
    rewritten = results[REWRITTEN_ID]  # the suggested rewrite runs and finds the event
    assert rewritten.error is None and rewritten.matches == 1


def test_rule_health_shows_the_error(tmp_path: Path, search_store: OpenSearchStore) -> None:
    ruleset = _compiled(tmp_path, "dsl")
    assert search_store.write_events([_event("recon", SCRIPT)]).created == 1
    search_store.refresh()
    runner = RuleRunner(DetectionEngine(search_store, ruleset), Timing(settle=0), owner="w3b")
    runner.run_all_once(ruleset.runnable(), max_workers=1)
    health = {d.id: d.body for d in search_store.iter_all(RULE_STATE)}
    assert TOO_COMPLEX_ADVICE in health[RULE_ID]["last_error"]
    assert health[RULE_ID]["consecutive_errors"] == 1
    assert health[REWRITTEN_ID]["last_error"] is None and health[REWRITTEN_ID]["last_hits"] == 1


def test_the_inplace_dialect_fails_loudly_too(tmp_path: Path, opensearch_url: str, unique_name: str) -> None:
    """``dsl-inplace`` queries run on a shipper's own index (Winlogbeat's keyword fields)."""
    ruleset = _compiled(tmp_path, "dsl-inplace")
    transport = OpenSearchTransport(parse_url(store_url(opensearch_url)), timeout=60)
    index = f"{unique_name}-winlogbeat".lower()
    keyword = {"type": "keyword"}
    transport.request("PUT", f"/{index}", body={"mappings": {"properties": {
        "winlog": {"properties": {"channel": keyword, "event_id": keyword,
                                  "event_data": {"properties": {"ScriptBlockText": keyword}}}}}}})
    try:
        doc = {"winlog": {"channel": "Microsoft-Windows-PowerShell/Operational", "event_id": "4104",
                          "event_data": {"ScriptBlockText": SCRIPT}}}
        transport.request("POST", f"/{index}/_doc", body=doc, params={"refresh": "true"})

        def hits(query: dict[str, Any]) -> int:
            resp = transport.request("POST", f"/{index}/_search", body={"query": query, "size": 0})
            return int(resp["hits"]["total"]["value"])

        shipped = ruleset.detections[RULE_ID].where
        # query_string alone (the form before the probes): lenient here, silently nothing
        assert hits(shipped["bool"]["filter"][0]) == 0
        with pytest.raises(Exception, match="Determinizing"):
            hits(shipped)
        assert hits(ruleset.detections[REWRITTEN_ID].where) == 1
        # the managed dialect's query_string says lenient: false, so it fails even here
        managed = _compiled(tmp_path, "dsl").detections[RULE_ID].where
        assert "query_string" in managed
        with pytest.raises(Exception, match="Determinizing"):
            hits(managed)
    finally:
        transport.request("DELETE", f"/{index}")
        transport.close()
