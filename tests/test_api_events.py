"""``/api/v1/events``: search with filters, keyset pages and totals, histogram, top values, one
event, audited exports -- on SQLite; and on both stores, a user of agency A never sees an event
of agency B (by id, in lists, counts, buckets, top values or exports)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import pytest

from tests.api_seed_helpers import Api, api_fixture
from tests.scope_helpers import A_CHILD, A_MERGED, STORE_KINDS, A, B, event_ids, seed_events

URL = "/api/v1/events"
EVERY = [e["_id"] for e in seed_events()]  # oldest first
MINE = {A, A_CHILD, A_MERGED}  # what a user of A sees


@pytest.fixture(scope="module", params=["sqlite"])
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    yield from api_fixture(request, tmp_path_factory.mktemp("api-events"))


@pytest.fixture(scope="module", params=STORE_KINDS)
def both(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    yield from api_fixture(request, tmp_path_factory.mktemp("api-events-scope"))


def ids(answer: dict[str, Any]) -> list[str]:
    return [e["_id"] for e in answer["items"]]


def every_page(api: Api, user: str, **params: Any) -> tuple[list[str], list[dict[str, Any]]]:
    """Every event of a search, page by page; the ids and the answers."""
    seen: list[str] = []
    answers = []
    cursor = None
    while True:
        answer = api[user].get(URL, params={**params, **({"cursor": cursor} if cursor else {})})
        assert answer.status_code == 200, answer.text
        answers.append(answer.json())
        seen += ids(answer.json())
        cursor = answer.json()["next"]
        if cursor is None:
            return seen, answers


# -- search ----------------------------------------------------------------------------------
def test_search_pages_follow_the_cursor_with_the_total(api: Api) -> None:
    seen, answers = every_page(api, "soc", limit=5, order="asc")
    assert seen == EVERY
    assert [len(a["items"]) for a in answers] == [5, 5, 5, 2]
    assert all(a["total"] == len(EVERY) and a["total_exact"] for a in answers)
    newest = api["soc"].get(URL, params={"limit": 3}).json()
    assert ids(newest) == EVERY[::-1][:3]  # newest first by default


def test_search_filters(api: Api) -> None:
    def found(*params: tuple[str, str]) -> set[str]:
        answer = api["soc"].get(URL, params=[("limit", "500"), *params])
        assert answer.status_code == 200, answer.text
        return set(ids(answer.json()))

    events = seed_events()
    roots = {e["_id"] for e in events if e["user.name"] == "root"}
    assert found(("filter", "user.name:eq:root")) == roots
    assert found(("filter", "user.name:eq:ROOT")) == roots  # ignoring case, as Sigma compares
    assert found(("filter", "user.name:ne:root")) == set(EVERY) - roots
    assert found(("filter", "host.name:prefix:host-xa")) == {e["_id"] for e in events
                                                             if e["host.name"].startswith("host-xa")}
    assert found(("filter", "host.name:eq:host-so-b"), ("filter", "host.name:eq:host-xa-a")) == event_ids({A, B})
    assert found(("filter", 'organization.id:in:["so-b","xa-a"]')) == event_ids({A, B})
    assert found(("filter", "organization.id:exists:false")) == event_ids({None})
    assert found(("agency", B)) == event_ids({B})
    assert found(("text", "LOGIN 1")) == {e["_id"] for e in events if e["message"].startswith("login 1")}
    first = events[0]["@timestamp"]
    assert found(("since", first.replace("08:00:00.000Z", "08:00:05Z"))) == set(EVERY[5:])
    assert found(("until", "2025-03-01T15:00:05+07:00")) == set(EVERY[:5])  # a zone given
    assert found(("until", "2025-03-01T15:00:05")) == set(EVERY[:5])  # no zone: the analyst's (+07)
    # relative times count back from the service's clock (an hour after the events)
    assert found(("since", "2h")) == set(EVERY)
    assert found(("since", "30m")) == set()
    assert found(("since", "yesterday"), ("until", "now")) == set(EVERY)
    assert found(("since", "2025-03-01")) == set(EVERY)  # a date: its midnight in the analyst's zone
    assert found(("since", "today"), ("until", "2025-03-01T15:00:05")) == set(EVERY[:5])


@pytest.mark.parametrize(("params", "status", "says"), [
    ({"filter": "user.name"}, 400, "give a field and an operator"),
    ({"filter": "user.name:like:x"}, 400, "unknown operator"),
    ({"filter": "user name:eq:x"}, 400, "user name"),
    ({"filter": "source.ip:cidr:not-a-network"}, 400, "not an IP network"),
    ({"filter": "user.name:in:root"}, 400, "JSON array"),
    ({"since": "last tuesday"}, 400, "is not a time"),
    ({"since": "1h", "until": "2h"}, 400, "is not before"),
    ({"cursor": "nonsense"}, 400, "invalid cursor"),
    ({"limit": "501"}, 422, ""),
    ({"order": "sideways"}, 422, ""),
])
def test_search_refuses_bad_input(api: Api, params: dict[str, str], status: int, says: str) -> None:
    answer = api["soc"].get(URL, params=params)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert says in answer.text


def test_histogram_and_top_values(api: Api) -> None:
    histogram = api["soc"].get(f"{URL}/histogram", params={"interval": "1m"}).json()
    assert histogram["total"] == len(EVERY) and histogram["zone"] == "Asia/Ho_Chi_Minh"
    assert histogram["buckets"] == [{"start": "2025-03-01T15:00:00+07:00", "count": len(EVERY)}]
    ssh = api["soc"].get(f"{URL}/histogram", params={"interval": "1h", "zone": "UTC",
                                                      "filter": "user.name:eq:root"}).json()
    assert ssh["buckets"] == [{"start": "2025-03-01T08:00:00+00:00",
                               "count": sum(1 for e in seed_events() if e["user.name"] == "root")}]
    assert api["soc"].get(f"{URL}/histogram", params={"interval": "7m"}).status_code == 400
    top = api["soc"].get(f"{URL}/top", params={"field": "organization.id", "size": 2}).json()
    assert top == {"field": "organization.id", "values": [{"value": B, "count": 6}, {"value": A, "count": 4}]}
    assert api["soc"].get(f"{URL}/top", params={"field": "@timestamp"}).status_code == 400


def test_one_event(api: Api) -> None:
    event = api["soc"].get(f"{URL}/{EVERY[0]}")
    assert event.status_code == 200 and event.json()["_id"] == EVERY[0]
    assert event.json()["organization.id"] == seed_events()[0]["organization.id"]
    missing = api["soc"].get(f"{URL}/no-such-event")
    assert missing.status_code == 404 and missing.json()["status"] == 404


# -- export ----------------------------------------------------------------------------------
def export_records(api: Api) -> list[Any]:
    return [r for r in api.app.audit.records() if r.action == "export.events"]


def test_csv_export_streams_the_matching_events_and_is_audited(api: Api) -> None:
    before = len(export_records(api))
    answer = api["soc"].get(f"{URL}/export", params={"format": "csv", "filter": "user.name:eq:root",
                                                      "order": "asc", "fields": "_id,organization.id,user.name"},
                            headers={"User-Agent": "export-test"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.headers["content-disposition"].startswith('attachment; filename="events-')
    rows = list(csv.reader(io.StringIO(answer.text)))
    roots = [e for e in seed_events() if e["user.name"] == "root"]
    assert rows[0] == ["_id", "organization.id", "user.name"]
    assert rows[1:] == [[e["_id"], e.get("organization.id", ""), "root"] for e in roots]
    records = export_records(api)
    assert len(records) == before + 1
    record = records[-1]
    assert record.actor.label == "soc (token test)" and record.user_agent == "export-test"
    assert record.details["rows"] == len(roots) and record.details["format"] == "csv"
    assert record.details["filters"] == ["user.name:eq:root"]


def test_json_export_is_bounded(api: Api) -> None:
    answer = api["soc"].get(f"{URL}/export", params={"format": "json", "max_rows": 7, "order": "asc"})
    assert answer.status_code == 200 and answer.headers["x-export-rows"] == "7"
    assert [e["_id"] for e in answer.json()] == EVERY[:7]
    assert export_records(api)[-1].details["rows"] == 7
    assert api["soc"].get(f"{URL}/export", params={"max_rows": 100_001}).status_code == 422


def test_export_cells_cannot_run_as_spreadsheet_formulas(api: Api) -> None:
    from soc.web.api.events import _cell

    assert _cell("=HYPERLINK(\"http://x\")") == "'=HYPERLINK(\"http://x\")"
    assert _cell("@SUM(A1)") == "'@SUM(A1)" and _cell("-1+2") == "'-1+2"
    assert _cell(["a", "b"]) == "a, b" and _cell(None) == "" and _cell("login 1") == "login 1"


def test_export_needs_the_export_permission(api: Api) -> None:
    before = len(export_records(api))
    for user in ("reader", "it-a"):  # both read events; neither may export them
        assert api[user].get(URL).status_code == 200
        refused = api[user].get(f"{URL}/export")
        assert refused.status_code == 403 and "events:export" in refused.text
    assert len(export_records(api)) == before  # nothing was exported, nothing recorded
    bad = api["soc"].get(f"{URL}/export", params={"filter": "user.name:like:x"})
    assert bad.status_code == 400 and len(export_records(api)) == before


# -- agency scope, on both stores --------------------------------------------------------------
def test_a_user_of_a_sees_only_its_agencies_events(both: Api) -> None:
    mine = [e for e in EVERY if e in event_ids(set(MINE))]
    seen, answers = every_page(both, "ana", limit=3, order="asc")
    assert seen == mine
    assert all(a["total"] == len(mine) for a in answers)
    # asking for B: nothing, never more than the scope
    assert ids(both["ana"].get(URL, params={"agency": B}).json()) == []
    assert both["ana"].get(URL, params={"agency": B}).json()["total"] == 0
    assert set(ids(both["ana"].get(URL, params={"agency": [A, B], "limit": 100}).json())) == event_ids({A})
    assert ids(both["ana"].get(URL, params={"filter": f"organization.id:eq:{B}"}).json()) == []
    # counts, buckets and top values are of A's events only
    histogram = both["ana"].get(f"{URL}/histogram", params={"interval": "1d"}).json()
    assert histogram["total"] == len(mine) == sum(b["count"] for b in histogram["buckets"])
    top = both["ana"].get(f"{URL}/top", params={"field": "organization.id", "size": 50}).json()
    assert {v["value"] for v in top["values"]} == MINE
    hosts = both["ana"].get(f"{URL}/top", params={"field": "host.name", "size": 50}).json()
    assert not any("so-b" in str(v["value"]) for v in hosts["values"])
    # by id: B's event is answered as unknown
    theirs = sorted(event_ids({B}))[0]
    assert both["bob"].get(f"{URL}/{theirs}").status_code == 200
    assert both["ana"].get(f"{URL}/{theirs}").status_code == 404
    assert both["ana"].get(f"{URL}/{theirs}").json() == both["ana"].get(f"{URL}/no-such-event").json() | {
        "detail": f"no event {theirs!r}"}
    # the export holds A's rows only
    exported = both["ana"].get(f"{URL}/export", params={"format": "json", "order": "asc"})
    assert [e["_id"] for e in exported.json()] == mine
    # B's user sees B's, the province's SOC everything
    assert set(every_page(both, "bob", limit=50)[0]) == event_ids({B})
    assert set(every_page(both, "soc", limit=50)[0]) == set(EVERY)


def test_free_text_and_filters_stay_in_scope(both: Api) -> None:
    answer = both["ana"].get(URL, params={"text": "login", "filter": "user.name:eq:root", "limit": 100}).json()
    expected = {e["_id"] for e in seed_events() if e["user.name"] == "root" and e.get("organization.id") in MINE}
    assert set(ids(answer)) == expected and answer["total"] == len(expected)
