"""``/api/v1/alerts`` and ``/api/v1/jobs``: lists with filters, keyset pages and totals, groups
with their queries, one alert with its history, triage changes, bulk changes with exact counts
(and as a background job) -- on SQLite; and on both stores, a user of agency A never sees or
changes an alert or job of agency B."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from soc.config import AlertSettings
from tests.api_seed_helpers import A_CHILD, ALERTS_PER_AGENCY, A, Api, B, alert_body, api_fixture
from tests.scope_helpers import STORE_KINDS

URL = "/api/v1/alerts"
EVERY = {a: [alert_body(a, i) for i in range(n)] for a, n in ALERTS_PER_AGENCY.items()}
ALL = [body for bodies in EVERY.values() for body in bodies]
MINE = [b for b in ALL if b["agency"] in (A, A_CHILD)]


@pytest.fixture(params=["sqlite"])
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """A fresh seeded store per test (the tests here change alerts)."""
    yield from api_fixture(request, tmp_path_factory.mktemp("api-alerts"))


@pytest.fixture(params=["sqlite"])
def small_jobs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """Bulk changes of more than 3 alerts run in the background, 2 alerts a page."""
    yield from api_fixture(request, tmp_path_factory.mktemp("api-jobs"),
                           alerts=AlertSettings(bulk_background_threshold=3, bulk_page_size=2))


@pytest.fixture(scope="module", params=STORE_KINDS)
def both(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    yield from api_fixture(request, tmp_path_factory.mktemp("api-alerts-scope"))


def newest_first(bodies: list[dict[str, Any]], field: str = "first_seen") -> list[str]:
    """The ids in a list's order: the time field, then the id, both descending."""
    return [b["id"] for b in sorted(bodies, key=lambda b: (b[field], b["id"]), reverse=True)]


def every_page(api: Api, user: str, **params: Any) -> tuple[list[str], list[dict[str, Any]]]:
    seen: list[str] = []
    answers: list[dict[str, Any]] = []
    cursor = None
    while True:
        answer = api[user].get(URL, params={**params, **({"cursor": cursor} if cursor else {})})
        assert answer.status_code == 200, answer.text
        answers.append(answer.json())
        seen += [a["id"] for a in answer.json()["items"]]
        cursor = answer.json()["next"]
        if cursor is None:
            return seen, answers


# -- listing ---------------------------------------------------------------------------------
def test_list_pages_newest_first_with_the_total(api: Api) -> None:
    seen, answers = every_page(api, "soc", limit=4)
    assert seen == newest_first(ALL)
    assert [len(a["items"]) for a in answers] == [4, 4, 4, 2]
    assert all(a["total"] == len(ALL) and a["total_exact"] for a in answers)
    item = answers[0]["items"][0]
    assert item["status"] == "open" and "event_ids" not in item  # "new" reads open; long fields left out
    oldest, _ = every_page(api, "soc", limit=5, sort="first_seen")
    assert oldest == [b["id"] for b in sorted(ALL, key=lambda b: (b["first_seen"], b["id"]))]
    assert api["soc"].get(URL, params={"sort": "-severity"}).status_code == 400
    assert api["soc"].get(URL, params={"limit": 0}).status_code == 422
    cursor = api["soc"].get(URL, params={"limit": 2}).json()["next"]
    assert api["soc"].get(URL, params={"cursor": cursor, "sort": "first_seen"}).status_code == 400


