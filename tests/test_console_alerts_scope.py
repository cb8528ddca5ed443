"""The alert queue on both stores (SQLite and the real OpenSearch): a user of agency A never sees
B's alerts -- not as rows, not in counts or groups, not in the new-alert poll, not through a bulk
change or an exception page naming B's alerts -- and the free-text search ignores diacritics and
case (``dang nhap`` finds ``đăng nhập``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from soc.model import iso
from tests.api_seed_helpers import A_CHILD, DAY1, A, Api, B, alert_body, api_fixture
from tests.console_alert_helpers import console, groups, post_bulk, row_ids, statuses, total
from tests.scope_helpers import STORE_KINDS

SEEDED = {agency: [alert_body(agency, i) for i in range(n)] for agency, n in {A: 6, A_CHILD: 2, B: 5, None: 1}.items()}
#: alerts whose text is Vietnamese (rule titles and messages as the logs and rules write them)
WORDS = {
    "vi-a-1": (A, "Đăng nhập thất bại nhiều lần", "Người dùng quản trị đăng nhập SAI mật khẩu"),
    "vi-a-2": (A, "Tài khoản mới được tạo", "tạo tài khoản nguyễn.văn.đức"),
    "vi-b-1": (B, "ĐĂNG NHẬP thất bại", "máy chủ cổng dịch vụ công"),
}


def _vietnamese(alert_id: str, agency: str, title: str, message: str) -> dict[str, Any]:
    body = alert_body(agency, 90)
    first = iso(DAY1 + timedelta(minutes=30))
    return {**body, "id": alert_id, "rule": {**body["rule"], "id": f"r-{alert_id}", "title": title},
            "message": message, "first_seen": first, "last_seen": first}


@pytest.fixture(scope="module", params=STORE_KINDS)
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    for made in api_fixture(request, tmp_path_factory.mktemp("console-alerts-scope")):
        for alert_id, (agency, title, message) in WORDS.items():
            assert made.store.create("alerts", alert_id, _vietnamese(alert_id, agency, title, message))
        made.store.refresh()
        yield made


def test_an_agency_user_sees_only_its_agencies_alerts(api: Api) -> None:
    ana = console(api, "ana")
    mine = {b["id"] for b in SEEDED[A] + SEEDED[A_CHILD]} | {"vi-a-1", "vi-a-2"}
    page = ana.get("/alerts?limit=200")
    assert set(row_ids(page.text)) == mine and total(page.text) == len(mine)
    assert "so-b" not in page.text and "Sở B" not in page.text  # not even B's name in the agency filter
    # asking for B by URL gives nothing, not an error that says it exists
    for url in (f"/alerts?agency={B}", "/alerts?host=host-so-b", "/alerts?text=c%C3%B4ng"):
        answer = ana.get(url)
        assert answer.status_code == 200 and row_ids(answer.text) == [] and total(answer.text) == 0, url
    # groups count A's alerts only, whatever the field (store-counted or read)
    for group in ("agency", "rule.id", "host.name"):
        rows = groups(ana.get(f"/alerts?group={group}").text)
        assert sum(count for _, _, count, _ in rows) == len(mine), group
        assert not any("so-b" in value for _, value, _, _ in rows)
    # the poll of new alerts counts A's only
    assert ana.get(f"/alerts-queue/new-count?after={iso(DAY1 - timedelta(days=1))}").json()["new"] == len(mine)
    # the province's SOC sees both
    soc_total = total(console(api, "soc").get("/alerts").text)
    assert soc_total == sum(len(v) for v in SEEDED.values()) + len(WORDS)


def test_an_agency_user_cannot_change_or_look_into_another_agencys_alerts(api: Api) -> None:
    ana = console(api, "ana")
    page = ana.get("/alerts").text
    theirs = [b["id"] for b in SEEDED[B]]
    answer = post_bulk(ana, page, id=theirs, action="ack")
    assert answer.status_code == 303
    assert "0 đã thay đổi" in ana.get(answer.headers["location"]).text
    assert set(statuses(api, theirs).values()) == {"open"}
    # "select all matching" with B's agency in the filters matches nothing of B
    answer = post_bulk(ana, page, q=f"agency={B}", all_matching="1", action="close", reason="benign")
    assert answer.status_code == 303 and set(statuses(api, theirs).values()) == {"open"}
    # an incident from B's alerts, or an exception page from them: nothing to take
    refused = post_bulk(ana, page, id=theirs, action="incident_open")
    assert refused.status_code == 400 and "Không còn cảnh báo nào" in refused.text
    assert ana.get(f"/alerts-queue/exception?id={theirs[0]}").status_code in (400, 403)


@pytest.mark.parametrize(("typed", "expected"), [
    ("dang nhap", {"vi-a-1", "vi-b-1"}),
    ("ĐĂNG NHẬP", {"vi-a-1", "vi-b-1"}),
    ("Dang Nhap That Bai", {"vi-a-1", "vi-b-1"}),
    ("nguyen.van.duc", {"vi-a-2"}),
    ("sai mat khau", {"vi-a-1"}),
    ("cong dich vu", {"vi-b-1"}),
])
def test_search_ignores_diacritics_and_case(api: Api, typed: str, expected: set[str]) -> None:
    soc, ana = console(api, "soc"), console(api, "ana")
    found = soc.get("/alerts", params={"text": typed})
    assert found.status_code == 200 and set(row_ids(found.text)) == expected and total(found.text) == len(expected)
    assert set(row_ids(ana.get("/alerts", params={"text": typed}).text)) == {i for i in expected if WORDS[i][0] == A}
    # the same query through the API (the same filters) agrees
    listed = api["soc"].get("/api/v1/alerts", params={"text": typed}).json()
    assert {a["id"] for a in listed["items"]} == expected
