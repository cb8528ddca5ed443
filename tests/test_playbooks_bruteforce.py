"""The SSH brute-force playbook over real alerts: the project's SSH brute-force rules hunted
over the Elastic "suspicious login activity" auth.log, the alerts handed to the runner as a
detection run hands them over. By default one incident per campaign against one server -- not
one per alert, nor one per attacking address -- also when a later detection run brings more
alerts; with the input ``group_by: [source.ip]`` one incident per attacking address."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from soc.playbooks import RUNS, PlaybookRunner, load_playbooks
from soc.playbooks.actions.tasks import TASKS
from soc.store.base import Store
from tests.conftest import shared
from tests.test_playbooks import ROOT, Receiver, _open_sqlite, runner_for

BRUTE_FORCE = "0b8e3f4c-2a6d-4e71-8c1f-5d9b7a3e6c21"
SLOW_BRUTE_FORCE = "46bf13d5-a86b-4f69-b252-5d5351d782cc"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = _open_sqlite(tmp_path / "soc.db")
    yield s
    s.close()


@pytest.fixture(scope="module")
def alerts() -> list[dict]:
    pytest.importorskip("soc.incidents.service")
    from soc.detect.compiler import compile_rules
    from soc.detect.rules import load_rules
    from soc.hunt import run_hunt

    log = shared("elastic-examples", "suspicious_login_activity", "data", "auth.log")
    rules = compile_rules(load_rules([ROOT / "detections" / "linux" / "ssh" / "ssh_brute_force.yml",
                                      ROOT / "detections" / "linux" / "ssh" / "ssh_slow_brute_force.yml"]))
    result = run_hunt([log], rules, timezone="UTC", agency="so-tttt")
    return result.alerts


def test_one_incident_per_attacked_server_not_per_alert(tmp_path: Path, store: Store, alerts: list[dict]) -> None:
    playbooks, errors = load_playbooks(ROOT / "playbooks")
    assert not errors
    receiver = Receiver()
    try:
        fast = [a for a in alerts if a["rule"]["id"] == BRUTE_FORCE]
        slow = [a for a in alerts if a["rule"]["id"] == SLOW_BRUTE_FORCE]
        assert len(fast) >= 40 and slow  # the data: dozens of guessing sources, some also slow
        hosts = {h for a in alerts for h in a["entities"]["host.name"]}
        assert hosts == {"ip-10-77-20-248"}  # all against one server, over three weeks
        for alert in alerts:
            store.create("alerts", alert["id"], alert)
        runner = runner_for(store, playbooks, tmp_path,
                            inputs={"ssh-brute-force": {"webhook_url": receiver.url + "/soc"}})
        first = runner.on_alerts(fast)
        second = runner.on_alerts(slow)
        assert first and second and runner.on_alerts(fast + slow) == []

        incidents = [d.body for d in store.iter_all("incidents")]
        assert len(incidents) == 1  # the longest quiet gap in the campaign is < 7 days
        incident = incidents[0]
        assert sorted(incident["alert_ids"]) == sorted(a["id"] for a in alerts)
        assert set(incident["entities"]["source.ip"]) == {a["group"]["source.ip"] for a in alerts}
        assert incident["title"].startswith("Dò mật khẩu SSH vào ip-10-77-20-248")
        assert incident["incident_type"] == "unauthorized_access"
        assert any("222.186.56.220" in n["text"] for n in incident["notes"])  # threat-intel hit noted
        assert receiver.count("/soc") == 1  # notified once
        assert len([d for d in store.iter_all(TASKS)]) == 3
        runs = [d.body for d in store.iter_all(RUNS)]
        assert all(r["status"] == "succeeded" for r in runs)
    finally:
        receiver.close()


def test_one_incident_per_attacker_not_per_alert(tmp_path: Path, store: Store, alerts: list[dict]) -> None:
    playbooks, errors = load_playbooks(ROOT / "playbooks")
    assert not errors
    receiver = Receiver()
    try:
        fast = [a for a in alerts if a["rule"]["id"] == BRUTE_FORCE]
        slow = [a for a in alerts if a["rule"]["id"] == SLOW_BRUTE_FORCE]
        assert len(fast) >= 40 and slow  # the data: dozens of guessing sources, some also slow
        for alert in alerts:  # recorded by detection before they are handed to playbooks
            store.create("alerts", alert["id"], alert)
        # the webhook of the response team and the grouping, as an operator sets them (playbooks.inputs in soc.yml)
        runner = runner_for(store, playbooks, tmp_path,
                            inputs={"ssh-brute-force": {"webhook_url": receiver.url + "/soc",
                                                        "group_by": ["source.ip"], "group_window_hours": 24}})

        first = runner.on_alerts(fast)  # one detection run
        second = runner.on_alerts(slow)  # a later one: the same attackers, a second rule
        assert runner.on_alerts(fast + slow) == []  # delivered again: nothing new starts

        by_ip: dict[str, list[str]] = defaultdict(list)
        for alert in alerts:
            by_ip[alert["group"]["source.ip"]].append(alert["id"])
        incidents = [d.body for d in store.iter_all("incidents")]
        assert len(incidents) == len(by_ip) < len(alerts)
        for incident in incidents:
            ips = incident["entities"]["source.ip"]
            assert len(ips) == 1, incident["id"]  # one attacking address per incident
            assert sorted(incident["alert_ids"]) == sorted(by_ip[ips[0]])
            assert incident["incident_type"] == "unauthorized_access"
            assert incident["affected_systems"][0]["level"] == 2  # from playbooks/data/assets.yml
        repeated = [ip for ip, ids in by_ip.items() if len(ids) > 1]
        assert repeated  # some attackers raised both rules: their second alert joined the incident

        runs = [d.body for d in store.iter_all(RUNS)]
        assert len(runs) == len(first) + len(second) and all(r["status"] == "succeeded" for r in runs)
        created = [json.loads(next(s for s in r["steps"] if s["id"] == "incident")["output_json"])["created"]
                   for r in runs]
        assert created.count(True) == len(incidents)
        # notified and tasked once per incident, not per alert
        assert receiver.count("/soc") == len(incidents)
        tasks = [d.body for d in store.iter_all(TASKS)]
        assert len(tasks) == 3 * len(incidents)
        assert {t["incident_id"] for t in tasks} == {i["id"] for i in incidents}
        # the address on the local threat-intel list got a note
        flagged = [i for i in incidents if i["entities"]["source.ip"] == ["222.186.56.220"]]
        assert flagged and any("222.186.56.220" in n["text"] for n in flagged[0]["notes"])

        # a second process after a restart: nothing runs twice
        again = PlaybookRunner(store, playbooks, settings=runner.settings, config=runner.config)
        assert again.on_alerts(alerts) == [] and again.recover() == []
        assert receiver.count("/soc") == len(incidents)
    finally:
        receiver.close()


@pytest.mark.slow
def test_soc_run_once_hands_new_alerts_to_the_playbooks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The service path: inbox -> store -> scheduled rules -> alerts -> playbook runs -> incidents."""
    import shutil

    pytest.importorskip("soc.incidents.service")
    from soc.app import App
    from soc.config import load_settings
    from soc.service import run_service
    from soc.store import open_store

    monkeypatch.setenv("SOC_PLAYBOOKS__FOLDER", str(ROOT / "playbooks"))
    settings = load_settings(data_dir=tmp_path / "data")
    settings.syslog.udp = settings.syslog.tcp = None
    settings.inbox.mkdir(parents=True)
    shutil.copy(shared("elastic-examples", "suspicious_login_activity", "data", "auth.log"), settings.inbox / "auth.log")
    result = run_service(App(settings, rule_dirs=[ROOT / "detections" / "linux" / "ssh" / "ssh_brute_force.yml"]),
                         once=True)
    created = [a for r in result["results"] for a in r.created if a["rule"]["id"] == BRUTE_FORCE]
    assert len(created) >= 40
    store = open_store(settings.resolved_store_url)
    try:
        runs = [d.body for d in store.iter_all(RUNS) if d.body["playbook_id"] == "ssh-brute-force"]
        assert runs and all(r["status"] == "succeeded" for r in runs)
        assert sorted(a for r in runs for a in json.loads(r["trigger_json"])["alert_ids"]) == \
            sorted(a["id"] for a in created)
        incidents = [d.body for d in store.iter_all("incidents")]
        assert len(incidents) == 1  # one campaign against one server
        assert sorted(incidents[0]["alert_ids"]) == sorted(a["id"] for a in created)
    finally:
        store.close()
