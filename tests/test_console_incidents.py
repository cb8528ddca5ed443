"""The incident pages of the console (issue #11, item 4) without a browser: the list with its
national type, severity, serious flag, deadlines and overdue reports, filters in the URL and
keyset pages; one incident with its timeline and the forms that change it (note, status,
assignee, verdict, edit, merge, split, attach by a query, remediation task), each recorded
under the user's name; and what a user of another agency gets: the 404 page, for reading and
for every form."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from soc.app import App
from soc.incidents.model import AffectedSystem
from soc.incidents.records import IncidentRecords
from tests.api_fixtures import app_settings, make_root
from tests.console_helpers import audit_actions, console_user
from tests.scope_helpers import A_CHILD, A, B
from tests.test_export_fixtures import alert, incident, make_settings
from tests.test_export_fixtures import seed as seed_model


def seed(store, inc, alerts):  # noqa: ANN001, ANN201 -- as the incident service stores it (with "serious")
    seed_model(store, inc, alerts)
    store.put("incidents", inc.id, IncidentRecords.body(inc))

INC_A, INC_A2, INC_B = "INC-A-1", "INC-A-2", "INC-B-1"


@pytest.fixture
def root(tmp_path: Path) -> Iterator[App]:
    app = make_root(tmp_path, app_settings(tmp_path, make_settings(tmp_path)))
    store = app.base_store
    seed(store, incident(INC_A, agency=A_CHILD, agencies=[A_CHILD], alert_ids=["AL-A1", "AL-A2", "AL-A3"],
                         summary="", discovered="2026-11-01T01:00:00.000Z"),
         [alert(f"AL-A{i}", first=f"2026-11-01T01:0{i}:00.000Z", agency=A_CHILD, incident=INC_A, host=f"web0{i}")
          for i in (1, 2, 3)])
    seed(store, incident(INC_A2, agency=A, agencies=[A], alert_ids=["AL-A9"], title="Mã độc trên máy trạm",
                         incident_type="malware", severity="critical", impacts=["service_interrupted"],
                         affected_systems=[AffectedSystem(name="Cổng dịch vụ công", level=4)]),
         [alert("AL-A9", first="2026-11-02T01:00:00.000Z", agency=A, incident=INC_A2)])
    seed(store, incident(INC_B, agency=B, agencies=[B], alert_ids=["AL-B1"], title="Sự cố của cơ quan B"),
         [alert("AL-B1", first="2026-11-03T01:00:00.000Z", agency=B, incident=INC_B)])
    store.create("alerts", "AL-FREE", alert("AL-FREE", first="2026-11-04T01:00:00.000Z", agency=A, src="198.51.100.7"))
    yield app
    app.close()


def test_the_list_shows_type_severity_serious_deadlines_and_overdue(root: App) -> None:
    analyst = console_user(root, "analyst", agency=A)
    page = analyst.get("/incidents")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    text = page.text
    assert INC_A in text and INC_A2 in text and INC_B not in text and "Sự cố của cơ quan B" not in text
    assert "Truy cập trái phép, chiếm quyền điều khiển" in text and "Tấn công sử dụng mã độc" in text
    assert "Nghiêm trọng" in text  # the serious flag (level 4 system and an impact)
    assert "Quá hạn: Mẫu 03" in text  # no initial report delivered 5 days after discovery
    assert "Asia/Ho_Chi_Minh" in text
    serious = analyst.get("/incidents?serious=true").text
    assert INC_A2 in serious and INC_A not in serious
    typed = analyst.get("/incidents?kind=malware&severity=critical").text
    assert INC_A2 in typed and INC_A not in typed
    assert analyst.get("/incidents?status=bogus").status_code == 400
    first = analyst.get("/incidents?sort=discovered_at&cursor=").text
    assert first.index(INC_A) < first.index(INC_A2)


def test_pages_of_the_list_follow_the_cursor(root: App) -> None:
    store = root.base_store
    for n in range(55):
        seed(store, incident(f"INC-P-{n:02d}", agency=A, agencies=[A], alert_ids=[f"AL-P{n}"],
                             updated_at=f"2026-11-10T01:{n:02d}:00.000Z"),
             [alert(f"AL-P{n}", first="2026-11-10T01:00:00.000Z", agency=A, incident=f"INC-P-{n:02d}")])
    analyst = console_user(root, "analyst")
    first = analyst.get("/incidents?agency=" + A)
    shown = set(re.findall(r"<code>(INC-P-\d\d|INC-A-2)</code>", first.text))
    assert len(shown) == 50 and "INC-A-2" in shown  # updated last
    cursor = re.search(r'href="([^"]*cursor=[^"]+)" rel="next"', first.text).group(1).replace("&amp;", "&")
    second = analyst.get(cursor)
    rest = set(re.findall(r"<code>(INC-P-\d\d|INC-A-2)</code>", second.text))
    assert rest and not rest & shown and len(rest | shown) == 56  # 55 + INC-A-2, none twice


def test_another_agencys_incident_is_the_404_page_for_reading_and_for_every_form(root: App) -> None:
    analyst = console_user(root, ["analyst", "reporter"], agency=A)
    for path in (f"/incidents/{INC_B}", f"/incidents/{INC_B}/report/03", f"/incidents/{INC_B}/report/04"):
        answer = analyst.get(path)
        assert answer.status_code == 404 and "Không tìm thấy" in answer.text, path
        assert "Sự cố của cơ quan B" not in answer.text
    for suffix, data in (("note", {"text": "x"}), ("status", {"status": "triage"}), ("assign", {"assignee": "x"}),
                         ("verdict", {"verdict": "benign"}), ("merge", {"sources": INC_A}),
                         ("split", {"alert_ids": "AL-B1"}), ("attach", {"rule": "rule-high"}),
                         ("tasks", {"agency": B, "title": "x"}), ("report/03/build", {"kind": "initial"})):
        answer = analyst.post(f"/incidents/{INC_B}/{suffix}", data)
        assert answer.status_code == 404, (suffix, answer.status_code)
    # and merging B's incident into A's is refused without saying it exists
    answer = analyst.post(f"/incidents/{INC_A}/merge", {"sources": INC_B})
    assert answer.status_code == 400 and "no incident 'INC-B-1'" in html.unescape(answer.text)
    root.base_store.refresh()
    b = root.incidents.get(INC_B)
    assert b is not None and not b.notes and b.status == "new" and b.merged_into is None


def test_forms_change_the_incident_under_the_users_name(root: App) -> None:
    analyst = console_user(root, "analyst", agency=A, name="lan")
    base = f"/incidents/{INC_A}"
    answer = analyst.post(f"{base}/note", {"text": "Đã chặn địa chỉ <b>tấn công</b>"})
    assert answer.status_code == 303 and answer.headers["location"] == f"{base}?done=note#notes"
    assert analyst.post(f"{base}/status", {"status": "triage", "note": "đang xử lý"}).status_code == 303
    assert analyst.post(f"{base}/assign", {"assignee": "lan"}).status_code == 303
    assert analyst.post(f"{base}/verdict", {"verdict": "true_positive"}).status_code == 303
    edit = analyst.post(f"{base}/edit", [("title", "Dò mật khẩu SSH vào web01"), ("severity", "critical"),
                                          ("incident_type", "unauthorized_access"), ("summary", "Tóm tắt"),
                                          ("impacts", "service_interrupted"), ("system_name", "Cổng TTĐT"),
                                          ("system_operator", "Sở TT&TT"), ("system_level", "4")])
    assert edit.status_code == 303
    got = root.incidents.get(INC_A)
    assert got is not None
    assert (got.status, got.assignee, got.verdict, got.severity, got.summary) == (
        "triage", "lan", "true_positive", "critical", "Tóm tắt")
    assert got.affected_systems[0].level == 4 and got.affected_systems[0].operator == "Sở TT&TT" and got.serious
    assert {n.author for n in got.notes} == {"lan"} and {h.actor for h in got.history if h.action != "opened"} == {"lan"}
    page = analyst.get(f"{base}?done=note")
    assert "Đã thêm ghi chú." in page.text
    assert "Đã chặn địa chỉ &lt;b&gt;tấn công&lt;/b&gt;" in page.text  # a note is text
    assert "Sự cố nghiêm trọng (QĐ 05/2017)" in page.text
    assert [a for a, t in audit_actions(root, "lan") if t == f"incidents/{INC_A}"].count("incidents.update") >= 5
    # a move the lifecycle does not allow comes back as the page with the reason, nothing changed
    refused = analyst.post(f"{base}/status", {"status": "new"})
    assert refused.status_code == 400 and "can go to" in refused.text
    assert root.incidents.get(INC_A).status == "triage"  # type: ignore[union-attr]
    # a form without the session's token is refused
    assert analyst.post(f"{base}/note", {"text": "x"}, csrf=False).status_code == 403


def test_merge_split_and_attach_by_a_query(root: App) -> None:
    analyst = console_user(root, "analyst", agency=A, name="hai")
    split = analyst.post(f"/incidents/{INC_A}/split", {"alert_ids": ["AL-A2", "AL-A3"], "title": "Tách ra"})
    assert split.status_code == 303
    new_id = re.match(r"/incidents/([^?]+)\?done=split", split.headers["location"]).group(1)
    assert root.incidents.get(new_id).alert_ids == ["AL-A2", "AL-A3"]  # type: ignore[union-attr]
    assert root.incidents.get(INC_A).alert_ids == ["AL-A1"]  # type: ignore[union-attr]
    merged = analyst.post(f"/incidents/{INC_A}/merge", {"sources": f"{new_id}, {INC_A2}"})
    assert merged.status_code == 303
    target = root.incidents.get(INC_A)
    assert target is not None and sorted(target.alert_ids) == ["AL-A1", "AL-A2", "AL-A3", "AL-A9"]
    assert root.incidents.get(INC_A2).merged_into == INC_A  # type: ignore[union-attr]
    nothing = analyst.post(f"/incidents/{INC_A}/attach", {})
    assert nothing.status_code == 400 and "at least one filter" in nothing.text
    attached = analyst.post(f"/incidents/{INC_A}/attach", {"source_ip": "198.51.100.7"})
    assert attached.status_code == 303 and "n=1" in attached.headers["location"]
    assert "AL-FREE" in root.incidents.get(INC_A).alert_ids  # type: ignore[union-attr]
    assert root.base_store.get("alerts", "AL-FREE").body["incident_id"] == INC_A  # type: ignore[union-attr]
    page = analyst.get(f"/incidents/{INC_A}?all=1&order=asc")
    assert "Tách cảnh báo thành sự cố mới" in page.text and "Gộp sự cố khác vào" in page.text


def test_a_remediation_task_goes_to_the_agency_which_answers_it(root: App) -> None:
    analyst = console_user(root, "analyst", name="soc-an")
    sent = analyst.post(f"/incidents/{INC_A}/tasks", {"agency": A_CHILD, "title": "Chặn 203.0.113.5",
                                                      "description": "trên tường lửa", "due_in": "1d"})
    assert sent.status_code == 303 and sent.headers["location"].endswith("done=task#tasks")
    task = next(d.body for d in root.base_store.iter_all("tasks"))
    assert task["agency"] == A_CHILD and task["incident_id"] == INC_A and task["created_by"] == "soc-an"
    assert task["due_at"] is not None
    assert ("tasks.create", f"tasks/{task['id']}") in audit_actions(root, "soc-an")
    bad = analyst.post(f"/incidents/{INC_A}/tasks", {"agency": A_CHILD, "title": "x", "due": "2020-01-01"})
    assert bad.status_code == 400 and "after now" in bad.text
    detail = analyst.get(f"/incidents/{INC_A}")
    assert "Chặn 203.0.113.5" in detail.text
    # the agency's contact (A sees its child agency) answers it at /tasks
    contact = console_user(root, "agency", agency=A, name="it-a")
    listed = contact.get("/tasks")
    assert listed.status_code == 200 and "Chặn 203.0.113.5" in listed.text
    assert contact.post(f"/tasks/{task['id']}/done", {"note": ""}).status_code == 400  # what was done?
    assert contact.post(f"/tasks/{task['id']}/acknowledge", {"back": "/tasks?status=open"}).status_code == 303
    done = contact.post(f"/tasks/{task['id']}/done", {"note": "đã chặn"})
    assert done.status_code == 303
    stored = root.base_store.get("tasks", task["id"]).body  # type: ignore[union-attr]
    assert stored["status"] == "done" and stored["done_by"] == "it-a" and stored["done_note"] == "đã chặn"
    assert [e["action"] for e in stored["events"]] == ["created", "acknowledged", "done"]
    # B's user sees nothing of it and cannot answer it
    other = console_user(root, "agency", agency=B)
    assert "Chặn 203.0.113.5" not in other.get("/tasks").text
    assert other.post(f"/tasks/{task['id']}/acknowledge", {}).status_code == 404
    # an analyst may not answer for the agency
    assert analyst.post(f"/tasks/{task['id']}/done", {"note": "x"}).status_code == 403
    timeline = analyst.get(f"/incidents/{INC_A}?kinds=task").text
    assert timeline.count("tl tl-task") == 3


def test_a_user_without_the_permission_gets_the_403_page(root: App) -> None:
    auditor = console_user(root, "auditor")
    assert auditor.get(f"/incidents/{INC_A}").status_code == 200
    answer = auditor.post(f"/incidents/{INC_A}/note", {"text": "x"})
    assert answer.status_code == 403 and "Bạn không có quyền" in answer.text
    assert auditor.get(f"/incidents/{INC_A}/report/03").status_code == 403
    agency_user = console_user(root, "agency", agency=A)
    assert agency_user.post(f"/incidents/{INC_A}/status", {"status": "triage"}).status_code == 403
    assert agency_user.post(f"/incidents/{INC_A}/note", {"text": "đơn vị đã kiểm tra"}).status_code == 303
