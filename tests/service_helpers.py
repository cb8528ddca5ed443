"""Helpers for the tests that run the embedded service (no tests here): a working folder with its
own ``ingest/`` (agencies and source definitions), the settings, and the events the SQLite store
holds."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import yaml

from soc.config import Settings, load_settings
from soc.store import open_store
from tests.conftest import ROOT

#: one rule keeps the service's start-up quick
RULES = [ROOT / "detections" / "linux" / "ssh" / "ssh_brute_force.yml"]


def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sources: dict[str, dict[str, Any]],
              agencies: list[dict[str, Any]] | None = None) -> Settings:
    """``tmp_path`` as the working folder: the project's ``ingest/`` without its source definitions,
    ``sources`` (file name -> definition) instead, ``agencies`` added; settings with the data under
    ``tmp_path/data`` and no syslog listener unless a definition asks for one."""
    ingest = tmp_path / "ingest"
    shutil.copytree(ROOT / "ingest", ingest, ignore=shutil.ignore_patterns("sources"))
    (ingest / "sources").mkdir()
    for name, definition in sources.items():
        (ingest / "sources" / name).write_text(yaml.safe_dump(definition), encoding="utf-8")
    if agencies:
        data = yaml.safe_load((ingest / "agencies.yml").read_text(encoding="utf-8"))
        data["agencies"] = list(data.get("agencies") or []) + agencies
        (ingest / "agencies.yml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    for name in ("SOC_CONFIG", "SOC_STORE_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings(data_dir=tmp_path / "data")
    settings.syslog.udp = settings.syslog.tcp = None
    return settings


def stored_events(settings: Settings) -> list[dict[str, Any]]:
    """Every event in the service's SQLite store (read back through the store)."""
    path = settings.data_dir / "soc.db"
    if not path.exists():
        return []
    with sqlite3.connect(path) as conn:
        ids = [row[0] for row in conn.execute("SELECT id FROM events")]
    store = open_store(settings.resolved_store_url)
    try:
        return store.get_events(ids)
    finally:
        store.close()


def dead_letters(settings: Settings) -> list[dict[str, Any]]:
    from soc.ingest.deadletter import read_dead_letters

    path = settings.dead_letter_dir / "ingest.jsonl"
    return [vars(d) if not hasattr(d, "__slots__") else {k: getattr(d, k) for k in d.__slots__}
            for d in read_dead_letters(path)] if path.exists() else []
