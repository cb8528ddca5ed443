"""The alert page and the event search in a real browser at 1366×768 (Debian's chromium through
Playwright), over auth.log of the shared examples with the project's rules run on it: nothing
overflows the width, the triage form works from the keyboard alone, a pivot leads to the event
search with its filters, and the screenshots ``alert-detail`` and ``events-search`` of the README
are taken."""

from __future__ import annotations

from pathlib import Path

from tests.api_fixtures import PASSWORD, SHELL
from tests.scope_helpers import A
from tests.test_console_alert_detail import BRUTE_FORCE, seed


def no_horizontal_scroll(page) -> bool:  # type: ignore[no-untyped-def]
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def test_alert_page_and_event_search_at_1366_by_keyboard(tmp_path: Path, serve_console, browser_page,
                                                         screenshot) -> None:
    data = seed(tmp_path)
    data.root.identity.users.add(SHELL, "lan", ["analyst"], agency=A, password=PASSWORD, must_change_password=False)
    alert = data.alerts[BRUTE_FORCE]
    site = browser_page(serve_console(data.root))
    site.login("lan", PASSWORD)
    site.goto(f"/alerts/{alert['id']}")
    page = site.page
    assert page.locator("h1 .rule-title").inner_text() == BRUTE_FORCE
    assert page.locator("table.fields tr.matched").count() == 3
    assert page.locator("#raw-event mark").first.inner_text() == alert["entities"]["source.ip"][0]
    assert no_horizontal_scroll(page)
    screenshot(page, "alert-detail")
    # acknowledge with the keyboard only: focus the note, type, Tab to the button, Enter
    page.focus("form[action$='/acknowledge'] input[name=note]")
    page.keyboard.type("đã xem, đang kiểm tra nguồn")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/alerts/{alert['id']}")
    assert "đã xem, đang kiểm tra nguồn" in page.inner_text(".history-list")
    assert data.root.alerts.get(SHELL, alert["id"])["acknowledged_by"] == "lan"
    # pivot: the events of the source address around the alert
    page.click("ul.pivot-list li:first-child a[href^='/events?']")
    page.wait_for_load_state("load")
    address = alert["entities"]["source.ip"][0]
    assert f"source.ip:eq:{address}" in page.inner_text(".chips")
    assert page.locator("table.events tbody tr").count() >= len(alert["event_ids"][:50]) > 0
    site.goto("/events?since=&filter=event.dataset:eq:linux.sshd&text=failed&top=source.ip")
    assert page.locator("figure.histogram rect").count() > 5
    assert page.locator("aside.top-values tbody tr").count() == 10
    assert no_horizontal_scroll(page)
    screenshot(page, "events-search")
    site.goto(f"/events/{alert['event_ids'][0]}")
    assert page.locator(".neighbours tr.current").count() == 1 and no_horizontal_scroll(page)
    screenshot(page, "event-detail")
    assert site.dialogs == [] and site.errors == []
