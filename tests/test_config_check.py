"""``soc config check`` through the real CLI: the project's own folders are valid and it says what
would run; a broken playbook, rule, source or setting in a copy makes it exit 1 naming every
file; a settings file that cannot be read makes it exit 2."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner, Result

from soc.cli import app

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory (the checkout's folders are used) and no SOC_ variables."""
    for name in list(os.environ):
        if name.upper().startswith("SOC_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "250")
    return tmp_path


@pytest.fixture
def copy(workdir: Path) -> Path:
    """The working directory with a copy of ingest/, detections/ and playbooks/ (used instead of
    the checkout's)."""
    for name in ("ingest", "detections", "playbooks"):
        shutil.copytree(ROOT / name, workdir / name)
    return workdir


def check(*args: str, **env: str) -> Result:
    return CliRunner().invoke(app, ["config", "check", *args], env=env)


def as_json(result: Result) -> dict[str, Any]:
    return json.loads(result.stdout)


def test_the_projects_own_folders_are_valid_and_it_says_what_would_run(workdir: Path) -> None:
    result = check()
    assert result.exit_code == 0, result.output
    for text in ("settings: no soc.yml", f"store: sqlite:///{workdir.resolve()}/soc-data/soc.db",
                 "syslog: syslog, udp 0.0.0.0:5514, tcp 0.0.0.0:5514", "agency by-network",
                 "inbox: inbox", "zone Asia/Ho_Chi_Minh", f"{ROOT / 'detections'}:", "per dataset: ",
                 "linux.sshd", "ssh-brute-force: alerts (4 rules)", "monthly-summary: schedule '0 8 1 * *'",
                 "report recipients (0)", "configuration OK"):
        assert text in result.output, text
    data = as_json(check("--json"))
    assert data["ok"] is True and data["problems"] == []
    assert {s["name"] for s in data["sources"]} == {"inbox", "syslog"}
    assert data["agencies"] >= 1 and data["rules"]["loaded"] > 0 and data["rules"]["runnable"] > 0
    assert data["rules"]["per_dataset"]["linux.sshd"] > 0 and data["rules"]["dialect"] == "sqlite"
    assert data["rules"]["folders"] == [{"folder": str(ROOT / "detections"), "rules": data["rules"]["loaded"]}]
    playbooks = {p["id"]: p for p in data["playbooks"]}
    assert "ssh-brute-force" in playbooks and "manual" in playbooks["ssh-brute-force"]["triggers"]


def test_a_broken_playbook_and_rule_file_are_named_and_the_rest_still_checked(copy: Path) -> None:
    (copy / "playbooks" / "broken.yml").write_text("id: broken\ntitle: x\nsteps:\n  - id: a\n    action: no.such\n",
                                                   encoding="utf-8")
    (copy / "playbooks" / "not-yaml.yml").write_text("id: [oops\n", encoding="utf-8")
    (copy / "detections" / "linux" / "broken_rule.yml").write_text(
        "title: Broken rule\nid: 5d3c1c84-2c8e-4f0f-9a43-2a0a3f8f1f11\nstatus: test\nlogsource: {product: linux}\n"
        "detection: {selection: {process.name: x}, condition: no_such_selection}\nlevel: high\n", encoding="utf-8")
    (copy / "detections" / "linux" / "int_id.yml").write_text(
        "title: Numeric id\nid: 1234\nlogsource: {product: linux}\ndetection: {s: {a: b}, condition: s}\n",
        encoding="utf-8")
    result = check()
    assert result.exit_code == 1, result.output
    for name in ("playbooks/broken.yml", "playbooks/not-yaml.yml", "detections/linux/broken_rule.yml",
                 "detections/linux/int_id.yml"):
        assert str(copy / name) in result.output, name
    assert "unknown action 'no.such'" in result.output and "no_such_selection" in result.output
    assert "ssh-brute-force: alerts" in result.output  # the valid ones are still listed
    data = as_json(check("--json"))
    assert data["ok"] is False
    where = {p["where"] for p in data["problems"]}
    assert {str(copy / "playbooks" / "broken.yml"), str(copy / "playbooks" / "not-yaml.yml"),
            str(copy / "detections" / "linux" / "broken_rule.yml"),
            str(copy / "detections" / "linux" / "int_id.yml")} <= where, data["problems"]


def test_broken_sources_and_agencies_are_named(copy: Path) -> None:
    (copy / "ingest" / "sources" / "bad-type.yml").write_text("name: x\ntype: carrier-pigeon\n", encoding="utf-8")
    (copy / "ingest" / "sources" / "nobody.yml").write_text("name: y\ntype: tail\npath: /var/log/y.log\n"
                                                            "agency: nobody\n", encoding="utf-8")
    (copy / "ingest" / "sources" / "zone.yml").write_text("name: z\ntype: inbox\ntimezone: Mars/Base\n",
                                                          encoding="utf-8")
    result = check("--json")
    assert result.exit_code == 1
    problems = {p["where"]: p["message"] for p in as_json(result)["problems"]}
    sources = copy / "ingest" / "sources"
    assert "type" in problems[str(sources / "bad-type.yml")]
    assert "unknown agency 'nobody'" in problems[str(sources / "nobody.yml")]
    assert "Mars/Base" in problems[str(sources / "zone.yml")]
    agencies = copy / "ingest" / "agencies.yml"
    agencies.write_text("agencies:\n  - {id: a, name: A, networks: [not-a-network]}\n", encoding="utf-8")
    problems = {p["where"]: p["message"] for p in as_json(check("--json"))["problems"]}
    assert "networks" in problems[str(agencies)]


def test_settings_problems_secrets_recipients_and_inputs(workdir: Path) -> None:
    (workdir / "soc.yml").write_text(yaml.safe_dump({
        "detecton": {"interval_seconds": 5},
        "rule_dirs": [str(workdir / "no-such-rules")],
        "playbooks": {"inputs": {"ssh-brute-forse": {"assignee": "an"}, "ssh-brute-force": {"asignee": "an"}}},
        "reporting": {"recipients": [
            {"name": "a05", "channel": "https", "endpoint": "https://soc:Url-pw-93c1@a05.example/api",
             "token_file": str(workdir / "missing-token")},
            {"name": "pigeon", "channel": "carrier", "endpoint": "/srv/drop"}]},
    }, sort_keys=False), encoding="utf-8")
    result = check()
    assert result.exit_code == 1, result.output
    assert "Url-pw-93c1" not in result.output and "https://soc:***@a05.example/api" in result.output
    for text in ("soc.yml:1: unknown setting 'detecton' — did you mean 'detection'?",
                 f"{workdir / 'no-such-rules'}: rule folder does not exist",
                 "no playbook 'ssh-brute-forse' — did you mean 'ssh-brute-force'?",
                 "playbook ssh-brute-force has no input 'asignee'",
                 "reporting.recipients[a05].token: the secret file",
                 "reporting.recipients[1].channel: unknown channel 'carrier'"):
        assert text in result.output, text
    assert "Traceback" not in result.output
    variable = check(SOC_DETECTION__INTERVAL_SECS="5")
    assert variable.exit_code == 1 and "did you mean SOC_DETECTION__INTERVAL_SECONDS?" in variable.output


def test_an_invalid_value_still_checks_the_folders(workdir: Path) -> None:
    (workdir / "soc.yml").write_text("detection:\n  interval_seconds: soon\n", encoding="utf-8")
    result = check()
    assert result.exit_code == 1
    assert "soc.yml:2: detection.interval_seconds: Input should be a valid integer" in result.output
    assert "ssh-brute-force: alerts" in result.output and "checked with the default settings" in result.output


def test_a_settings_file_that_cannot_be_read_exits_2(workdir: Path) -> None:
    (workdir / "soc.yml").write_text("detection:\n  interval_seconds: [1\nkafka: {}\n", encoding="utf-8")
    result = check()
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "error: soc.yml:3:" in result.output and "not valid YAML" in result.output
    missing = check("--json", SOC_CONFIG=str(workdir / "gone.yml"))
    assert missing.exit_code == 2
    assert as_json(missing) == {"ok": False, "problems": [
        {"where": "SOC_CONFIG", "message": f"the settings file {workdir / 'gone.yml'} does not exist"}]}
