"""``soc playbook ...`` end to end through the CLI (typer's runner, a real SQLite store)."""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from soc.cli import app

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "playbooks"
    folder.mkdir()
    (folder / "ask.yml").write_text(yaml.safe_dump({
        "id": "ask", "title": "Hỏi ý kiến / ask", "inputs": {"n": {"type": "integer", "default": 1}},
        "steps": [{"id": "double", "action": "core.echo", "args": {"v": "{{ inputs.n * 2 }}"}},
                  {"id": "ok", "action": "approval.wait", "args": {"prompt": "tiếp tục? / go on?"}},
                  {"id": "after", "action": "core.echo", "args": {"ok": "{{ steps.ok.output.approved }}"}}]},
        allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("SOC_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SOC_PLAYBOOKS__FOLDER", str(folder))
    monkeypatch.setenv("SOC_TIMEZONE", "Asia/Ho_Chi_Minh")
    monkeypatch.setenv("COLUMNS", "200")
    return folder


def test_cli_run_runs_show_approve(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cli = CliRunner()
    result = cli.invoke(app, ["playbook", "validate"])
    assert result.exit_code == 0 and "ok" in result.output
    result = cli.invoke(app, ["playbook", "list"])
    assert result.exit_code == 0 and "ask" in result.output
    monkeypatch.setattr(getpass, "getuser", lambda: "an")
    result = cli.invoke(app, ["playbook", "run", "ask", "--input", "n=21", "--key", "one"])
    assert result.exit_code == 0, result.output
    assert "waiting" in result.output and '{"v": 42}' in result.output and "Asia/Ho_Chi_Minh" in result.output
    again = cli.invoke(app, ["playbook", "run", "ask", "--key", "one"])
    assert "exists already" in again.output
    result = cli.invoke(app, ["playbook", "runs", "--json"])
    runs = [json.loads(line) for line in result.output.splitlines() if line.strip()]
    assert len(runs) == 1 and runs[0]["status"] == "waiting" and runs[0]["actor"] == "local:an"
    run_id = runs[0]["id"]
    result = cli.invoke(app, ["playbook", "runs"])
    assert "waiting" in result.output and "local:an" in result.output and "+07" in result.output
    result = cli.invoke(app, ["playbook", "approve", run_id, "--comment", "đồng ý"])
    assert result.exit_code == 0, result.output
    assert "succeeded" in result.output
    result = cli.invoke(app, ["playbook", "show", run_id, "-v"])
    assert result.exit_code == 0
    for text in ("succeeded", '{"ok": true}', "approved", "record", "times in Asia/Ho_Chi_Minh"):
        assert text in result.output, text
    result = cli.invoke(app, ["playbook", "resume"])
    assert "0 run(s) resumed" in result.output


def test_cli_errors_are_clear(env: Path) -> None:
    cli = CliRunner()
    result = cli.invoke(app, ["playbook", "run", "nope"])
    assert result.exit_code == 2 and "no playbook 'nope'" in result.output
    result = cli.invoke(app, ["playbook", "run", "ask", "--input", "n=abc"])
    assert result.exit_code == 2 and "not a valid integer" in result.output
    result = cli.invoke(app, ["playbook", "show", "missing"])
    assert result.exit_code == 2 and "soc playbook runs" in result.output
    (env / "bad.yml").write_text("id: bad\ntitle: B\nsteps:\n  - {id: s, action: nope.nope}\n", encoding="utf-8")
    result = cli.invoke(app, ["playbook", "validate"])
    assert result.exit_code == 1 and "bad.yml" in result.output and "step 's'" in result.output


def test_worker_process_runs_playbooks_for_new_alerts(env: Path, tmp_path: Path) -> None:
    """`soc playbook worker` (next to separate `soc detect` processes) picks up new alerts."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from soc.config import load_settings
    from soc.model import iso, now_utc
    from soc.playbooks import RUNS
    from soc.store import open_store

    (env / "on-alert.yml").write_text(yaml.safe_dump({
        "id": "on-alert", "title": "O", "trigger": {"alerts": {"rules": ["rule-a"]}},
        "steps": [{"id": "a", "action": "core.echo", "args": {"alert": "{{ trigger.alert.id }}"}}]}), encoding="utf-8")
    settings = load_settings()
    settings.data_dir.mkdir(parents=True)
    store = open_store(settings.resolved_store_url)
    store.create("alerts", "a-1", {"id": "a-1", "rule": {"id": "rule-a", "level": "high"},
                                   "detected_at": iso(now_utc())})
    worker = subprocess.Popen([sys.executable, "-m", "soc.cli", "playbook", "worker"], cwd=tmp_path,
                              env=dict(os.environ, SOC_PLAYBOOKS__SWEEP_SECONDS="0.5", PYTHONPATH=str(ROOT)),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        runs: list = []
        while time.monotonic() < deadline and not runs:
            runs = [d.body for d in store.iter_all(RUNS)]
            time.sleep(0.2)
        store.create("alerts", "a-2", {"id": "a-2", "rule": {"id": "rule-a", "level": "high"},
                                       "detected_at": iso(now_utc())})
        while time.monotonic() < deadline and len(runs) < 2:
            runs = [d.body for d in store.iter_all(RUNS)]
            time.sleep(0.2)
        time.sleep(1.5)  # a few more polls: nothing runs twice
        runs = [d.body for d in store.iter_all(RUNS)]
        assert sorted(json.loads(r["trigger_json"])["alert"]["id"] for r in runs) == ["a-1", "a-2"]
        assert all(r["status"] == "succeeded" for r in runs)
    finally:
        worker.send_signal(signal.SIGTERM)
        out, _ = worker.communicate(timeout=30)
        store.close()
    assert worker.returncode == 0, out
    assert "playbook worker" in out
