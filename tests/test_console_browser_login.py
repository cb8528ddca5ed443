"""The console in a real browser: logging in, the forced password change of a one-time
password, the language switch and logging out (Debian's chromium through Playwright)."""

from __future__ import annotations

from pathlib import Path

from soc.access import Principal
from tests.api_fixtures import PASSWORD, make_root

SHELL = Principal.local("test-admin")


def test_first_login_forces_a_new_password_then_lands_on_the_console(tmp_path: Path, serve_console, browser_page,
                                                                      screenshot) -> None:
    root = make_root(tmp_path)
    made = root.identity.users.add(SHELL, "lan", ["analyst"], password=None)
    site = browser_page(serve_console(root))
    site.goto("/account/password")
    assert "/login" in site.page.url  # no session: the login page, keeping where the user wanted to go
    assert site.page.locator("html").get_attribute("lang") == "vi"
    screenshot(site.page, "login")
    site.page.fill("input[name=name]", "lan")
    site.page.fill("input[name=password]", "sai mật khẩu")
    site.page.click("main button[type=submit]")
    assert site.page.locator("[role=alert]").inner_text().strip() != ""  # a generic refusal, in Vietnamese
    site.page.fill("input[name=password]", made.one_time_password)
    site.page.click("main button[type=submit]")
    site.page.wait_for_url("**/account/password")
    site.page.fill("input[name=current]", made.one_time_password)
    site.page.fill("input[name=new]", PASSWORD)
    site.page.click("main button[type=submit]")
    site.page.wait_for_url("**/alerts**")
    site.goto("/account/password")
    assert site.page.locator("header .user").inner_text().startswith("lan")
    site.page.click("header form button[type=submit]")  # log out
    site.page.wait_for_url("**/login**")
    site.goto("/account/password")
    assert "/login" in site.page.url  # the session ended
    assert site.dialogs == [] and site.errors == []