def test_list_filters(api: Api) -> None:
    def found(**params: Any) -> list[str]:
        seen, answers = every_page(api, "soc", limit=3, **params)
        assert answers[0]["total"] == len(seen), params
        return seen

    assert found(agency=B) == newest_first(EVERY[B])
    assert found(rule="r-web") == newest_first([b for b in ALL if b["rule"]["id"] == "r-web"])
    assert found(level=["critical"], agency=[A, B]) == newest_first(
        [b for b in ALL if b["rule"]["level"] == "critical" and b["agency"] in (A, B)])
    # filters checked on each alert (entities, text, any field) page and count the same
    assert found(host="WEB-xa-a") == newest_first([b for b in EVERY[A] if b["entities"]["host.name"] == ["web-xa-a"]])
    assert found(source_ip="10.0.3.1") == newest_first([b for b in ALL if b["entities"]["source.ip"] == ["10.0.3.1"]])
    assert found(text="alert 4 of") == newest_first([b for b in ALL if "alert 4 of" in b["message"]])
    assert found(field="rule.title=web SHELL") == newest_first([b for b in ALL if b["rule"]["id"] == "r-web"])
    assert found(status="acknowledged") == []
    assert found(since="2025-03-01T08:03:00Z", until="2025-03-01T08:05:00Z") == newest_first(
        [b for b in ALL if "2025-03-01T08:03:00.000Z" <= b["first_seen"] < "2025-03-01T08:05:00.000Z"])
    assert found(sort="-last_seen", since="2h") == newest_first(ALL, "last_seen")
    assert api["soc"].get(URL, params={"status": "sleeping"}).status_code == 400
    assert api["soc"].get(URL, params={"field": "no-equals-sign"}).status_code == 400


def test_groups_count_and_carry_a_query_for_the_whole_group(api: Api) -> None:
    answer = api["soc"].get(f"{URL}/groups", params={"by": "agency,rule.id"})
    assert answer.status_code == 200, answer.text
    groups = answer.json()
    assert groups["total"] == len(ALL) and groups["total_exact"]
    counted = {(b["values"]["agency"], b["values"]["rule.id"]): b["count"] for b in groups["buckets"]}
    expected: dict[tuple[Any, Any], int] = {}
    for body in ALL:
        if body["agency"] is not None:  # an alert of no agency is in no agency's bucket
            key = (body["agency"], body["rule"]["id"])
            expected[key] = expected.get(key, 0) + 1
    assert counted == expected
    assert [b["count"] for b in groups["buckets"]] == sorted(expected.values(), reverse=True)
    # a bucket's query selects exactly its alerts: close the whole group
    bucket = next(b for b in groups["buckets"] if b["values"] == {"agency": A, "rule.id": "r-ssh"})
    closed = api["soc"].post(f"{URL}/bulk", json={"query": bucket["query"], "action": "close", "reason": "benign"})
    assert closed.status_code == 200, closed.text
    assert closed.json()["counts"]["changed"] == bucket["count"] == closed.json()["matched"]
    hosts = api["soc"].get(f"{URL}/groups", params={"by": "host.name", "agency": A, "status": "open"}).json()
    assert {b["values"]["host.name"]: b["count"] for b in hosts["buckets"]} == {"host-xa-a": 1, "web-xa-a": 1}
    assert hosts["buckets"][0]["query"]["host"] == hosts["buckets"][0]["values"]["host.name"]
    # "new" (recorded before the workflow) and "open" are one status
    api["soc"].post(f"{URL}/{EVERY[B][0]['id']}/acknowledge")
    statuses = api["soc"].get(f"{URL}/groups", params={"by": "status", "agency": B}).json()
    assert {b["values"]["status"]: b["count"] for b in statuses["buckets"]} == {"open": 4, "acknowledged": 1}
    read = api["soc"].get(f"{URL}/groups", params={"by": "status", "agency": B, "text": "of so-b"}).json()
    assert [(b["values"], b["count"]) for b in read["buckets"]] == [  # counted by reading the alerts: the same
        (b["values"], b["count"]) for b in statuses["buckets"]]
    for params in ({"by": "agency,rule.id,host.name,status"}, {"by": "password"}, {"by": ""}):
        assert api["soc"].get(f"{URL}/groups", params=params).status_code == 400, params


# -- one alert, changes ------------------------------------------------------------------------
def test_one_alert_with_rule_history_and_events(api: Api) -> None:
    alert_id = EVERY[A][3]["id"]
    assert api["soc"].post(f"{URL}/{alert_id}/acknowledge", json={"note": "looking"}).status_code == 200
    answer = api["soc"].get(f"{URL}/{alert_id}").json()
    assert answer["rule"]["title"] == "SSH brute force" and answer["event_ids"] == ["ev-xa-a-1"]
    assert answer["status"] == "acknowledged" and answer["acknowledged_by"] == "soc (token test)"
    assert [(h["action"], h["from"], h["to"], h["note"]) for h in answer["history"]] == [
        ("ack", "open", "acknowledged", "looking")]
    assert api["soc"].get(f"{URL}/no-such-alert").status_code == 404


