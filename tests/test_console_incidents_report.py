"""The report builder of the console (issue #11, item 4): Mẫu 03 previewed with the missing
required fields highlighted and editable in place; what the incident holds is saved on it (under
the user's name), what only the report holds travels with the builder until the report is built;
then built, signed, sent through the outbox, with the receipt on the report's page and the report
in the incident's timeline. Mẫu 04 asks for the outcome; a user who may not change the incident
fills the report only; another agency's reports are 404."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from soc.app import App
from soc.export import snapshot as snapshots
from tests.api_fixtures import app_settings, make_root
from tests.console_helpers import audit_actions, console_user
from tests.scope_helpers import A, B
from tests.test_export_fixtures import alert, incident, make_settings, seed

INC, INC_B = "INC-R-1", "INC-R-B"


@pytest.fixture
def root(tmp_path: Path) -> Iterator[App]:
    drop = {"name": "drop", "title": "Cục A05 (thư mục thử)", "channel": "drop", "endpoint": str(tmp_path / "drop")}
    settings = make_settings(tmp_path, recipients=[drop], default_notified=[])
    app = make_root(tmp_path, app_settings(tmp_path, settings))
    seed(app.base_store, incident(INC, agency=A, agencies=[A], alert_ids=["AL-R1"], summary=""),
         [alert("AL-R1", first="2026-11-30T01:00:00.000Z", agency=A, incident=INC)])
    seed(app.base_store, incident(INC_B, agency=B, agencies=[B], alert_ids=["AL-RB"]),
         [alert("AL-RB", first="2026-11-30T01:00:00.000Z", agency=B, incident=INC_B)])
    yield app
    app.close()


def missing_rows(page: str) -> list[str]:
    return re.findall(r'<div class="form-row missing" id="f-([a-z_.-]+)">', page)


def test_missing_fields_are_highlighted_filled_in_place_then_built_signed_and_sent(root: App) -> None:
    user = console_user(root, ["analyst", "reporter"], agency=A, name="thu")
    builder = f"/incidents/{INC}/report/03"
    page = user.get(builder)
    assert page.status_code == 200
    assert missing_rows(page.text) == ["summary", "notified"]
    assert "Còn thiếu 2 trường bắt buộc." in page.text and 'id="build" disabled' in page.text
    assert "BÁO CÁO BAN ĐẦU SỰ CỐ MẠNG" in page.text and "Công an tỉnh Nghệ An" in page.text  # the rest, previewed
    assert "Đã gửi thông báo sự cố cho" in page.text  # the form's own wording
    # building now is refused, naming what is missing
    refused = user.post(f"{builder}/build", {"kind": "initial"})
    assert refused.status_code == 400 and "Chưa lập được báo cáo" in refused.text
    saved = user.post(f"{builder}/save", {"kind": "initial", "summary": "Dò mật khẩu SSH từ 203.0.113.5 vào web01.",
                                          "notified": ["coordinating_authority", "isp"]})
    assert saved.status_code == 303
    target = urlsplit(saved.headers["location"])
    assert target.path == builder and parse_qs(target.query)["notified"] == ["coordinating_authority", "isp"]
    stored = root.incidents.get(INC)
    assert stored is not None and stored.summary == "Dò mật khẩu SSH từ 203.0.113.5 vào web01."
    assert stored.history[-1].actor == "thu" and stored.history[-1].action == "edit"
    page = user.get(saved.headers["location"])
    assert missing_rows(page.text) == [] and "Đã điền đủ các trường bắt buộc" in page.text
    hidden = re.findall(r'<input type="hidden" name="(notified)" value="([^"]+)">', page.text)
    assert hidden == [("notified", "coordinating_authority"), ("notified", "isp")]
    built = user.post(f"{builder}/build", {"kind": "initial", "notified": ["coordinating_authority", "isp"]})
    assert built.status_code == 303
    report_no = re.match(rf"/incidents/{INC}/reports/([^?]+)\?done=built", built.headers["location"]).group(1)
    snap = root.base_store.get(snapshots.SNAPSHOTS, report_no).body  # type: ignore[union-attr]
    assert snap["kind"] == "initial" and snap["overrides"] == {"notified": ["coordinating_authority", "isp"]}
    report = user.get(built.headers["location"])
    assert report.status_code == 200 and "Đã lập báo cáo." in report.text
    assert report.text.count("badge ok signed") == 3  # json, docx, stix: signed when built
    link = re.search(r'href="(/api/v1/reports/[^"]+\.docx)"', report.text).group(1)
    download = user.client.get(link)  # the file, with the console's session
    assert download.status_code == 200 and download.content[:2] == b"PK"
    signed = user.post(f"/incidents/{INC}/reports/{report_no}/sign", {})
    assert signed.status_code == 303
    sent = user.post(f"/incidents/{INC}/reports/{report_no}/send", {"recipients": "drop"})
    assert sent.status_code == 303
    report = user.get(sent.headers["location"])
    assert "Đã đưa báo cáo vào hàng đợi gửi." in report.text and "Chưa có biên nhận." not in report.text
    assert re.search(r'<table class="data compact" id="receipts">.*?<td>drop</td>', report.text, re.S)
    assert list((Path(root.settings.reporting.recipients[0].endpoint)).iterdir())  # delivered to the folder
    actions = audit_actions(root, "thu")
    assert ("incidents.update", f"incidents/{INC}") in actions
    assert ("report_snapshots.create", f"report_snapshots/{report_no}") in actions
    assert ("report.sign", f"report_snapshots/{report_no}") in actions
    assert any(a == "report_outbox.create" for a, _ in actions)
    timeline = user.get(f"/incidents/{INC}?kinds=report&kinds=delivery").text
    assert f"reports/{report_no}" in timeline and "Đã lập báo cáo" in timeline and "Đã gửi tới drop" in timeline


def test_the_closing_report_asks_for_the_outcome(root: App) -> None:
    user = console_user(root, ["analyst", "reporter"], agency=A)
    page = user.get(f"/incidents/{INC}/report/04")
    assert page.status_code == 200 and "BÁO CÁO KẾT THÚC ỨNG PHÓ SỰ CỐ" in page.text
    assert set(missing_rows(page.text)) == {"summary", "outcome", "initial_ref"}
    user.post(f"/incidents/{INC}/report/04/save", {"kind": "closing", "summary": "Tóm tắt", "outcome": "Đã chặn",
                                                   "initial_ref": "BC03-NA-01-20261130-INC-R-1-1@30/11/2026"})
    assert root.incidents.get(INC).outcome == "Đã chặn"  # type: ignore[union-attr]
    page = user.get(f"/incidents/{INC}/report/04?kind=closing&initial_ref="
                    "BC03-NA-01-20261130-INC-R-1-1%4030%2F11%2F2026")
    assert missing_rows(page.text) == []


def test_a_reporter_who_may_not_change_the_incident_fills_the_report_only(root: App) -> None:
    reporter = console_user(root, "reporter", agency=A)
    saved = reporter.post(f"/incidents/{INC}/report/03/save", {"kind": "initial", "summary": "Chỉ cho báo cáo",
                                                              "notified": "isp"})
    assert saved.status_code == 303
    assert root.incidents.get(INC).summary == ""  # type: ignore[union-attr]
    query = parse_qs(urlsplit(saved.headers["location"]).query)
    assert query["summary"] == ["Chỉ cho báo cáo"] and query["notified"] == ["isp"]
    page = reporter.get(saved.headers["location"])
    assert missing_rows(page.text) == [] and "Chỉ cho báo cáo" in html.unescape(page.text)


def test_reports_of_another_agency_are_404(root: App) -> None:
    theirs = console_user(root, ["analyst", "reporter"], agency=B)
    built = theirs.post(f"/incidents/{INC_B}/report/03/build", {"kind": "initial", "notified": "isp"})
    assert built.status_code == 303, built.text
    path = built.headers["location"].split("?")[0]
    report_no = path.rsplit("/", 1)[1]
    mine = console_user(root, ["analyst", "reporter"], agency=A)
    for answer in (mine.get(path), mine.get(f"/incidents/{INC}/reports/{report_no}"),
                   mine.post(f"{path}/sign", {}), mine.post(f"{path}/send", {})):
        assert answer.status_code == 404
    assert ("report.sign", f"report_snapshots/{report_no}") not in audit_actions(root, mine.name)
