"""``/api/v1/tasks``: the SOC sends remediation tasks, the agency acknowledges them and marks them
done; lists with filters, keyset pages, totals and overdue -- on SQLite; and on both stores, a
user of agency A never sees or answers a task of agency B."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from soc.model import iso
from tests.api_seed_helpers import NOW, A, Api, B, Ticking, api_fixture
from tests.scope_helpers import A_CHILD, STORE_KINDS

URL = "/api/v1/tasks"


@pytest.fixture(params=["sqlite"])
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """A fresh seeded store per test (the tests here change tasks)."""
    yield from api_fixture(request, tmp_path_factory.mktemp("api-tasks"))


@pytest.fixture(scope="module", params=STORE_KINDS)
def both(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    yield from api_fixture(request, tmp_path_factory.mktemp("api-tasks-scope"))


def ids(answer: dict[str, Any]) -> list[str]:
    return [t["id"] for t in answer["items"]]


def test_the_soc_sends_and_the_agency_acknowledges_and_finishes(api: Api) -> None:
    sent = api["soc"].post(URL, json={"agency": A, "title": "Rotate the SSH keys of web01",
                                      "description": "All of them.", "incident_id": api.seeded["incident_a"],
                                      "due_in": "3d"})
    assert sent.status_code == 201, sent.text
    task = sent.json()
    assert task["status"] == "open" and task["agency_name"] == "Xã A" and task["created_by"] == "soc (token test)"
    assert task["due_at"][:10] == iso(NOW + timedelta(days=3))[:10] and task["overdue"] is False
    path = f"{URL}/{task['id']}"
    assert api["it-a"].get(path).json()["title"] == "Rotate the SSH keys of web01"
    ack = api["it-a"].post(f"{path}/acknowledge", json={"note": "seen"})
    assert ack.status_code == 200 and ack.json()["status"] == "acknowledged"
    assert ack.json()["acknowledged_by"] == "it-a (token test)"
    assert api["it-a"].post(f"{path}/acknowledge").json()["status"] == "acknowledged"  # again: nothing changes
    assert api["it-a"].post(f"{path}/done", json={}).status_code == 422  # a note is needed
    done = api["it-a"].post(f"{path}/done", json={"note": "rotated, old keys removed"})
    assert done.status_code == 200 and done.json()["status"] == "done"
    assert done.json()["done_note"] == "rotated, old keys removed"
    assert [e["action"] for e in done.json()["events"]] == ["created", "acknowledged", "done"]
    twice = api["it-a"].post(f"{path}/done", json={"note": "again"})
    assert twice.status_code == 400 and "done already" in twice.json()["detail"]
    assert api["soc"].get(f"{URL}/task-unknown").status_code == 404
    assert api["it-a"].post(f"{URL}/task-unknown/acknowledge").status_code == 404


def test_task_input_is_checked(api: Api) -> None:
    for body, status in (({"agency": "nowhere", "title": "x"}, 400),
                         ({"agency": A, "title": ""}, 422),
                         ({"agency": A, "title": "x", "due": "2025-01-01"}, 400),  # in the past
                         ({"agency": A, "title": "x", "due": "3d"}, 400),  # 3d back from now: use due_in
                         ({"agency": A, "title": "x", "due_in": "soon"}, 400),
                         ({"agency": A, "title": "x", "due": "2025-03-05", "due_in": "1d"}, 400),
                         ({"agency": A, "title": "x", "incident_id": "inc-unknown"}, 400)):
        answer = api["soc"].post(URL, json=body)
        assert answer.status_code == status, (body, answer.text)
    due = api["soc"].post(URL, json={"agency": A, "title": "x", "due": "2025-03-05T17:00"}).json()
    assert due["due_at"] == "2025-03-05T10:00:00.000Z"  # no zone: the analyst's (+07)


def test_who_may_do_what(api: Api) -> None:
    assert api["it-a"].post(URL, json={"agency": A, "title": "x"}).status_code == 403  # tasks:write
    task = api.seeded["task_a"]
    assert api["soc"].post(f"{URL}/{task}/acknowledge").status_code == 403  # tasks:respond
    assert api["soc"].post(f"{URL}/{task}/done", json={"note": "x"}).status_code == 403
    assert api["reader"].get(f"{URL}/{task}").status_code == 200
    # an analyst of A may send A (and A's child) tasks, not B
    assert api["ana"].post(URL, json={"agency": A_CHILD, "title": "x"}).status_code == 201
    assert api["ana"].post(URL, json={"agency": B, "title": "x"}).status_code == 403


def test_list_filters_pages_totals_and_overdue(api: Api) -> None:
    seeded_a, seeded_b = api.seeded["task_a"], api.seeded["task_b"]
    made = [api["soc"].post(URL, json={"agency": A, "title": f"task {i}", "due_in": f"{i + 1}h"}).json()["id"]
            for i in range(3)]
    everything = api["soc"].get(URL).json()
    assert ids(everything) == [*made[::-1], seeded_b, seeded_a] and everything["total"] == 5
    first = api["soc"].get(URL, params={"limit": 2}).json()
    second = api["soc"].get(URL, params={"limit": 2, "cursor": first["next"]}).json()
    third = api["soc"].get(URL, params={"limit": 2, "cursor": second["next"]}).json()
    assert ids(first) + ids(second) + ids(third) == ids(everything) and third["next"] is None
    assert all(page["total"] == 5 for page in (first, second, third))
    assert ids(api["soc"].get(URL, params={"agency": B}).json()) == [seeded_b]
    assert ids(api["soc"].get(URL, params={"incident_id": api.seeded["incident_a"]}).json()) == [seeded_a]
    api["it-a"].post(f"{URL}/{made[0]}/acknowledge")
    assert ids(api["soc"].get(URL, params={"status": "acknowledged"}).json()) == [made[0]]
    assert api["soc"].get(URL, params={"overdue": True}).json()["items"] == []
    clock = api.app.clock
    assert isinstance(clock, Ticking)
    clock.now += timedelta(hours=2, minutes=30)  # the first two are past due now
    late = api["soc"].get(URL, params={"overdue": True}).json()
    assert ids(late) == [made[1], made[0]] and late["total"] == 2
    assert all(t["overdue"] for t in late["items"])
    assert api["soc"].get(URL, params={"status": "late"}).status_code == 422


# -- agency scope, on both stores --------------------------------------------------------------
def test_a_user_of_a_never_sees_or_answers_bs_tasks(both: Api) -> None:
    mine, theirs = both.seeded["task_a"], both.seeded["task_b"]
    for user in ("it-a", "ana"):
        listed = both[user].get(URL).json()
        assert ids(listed) == [mine] and listed["total"] == 1
        assert both[user].get(URL, params={"agency": B}).json()["items"] == []
        assert both[user].get(f"{URL}/{theirs}").status_code == 404
    assert ids(both["it-b"].get(URL).json()) == [theirs]
    assert set(ids(both["soc"].get(URL).json())) == {mine, theirs}
    unknown = both["it-a"].post(f"{URL}/task-unknown/acknowledge").json()
    for action, body in (("acknowledge", None), ("done", {"note": "not ours"})):
        answer = both["it-a"].post(f"{URL}/{theirs}/{action}", json=body)
        assert answer.status_code == 404 and answer.json().keys() == unknown.keys()
    assert both["it-b"].get(f"{URL}/{theirs}").json()["status"] == "open"  # untouched
