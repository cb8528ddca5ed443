"""Playbook approvals check ``approvers`` (issue #10): the principal must hold
``playbooks:approve`` and, when the step lists approvers, be one of them (a user name or
``role:NAME``); otherwise Forbidden, and the approval stays pending."""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from soc.access import Forbidden, Principal
from soc.playbooks import APPROVALS, PlaybookRunner
from soc.playbooks.approvers import approver_entries, may_approve
from soc.store.base import Store
from tests.test_playbooks import _open_sqlite, make, output, run_doc, runner_for, step

CHI = Principal("chi", roles=frozenset({"responder"}))
DUNG = Principal("dung", roles=frozenset({"responder"}))
ANALYST_CHI = Principal("chi", roles=frozenset({"analyst"}))  # named, but without playbooks:approve
ADMIN = Principal("quan-tri", roles=frozenset({"admin"}))


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = _open_sqlite(tmp_path / "soc.db")
    yield s
    s.close()


def waiting_run(tmp_path: Path, store: Store, approvers: Any, key: str = "k") -> tuple[PlaybookRunner, str]:
    args: dict[str, Any] = {"prompt": "chặn địa chỉ? / block it?"}
    if approvers is not None:
        args["approvers"] = approvers
    playbooks = make(tmp_path, [{"id": "ask", "title": "A", "steps": [
        {"id": "ok", "action": "approval.wait", "args": args},
        {"id": "after", "action": "core.echo", "args": {"ok": "{{ steps.ok.output.approved }}"}}]}])
    runner = runner_for(store, playbooks, tmp_path)
    run_id, _ = runner.start("ask", {}, key)
    assert run_doc(store, run_id)["status"] == "waiting"
    return runner, run_id


def pending(store: Store, run_id: str) -> bool:
    approvals = [d.body for d in store.iter_all(APPROVALS) if d.body["run_id"] == run_id]
    return [a["status"] for a in approvals] == ["pending"] and run_doc(store, run_id)["status"] == "waiting"


def test_a_listed_user_approves_and_another_is_forbidden(tmp_path: Path, store: Store) -> None:
    runner, run_id = waiting_run(tmp_path, store, ["chi", "user:giang"])
    with pytest.raises(Forbidden, match="dung is not among the approvers"):
        runner.approve(run_id, by=DUNG)
    with pytest.raises(Forbidden, match="dung is not among the approvers"):
        runner.approve(run_id, approved=False, by=DUNG)  # rejecting is deciding too
    with pytest.raises(Forbidden, match="not among the approvers"):
        runner.approve(run_id, by=ADMIN)  # every right, but not listed
    assert pending(store, run_id)
    runner.approve(run_id, by=CHI, comment="đồng ý")
    body = run_doc(store, run_id)
    assert body["status"] == "succeeded" and output(body, "ok")["by"] == "chi"
    assert output(body, "ok")["approved"] is True and step(body, "after")["status"] == "succeeded"
    records = [r for r in runner.records(run_id) if r.get("event") == "approved"]
    assert [r["actor"] for r in records] == ["chi"]


def test_a_role_entry(tmp_path: Path, store: Store) -> None:
    runner, run_id = waiting_run(tmp_path, store, ["role:responder"])
    with pytest.raises(Forbidden, match="quan-tri is not among"):
        runner.approve(run_id, by=ADMIN)
    assert pending(store, run_id)
    runner.approve(run_id, approved=False, by=DUNG)
    body = run_doc(store, run_id)
    assert output(body, "ok")["decision"] == "rejected" and output(body, "ok")["by"] == "dung"


def test_the_permission_is_required_even_when_listed(tmp_path: Path, store: Store) -> None:
    runner, run_id = waiting_run(tmp_path, store, "chi, role:analyst")
    with pytest.raises(Forbidden, match="needs playbooks:approve"):
        runner.approve(run_id, by=ANALYST_CHI)
    reporter = Principal("chi", roles=frozenset({"reporter"}))
    with pytest.raises(Forbidden, match="playbooks:approve"):
        runner.approve(run_id, by=reporter)
    assert pending(store, run_id)
    token = Principal("chi", roles=frozenset({"responder"}), kind="token", token="ci",
                      token_scopes=frozenset({"playbooks:read"}))  # the token's scopes leave approving out
    with pytest.raises(Forbidden, match="playbooks:approve"):
        runner.approve(run_id, by=token)
    assert pending(store, run_id)
    runner.approve(run_id, by=CHI)
    assert run_doc(store, run_id)["status"] == "succeeded"


def test_no_approvers_means_anyone_with_the_permission(tmp_path: Path, store: Store) -> None:
    runner, run_id = waiting_run(tmp_path, store, None)
    with pytest.raises(Forbidden):
        runner.approve(run_id, by=Principal("an", roles=frozenset({"analyst"})))
    runner.approve(run_id, by=Principal.local("root"))
    assert output(run_doc(store, run_id), "ok")["by"] == "local:root"


def test_local_users_by_login_name(tmp_path: Path, store: Store) -> None:
    runner, run_id = waiting_run(tmp_path, store, ["chi"])
    with pytest.raises(Forbidden, match="local:root is not among"):
        runner.approve(run_id, by=Principal.local("root"))
    runner.approve(run_id, by=Principal.local("chi"))
    assert output(run_doc(store, run_id), "ok")["by"] == "local:chi"


def test_an_unknown_role_fails_the_step_at_once(tmp_path: Path, store: Store) -> None:
    playbooks = make(tmp_path, [{"id": "typo", "title": "T", "steps": [
        {"id": "ok", "action": "approval.wait", "args": {"prompt": "p", "approvers": ["role:respnder"]}}]}])
    runner = runner_for(store, playbooks, tmp_path)
    run_id, _ = runner.start("typo", {}, "k")
    body = run_doc(store, run_id)
    assert body["status"] == "failed" and "unknown role(s) in approvers: role:respnder" in step(body, "ok")["error"]


def test_entries() -> None:
    assert approver_entries("chi, role:responder  dung") == ["chi", "role:responder", "dung"]
    assert approver_entries(None) == [] and approver_entries([]) == []
    assert may_approve(CHI, ["user:chi"]) and not may_approve(CHI, ["local:chi"])
    assert may_approve(ADMIN, ["role:admin"]) and not may_approve(ADMIN, ["role:responder"])


def test_the_cli_approves_as_the_local_login(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from soc.cli import app

    login = getpass.getuser()
    folder = tmp_path / "playbooks"
    folder.mkdir()
    for name, approvers in (("mine", [login]), ("theirs", ["someone-else", "role:responder"])):
        (folder / f"{name}.yml").write_text(yaml.safe_dump({"id": name, "title": name, "steps": [
            {"id": "ok", "action": "approval.wait", "args": {"prompt": "go?", "approvers": approvers}}]}),
            encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SOC_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SOC_PLAYBOOKS__FOLDER", str(folder))
    monkeypatch.setenv("COLUMNS", "200")
    cli = CliRunner()
    ids = {}
    for name in ("mine", "theirs"):
        assert cli.invoke(app, ["playbook", "run", name, "--key", name]).exit_code == 0
    for line in cli.invoke(app, ["playbook", "runs", "--json"]).output.splitlines():
        run = json.loads(line)
        ids[run["playbook_id"]] = run["id"]
    refused = cli.invoke(app, ["playbook", "approve", ids["theirs"]])
    assert refused.exit_code == 2 and f"local:{login} is not among the approvers" in refused.output
    approved = cli.invoke(app, ["playbook", "approve", ids["mine"], "--comment", "ok"])
    assert approved.exit_code == 0 and "succeeded" in approved.output, approved.output
