"""Kill the process in the middle of a playbook run, start it again: the run finishes exactly
once and the steps it had completed are not repeated (a local webhook receiver counts calls)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from soc.playbooks import RUNS
from soc.playbooks.runner import run_id_for
from soc.store.base import Store
from tests.test_playbooks import Receiver, _open_sqlite

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = """
import sys
from pathlib import Path
from soc.config import load_settings
from soc.playbooks import PlaybookRunner, load_playbooks
from soc.config import PlaybookSettings
from soc.store import open_store

store_url, folder, url, prefix = sys.argv[1], Path(sys.argv[2]), sys.argv[3], sys.argv[4]
store = open_store(store_url, **({"prefix": prefix, "replicas": 0} if prefix else {}))
playbooks, errors = load_playbooks(folder)
assert not errors, errors
runner = PlaybookRunner(store, playbooks, settings=load_settings(data_dir=folder.parent / "data"),
                        config=PlaybookSettings(folder=folder, lease_seconds=30))
# what `soc run` does at start-up: resume runs whose process is gone, then handle the trigger
print("recovered", runner.recover(), flush=True)
run_id, created = runner.start("crashy", {"type": "manual"}, "crash-test", inputs={"url": url})
print("started", run_id, created, flush=True)
"""

PLAYBOOK = {
    "id": "crashy", "title": "Crash test",
    "inputs": {"url": {"type": "string", "required": True}},
    "steps": [
        {"id": "first", "action": "notify.webhook", "args": {"url": "{{ inputs.url }}/first", "payload": {"n": 1}}},
        {"id": "nap", "action": "core.sleep", "args": {"seconds": 3}},
        {"id": "second", "action": "notify.webhook", "args": {"url": "{{ inputs.url }}/second"}},
    ],
}


def _start(store_url: str, prefix: str, folder: Path, url: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-c", SCRIPT, store_url, str(folder), url, prefix], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(params=["sqlite", pytest.param("opensearch", marks=pytest.mark.search)])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str, Store]]:
    """(store URL, index prefix, a store for the test to look with) on SQLite and OpenSearch."""
    if request.param == "sqlite":
        db = tmp_path / "soc.db"
        store: Store = _open_sqlite(db)
        yield f"sqlite:///{db}", "", store
        store.close()
        return
    from tests.search_helpers import drop, open_search_store, store_url

    url, prefix = request.getfixturevalue("opensearch_url"), request.getfixturevalue("unique_name")
    search = open_search_store(url, prefix)
    yield store_url(url), prefix, search
    drop(search)


@pytest.mark.slow
def test_sigkill_mid_run_then_restart_finishes_once(tmp_path: Path, target: tuple[str, str, Store]) -> None:
    store_url, prefix, store = target
    folder = tmp_path / "playbooks"
    folder.mkdir()
    (folder / "crashy.yml").write_text(yaml.safe_dump(PLAYBOOK), encoding="utf-8")
    receiver = Receiver()
    try:
        run_id = run_id_for("crashy", "crash-test")
        victim = _start(store_url, prefix, folder, receiver.url)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # wait until the run sleeps in its second step
            doc = store.get(RUNS, run_id)
            if doc is not None and next(s for s in doc.body["steps"] if s["id"] == "nap")["status"] == "running":
                break
            assert victim.poll() is None, victim.communicate()
            time.sleep(0.05)
        else:
            pytest.fail("the run never reached its sleeping step")
        time.sleep(0.3)
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        body = store.get(RUNS, run_id).body  # type: ignore[union-attr]
        assert body["status"] == "running" and receiver.count("/first") == 1 and receiver.count("/second") == 0

        survivor = _start(store_url, prefix, folder, receiver.url)
        out, err = survivor.communicate(timeout=60)
        assert survivor.returncode == 0, err
        assert f"recovered ['{run_id}']" in out  # the dead owner's run was resumed at start-up
        assert f"started {run_id} False" in out  # the same trigger did not start a second run

        body = store.get(RUNS, run_id).body  # type: ignore[union-attr]
        assert body["status"] == "succeeded" and body["takeovers"] == 1
        states = {s["id"]: s for s in body["steps"]}
        assert states["first"]["attempts"] == 1  # completed before the kill: not repeated
        assert states["nap"]["attempts"] == 2 and states["nap"]["uncounted"] == 1
        assert receiver.count("/first") == 1 and receiver.count("/second") == 1

        # a third start: nothing runs again
        again = _start(store_url, prefix, folder, receiver.url)
        out, err = again.communicate(timeout=60)
        assert again.returncode == 0, err
        assert "recovered []" in out and f"started {run_id} False" in out
        assert receiver.count("/first") == 1 and receiver.count("/second") == 1
        store.refresh()
        assert len([d for d in store.iter_all(RUNS)]) == 1

        records = sorted((d.body for d in store.iter_all("playbook_steps")), key=lambda r: r["seq"])
        nap = [(r["attempt"], r["phase"], r["status"]) for r in records if r.get("step_id") == "nap"]
        assert nap == [(1, "start", "running"), (2, "start", "running"), (2, "end", "succeeded")]
        events = [r["event"] for r in records if r["kind"] == "run"]
        assert events == ["created", "started", "resumed-1", "succeeded"]
        resumed = next(r for r in records if r.get("event") == "resumed-1")
        assert json.loads(resumed["detail_json"])["reason"] == "owner process gone"
    finally:
        receiver.close()
