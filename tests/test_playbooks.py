"""The playbook engine on SQLite (and, for runs and their records, the real OpenSearch):
validation, templates and conditions, retries with backoff, timeouts, idempotency, dry runs,
approvals, lease takeover, sub-playbooks. The crash test and the real-data brute-force test
are in tests/test_playbooks_crash.py and tests/test_playbooks_bruteforce.py."""

from __future__ import annotations

import http.server
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from soc.access import Principal
from soc.config import PlaybookSettings, load_settings
from soc.playbooks import RUNS, STEPS, PlaybookError, PlaybookRunner, load_playbooks, parse_playbook
from soc.playbooks.actions.tasks import TASKS
from soc.playbooks.registry import EFFECTS, ActionError, action
from soc.store.base import Store
from soc.store.sqlite import SQLiteStore

ROOT = Path(__file__).resolve().parent.parent


# -- helpers --------------------------------------------------------------------------------------
class Receiver:
    """A local HTTP endpoint that counts POSTs per path; ``fail`` maps a path to a list of
    status codes answered first (then 200)."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.fail: dict[str, list[int]] = {}
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                receiver.calls.append({"path": self.path, "body": body,
                                       "key": self.headers.get("Idempotency-Key")})
                codes = receiver.fail.get(self.path) or []
                code = codes.pop(0) if codes else 200
                self.send_response(code)
                self.end_headers()
                self.wfile.write(b'{"ok": true}')

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def count(self, path: str) -> int:
        return sum(1 for c in self.calls if c["path"] == path)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _open_sqlite(path: Path) -> SQLiteStore:
    from soc.catalog import default_catalog

    return SQLiteStore(path, numeric_fields=default_catalog().numeric_fields)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = _open_sqlite(tmp_path / "soc.db")
    yield s
    s.close()


@pytest.fixture(params=["sqlite", pytest.param("opensearch", marks=pytest.mark.search)])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """The run and record tests on both stores."""
    if request.param == "sqlite":
        s: Store = _open_sqlite(tmp_path / "soc.db")
        yield s
        s.close()
        return
    from tests.search_helpers import drop, open_search_store

    url = request.getfixturevalue("opensearch_url")
    name = request.getfixturevalue("unique_name")
    search = open_search_store(url, name)
    yield search
    drop(search)


def make(tmp_path: Path, docs: list[dict[str, Any]]) -> dict[str, Any]:
    folder = tmp_path / "playbooks"
    folder.mkdir(exist_ok=True)
    for doc in docs:
        (folder / f"{doc['id']}.yml").write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    playbooks, errors = load_playbooks(folder)
    assert not errors, errors
    return playbooks


def runner_for(store: Store, playbooks: dict[str, Any], tmp_path: Path, smtp: dict[str, Any] | None = None,
               **config: Any) -> PlaybookRunner:
    cfg = PlaybookSettings(folder=ROOT / "playbooks", **config)
    settings = load_settings(data_dir=tmp_path / "data", **({"smtp": smtp} if smtp else {}))
    return PlaybookRunner(store, playbooks, settings=settings, config=cfg)


def run_doc(store: Store, run_id: str) -> dict[str, Any]:
    doc = store.get(RUNS, run_id)
    assert doc is not None
    return doc.body


def step(body: dict[str, Any], step_id: str) -> dict[str, Any]:
    return next(s for s in body["steps"] if s["id"] == step_id)


def output(body: dict[str, Any], step_id: str) -> Any:
    text = step(body, step_id)["output_json"]
    return json.loads(text) if text else None


FLAKY: dict[str, int] = {}


@action("test.flaky", side_effects=False)
def _flaky(ctx: Any, name: str, failures: int, retryable: bool = True) -> dict[str, Any]:
    """Fail ``failures`` times per name, then succeed (test only)."""
    FLAKY[name] = FLAKY.get(name, 0) + 1
    if FLAKY[name] <= failures:
        raise ActionError(f"failure {FLAKY[name]} of {failures}", retryable=retryable)
    return {"calls": FLAKY[name], "at": time.monotonic()}


# -- validation ---------------------------------------------------------------------------------
def _error_for(tmp_path: Path, doc: dict[str, Any]) -> str:
    path = tmp_path / "bad.yml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    playbooks, errors = load_playbooks(path)
    assert not playbooks and len(errors) == 1
    assert str(path) in errors[0]
    return errors[0]


BASE = {"id": "bad", "title": "Bad"}


@pytest.mark.parametrize("steps, expected", [
    ([{"id": "notify", "action": "notify.nope"}], ["step 'notify'", "unknown action 'notify.nope'"]),
    ([{"id": "hook", "action": "notify.webhook", "args": {"url": "x", "jsn": {}}}],
     ["step 'hook'", "unknown argument(s) jsn"]),
    ([{"id": "hook", "action": "notify.webhook", "args": {}}], ["step 'hook'", "missing required argument(s) url"]),
    ([{"id": "echo", "action": "core.echo", "args": {"x": "{{ inputs.a + }}"}}], ["step 'echo'", "template"]),
    ([{"id": "echo", "action": "core.echo", "if": "steps.x.output ==="}], ["step 'echo'"]),
    ([{"id": "echo", "action": "core.echo", "retry": {"attempts": 0}}], ["step 'echo' (steps[0])", "retry.attempts"]),
    ([{"id": "echo", "action": "core.echo", "timout": 5}], ["step 'echo' (steps[0])", "timout"]),
    ([{"id": "a", "action": "core.echo", "on_error": "goto:zz"}], ["step 'a'", "'zz'"]),
    ([{"id": "a", "action": "core.echo"}, {"id": "b", "action": "core.echo", "on_error": "goto:a"}],
     ["step 'b'", "only go forward"]),
    ([{"id": "a", "action": "core.echo"}, {"id": "a", "action": "core.echo"}], ["step 'a' is defined twice"]),
])
def test_validation_errors_name_the_file_and_the_step(tmp_path: Path, steps: list[dict[str, Any]],
                                                      expected: list[str]) -> None:
    message = _error_for(tmp_path, {**BASE, "steps": steps})
    for text in expected:
        assert text in message, message


def test_validation_of_triggers_and_yaml(tmp_path: Path) -> None:
    message = _error_for(tmp_path, {**BASE, "trigger": {"schedule": {"cron": "61 * * * *"}},
                                    "steps": [{"id": "a", "action": "core.echo"}]})
    assert "invalid cron expression" in message
    message = _error_for(tmp_path, {**BASE, "trigger": {"alerts": {"min_level": "severe"}},
                                    "steps": [{"id": "a", "action": "core.echo"}]})
    assert "trigger.alerts.min_level" in message
    path = tmp_path / "broken.yml"
    path.write_text("id: x\nsteps: [\n", encoding="utf-8")
    _, errors = load_playbooks(path)
    assert errors and str(path) in errors[0] and "not valid YAML" in errors[0]
    with pytest.raises(PlaybookError, match="<inline>: a playbook is a mapping"):
        parse_playbook(["not", "a", "mapping"], "<inline>")


def test_project_playbooks_are_valid_and_bilingual() -> None:
    playbooks, errors = load_playbooks(ROOT / "playbooks")
    assert errors == []
    assert {"ssh-brute-force", "web-attack-portal", "new-privileged-account", "malware-on-host",
            "monthly-summary", "serious-incident-initial-report"} <= set(playbooks)
    for playbook in playbooks.values():
        assert " / " in playbook.title, playbook.id  # Vietnamese / English
        assert any(ch in playbook.title + playbook.description for ch in "ạảấầẩẫậắằẳẵặẹẻẽếềểễệịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹđ")
    assert playbooks["monthly-summary"].trigger.schedule is not None
    assert playbooks["ssh-brute-force"].trigger.alerts.group_by == ["source.ip"]


# -- templates and conditions ------------------------------------------------------------------
def test_templates_keep_types_and_conditions_skip(tmp_path: Path, store: Store) -> None:
    playbooks = make(tmp_path, [{
        "id": "tpl", "title": "T", "inputs": {"n": {"type": "integer", "default": 2}, "names": {"type": "list"}},
        "steps": [
            {"id": "calc", "action": "core.echo",
             "args": {"double": "{{ inputs.n * 2 }}", "text": "n={{ inputs.n }}", "names": "{{ inputs.names }}",
                      "missing": "{{ steps.nothing.output.x }}", "alert_rule": "{{ trigger.alert.rule.id }}"}},
            {"id": "big", "action": "core.echo", "if": "steps.calc.output.double > 10", "args": {"x": 1}},
            {"id": "small", "action": "core.echo", "if": "{{ steps.calc.output.double <= 10 }}",
             "args": {"prev": "{{ steps.calc.output }}", "big_status": "{{ steps.big.status }}"}},
        ],
        "outputs": {"double": "{{ steps.calc.output.double }}"},
    }])
    runner = runner_for(store, playbooks, tmp_path)
    run_id, created = runner.start("tpl", {"type": "manual", "alert": {"rule": {"id": "r-1"}}}, "k",
                                   inputs={"n": "3", "names": "a,b"})
    body = run_doc(store, run_id)
    assert created and body["status"] == "succeeded"
    assert output(body, "calc") == {"double": 6, "text": "n=3", "names": ["a", "b"], "missing": None,
                                    "alert_rule": "r-1"}
    assert step(body, "big")["status"] == "skipped"
    assert output(body, "small") == {"prev": output(body, "calc"), "big_status": "skipped"}
    assert json.loads(body["outputs_json"]) == {"double": 6}


def test_sandbox_refuses_python_internals(tmp_path: Path, store: Store) -> None:
    playbooks = make(tmp_path, [{"id": "evil", "title": "E", "steps": [
        {"id": "peek", "action": "core.echo", "args": {"x": "{{ ''.__class__.__mro__[1].__subclasses__() }}"}}]}])
    runner = runner_for(store, playbooks, tmp_path)
    run_id, _ = runner.start("evil", {}, "k")
    body = run_doc(store, run_id)
    assert body["status"] == "failed"
    assert "unsafe" in step(body, "peek")["error"] or "not safely" in step(body, "peek")["error"]


def test_missing_required_input_is_refused(tmp_path: Path, store: Store) -> None:
    playbooks = make(tmp_path, [{"id": "inp", "title": "I", "inputs": {"who": {"required": True}},
                                 "steps": [{"id": "a", "action": "core.echo"}]}])
    runner = runner_for(store, playbooks, tmp_path)
    with pytest.raises(PlaybookError, match="input 'who' is required"):
        runner.start("inp", {}, "k")
    with pytest.raises(PlaybookError, match="unknown input"):
        runner.start("inp", {}, "k", inputs={"who": "x", "whom": "y"})
    assert list(store.iter_all(RUNS)) == []


# -- retries, timeouts, errors ---------------------------------------------------------------------
def test_retry_with_exponential_backoff(tmp_path: Path, any_store: Store) -> None:
    name = uuid.uuid4().hex
    playbooks = make(tmp_path, [{"id": "flaky", "title": "F", "steps": [
        {"id": "call", "action": "test.flaky", "args": {"name": name, "failures": 2},
         "retry": {"attempts": 3, "backoff": 0.2, "factor": 2}}]}])
    runner = runner_for(any_store, playbooks, tmp_path)
    started = time.monotonic()
    run_id, _ = runner.start("flaky", {}, "k")
    elapsed = time.monotonic() - started
    body = run_doc(any_store, run_id)
    assert body["status"] == "succeeded"
    assert step(body, "call")["attempts"] == 3 and output(body, "call")["calls"] == 3
    assert elapsed >= 0.2 + 0.4  # waited 0.2 s, then 0.4 s
    records = runner.records(run_id)
    ends = [r for r in records if r.get("step_id") == "call" and r["phase"] == "end"]
    assert [r["status"] for r in ends] == ["retrying", "retrying", "succeeded"]
    assert [json.loads(r["detail_json"])["retry_in"] for r in ends[:2]] == [0.2, 0.4]
    assert ends[0]["error"] == "failure 1 of 2"
    assert [r["event"] for r in records if r["kind"] == "run"] == ["created", "started", "succeeded"]
    # the record is create-only with deterministic ids: one document per attempt and phase
    assert len({r["id"] for r in records}) == len(records) == 3 + 6


def test_non_retryable_error_and_on_error(tmp_path: Path, store: Store) -> None:
    name = uuid.uuid4().hex
    playbooks = make(tmp_path, [{"id": "errs", "title": "E", "steps": [
        {"id": "hard", "action": "test.flaky", "args": {"name": name, "failures": 5, "retryable": False},
         "retry": {"attempts": 4, "backoff": 0}, "on_error": "continue"},
        {"id": "boom", "action": "core.fail", "args": {"message": "stop here"}, "on_error": "goto:cleanup"},
        {"id": "skipped_by_goto", "action": "core.echo"},
        {"id": "cleanup", "action": "core.echo", "args": {"hard": "{{ steps.hard.status }}"}},
        {"id": "last", "action": "core.fail", "args": {"message": "really"}},
        {"id": "never", "action": "core.echo"},
    ]}])
    runner = runner_for(store, playbooks, tmp_path)
    run_id, _ = runner.start("errs", {}, "k")
    body = run_doc(store, run_id)
    assert step(body, "hard")["attempts"] == 1 and step(body, "hard")["status"] == "failed"
    assert step(body, "skipped_by_goto")["status"] == "skipped"
    assert output(body, "cleanup") == {"hard": "failed"}
    assert body["status"] == "failed" and body["error"] == "step last failed: really"
    assert step(body, "never")["status"] == "pending"


def test_step_timeout(tmp_path: Path, store: Store) -> None:
    playbooks = make(tmp_path, [{"id": "slow", "title": "S", "steps": [
        {"id": "nap", "action": "core.sleep", "args": {"seconds": 30}, "timeout": 0.3,
         "retry": {"attempts": 2, "backoff": 0}}]}])
    runner = runner_for(store, playbooks, tmp_path)
    started = time.monotonic()
    run_id, _ = runner.start("slow", {}, "k")
    assert time.monotonic() - started < 5
    body = run_doc(store, run_id)
    assert body["status"] == "failed"
    assert step(body, "nap")["attempts"] == 2 and "timed out after 0.3s" in step(body, "nap")["error"]


# -- idempotency and dry run ----------------------------------------------------------------------
ALERT = {"id": "alert-1", "rule": {"id": "rule-a", "title": "A", "level": "high", "tags": ["attack.t1110"],
                                   "author": "t"},
         "agency": "so-tttt", "@timestamp": "2026-11-01T00:00:00.000Z", "first_seen": "2026-11-01T00:00:00.000Z",
         "last_seen": "2026-11-01T00:01:00.000Z", "detected_at": "2026-11-01T00:02:00.000Z",
         "event_ids": ["e1"], "group": {"source.ip": "198.51.100.7"}, "group_key": "x",
         "entities": {"source.ip": ["198.51.100.7"], "host.name": ["dvc-web01"]}, "event_count": 1}


def test_same_trigger_never_runs_twice(tmp_path: Path, any_store: Store, receiver: Receiver) -> None:
    playbooks = make(tmp_path, [{
        "id": "on-alert", "title": "O", "trigger": {"alerts": {"rules": ["rule-a"], "min_level": "medium"}},
        "steps": [{"id": "hook", "action": "notify.webhook",
                   "args": {"url": receiver.url + "/hook", "payload": {"alert": "{{ trigger.alert.id }}"}}}]},
        {"id": "other-rule", "title": "X", "trigger": {"alerts": {"rules": ["rule-b"]}},
         "steps": [{"id": "a", "action": "core.echo"}]},
        {"id": "too-high", "title": "H", "trigger": {"alerts": {"min_level": "critical"}},
         "steps": [{"id": "a", "action": "core.echo"}]},
    ])
    runner = runner_for(any_store, playbooks, tmp_path)
    first = runner.on_alerts([ALERT])
    second = runner.on_alerts([ALERT])
    third = PlaybookRunner(any_store, playbooks, settings=runner.settings, config=runner.config).on_alerts([ALERT])
    assert len(first) == 1 and second == [] and third == []
    any_store.refresh()
    runs = list(any_store.iter_all(RUNS))
    assert len(runs) == 1 and runs[0].body["status"] == "succeeded"
    assert receiver.count("/hook") == 1
    assert receiver.calls[0]["key"] == f"{first[0]}:hook"
    assert json.loads(receiver.calls[0]["body"]) == {"alert": "alert-1"}


def test_dry_run_has_no_side_effects(tmp_path: Path, store: Store, receiver: Receiver) -> None:
    playbooks, errors = load_playbooks(ROOT / "playbooks")
    assert not errors
    runner = runner_for(store, playbooks, tmp_path)
    alert = dict(ALERT, rule=dict(ALERT["rule"], id="0b8e3f4c-2a6d-4e71-8c1f-5d9b7a3e6c21"))
    trigger = {"type": "alerts", "alerts": [alert], "alert": alert, "alert_ids": [alert["id"]], "group": {}}
    run_id, _ = runner.start("ssh-brute-force", trigger, "dry", dry_run=True,
                             inputs={"webhook_url": receiver.url + "/hook"})
    body = run_doc(store, run_id)
    assert body["status"] == "succeeded" and body["dry_run"] is True
    assert output(body, "incident")["dry_run"] is True
    assert output(body, "assets")["count"] == 1  # read-only enrichment still runs
    for collection in ("incidents", TASKS, EFFECTS, "alerts"):
        assert list(store.iter_all(collection)) == [], collection
    assert receiver.calls == []
    again, created = runner.start("ssh-brute-force", trigger, "dry", dry_run=True)
    assert created and again != run_id  # dry runs never block the real one


# -- approvals, takeover, sub-playbooks ------------------------------------------------------------
LEADER = Principal("leader", roles=frozenset({"responder"}))


def _approval_playbooks(tmp_path: Path, url: str, hours: float = 1.0) -> dict[str, Any]:
    return make(tmp_path, [{"id": "needs-ok", "title": "A", "steps": [
        {"id": "before", "action": "notify.webhook", "args": {"url": url + "/before"}},
        {"id": "ok", "action": "approval.wait", "args": {"prompt": "block it?", "timeout_hours": hours}},
        {"id": "act", "action": "notify.webhook", "if": "steps.ok.output.approved", "args": {"url": url + "/act"}},
    ], "outputs": {"decision": "{{ steps.ok.output.decision }}"}}])


def test_approval_waits_then_approve_continues(tmp_path: Path, any_store: Store, receiver: Receiver) -> None:
    runner = runner_for(any_store, _approval_playbooks(tmp_path, receiver.url), tmp_path)
    run_id, _ = runner.start("needs-ok", {}, "k")
    body = run_doc(any_store, run_id)
    assert body["status"] == "waiting" and body["owner"] is None
    assert step(body, "ok")["status"] == "waiting" and "block it?" in body["wait_reason"]
    assert receiver.count("/before") == 1 and receiver.count("/act") == 0
    assert runner.recover() == []  # not due, not stale: nothing to do
    with pytest.raises(PlaybookError, match="does not wait"):
        runner.approve(runner.start("needs-ok", {}, "other", dry_run=True)[0], by=LEADER)
    # another process (the CLI) approves
    cli = PlaybookRunner(any_store, runner.playbooks, settings=runner.settings, config=runner.config)
    cli.approve(run_id, by=LEADER, comment="ok")
    body = run_doc(any_store, run_id)
    assert body["status"] == "succeeded"
    assert output(body, "ok")["approved"] is True and output(body, "ok")["by"] == "leader"
    assert receiver.count("/before") == 1 and receiver.count("/act") == 1  # completed steps not repeated
    with pytest.raises(PlaybookError):
        cli.approve(run_id, by=LEADER)
    events = [r.get("event") for r in runner.records(run_id) if r["kind"] == "run"]
    assert "approved" in events and events[-1] == "succeeded"


def test_approval_reject_and_timeout(tmp_path: Path, store: Store, receiver: Receiver) -> None:
    runner = runner_for(store, _approval_playbooks(tmp_path, receiver.url, hours=0.0003), tmp_path)
    rejected, _ = runner.start("needs-ok", {}, "r")
    runner.approve(rejected, approved=False, by=LEADER)
    body = run_doc(store, rejected)
    assert body["status"] == "succeeded" and step(body, "act")["status"] == "skipped"
    assert json.loads(body["outputs_json"]) == {"decision": "rejected"}
    timed, _ = runner.start("needs-ok", {}, "t")
    assert run_doc(store, timed)["status"] == "waiting"
    time.sleep(1.2)  # the 1.08 s deadline passes
    assert timed in runner.recover()
    body = run_doc(store, timed)
    assert body["status"] == "succeeded" and json.loads(body["outputs_json"]) == {"decision": "timeout"}
    assert receiver.count("/act") == 0


def test_stale_run_is_taken_over_and_never_stuck(tmp_path: Path, any_store: Store, receiver: Receiver) -> None:
    playbooks = _approval_playbooks(tmp_path, receiver.url)
    runner = runner_for(any_store, playbooks, tmp_path, lease_seconds=1, max_takeovers=2)
    run_id, _ = runner.start("needs-ok", {}, "k", execute=False)
    # a process on another host claimed it, finished 'before' and died while running 'ok'
    doc = any_store.get(RUNS, run_id)
    assert doc is not None
    body = dict(doc.body, status="running", owner="elsewhere:4242:dead00", lease_until=time.time() + 0.5)
    body["steps"] = [dict(s, status="succeeded", attempts=1, output_json='{"status": 200}') if s["id"] == "before"
                     else dict(s, status="running", attempts=1) if s["id"] == "ok" else s for s in body["steps"]]
    any_store.put(RUNS, run_id, body, expected_version=doc.version)
    assert runner.recover() == []  # its lease still holds
    time.sleep(0.7)
    assert runner.recover() == [run_id]
    body = run_doc(any_store, run_id)
    assert body["status"] == "waiting" and body["takeovers"] == 1
    assert step(body, "ok")["attempts"] == 2 and step(body, "ok")["uncounted"] == 1
    assert receiver.count("/before") == 0  # the completed step was not repeated
    events = [r["event"] for r in runner.records(run_id) if r["kind"] == "run"]
    assert "resumed-1" in events
    # a run whose process keeps dying is failed with the reason, not resumed forever
    doc = any_store.get(RUNS, run_id)
    assert doc is not None
    any_store.put(RUNS, run_id, dict(doc.body, status="running", owner="elsewhere:1:x", lease_until=0, takeovers=2),
                  expected_version=doc.version)
    runner.recover()
    body = run_doc(any_store, run_id)
    assert body["status"] == "failed" and "abandoned" in body["error"] and "2 times" in body["error"]


def test_sub_playbook(tmp_path: Path, store: Store) -> None:
    playbooks = make(tmp_path, [
        {"id": "child", "title": "C", "inputs": {"x": {"type": "integer"}},
         "steps": [{"id": "square", "action": "core.echo", "args": {"v": "{{ inputs.x * inputs.x }}"}}],
         "outputs": {"v": "{{ steps.square.output.v }}"}},
        {"id": "parent", "title": "P", "steps": [
            {"id": "sub", "action": "playbook.run", "args": {"playbook": "child", "inputs": {"x": 7}}},
            {"id": "use", "action": "core.echo", "args": {"v": "{{ steps.sub.output.outputs.v }}"}}]},
    ])
    runner = runner_for(store, playbooks, tmp_path)
    run_id, _ = runner.start("parent", {}, "k")
    body = run_doc(store, run_id)
    assert body["status"] == "succeeded" and output(body, "use") == {"v": 49}
    children = [d.body for d in store.iter_all(RUNS) if d.body["playbook_id"] == "child"]
    assert len(children) == 1 and children[0]["parent_run"] == run_id


def test_incident_event_triggers_playbook(tmp_path: Path, store: Store) -> None:
    pytest.importorskip("soc.incidents.service")
    playbooks = make(tmp_path, [
        {"id": "open", "title": "O", "trigger": {"alerts": {"rules": ["rule-a"]}}, "steps": [
            {"id": "incident", "action": "incident.open_or_attach",
             "args": {"alerts": "{{ trigger.alerts }}", "severity": "critical", "group_by": ["source.ip"]}}]},
        {"id": "on-critical", "title": "C", "trigger": {"incident": {"events": ["opened"], "min_severity": "critical",
                                                                     "once_per_incident": True}},
         "steps": [{"id": "task", "action": "task.create",
                    "args": {"title": "call the owner", "incident_id": "{{ trigger.incident.id }}"}}]},
    ])
    runner = runner_for(store, playbooks, tmp_path)
    runner.on_alerts([ALERT])
    second = dict(ALERT, id="alert-2", first_seen="2026-11-01T00:05:00.000Z", last_seen="2026-11-01T00:06:00.000Z")
    runner.on_alerts([second])
    incidents = [d.body for d in store.iter_all("incidents")]
    assert len(incidents) == 1 and sorted(incidents[0]["alert_ids"]) == ["alert-1", "alert-2"]
    tasks = [d.body for d in store.iter_all(TASKS)]
    assert len(tasks) == 1 and tasks[0]["incident_id"] == incidents[0]["id"]
    runs = {d.body["playbook_id"]: d.body for d in store.iter_all(RUNS) if d.body["playbook_id"] == "on-critical"}
    assert runs["on-critical"]["status"] == "succeeded"


def test_records_are_in_the_store_collection(tmp_path: Path, store: Store) -> None:
    playbooks = make(tmp_path, [{"id": "rec", "title": "R", "steps": [{"id": "a", "action": "core.echo",
                                                                       "args": {"x": 1}}]}])
    runner = runner_for(store, playbooks, tmp_path)
    run_id, _ = runner.start("rec", {}, "k", actor="user:an")
    records = [d.body for d in store.iter_all(STEPS)]
    start = next(r for r in records if r.get("phase") == "start")
    end = next(r for r in records if r.get("phase") == "end")
    assert start["actor"] == "user:an" and json.loads(start["args_json"]) == {"x": 1}
    assert json.loads(end["output_json"]) == {"x": 1} and end["duration"] is not None
    assert all(r["run_id"] == run_id for r in records)


# -- the embedded service: schedule, sweep, catch-up -----------------------------------------------
def test_schedule_attach_and_one_run_per_fire_time(tmp_path: Path, store: Store) -> None:
    from datetime import UTC, datetime

    from apscheduler.schedulers.background import BackgroundScheduler

    from soc.playbooks.schedule import attach

    playbooks = make(tmp_path, [{"id": "nightly", "title": "N",
                                 "trigger": {"schedule": {"cron": "30 1 * * *", "timezone": "Asia/Ho_Chi_Minh"}},
                                 "steps": [{"id": "a", "action": "core.echo", "args": {"at": "{{ trigger.fired_at }}"}}]}])
    runner = runner_for(store, playbooks, tmp_path)
    scheduler = BackgroundScheduler(timezone="UTC")
    jobs = attach(runner, scheduler)
    assert jobs == ["playbook:nightly", "playbook-sweep"]
    job = scheduler.get_job("playbook:nightly")
    fire = job.trigger.get_next_fire_time(None, datetime(2026, 12, 1, 0, 0, tzinfo=UTC))
    assert fire.astimezone(UTC) == datetime(2026, 12, 1, 18, 30, tzinfo=UTC)  # 01:30 +07 next day
    assert scheduler.get_job("playbook-catch-up") is not None
    moment = datetime(2026, 12, 1, 18, 30, 0, 120_000, tzinfo=UTC)
    first = runner.on_schedule("nightly", moment)
    assert first[1] and runner.on_schedule("nightly", moment.replace(second=5)) == (first[0], False)
    assert output(run_doc(store, first[0]), "a") == {"at": "2026-12-01T18:30:00.000Z"}


def test_catch_up_offers_recent_alerts_once(tmp_path: Path, store: Store) -> None:
    from soc.model import iso, now_utc

    playbooks = make(tmp_path, [{"id": "on-alert", "title": "O", "trigger": {"alerts": {"rules": ["rule-a"]}},
                                 "steps": [{"id": "a", "action": "core.echo"}]}])
    runner = runner_for(store, playbooks, tmp_path)
    recent = dict(ALERT, id="recent", detected_at=iso(now_utc()))
    old = dict(ALERT, id="old", detected_at="2020-01-01T00:00:00.000Z")
    for alert in (recent, old):  # recorded, then the process died before handing them over
        store.create("alerts", alert["id"], alert)
    started = runner.catch_up(3600)
    assert len(started) == 1 and runner.catch_up(3600) == []
    assert json.loads(run_doc(store, started[0])["trigger_json"])["alert"]["id"] == "recent"


# -- notifications ------------------------------------------------------------------------------
def test_webhook_retries_5xx_not_4xx_and_sends_once(tmp_path: Path, store: Store, receiver: Receiver) -> None:
    receiver.fail["/flaky"] = [503, 502]
    receiver.fail["/bad"] = [400]
    playbooks = make(tmp_path, [{"id": "hooks", "title": "H", "steps": [
        {"id": "flaky", "action": "notify.webhook", "args": {"url": receiver.url + "/flaky", "payload": {"a": 1}},
         "retry": {"attempts": 3, "backoff": 0.05}},
        {"id": "bad", "action": "notify.webhook", "args": {"url": receiver.url + "/bad"},
         "retry": {"attempts": 3, "backoff": 0.05}, "on_error": "continue"}]}])
    runner = runner_for(store, playbooks, tmp_path)
    run_id, _ = runner.start("hooks", {}, "k")
    body = run_doc(store, run_id)
    assert step(body, "flaky")["status"] == "succeeded" and receiver.count("/flaky") == 3
    assert {c["key"] for c in receiver.calls if c["path"] == "/flaky"} == {f"{run_id}:flaky"}
    assert step(body, "bad")["attempts"] == 1 and "HTTP 400" in step(body, "bad")["error"]
    assert receiver.count("/bad") == 1
    effect = store.get(EFFECTS, f"{run_id}:flaky")
    assert effect is not None and effect.body["status"] == "done"


class SmtpSink:
    """A minimal SMTP server (enough for smtplib) that keeps the messages it receives."""

    def __init__(self) -> None:
        import socketserver

        self.messages: list[dict[str, Any]] = []
        sink = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                def say(line: str) -> None:
                    self.wfile.write((line + "\r\n").encode())

                say("220 test ESMTP")
                mail: dict[str, Any] = {"to": []}
                while True:
                    line = self.rfile.readline().decode().rstrip("\r\n")
                    verb = line[:4].upper()
                    if not line or verb == "QUIT":
                        say("221 bye")
                        return
                    if verb in ("EHLO", "HELO"):
                        say("250 test")
                    elif verb == "MAIL":
                        mail = {"from": line, "to": []}
                        say("250 ok")
                    elif verb == "RCPT":
                        mail["to"].append(line.split(":", 1)[1].strip("<> "))
                        say("250 ok")
                    elif verb == "DATA":
                        say("354 go on")
                        data = []
                        while (chunk := self.rfile.readline().decode()) not in (".\r\n", ""):
                            data.append(chunk)
                        mail["data"] = "".join(data)
                        sink.messages.append(mail)
                        say("250 queued")
                    else:
                        say("250 ok")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.port = self.server.server_address[1]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_email_with_subject_prefix_once(tmp_path: Path, store: Store) -> None:
    import email
    from email.header import decode_header, make_header

    smtp = SmtpSink()
    try:
        playbooks = make(tmp_path, [{"id": "mail", "title": "M", "steps": [
            {"id": "send", "action": "notify.email",
             "args": {"to": ["irt@tinh.gov.vn"], "subject": "Sự cố mới {{ inputs.n }}", "body": "Nội dung"}}],
            "inputs": {"n": {"type": "integer", "default": 7}}}])
        runner = runner_for(store, playbooks, tmp_path,
                            smtp={"host": "127.0.0.1", "port": smtp.port, "sender": "soc@tinh.gov.vn"})
        run_id, _ = runner.start("mail", {}, "k")
        assert run_doc(store, run_id)["status"] == "succeeded"
        assert len(smtp.messages) == 1 and smtp.messages[0]["to"] == ["irt@tinh.gov.vn"]
        message = email.message_from_string(smtp.messages[0]["data"])
        assert str(make_header(decode_header(message["Subject"]))) == "[SOC] Sự cố mới 7"
        assert message["Message-ID"] == output(run_doc(store, run_id), "send")["message_id"]
        # the same step again (a resumed run would call it with the same key): not sent twice
        from soc.playbooks.registry import REGISTRY, ActionContext

        ctx = ActionContext(store=store, runner=runner, run_id=run_id, playbook_id="mail", step_id="send",
                            key=f"{run_id}:send", attempt=2, actor="t")
        assert REGISTRY["notify.email"](ctx, {"subject": "x", "body": "y", "to": "a@b"})["recorded"] is True
        assert len(smtp.messages) == 1
    finally:
        smtp.close()


def test_resume_after_a_failed_step_keeps_its_on_error(tmp_path: Path, store: Store) -> None:
    """A process that died right after a step failed (before the run was marked) must not run
    the steps that failure skips or stops."""
    playbooks = make(tmp_path, [{"id": "resumed", "title": "R", "steps": [
        {"id": "boom", "action": "core.fail", "on_error": "goto:cleanup"},
        {"id": "skipped", "action": "core.echo"},
        {"id": "cleanup", "action": "core.echo"},
        {"id": "stop", "action": "core.fail", "args": {"message": "no"}},
        {"id": "never", "action": "core.echo"}]}])
    runner = runner_for(store, playbooks, tmp_path, lease_seconds=1)
    run_id, _ = runner.start("resumed", {}, "k", execute=False)
    doc = store.get(RUNS, run_id)
    assert doc is not None
    body = dict(doc.body, status="running", owner="elsewhere:1:x", lease_until=0)
    body["steps"] = [dict(s, status="failed", attempts=1, error="boom") if s["id"] == "boom" else s
                     for s in body["steps"]]
    store.put(RUNS, run_id, body, expected_version=doc.version)
    assert runner.recover() == [run_id]
    body = run_doc(store, run_id)
    assert [s["status"] for s in body["steps"]] == ["failed", "skipped", "succeeded", "failed", "pending"]
    assert body["status"] == "failed" and body["error"] == "step stop failed: no"


@pytest.mark.parametrize("playbook_id", ["ssh-brute-force", "web-attack-portal", "new-privileged-account",
                                         "malware-on-host"])
def test_project_alert_playbooks_run_on_their_rules(tmp_path: Path, store: Store, receiver: Receiver,
                                                    playbook_id: str) -> None:
    """Every alert playbook of the project, on an alert of each of its rules: the run succeeds,
    one incident per group, the affected system comes from the asset list, one notification."""
    pytest.importorskip("soc.incidents.service")
    playbooks, _ = load_playbooks(ROOT / "playbooks")
    playbook = playbooks[playbook_id]
    runner = runner_for(store, playbooks, tmp_path, inputs={playbook_id: {"webhook_url": receiver.url + "/n"}})
    alerts = []
    for index, rule_id in enumerate(playbook.trigger.alerts.rules):
        alerts.append(dict(ALERT, id=f"{playbook_id}-{index}", rule=dict(ALERT["rule"], id=rule_id, level="critical"),
                           first_seen=f"2026-11-01T00:0{index}:00.000Z", last_seen=f"2026-11-01T00:0{index}:30.000Z",
                           entities={"source.ip": ["198.51.100.7"], "host.name": ["dvc-web01"],
                                     "user.name": ["eve"], "user.target.name": ["backdoor"]}))
    started = runner.on_alerts(alerts)
    runs = [run_doc(store, r) for r in started]
    assert runs and all(r["status"] == "succeeded" for r in runs), [(r["error"], r["steps"]) for r in runs]
    incidents = [d.body for d in store.iter_all("incidents")]
    assert len(incidents) == 1 and len(incidents[0]["alert_ids"]) == len(alerts)
    assert incidents[0]["affected_systems"][0]["name"] == "Cổng dịch vụ công trực tuyến tỉnh"
    assert receiver.count("/n") == 1
    assert [d.body for d in store.iter_all(TASKS)]
