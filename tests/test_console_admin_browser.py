"""Administration and the audit trail in a real browser (Debian's chromium through Playwright) at
1366×768: an administrator adds a user by keyboard, sees the one-time password once, and the
audit trail shows the change under the administrator's name with the chain verified. Saves the
screenshots ``admin-users`` and ``audit``."""

from __future__ import annotations

from pathlib import Path

from soc.access import Principal
from tests.api_fixtures import PASSWORD, SHELL, make_root
from tests.scope_helpers import A


def _no_sideways_scroll(page: object) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")  # type: ignore[attr-defined]
    assert width <= 1366, f"the page is {width}px wide at 1366×768"


def test_an_administrator_adds_a_user_and_the_audit_trail_shows_it(tmp_path: Path, serve_console, browser_page,
                                                                      screenshot) -> None:
    root = make_root(tmp_path)
    root.identity.users.add(SHELL, "quantri", ["admin"], display_name="Trần Quản Trị", password=PASSWORD,
                            must_change_password=False)
    for name, roles, agency in (("an", ["analyst", "reporter"], A), ("binh", ["responder"], None),
                                ("chi", ["auditor"], None), ("dung", ["agency"], "so-b")):
        root.identity.users.add(SHELL, name, roles, agency=agency, password=PASSWORD, must_change_password=False,
                                email=f"{name}@soc.tinh.gov.vn")
    root.identity.users.add(SHELL, "hostile", ["analyst"], password=PASSWORD,
                            display_name="<script>alert(1)</script>\"><img src=x onerror=alert(1)>")
    root.identity.users.disable(SHELL, "binh")
    root.audit.record(Principal.system("scheduler"), "rule.run", ("rule_state", "ssh-bruteforce"), {"hits": 3})
    site = browser_page(serve_console(root))
    site.login("quantri", PASSWORD)
    site.goto("/admin")
    page = site.page
    assert page.url.endswith("/admin/users") and page.locator("h1").inner_text().startswith("Người dùng")
    assert "<img src=x" in page.locator("table.data").inner_text()  # shown as text
    # add a user with the keyboard only
    page.focus("input[name=name]")
    page.keyboard.type("giang")
    page.keyboard.press("Tab")
    page.keyboard.type("Lê Thị Giang")
    page.keyboard.press("Tab")
    page.keyboard.type("giang@xa-a.gov.vn")
    for _ in range(4):  # admin, analyst (checked by default), responder, reporter
        page.keyboard.press("Tab")
    page.keyboard.press("Space")
    add = "form[method=post][action='/admin/users']"
    page.select_option(f"{add} select[name=agency]", A)
    page.locator(f"{add} button.primary").press("Enter")
    page.wait_for_load_state()
    once = page.locator("#one-time-password").inner_text().strip()
    assert len(once) >= 12
    made = root.identity.users.require("giang")
    assert made.roles == ("analyst", "reporter") and made.agency == A and made.display_name == "Lê Thị Giang"
    _no_sideways_scroll(page)
    screenshot(page, "admin-users")
    page.reload()
    assert page.locator("#one-time-password").count() == 0  # shown once
    site.goto("/audit")
    rows = page.locator("table.audit tbody tr")
    assert "quantri" in rows.first.inner_text() and "user.added" in rows.first.inner_text()
    _no_sideways_scroll(page)
    screenshot(page, "audit")
    page.click("text=Xác minh chuỗi")
    assert page.locator("#verdict").get_attribute("data-ok") == "true"
    assert site.dialogs == [] and site.errors == []
