"""Field names are data: a Sigma rule on ``o'brien`` or ``a"b`` compiles to SQL that runs on a
real SQLite store and matches exactly the events with the value, and to a query_string whose
field the search engine reads as that name. Nothing in a name ends a quote."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from soc.detect.compiler import Detection, RuleSet, compile_rules
from soc.detect.engine import DetectionEngine
from soc.detect.rules import load_rules
from soc.store.base import Window
from soc.store.sqlite import SQLiteStore, json_extract_sql

RULE_ID = "7d0c8a56-3f1e-4c9b-9a51-2e6f0b8c4d11"
EVERYTHING = Window(None, None, "@timestamp")
NAMES = [
    "o'brien",
    'a"b',
    "x.y",
    "back\\slash",
    "br[0]",
    "q'\"]`\\$.*",
    "bell\x07",
    "'); DROP TABLE events; --",
    '"]\') OR 1=1 --',
]


def _detection(tmp_path: Path, detection: dict[str, Any], dialect: str = "sqlite") -> Detection:
    path = tmp_path / "rule.yml"
    path.write_text(yaml.safe_dump({
        "title": "Odd field", "id": RULE_ID, "status": "test", "level": "low",
        "logsource": {"product": "linux", "service": "auth"}, "detection": detection}), encoding="utf-8")
    found = compile_rules(load_rules([path]), dialect).detections[RULE_ID]
    assert not found.report.errors, found.report.errors
    return found


def _event(eid: str, **fields: Any) -> dict[str, Any]:
    return {"_id": eid, "@timestamp": "2026-11-30T01:00:00.000Z", "event.dataset": "linux.auth",
            "message": "x", **fields}


def _matched(store: SQLiteStore, detection: Detection) -> list[str]:
    ruleset = RuleSet("sqlite", {detection.info.id: detection}, [])
    result = DetectionEngine(store, ruleset).run(detection, EVERYTHING)
    assert result.error is None, result.error
    return sorted(i for alert in result.created for i in alert["event_ids"])


@pytest.mark.parametrize("name", NAMES)
def test_rule_on_an_odd_field_name_runs_on_sqlite(tmp_path: Path, name: str) -> None:
    detection = _detection(tmp_path, {"selection": {name: "yes"}, "condition": "selection"})
    store = SQLiteStore(tmp_path / "soc.db")
    store.write_events([_event("e-yes", **{name: "yes"}), _event("e-no", **{name: "no"}), _event("e-none")])
    assert _matched(store, detection) == ["e-yes"]
    assert store.count_events() == {"": 3}, "the table is still there"
    store.close()
    # the column the store added for the field works when the database is opened again
    again = SQLiteStore(tmp_path / "soc.db")
    assert [m.id for m in again.find_matches(detection.where, None, EVERYTHING, [name], 10)] == ["e-yes"]
    again.close()


def test_modifiers_on_quoted_field_names(tmp_path: Path) -> None:
    detection = _detection(tmp_path, {
        "quote": {"o'brien|contains": "'s", "a\"b|re": "^[0-9]+$"},
        "present": {"x'\"y|exists": True},
        "condition": "quote and present"})
    store = SQLiteStore(tmp_path / "soc.db")
    store.write_events([
        _event("hit", **{"o'brien": "it's", "a\"b": "42", "x'\"y": "z"}),
        _event("no-exists", **{"o'brien": "it's", "a\"b": "42"}),
        _event("no-re", **{"o'brien": "it's", "a\"b": "4x2", "x'\"y": "z"}),
        _event("no-contains", **{"o'brien": "its", "a\"b": "42", "x'\"y": "z"})])
    assert _matched(store, detection) == ["hit"]
    store.close()


def test_plain_field_names_keep_their_sql() -> None:
    """Columns already in databases were declared with this exact text."""
    assert json_extract_sql("doc", ["user.name"]) == "json_extract(doc, '$.\"user.name\"')"
    assert json_extract_sql("body", ["rule", "id"]) == "json_extract(body, '$.\"rule\".\"id\"')"
    assert json_extract_sql("doc", ["o'brien"]) == "json_extract(doc, '$.\"o''brien\"')"


@pytest.mark.parametrize("value", ["text", 7, 2.5, True, False, None, [1, "a"], {"k": [True]}])
def test_soc_json_get_reads_like_json_extract(tmp_path: Path, value: Any) -> None:
    store = SQLiteStore(tmp_path / "soc.db")
    conn = store._conn()
    doc = json.dumps({"plain": value})
    expected = conn.execute(f"SELECT {json_extract_sql('?', ['plain'])}", (doc,)).fetchone()[0]
    via_function = conn.execute("SELECT soc_json_get(?, '[\"plain\"]')", (doc,)).fetchone()[0]
    assert via_function == expected
    assert type(via_function) is type(expected)
    store.close()


def test_documents_found_and_sorted_by_odd_keys(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "soc.db")
    store.put("things", "1", {"o'brien": {"a\"b": "x", "n": 2}})
    store.put("things", "2", {"o'brien": {"a\"b": "y", "n": 1}})
    assert [d.id for d in store.find("things", {"o'brien.a\"b": "x"})] == ["1"]
    assert [d.id for d in store.find("things", {"o'brien.a\"b": ["x", "y"]}, sort="o'brien.n")] == ["2", "1"]
    assert store.find("things", {"'); DELETE FROM docs; --": "x"}) == []
    assert len(store.find("things")) == 2
    store.close()


@pytest.mark.parametrize(("name", "field"), [
    ("o'brien", "o'brien"),
    ('a"b', 'a\\"b'),
    ("x.y", "x.y"),
    ("back\\slash", "back\\\\slash"),
    ("br[0]", "br\\[0\\]"),
    ("a:b c", "a\\:b\\ c"),
    ("p(q)/r{s}~t^u!v?w*x+y-z=&<>", "p\\(q\\)\\/r\\{s\\}\\~t\\^u\\!v\\?w\\*x\\+y\\-z\\=\\&\\<\\>"),
])
def test_search_query_escapes_the_field_name(tmp_path: Path, name: str, field: str) -> None:
    detection = _detection(tmp_path, {"selection": {name: "yes", f"{name}|exists": True},
                                      "condition": "selection"}, dialect="dsl")
    assert detection.where["query_string"]["query"] == f"{field}:yes AND _exists_:{field}"
