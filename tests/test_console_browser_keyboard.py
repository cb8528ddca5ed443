"""Keyboard triage of the alert queue in a real browser (Debian's chromium through Playwright), on
alerts the brute-force rule raised over loghub's OpenSSH_2k.log: ``j j x x a`` acknowledges the
second and third alerts of the queue (asserted on the stored alerts), ``c`` asks for a close
reason and closes with it, ``?`` shows the help, ``/`` goes to the search; the screenshots of
the queue and of the grouped queue; text from logs shown as text; a new alert announced
without losing the selection."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from soc.alerts.priority import AlertPriority
from soc.app import App
from soc.config import PlaybookSettings, Settings
from soc.detect.compiler import compile_rules
from soc.detect.engine import ALERTS, DetectionEngine
from soc.detect.rules import load_rules
from soc.hunt import ingest_files
from soc.model import iso
from soc.store.base import Window
from tests.api_fixtures import PASSWORD, SHELL, make_root
from tests.conftest import ROOT, shared
from tests.scope_helpers import A

INVENTORY = """systems:
  - name: Máy chủ SSH của Xã A
    agency: xa-a
    level: 3
    hosts: [LabSZ]
"""


@pytest.fixture
def root(tmp_path: Path) -> App:
    (tmp_path / "assets.yml").write_text(INVENTORY, encoding="utf-8")
    made = make_root(tmp_path, Settings(data_dir=tmp_path / "data", playbooks=PlaybookSettings(data_dir=tmp_path)))
    store = made.base_store
    ingest_files(store, [shared("loghub", "OpenSSH", "OpenSSH_2k.log")], fmt="auto", timezone="UTC", agency=A,
                 progress=False)
    rules = compile_rules(load_rules([ROOT / "detections" / "linux" / "ssh"]))
    engine = DetectionEngine(store, rules, enrich=made.alert_priority)
    for detection in rules.runnable():
        engine.run(detection, Window(None, None, "@timestamp"))
    made.identity.users.add(SHELL, "lan", ["analyst"], password=PASSWORD, must_change_password=False)
    assert isinstance(made.alert_priority, AlertPriority)
    return made


def status(root: App, alert_id: str) -> str:
    doc = root.base_store.get(ALERTS, alert_id)
    assert doc is not None
    return "open" if doc.body.get("status") in (None, "new") else doc.body["status"]


def queue_ids(page: Any) -> list[str]:
    return page.eval_on_selector_all("#queue tbody tr.alert-row", "rows => rows.map(r => r.dataset.id)")


def test_keyboard_triage_without_the_mouse(root: App, serve_console, browser_page, screenshot) -> None:
    site = browser_page(serve_console(root))
    site.login("lan", PASSWORD)
    site.goto("/alerts?status=open")
    page = site.page
    ids = queue_ids(page)
    assert len(ids) >= 6
    assert {status(root, i) for i in ids} == {"open"}
    screenshot(page, "alerts-queue")
    for key in "jjxx":
        page.keyboard.press(key)
    assert page.eval_on_selector_all("#queue tr.selected", "rows => rows.map(r => r.dataset.id)") == ids[1:3]
    assert page.locator("#selected-count").inner_text() == "đã chọn 2"
    with page.expect_navigation():
        page.keyboard.press("a")
    assert "job=job-" in page.url and "status=open" in page.url
    assert [status(root, i) for i in ids[:4]] == ["open", "acknowledged", "acknowledged", "open"]
    assert {status(root, i) for i in ids[3:]} == {"open"}
    notice = page.locator(".notice.ok").inner_text()
    assert "2 đã thay đổi" in notice  # the exact counts of the change
    # c asks for a close reason (the first alert of the queue, now that the two left it)
    remaining = queue_ids(page)
    assert remaining[0] == ids[0] and ids[1] not in remaining
    page.keyboard.press("j")
    page.keyboard.press("c")
    assert page.locator("#close-panel").get_attribute("open") is not None
    assert page.evaluate("document.activeElement.id") == "close-reason"
    page.keyboard.type("C")  # the first reason starting with C: Cảnh báo nhầm (false positive)
    assert page.locator("#close-reason").input_value() == "false_positive"
    page.keyboard.press("Tab")
    page.keyboard.type("máy quét của tổ CNTT")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    closed = root.base_store.get(ALERTS, ids[0])
    assert closed is not None and closed.body["status"] == "closed" and closed.body["close_reason"] == "false_positive"
    assert closed.body["close_note"] == "máy quét của tổ CNTT" and closed.body["closed_by"] == "lan"
    assert status(root, ids[3]) == "open"
    # i opens the incident panel for the current alert; Esc closes it
    page.keyboard.press("j")
    page.keyboard.press("i")
    assert page.locator("#incident-panel").get_attribute("open") is not None
    assert page.evaluate("document.activeElement.id") == "incident-title"
    page.keyboard.press("Escape")
    assert page.locator("#incident-panel").get_attribute("open") is None
    # ? shows the help, Esc hides it; / goes to the search field
    page.keyboard.press("?")
    assert page.locator("#help").is_visible() and "Phím tắt" in page.locator("#help").inner_text()
    page.keyboard.press("Escape")
    assert not page.locator("#help").is_visible()
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "search"
    assert site.dialogs == [] and site.errors == []


def test_grouped_queue_new_alerts_and_log_text_as_text(root: App, serve_console, browser_page, screenshot) -> None:
    hostile = {"id": "al-hostile", "kind": "event", "status": "new", "agency": A,
               "rule": {"id": "r-x", "title": "<script>alert(1)</script>", "level": "high"},
               "first_seen": iso(root.clock() - timedelta(days=1)), "detected_at": iso(root.clock() - timedelta(days=1)),
               "message": '"><img src=x onerror=alert(1)>', "risk": 4,
               "entities": {"user.name": ["<script>alert(1)</script>"], "host.name": ['"><img src=x onerror=alert(1)>']}}
    root.base_store.create(ALERTS, hostile["id"], hostile)
    site = browser_page(serve_console(root))
    site.login("lan", PASSWORD)
    site.goto("/alerts?group=rule.title&group=source.ip&sort=-risk")
    page = site.page
    assert page.locator("section.groups tr.group").count() >= 3
    screenshot(page, "alerts-grouped")
    row = page.locator('#queue tr[data-id="al-hostile"]')
    assert row.locator("a.open").inner_text() == "<script>alert(1)</script>"
    assert '"><img src=x onerror=alert(1)>' in row.inner_text()
    assert page.locator("#queue img").count() == 0
    # select two alerts, then a new alert arrives: the queue says so and the selection stays
    page.keyboard.press("j")
    page.keyboard.press("x")
    page.keyboard.press("x")
    fresh = {**hostile, "id": "al-fresh", "rule": {"id": "r-y", "title": "Mới", "level": "low"},
             "detected_at": iso(root.clock() + timedelta(seconds=5)), "message": "mới"}
    root.base_store.create(ALERTS, fresh["id"], fresh)
    page.evaluate("window.SOC.pollNewAlerts()")
    page.locator("#new-alerts").wait_for(state="visible")
    assert page.locator("#new-alerts-link").inner_text() == "1 cảnh báo mới — xem"
    assert page.locator("#queue tr.selected").count() == 2
    assert site.dialogs == [] and site.errors == []