def test_acknowledge_assign_close_reopen(api: Api) -> None:
    alert_id = EVERY[A][0]["id"]
    path = f"{URL}/{alert_id}"
    ack = api["ana"].post(f"{path}/acknowledge")
    assert ack.status_code == 200 and ack.json()["changed"] and ack.json()["alert"]["status"] == "acknowledged"
    again = api["ana"].post(f"{path}/acknowledge").json()
    assert again["changed"] is False and again["history"] is None
    assigned = api["ana"].post(f"{path}/assign", json={"assignee": "ana", "note": "mine"}).json()
    assert assigned["alert"]["assignee"] == "ana" and assigned["history"]["assignee_to"] == "ana"
    assert api["ana"].post(f"{path}/close", json={"note": "no reason"}).status_code == 422
    other = api["ana"].post(f"{path}/close", json={"reason": "other"})
    assert other.status_code == 400 and "needs a note" in other.json()["detail"]
    closed = api["ana"].post(f"{path}/close", json={"reason": "false_positive", "note": "scanner"}).json()
    assert closed["alert"]["status"] == "closed" and closed["alert"]["close_reason"] == "false_positive"
    refused = api["ana"].post(f"{path}/acknowledge")
    assert refused.status_code == 400 and "reopen it first" in refused.json()["detail"]
    reopened = api["ana"].post(f"{path}/reopen", json={"note": "it was not"}).json()
    assert reopened["alert"]["status"] == "open" and reopened["alert"]["reopen_count"] == 1
    history = api["ana"].get(path).json()["history"]
    assert [h["action"] for h in history] == ["ack", "assign", "close", "reopen"]
    assert {h["actor"] for h in history} == {"ana (token test)"}
    # reading is not changing
    assert api["reader"].get(path).status_code == 200
    assert api["reader"].post(f"{path}/acknowledge").status_code == 403
    assert api["ana"].post(f"{URL}/no-such-alert/acknowledge").status_code == 404


# -- bulk ------------------------------------------------------------------------------------
def test_bulk_change_answers_the_exact_counts(api: Api) -> None:
    body = {"query": {"agency": [A], "rule": ["r-ssh"]}, "action": "acknowledge", "note": "batch"}
    first = api["soc"].post(f"{URL}/bulk", json=body)
    assert first.status_code == 200, first.text
    job = first.json()
    ssh_of_a = [b for b in EVERY[A] if b["rule"]["id"] == "r-ssh"]
    assert job["status"] == "succeeded" and job["matched"] == len(ssh_of_a)
    assert job["counts"] == {"changed": len(ssh_of_a), "unchanged": 0, "invalid": 0, "concurrent": 0, "missing": 0}
    assert job["query"] == {"agency": [A], "rule": ["r-ssh"], "time_field": "first_seen"}
    assert job["created_by"] == "soc (token test)"
    again = api["soc"].post(f"{URL}/bulk", json=body).json()
    assert again["counts"]["unchanged"] == len(ssh_of_a) and again["counts"]["changed"] == 0
    # the closed ones cannot be acknowledged: counted as invalid
    api["soc"].post(f"{URL}/{ssh_of_a[0]['id']}/close", json={"reason": "duplicate"})
    mixed = api["soc"].post(f"{URL}/bulk", json={"query": {"agency": [A]}, "action": "close",
                                                   "reason": "benign"}).json()
    assert mixed["counts"] == {"changed": len(EVERY[A]) - 1, "unchanged": 1, "invalid": 0, "concurrent": 0,
                               "missing": 0}
    by_host = api["soc"].post(f"{URL}/bulk", json={"query": {"host": "web-so-b", "since": "2h"},
                                                     "action": "assign", "assignee": "bob"}).json()
    assert by_host["counts"]["changed"] == len([b for b in EVERY[B] if b["entities"]["host.name"] == ["web-so-b"]])
    everything = api["soc"].post(f"{URL}/bulk", json={"query": {}, "action": "acknowledge"})
    assert everything.status_code == 400 and '"all": true' in everything.json()["detail"]
    confirmed = api["soc"].post(f"{URL}/bulk", json={"query": {}, "action": "acknowledge", "all": True}).json()
    assert confirmed["matched"] == len(ALL)
    assert api["soc"].post(f"{URL}/bulk", json={"query": {}, "action": "close", "all": True}).status_code == 400
    assert api["reader"].post(f"{URL}/bulk", json=body).status_code == 403


