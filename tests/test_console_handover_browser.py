"""The shift handover in a real browser (Debian's chromium through Playwright) at 1366×768: the
outgoing analyst reads the summary, writes the note, signs off by keyboard, and prints the
summary -- A4 portrait, nothing cut at the right edge. Saves the screenshots ``handover`` and
``handover-print`` (the print view) and checks a PDF printed by the browser."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest

from soc.access import Principal
from soc.model import iso
from tests.api_seed_helpers import A, Api, B, api_fixture

PASSWORD = "a long test password 1"  # tests/api_seed_helpers.py's users
A4_WIDTH_PX = 794  # 210 mm at 96 dpi


@pytest.fixture(params=["sqlite"])
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    yield from api_fixture(request, tmp_path_factory.mktemp("handover-browser"))


def _shift(api: Api) -> None:
    """A night's work: acknowledgements, a close, an overdue task, an approval waiting."""
    app = api.app
    soc = Principal("soc", frozenset({"analyst"}))
    ana = Principal("ana", frozenset({"analyst"}), A)
    for alert_id in api.seeded["alerts"][B][:3]:
        app.acting_as(soc).alerts.acknowledge(soc, alert_id)
    app.acting_as(soc).alerts.assign(soc, api.seeded["alerts"][A][1], "ana")
    app.acting_as(ana).alerts.close(ana, api.seeded["alerts"][A][0], reason="false_positive")
    seed = Principal.local("seed")
    app.acting_as(seed).tasks.create(seed, agency=B, title="Đổi mật khẩu tài khoản root trên web-so-b",
                                     due=app.clock() + timedelta(minutes=1))
    app.base_store.create("playbook_approvals", "run-9:block", {
        "id": "run-9:block", "run_id": "run-9", "playbook_id": "ssh-bruteforce", "step_id": "block-ip",
        "prompt": "Chặn IP 203.0.113.9 trên tường lửa?", "approvers": [], "status": "pending",
        "requested_at": iso(app.clock()), "deadline": iso(app.clock() + timedelta(hours=4))})
    app.clock.now += timedelta(hours=1)  # type: ignore[attr-defined]
    app.base_store.refresh()


def test_the_outgoing_analyst_signs_off_and_prints_the_handover(api: Api, serve_console, browser_page,
                                                                screenshot) -> None:
    _shift(api)
    site = browser_page(serve_console(api.app))
    site.login("soc", PASSWORD)
    site.goto("/handover")
    page = site.page
    assert page.locator("h1").inner_text() == "Giao ca"
    assert page.locator("#fig-detected").inner_text() == "14" and page.locator("#fig-ack").inner_text() == "3"
    assert "Chặn IP 203.0.113.9 trên tường lửa?" in page.locator(".handover-summary").inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= 1366
    page.fill("input[name=incoming]", "lan")
    page.focus("textarea[name=note]")
    page.keyboard.type("Theo dõi IP 203.0.113.9 (đã chặn tạm).\nGọi anh Bình ở Sở B lúc 8h về máy web-so-b.")
    screenshot(page, "handover")
    page.keyboard.press("Tab")  # Save draft
    page.keyboard.press("Tab")  # Sign off the shift
    assert page.evaluate("document.activeElement.value") == "sign"
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/handover/ho-[0-9a-f]+\?done=signed"))
    assert "biên bản giữ nguyên như khi ký" in page.locator("#integrity").inner_text()
    page.click("text=Bản in")
    page.wait_for_url(re.compile(r"/print$"))
    assert page.locator("h1").inner_text() == "BIÊN BẢN GIAO CA"
    # the print view: A4 portrait width, nothing wider than the paper
    page.set_viewport_size({"width": A4_WIDTH_PX, "height": 1123})
    page.emulate_media(media="print")
    assert page.evaluate("document.documentElement.scrollWidth") <= A4_WIDTH_PX
    assert page.locator("a.no-print").is_hidden()
    screenshot(page, "handover-print")
    pdf = page.pdf(prefer_css_page_size=True, print_background=False)
    boxes = re.findall(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", pdf)
    assert boxes, "no page in the PDF"
    for width, height in boxes:  # A4 portrait: 595 x 842 points
        assert abs(float(width) - 595) < 2 and abs(float(height) - 842) < 2, (width, height)
    assert 1 <= len(boxes) <= 3, f"{len(boxes)} pages"
    assert site.dialogs == [] and site.errors == []
