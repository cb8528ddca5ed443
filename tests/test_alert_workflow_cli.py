"""``soc alerts ack|assign|close|reopen|bulk``, ``soc jobs`` and ``soc tasks`` end to end
through the CLI (typer's runner, a real SQLite store; the background job in a real detached
process)."""

from __future__ import annotations

import getpass
import json
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner, Result

from soc.cli import app, timeargs
from soc.clock import fixed_clock
from soc.store.sqlite import SQLiteStore
from tests.mail_server import MailServer
from tests.test_alert_workflow import make_alert

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 12, 7, 5, 0, tzinfo=UTC)
LOGIN = f"local:{getpass.getuser()}"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    shutil.copytree(ROOT / "ingest", tmp_path / "ingest")
    agencies = yaml.safe_load((tmp_path / "ingest" / "agencies.yml").read_text(encoding="utf-8"))
    for agency in agencies["agencies"]:
        if agency["id"] == "so-tttt":
            agency["contact_email"] = ["it@tttt.gov.vn"]
    (tmp_path / "ingest" / "agencies.yml").write_text(yaml.safe_dump(agencies, allow_unicode=True), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(timeargs, "cli_clock", fixed_clock(NOW))
    store = SQLiteStore(tmp_path / "data" / "soc.db")
    for n in range(8):
        alert = make_alert(f"al-{n}", first_seen=NOW - timedelta(hours=n), host="db01" if n < 6 else "web01",
                           agency="so-tttt")
        store.create("alerts", alert["id"], alert)
    store.close()
    return {"SOC_DATA_DIR": str(tmp_path / "data"), "SOC_STORE_URL": "", "SOC_TIMEZONE": "Asia/Ho_Chi_Minh",
            "COLUMNS": "250", "SOC_ALERTS__BULK_BACKGROUND_THRESHOLD": "3", "SOC_ALERTS__BULK_PAGE_SIZE": "2"}


def run(env: dict[str, str], *args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(app, list(args), env=env)
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    return result


def test_one_alert_at_a_time(env: dict[str, str]) -> None:
    assert "al-0: open -> acknowledged" in run(env, "alerts", "ack", "al-0", "--note", "xem").stdout
    assert "al-0: unchanged (acknowledged)" in run(env, "alerts", "ack", "al-0").stdout
    assert "assignee chi" in run(env, "alerts", "assign", "al-0", "al-1", "--to", "chi").stdout
    bad = run(env, "alerts", "close", "al-0", code=2)
    assert "needs a reason" in bad.stderr
    assert "'other' needs a note" in run(env, "alerts", "close", "al-0", "--reason", "other", code=2).stderr
    run(env, "alerts", "close", "al-0", "--reason", "false_positive", "--note", "máy quét của SOC")
    run(env, "alerts", "reopen", "al-0", "--note", "không phải")
    missing = run(env, "alerts", "ack", "al-1", "nope", code=1)
    assert "al-1: open -> acknowledged" in missing.stdout and "no alert 'nope'" in missing.stderr
    shown = run(env, "alerts", "show", "al-0").stdout
    assert "history (4):" in shown and "false_positive: máy quét của SOC" in shown
    assert "acknowledged -> closed" in shown and "closed -> open" in shown and LOGIN in shown
    listed = run(env, "alerts", "list", "--status", "open").stdout
    assert "7 of 7 alerts" in listed and "open (chi)" in listed  # "new" lists as open, with the assignee


def test_bulk_by_query_at_once_and_in_the_background(env: dict[str, str]) -> None:
    assert "no filter given" in run(env, "alerts", "bulk", "ack", code=2).stderr
    assert "unknown action" in run(env, "alerts", "bulk", "shred", "--all", code=2).stderr
    small = run(env, "alerts", "bulk", "close", "--host", "web01", "--reason", "benign", "--note", "backup").stdout
    assert "closed 2 of 2 matching alerts (0 already as asked" in small
    waited = run(env, "alerts", "bulk", "assign", "--host", "db01", "--to", "chi", "--wait", "--json").stdout
    job = json.loads(waited)
    assert job["status"] == "succeeded" and job["counts"]["changed"] == 6 and job["created_by"] == LOGIN

    started = run(env, "alerts", "bulk", "ack", "--status", "open", "--since", "4h").stdout  # 5 > threshold 3
    assert "runs in the background" in started
    job_id = started.split("job ", 1)[1].split(":", 1)[0]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = json.loads(run(env, "jobs", "show", job_id, "--json").stdout)
        if job["status"] in ("succeeded", "failed"):
            break
        time.sleep(0.2)
    assert job["status"] == "succeeded", job
    assert job["counts"]["changed"] == 5 and job["pages"] >= 3  # al-0..al-4 (4 h ago is in the range)
    assert job_id in run(env, "jobs", "list").stdout
    assert "read 5 alerts" in run(env, "jobs", "show", job_id).stdout
    assert "0 job(s) resumed" in run(env, "jobs", "resume").stdout
    assert "no bulk job" in run(env, "jobs", "show", "job-nope", code=2).stderr


def test_tasks(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    with MailServer() as server:
        mail = {**env, "SOC_SMTP__HOST": "127.0.0.1", "SOC_SMTP__PORT": str(server.port),
                "SOC_SMTP__SENDER": "soc@tinh.gov.vn", "SOC_TASKS__SOC_EMAIL": '["soc@tinh.gov.vn"]'}
        created = json.loads(run(mail, "tasks", "create", "--agency", "so-tttt", "--title", "Vá OpenSSH trên web01",
                                 "--description", "Cập nhật lên 9.8p1", "--due", "3d", "--json").stdout)
        assert created["status"] == "open" and created["due_at"] == "2026-12-10T05:00:00.000Z"
        assert server.messages[0].to == ["it@tttt.gov.vn"]
        task_id = created["id"]
        assert "unknown agency 'so-nope'" in run(mail, "tasks", "create", "--agency", "so-nope", "--title", "x",
                                                 code=2).stderr
        assert "after now" in run(mail, "tasks", "create", "--agency", "so-tttt", "--title", "x",
                                  "--due", "2026-12-01", code=2).stderr
        assert "is not a time" in run(mail, "tasks", "create", "--agency", "so-tttt", "--title", "x",
                                      "--due", "soon", code=2).stderr
        listed = run(mail, "tasks", "list").stdout
        assert "1 of 1 tasks" in listed and task_id in listed
        run(mail, "tasks", "ack", task_id, "--note", "đã nhận")
        assert "needs a note" in run(mail, "tasks", "done", task_id, code=2).stderr
        monkeypatch.setattr(timeargs, "cli_clock", fixed_clock(NOW + timedelta(days=4)))
        assert "OVERDUE" in run(mail, "tasks", "list", "--overdue").stdout
        done = run(mail, "tasks", "done", task_id, "--note", "đã cập nhật").stdout
        assert "done" in done and "e-mail on done to soc@tinh.gov.vn, it@tttt.gov.vn: sent" in done
        assert "0 of 0 tasks" in run(mail, "tasks", "list", "--overdue").stdout
        shown = run(mail, "tasks", "show", task_id).stdout
        assert "acknowledged: đã nhận" in shown and LOGIN in shown
        assert len(server.messages) == 2
