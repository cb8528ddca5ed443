"""The alert queue without a browser (``/alerts``): filters kept in the URL, sorting, grouping
with counts and actions on a group, keyset pages, "select all N matching" bulk changes with
their exact counts, incidents from a selection, saved views per user and the new-alert poll --
on SQLite, over the seed of tests/api_seed_helpers.py (agencies A, A's child and B)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from soc.model import iso
from tests.api_seed_helpers import A_CHILD, DAY1, NOW, A, Api, B, alert_body, api_fixture
from tests.console_alert_helpers import console, csrf, groups, post_bulk, row_ids, statuses, total

SEEDED = {agency: [alert_body(agency, i) for i in range(n)] for agency, n in {A: 6, A_CHILD: 2, B: 5, None: 1}.items()}
ALL = [body for bodies in SEEDED.values() for body in bodies]


@pytest.fixture(params=["sqlite"])
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    yield from api_fixture(request, tmp_path_factory.mktemp("console-alerts"))


def newest_first(bodies: list[dict[str, Any]]) -> list[str]:
    return [b["id"] for b in sorted(bodies, key=lambda b: (b["first_seen"], b["id"]), reverse=True)]


def test_filters_live_in_the_url_and_select_what_they_say(api: Api) -> None:
    soc = console(api, "soc")
    page = soc.get("/alerts")
    assert page.status_code == 200 and 'lang="vi"' in page.text and "Hàng đợi cảnh báo" in page.text
    assert row_ids(page.text) == newest_first(ALL) and total(page.text) == len(ALL)
    # every filter is a URL parameter; the form shows it back
    url = f"/alerts?status=open&level=critical&agency={A}&host=HOST-xa-a"
    page = soc.get(url)
    expected = [b for b in SEEDED[A] if b["rule"]["level"] == "critical" and b["entities"]["host.name"] == ["host-xa-a"]]
    assert row_ids(page.text) == newest_first(expected) and total(page.text) == len(expected) == 1
    assert 'value="critical" checked' in page.text and f'<option value="{A}" selected' in page.text
    assert 'value="HOST-xa-a"' in page.text
    # a submitted form's blank fields are dropped by a redirect to the clean URL
    answer = soc.get("/alerts?text=&status=open&host=&group=&group=rule.id", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/alerts?status=open&group=rule.id"
    page = soc.get(f"/alerts?source_ip=10.0.4.1&since={iso(DAY1 + timedelta(minutes=3))}&until=now")
    assert page.status_code == 200
    assert row_ids(page.text) == newest_first([b for b in ALL if b["entities"]["source.ip"] == ["10.0.4.1"]])
    page = soc.get("/alerts?field=rule.title%3Dweb+SHELL&user=ROOT")
    assert row_ids(page.text) == newest_first([b for b in ALL if b["rule"]["id"] == "r-web"])
    oldest = soc.get("/alerts?sort=first_seen")
    assert row_ids(oldest.text) == list(reversed(newest_first(ALL)))
    # what is not a filter is refused in Vietnamese, saying what
    bad = soc.get("/alerts?status=sleeping")
    assert bad.status_code == 400 and "Yêu cầu không hợp lệ" in bad.text and "sleeping" in bad.text
    assert soc.get("/alerts?group=a&group=b&group=c&group=d").status_code == 400
    assert soc.get("/alerts?criticality=9").status_code == 400


def test_keyset_pages_keep_the_filters(api: Api) -> None:
    soc = console(api, "soc")
    seen: list[str] = []
    url = "/alerts?limit=25&status=open"
    for body in ALL:  # more than a page: 40 alerts
        for k in range(2):
            extra = {**body, "id": f"{body['id']}-x{k}", "first_seen": iso(DAY1 + timedelta(hours=1, minutes=k))}
            api.store.create("alerts", extra["id"], extra)
    while url:
        page = soc.get(url)
        assert page.status_code == 200
        ids = row_ids(page.text)
        assert len(ids) <= 25 and not set(ids) & set(seen)
        seen += ids
        found = re.findall(r'<a href="([^"]+)" rel="next">', page.text)
        url = found[0].replace("&amp;", "&") if found else ""
        if url:
            assert dict(parse_qsl(urlsplit(url).query))["status"] == "open"
    assert len(seen) == len(ALL) * 3 == len(set(seen))


def test_groups_count_nested_and_link_to_exactly_their_alerts(api: Api) -> None:
    soc = console(api, "soc")
    page = soc.get("/alerts?group=agency&group=rule.id&group=host.name")
    rows = groups(page.text)
    by_agency = {agency: len(bodies) for agency, bodies in SEEDED.items() if agency}
    assert sorted((value.split()[-1], count) for depth, value, count, _ in rows if depth == 1) == \
        sorted(by_agency.items())
    level2 = {(query, count) for depth, _, count, query in rows if depth == 2}
    for agency in (A, B):
        for rule in ("r-ssh", "r-web"):
            expected = sum(1 for b in SEEDED[agency] if b["rule"]["id"] == rule)
            assert any(f"agency={agency}" in q and f"rule={rule}" in q and c == expected for q, c in level2)
    # a group's link lists exactly its alerts (and its count is the list's total)
    for _depth, _, count, query in rows:
        listed = soc.get(f"/alerts?{query}")
        assert total(listed.text) == count, query
        assert "group=" not in query
    deepest = [(q, c) for d, _, c, q in rows if d == 3]
    query, count = deepest[0]
    params = dict(parse_qsl(query))
    assert set(row_ids(soc.get(f"/alerts?{query}").text)) == {
        b["id"] for b in ALL if b["agency"] == params["agency"] and b["rule"]["id"] == params["rule"]
        and b["entities"]["host.name"][0] == params["host"]}


def test_a_whole_group_acknowledged_in_one_click_with_exact_counts(api: Api) -> None:
    soc = console(api, "soc")
    page = soc.get("/alerts?group=rule.id")
    ssh = next(q for d, v, c, q in groups(page.text) if "r-ssh" in v)
    answer = post_bulk(soc, page.text, q=ssh, all_matching="1", action="ack", back="/alerts?group=rule.id")
    assert answer.status_code == 303
    location = answer.headers["location"]
    assert location.startswith("/alerts?group=rule.id&job=job-")
    mine = [b["id"] for b in ALL if b["rule"]["id"] == "r-ssh"]
    assert set(statuses(api, mine).values()) == {"acknowledged"}
    others = [b["id"] for b in ALL if b["rule"]["id"] != "r-ssh"]
    assert set(statuses(api, others).values()) == {"open"}
    shown = soc.get(location).text
    assert f"{len(mine)} đã thay đổi, 0 vốn đã như vậy, 0 không áp dụng được" in shown
    # the history names the analyst, and the audit trail has the writes under the same name
    history = api.store.find("alert_history", {"alert_id": mine[0]})
    assert [h.body["actor"] for h in history] == ["soc"] and history[0].body["job"] in location
    writes = [r for r in api.app.audit.records() if r.target is not None and r.target.type == "alerts"
              and r.target.id in mine]
    assert {r.target.id for r in writes} == set(mine) and {r.actor.label for r in writes} == {"soc"}  # type: ignore[union-attr]
    again = post_bulk(soc, page.text, q=ssh, all_matching="1", action="ack")
    assert f"0 đã thay đổi, {len(mine)} vốn đã như vậy" in soc.get(again.headers["location"]).text


def test_select_all_matching_and_selected_ids(api: Api) -> None:
    soc = console(api, "soc")
    page = soc.get(f"/alerts?agency={B}&select=all")
    assert 'id="all-matching" checked' in page.text
    assert "Chọn tất cả 5 cảnh báo khớp" in page.text
    # close every alert of B with a reason and a note: exactly B's five
    closed = post_bulk(soc, page.text, q=f"agency={B}", all_matching="1", action="close", reason="benign",
                       note="kiểm thử của tổ CNTT")
    assert closed.status_code == 303
    assert closed.headers["location"].endswith("&select=all")  # the same alerts stay selected for the next step
    assert 'id="all-matching" checked' in soc.get(closed.headers["location"]).text
    assert set(statuses(api, [b["id"] for b in SEEDED[B]]).values()) == {"closed"}
    assert set(statuses(api, [b["id"] for b in SEEDED[A]]).values()) == {"open"}
    stored = api.store.get("alerts", SEEDED[B][0]["id"])
    assert stored is not None and stored.body["close_reason"] == "benign" and stored.body["close_note"] == "kiểm thử của tổ CNTT"
    # selected ids only; assign to oneself; a close without a reason is refused, with "other" a note is needed
    two = [SEEDED[A][0]["id"], SEEDED[A][1]["id"]]
    assigned = post_bulk(soc, page.text, id=two, action="assign_me")
    assert assigned.status_code == 303
    assert [api.store.get("alerts", i).body.get("assignee") for i in two] == ["soc", "soc"]  # type: ignore[union-attr]
    assert api.store.get("alerts", SEEDED[A][2]["id"]).body.get("assignee") is None  # type: ignore[union-attr]
    refused = post_bulk(soc, page.text, id=two, action="close")
    assert refused.status_code == 400 and "cần có lý do" in refused.text
    refused = post_bulk(soc, page.text, id=two, action="close", reason="other")
    assert refused.status_code == 400 and "ghi chú" in refused.text
    nothing = post_bulk(soc, page.text, action="ack")
    assert nothing.status_code == 400 and "Hãy chọn cảnh báo trước" in nothing.text
    # a form without the session's CSRF token changes nothing
    forged = soc.post("/alerts-queue/bulk", data={"action": "ack", "id": two, "csrf_token": "forged"},
                      follow_redirects=False)
    assert forged.status_code == 403 and set(statuses(api, two).values()) == {"open"}


def test_the_back_url_is_a_queue_url_only(api: Api) -> None:
    soc = console(api, "soc")
    page = soc.get("/alerts").text
    for back in ("https://evil.example/alerts", "//evil.example", "/admin", "/alerts/../admin"):
        answer = post_bulk(soc, page, id=[SEEDED[A][0]["id"]], action="ack", back=back)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/alerts?job=job-"), back


def test_an_incident_from_a_selection_then_more_alerts_attached(api: Api) -> None:
    soc = console(api, "soc")
    page = soc.get(f"/alerts?agency={A}").text
    free = [b["id"] for b in SEEDED[A][2:4]]
    opened = post_bulk(soc, page, id=free, action="incident_open", title="Dò mật khẩu SSH xã A")
    assert opened.status_code == 303, opened.text
    notice = dict(parse_qsl(urlsplit(opened.headers["location"]).query))
    incident = api.app.incidents.get(notice["incident"])
    assert incident is not None and set(free) <= set(incident.alert_ids) and notice["added"] == "2"
    assert incident.history[-1].actor == "soc"
    more = [SEEDED[A][4]["id"]]
    attached = post_bulk(soc, page, id=more, action="incident_attach", incident_id=incident.id)
    assert attached.status_code == 303
    assert more[0] in api.app.incidents.get(incident.id).alert_ids  # type: ignore[union-attr]
    shown = soc.get(attached.headers["location"]).text
    assert "Đã thêm 1 cảnh báo vào sự cố" in shown and incident.id in shown
    # alerts already in another incident are not taken from it
    taken = post_bulk(soc, page, id=[SEEDED[B][0]["id"]], action="incident_attach", incident_id=incident.id)
    assert taken.status_code == 400 and "đã thuộc sự cố khác" in taken.text
    unknown = post_bulk(soc, page, id=more, action="incident_attach", incident_id="no-such-incident")
    assert unknown.status_code == 400
    # a crafted link announces nothing: only an incident that exists and the user may see
    crafted = soc.get("/alerts?incident=no-such&added=99&exception=exc-fake").text
    assert "cảnh báo vào sự cố" not in crafted and "Đã thêm ngoại lệ" not in crafted
    assert "cảnh báo vào sự cố" not in console(api, "bob").get(attached.headers["location"]).text  # A's incident, not B's


def test_saved_views_belong_to_their_user(api: Api) -> None:
    soc, ana = console(api, "soc"), console(api, "ana")
    page = soc.get("/alerts?status=open&group=rule.id&cursor=abc&job=job-x").text
    saved = soc.post("/alerts-queue/views", data={"csrf_token": csrf(page), "name": "SSH mở",
                                                  "q": "status=open&group=rule.id&cursor=abc&job=job-x"},
                     follow_redirects=False)
    assert saved.status_code == 303
    page = soc.get("/alerts").text
    assert '<a href="/alerts?status=open&amp;group=rule.id">SSH mở</a>' in page
    assert "SSH mở" not in ana.get("/alerts").text  # another user's views are not listed
    view = api.store.find("saved_views", {"owner_id": "soc"})[0]
    ana_page = ana.get("/alerts").text
    ana.post(f"/alerts-queue/views/{view.id}/delete", data={"csrf_token": csrf(ana_page)})
    assert api.store.get("saved_views", view.id) is not None  # not hers to delete
    ana.post("/alerts-queue/views", data={"csrf_token": csrf(ana_page), "name": "Của tôi", "q": "level=high"})
    assert [v.body["agency"] for v in api.store.find("saved_views", {"owner_id": "ana"})] == [A]
    assert "Của tôi" in ana.get("/alerts").text
    soc.post(f"/alerts-queue/views/{view.id}/delete", data={"csrf_token": csrf(page), "back": "/alerts"})
    assert api.store.get("saved_views", view.id) is None
    empty = soc.post("/alerts-queue/views", data={"csrf_token": csrf(page), "name": "  ", "q": ""})
    assert empty.status_code == 400 and "Hãy đặt tên" in empty.text


def test_new_alerts_are_counted_not_reloaded(api: Api) -> None:
    soc = console(api, "soc")
    page = soc.get(f"/alerts?agency={A}").text
    after = re.search(r'data-after="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    assert soc.get(f"/alerts-queue/new-count?agency={A}&after={after}").json() == {"new": 0, "more": False, "label": ""}
    later = NOW + timedelta(hours=2)
    for i, agency in enumerate((A, A, B)):
        body = {**alert_body(agency, 40 + i), "detected_at": iso(later)}
        api.store.create("alerts", body["id"], body)
    answer = soc.get(f"/alerts-queue/new-count?agency={A}&after={after}")
    assert answer.json() == {"new": 2, "more": False, "label": "2 cảnh báo mới"}
    assert answer.headers["cache-control"] == "no-store"
    assert soc.get(f"/alerts-queue/new-count?after={after}&host=host-xa-a").json()["new"] == 1  # checked on each
    assert console(api, "bob").get(f"/alerts-queue/new-count?after={after}").json()["new"] == 1  # B's only