def test_a_large_bulk_change_runs_as_a_job(small_jobs: Api) -> None:
    api = small_jobs
    answer = api["soc"].post(f"{URL}/bulk", json={"query": {"agency": [A, A_CHILD]}, "action": "acknowledge"})
    assert answer.status_code == 202, answer.text
    job = answer.json()
    assert answer.headers["location"] == f"/api/v1/jobs/{job['id']}" and job["status"] in ("pending", "running")
    deadline = time.monotonic() + 30
    while job["status"] in ("pending", "running") and time.monotonic() < deadline:
        time.sleep(0.05)
        job = api["soc"].get(f"/api/v1/jobs/{job['id']}").json()
    assert job["status"] == "succeeded", job
    assert job["counts"]["changed"] == len(MINE) and job["pages"] >= 4
    listed = api["soc"].get("/api/v1/jobs").json()
    assert [j["id"] for j in listed["items"]] == [job["id"]] and listed["total"] == 1
    assert "principal" not in listed["items"][0] and "lease_owner" not in listed["items"][0]
    assert api["soc"].get("/api/v1/jobs", params={"status": "failed"}).json()["items"] == []
    assert api["soc"].get("/api/v1/jobs/job-unknown").status_code == 404
    # the job is the province's (its creator sees every agency): not one of A's
    assert api["ana"].get(f"/api/v1/jobs/{job['id']}").status_code == 404
    assert api["ana"].get("/api/v1/jobs").json()["items"] == []


# -- agency scope, on both stores --------------------------------------------------------------
def test_a_user_of_a_sees_only_its_agencies_alerts(both: Api) -> None:
    seen, answers = every_page(both, "ana", limit=3)
    assert seen == newest_first(MINE)
    assert all(a["total"] == len(MINE) for a in answers)
    assert every_page(both, "ana", limit=3, agency=B)[0] == []
    assert every_page(both, "ana", limit=3, text="so-b")[0] == []
    assert every_page(both, "ana", limit=3, host="host-so-b")[0] == []
    groups = both["ana"].get(f"{URL}/groups", params={"by": "agency,rule.id,host.name"}).json()
    assert groups["total"] == len(MINE)
    assert {b["values"]["agency"] for b in groups["buckets"]} == {A, A_CHILD}
    assert not any("so-b" in str(b["values"]) for b in groups["buckets"])
    theirs = EVERY[B][0]["id"]
    assert both["bob"].get(f"{URL}/{theirs}").status_code == 200
    assert both["ana"].get(f"{URL}/{theirs}").status_code == 404
    assert both["ana"].get(f"{URL}/{EVERY[None][0]['id']}").status_code == 404  # no agency: not A's
    for action, body in (("acknowledge", {}), ("assign", {"assignee": "ana"}), ("close", {"reason": "benign"}),
                         ("reopen", {})):
        assert both["ana"].post(f"{URL}/{theirs}/{action}", json=body).status_code == 404, action
    bulk = both["ana"].post(f"{URL}/bulk", json={"query": {"agency": [B]}, "action": "close", "reason": "benign"})
    assert bulk.status_code == 200 and bulk.json()["matched"] == 0
    assert bulk.json()["counts"]["changed"] == 0
    assert both["bob"].get(f"{URL}/{theirs}").json()["status"] == "open"  # untouched
    # B's user's job is B's: A's user cannot see it
    job = both["bob"].post(f"{URL}/bulk", json={"query": {"ids": [theirs]}, "action": "assign",
                                                 "assignee": "bob"}).json()
    assert job["counts"]["changed"] == 1
    assert both["bob"].get(f"/api/v1/jobs/{job['id']}").status_code == 200
    assert both["ana"].get(f"/api/v1/jobs/{job['id']}").status_code == 404
    assert job["id"] not in [j["id"] for j in both["ana"].get("/api/v1/jobs").json()["items"]]
    assert job["id"] in [j["id"] for j in both["soc"].get("/api/v1/jobs").json()["items"]]
