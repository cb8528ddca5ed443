"""The dashboard, the scorecard and the health page in a real browser (Debian's chromium): they
render at 1366x768 without a script error or a dialog, hostile names from logs stay text, the
range is kept in the URL, and the charts' numbers open from the keyboard. Saves the screenshots
``dashboard``, ``scorecard`` and ``health``."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from soc.access import Principal
from tests.api_fixtures import PASSWORD, make_root
from tests.scope_helpers import A, B
from tests.test_oversight import ingested_at, iso, seed

SHELL = Principal.local("test-admin")
HOSTILE = "\"><img src=x onerror=alert(1)><script>alert(1)</script>"


def _root(tmp_path: Path):  # type: ignore[no-untyped-def]
    root = make_root(tmp_path)
    store, now = root.base_store, root.clock()
    seed(store, now)
    store.create("alerts", "al-x", {"id": "al-x", "status": "new", "agency": B, "first_seen": iso(now - timedelta(hours=5)),
                                    "rule": {"id": "r-x", "title": HOSTILE, "level": "critical"}, "entities": {}})
    with ingested_at(now - timedelta(hours=3)):
        store.write_events([{"_id": "quiet", "@timestamp": iso(now - timedelta(hours=3)), "organization.id": A,
                             "soc.source": HOSTILE, "message": "x"}])
    store.write_events([{"_id": "live", "@timestamp": iso(now), "organization.id": B, "soc.source": "fw-b",
                         "message": "y"}])
    store.put("rule_state", "r-ssh", {"rule_id": "r-ssh", "title": "SSH brute force", "runs": 42, "last_run": now.timestamp(),
                                      "last_duration": 0.031, "last_hits": 2, "last_matches": 9, "total_alerts": 120,
                                      "last_suppressed": 3, "last_suppressed_by": [{"exception": "ex-1", "count": 3}]})
    store.put("rule_state", "r-bad", {"rule_id": "r-bad", "title": "Broken rule", "runs": 5, "last_run": now.timestamp(),
                                      "last_duration": 0.2, "last_error": "no such column: foo", "consecutive_errors": 5})
    store.refresh()
    root.identity.users.add(SHELL, "lan", ["analyst"], password=PASSWORD, must_change_password=False)
    return root


def test_dashboard_scorecard_and_health_pages(tmp_path: Path, serve_console, browser_page, screenshot) -> None:
    site = browser_page(serve_console(_root(tmp_path)))
    site.login("lan", PASSWORD)
    site.goto("/dashboard")
    page = site.page
    assert page.locator("h1").inner_text() == "Bảng theo dõi tổng hợp"
    assert page.locator("svg.chart").count() >= 7
    assert page.locator("svg.chart rect").count() > 10
    # the over-time chart fits the window (no horizontal scroll at 1366 px)
    assert page.evaluate("document.documentElement.scrollWidth") <= 1366
    screenshot(page, "dashboard")
    page.click("a.button:has-text('7 ngày qua')")
    page.wait_for_url("**/dashboard?since=7d")
    page.locator("figure#fig-over_time, figure[aria-labelledby=fig-over_time]").first.locator("summary").focus()
    page.keyboard.press("Enter")
    assert page.locator("figure[aria-labelledby=fig-over_time] details").get_attribute("open") is not None
    page.click("text=Bảng chỉ số theo đơn vị")
    page.wait_for_url("**/dashboard/scorecard**")
    assert "since=7d" in page.url
    assert page.locator("table.scorecard tbody tr").count() >= 6
    screenshot(page, "scorecard")
    site.goto("/health")
    assert page.locator("text=Broken rule").count() == 1 and page.locator("text=no such column: foo").count() == 1
    assert page.locator("#sources .badge.bad").count() == 1  # the hostile-named source of A went quiet
    assert page.locator("#sources td", has_text="onerror=alert(1)").count() == 1  # its name, as text
    screenshot(page, "health")
    assert site.dialogs == [] and site.errors == []
