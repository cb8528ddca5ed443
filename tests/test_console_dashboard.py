"""The dashboard and scorecard pages without a browser: Vietnamese by default, charts as SVG
without script or style attributes, data shown as text, an agency's user sees only its
agencies (also when the URL names another's), and the scorecard exports (CSV, .xlsx) hold the
figures of the page with formula-like cells made inert, each export in the audit trail."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from soc.app import App
from soc.web.server import create_app
from tests.api_fixtures import PASSWORD, SHELL, make_root
from tests.scope_helpers import A, B
from tests.test_oversight import iso, seed

EVIL = "=HYPERLINK(\"http://x\")<script>alert(1)</script>"


@pytest.fixture
def root(tmp_path: Path) -> Iterator[App]:
    app = make_root(tmp_path)
    now = app.clock()
    seed(app.base_store, now)
    # an agency whose rule title is hostile: shown as text, inert in the exports
    app.base_store.create("alerts", "al-evil", {"id": "al-evil", "status": "new", "agency": B,
                                                "rule": {"id": "r-evil", "title": EVIL, "level": "high"},
                                                "first_seen": iso(now - timedelta(hours=2)), "entities": {}})
    app.base_store.write_events([{"_id": "ev-b", "@timestamp": iso(now), "organization.id": B,
                                  "soc.source": EVIL, "message": "x"}])
    app.base_store.refresh()
    yield app
    app.close()


def login(root: App, name: str, roles: list[str], agency: str | None = None) -> TestClient:
    root.identity.users.add(SHELL, name, roles, agency=agency, password=PASSWORD, must_change_password=False)
    client = TestClient(create_app(root))
    answer = client.post("/login", data={"name": name, "password": PASSWORD, "next": "/dashboard"},
                         follow_redirects=False)
    assert answer.status_code == 303, answer.text
    return client


def test_dashboard_page_in_vietnamese_with_svg_charts(root: App) -> None:
    client = login(root, "minh", ["analyst"])
    page = client.get("/dashboard")
    assert page.status_code == 200, page.text
    html = page.text
    for text in ("Bảng theo dõi tổng hợp", "Cảnh báo theo thời gian", "Sự cố đang mở theo đơn vị", "Quy tắc nhiều cảnh báo nhất",
                 "Cách tính các chỉ số", "dữ liệu nạp bù"):
        assert text in html, text
    assert html.count("<svg") >= 7 and 'role="img"' in html
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    svg = "".join(re.findall(r"<svg.*?</svg>", html, re.S))
    assert "style=" not in svg and "<script" not in svg and " on" not in re.sub(r'"[^"]*"', '""', svg)
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    # the range is in the URL; a bad one is a page that says why
    assert client.get("/dashboard?since=7d").status_code == 200
    bad = client.get("/dashboard?since=tomorrow-ish")
    assert bad.status_code == 400 and "tomorrow-ish" in bad.text


def test_agency_user_sees_only_its_agencies(root: App) -> None:
    client = login(root, "ana", ["agency"], agency=A)
    page = client.get("/dashboard").text
    assert "Sở B" not in page and B not in page
    assert "Xã A" in page
    card = client.get("/dashboard/scorecard").text
    assert "Sở B" not in card and "Xã A" in card and "Thôn A" in card
    rows = list(csv.reader(io.StringIO(client.get("/dashboard/scorecard.csv").content.decode("utf-8-sig"))))
    assert {r[0] for r in rows[1:]} <= {A, "thon-a", "xa-old"} and B not in {r[0] for r in rows}
    # asking for another agency's figures in the URL changes nothing: there is no such parameter to widen it
    assert "Sở B" not in client.get(f"/dashboard?agency={B}").text


def test_scorecard_exports_are_inert_and_audited(root: App) -> None:
    client = login(root, "minh", ["analyst"])
    page = client.get("/dashboard/scorecard?since=30d")
    assert page.status_code == 200 and "Tải .xlsx" in page.text
    answer = client.get("/dashboard/scorecard.csv?since=30d")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
    header, body = rows[0], {r[0]: r for r in rows[1:]}
    assert header[:3] == ["Mã đơn vị", "Tên đơn vị", "Nguồn đã kết nối"]
    assert body[B][4] == "12" and body[A][1] == "Xã A"  # B: 10 of the 40 seeded, al-slow and the hostile one
    book = load_workbook(io.BytesIO(client.get("/dashboard/scorecard.xlsx?since=30d").content))
    sheet = book.active
    assert [c.value for c in sheet[1]][:2] == ["Mã đơn vị", "Tên đơn vị"]
    by_id = {row[0].value: row for row in sheet.iter_rows(min_row=2) if row[0].value}
    assert by_id[B][4].value == 12 and by_id[B][4].data_type == "n"
    assert any("MTTD" in str(c.value) for row in sheet.iter_rows() for c in row)
    for row in sheet.iter_rows():
        for cell in row:
            assert cell.data_type != "f", f"a formula in {cell.coordinate}: {cell.value!r}"
    actions = [r.action for r in root.audit.records()]
    assert actions.count("export.scorecard") == 2
    record = [r for r in root.audit.records() if r.action == "export.scorecard"][-1]
    assert record.actor == "minh" or getattr(record.actor, "name", None) == "minh" or "minh" in str(record.actor)


def test_csv_cells_that_look_like_formulas_are_neutralised() -> None:
    from soc.oversight.tables import to_csv, to_xlsx

    data = to_csv(["a", "b"], [["=1+1", 3], ["-2", "@x"], ["ok", None]]).decode("utf-8-sig")
    assert list(csv.reader(io.StringIO(data))) == [["a", "b"], ["'=1+1", "3"], ["'-2", "'@x"], ["ok", ""]]
    sheet = load_workbook(io.BytesIO(to_xlsx(["a"], [["=1+1"], [2]], title="t/[x]"))).active
    assert (sheet["A2"].value, sheet["A2"].data_type, sheet["A3"].value) == ("=1+1", "s", 2)
    assert sheet.title == "t  x"
