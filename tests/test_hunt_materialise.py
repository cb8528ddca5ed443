"""Fields materialised as real columns of a hunt's scratch store give exactly the alerts of the
virtual columns they replace (:meth:`SQLiteStore.materialise_fields`), on the project's rules with
their regression samples and on SigmaHQ's Windows and Linux rules with OTRF's real events."""

from __future__ import annotations

import json
import re
import sys
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from soc.catalog import default_catalog
from soc.detect.compiler import RuleSet, compile_rules
from soc.detect.rulecache import load_compiled
from soc.detect.rules import load_rules
from soc.hunt import run_hunt
from soc.model import iso, now_utc
from soc.store.base import StoreError
from soc.store.sqlite import SQLiteStore
from soc.store.sqlite_sql import _field_sql, quote_ident
from tests.conftest import ROOT, SHARED_DATA

OTRF = SHARED_DATA / "otrf" / "datasets" / "atomic"
_CHANNEL = re.compile(rb'"Channel":"((?:[^"\\]|\\.)*)"')
_EVENT_ID = re.compile(rb'"EventID":(\d+)')


def _alerts(files: list[Path], ruleset: RuleSet, materialise: bool) -> list[dict[str, Any]]:
    """The alerts of a hunt, sorted by id, without what depends on when it ran: the detection time,
    and the times of events that carry none of their own (they get the time they were read)."""
    started = iso(now_utc() - timedelta(minutes=1))
    result = run_hunt(files, ruleset, timezone="Asia/Ho_Chi_Minh", materialise=materialise)
    assert not [e for e in result.rule_errors if "query failed" in e]
    alerts = []
    for alert in result.alerts:
        alert = {k: v for k, v in alert.items() if k != "detected_at"}
        for key in ("@timestamp", "first_seen", "last_seen"):
            if isinstance(alert.get(key), str) and alert[key] >= started:
                alert[key] = "(read time)"
        alerts.append(alert)
    return sorted(alerts, key=lambda a: a["id"])


def test_materialised_fields_give_the_alerts_of_virtual_columns_on_the_regression_samples() -> None:
    files = sorted(p for p in (ROOT / "detections" / "regression_data").rglob("*") if p.is_file() and p.name != "info.yml")
    ruleset = compile_rules(load_rules([ROOT / "detections"]))
    new, old = _alerts(files, ruleset, True), _alerts(files, ruleset, False)
    assert len(new) > 50 and any(a["kind"] == "correlation" for a in new)
    assert [a["id"] for a in new] == [a["id"] for a in old]
    assert new == old


def _windows_corpus(target: Path, spaced: int = 3000) -> int:
    """Every (channel, event id) present in OTRF's atomic Windows datasets once, plus ``spaced``
    events evenly spaced through all the recordings; one JSON event per line."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from hunt_windows import real_events  # the benchmark's sampling
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    first: dict[tuple[bytes, bytes], bytes] = {}
    for archive in sorted(OTRF.glob("windows/*/host/*.zip")):
        with zipfile.ZipFile(archive) as z:
            for name in z.namelist():
                for line in z.read(name).splitlines():
                    channel, event_id = _CHANNEL.search(line), _EVENT_ID.search(line)
                    key = (channel.group(1) if channel else b"", event_id.group(1) if event_id else b"")
                    first.setdefault(key, line)
    with target.open("wb") as out:
        for line in first.values():
            out.write(line.strip() + b"\n")
        for event in real_events(spaced):
            out.write(json.dumps(event).encode() + b"\n")
    return len(first)


@pytest.mark.slow
def test_materialised_fields_give_the_alerts_of_virtual_columns_with_sigmahq_and_otrf(tmp_path: Path) -> None:
    if not (SHARED_DATA / "sigma").is_dir() or not OTRF.is_dir():
        pytest.skip(f"SigmaHQ rules or OTRF datasets not found under {SHARED_DATA}")
    corpus = tmp_path / "windows.json"
    kinds = _windows_corpus(corpus)
    assert kinds > 100
    linux = sorted(OTRF.glob("linux/*/host/*.log"))
    ruleset = load_compiled([SHARED_DATA / "sigma/rules/windows", SHARED_DATA / "sigma/rules/linux",
                             ROOT / "detections"], cache_dir=tmp_path / "rule-cache")
    new, old = _alerts([corpus, *linux], ruleset, True), _alerts([corpus, *linux], ruleset, False)
    assert len({a["rule"]["id"] for a in new}) >= 20, "too few rules matched to compare"
    assert [a["id"] for a in new] == [a["id"] for a in old]
    assert new == old


def test_materialised_columns_hold_what_the_virtual_columns_give(tmp_path: Path) -> None:
    fields = ["winlog.event_data.Image", "winlog.event_data.Count", "winlog.event_data.Ratio",
              "winlog.event_data.Flag", "winlog.event_data.List", "winlog.event_data.Obj",
              "winlog.event_data.Name", "winlog.event_data.name", "winlog.event_data.Missing", "destination.port"]
    events = [
        {"winlog.event_data.Image": "C:\\Windows\\System32\\cmd.exe", "winlog.event_data.Count": 7,
         "winlog.event_data.Ratio": 0.5, "winlog.event_data.Flag": True, "winlog.event_data.List": ["a", 1, None],
         "winlog.event_data.Obj": {"k": "Đà Nẵng"}, "winlog.event_data.Name": "Ann", "winlog.event_data.name": "bob",
         "destination.port": "443"},
        {"winlog.event_data.Image": "", "winlog.event_data.Count": -9223372036854775808,
         "winlog.event_data.Flag": False, "winlog.event_data.List": [], "winlog.event_data.Obj": {}},
        {"message": "no fields at all"},
    ]
    for i, event in enumerate(events):
        event.update({"_id": f"e{i}", "@timestamp": "2026-01-01T00:00:00Z", "event.dataset": "windows.sysmon"})
    numeric = default_catalog().numeric_fields

    def rows(store: SQLiteStore) -> list[tuple[Any, ...]]:
        store.prepare_fields(fields)
        columns = ", ".join(f"{quote_ident(f)}, typeof({quote_ident(f)})" for f in fields)
        return store._conn().execute(f"SELECT id, {columns} FROM events ORDER BY id").fetchall()

    virtual = SQLiteStore(tmp_path / "v.db", durable=False, numeric_fields=numeric)
    virtual.write_events([dict(e) for e in events])
    real = SQLiteStore(tmp_path / "r.db", durable=False, numeric_fields=numeric)
    real.write_events([dict(e) for e in events])
    made = real.materialise_fields(fields)
    assert "winlog.event_data.Image" in made and "destination.port" not in made  # a hot field: a column already
    assert not {"winlog.event_data.Name", "winlog.event_data.name"} & set(made)  # names equal but for case
    assert rows(real) == rows(virtual)
    assert real._conn().execute("SELECT hidden FROM pragma_table_xinfo('events') WHERE "
                                "name = 'winlog.event_data.Image'").fetchone() == (0,)  # a real column
    assert real._conn().execute(f"SELECT count(*) FROM events WHERE {quote_ident('winlog.event_data.Image')} = "
                                f"'c:\\windows\\system32\\CMD.EXE'").fetchone() == (1,)  # NOCASE
    assert real._conn().execute(f"SELECT count(*) FROM events WHERE {_field_sql('winlog.event_data.Count')} "
                                "= -9223372036854775808").fetchone() == (1,)
    with pytest.raises(StoreError):
        real.write_events([{"_id": "late", "@timestamp": "2026-01-01T00:00:00Z", "event.dataset": "windows.sysmon"}])
