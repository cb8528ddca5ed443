"""pytest plugin: a real browser (Debian's chromium driven by Playwright) and the console served
by uvicorn, for the console's browser tests.

Register it from ``tests/conftest.py`` (``pytest_plugins``). ``make test`` installs chromium
when it is missing (``tools/browser/ensure-chromium.sh``); ``SOC_TEST_CHROMIUM`` names another
executable. Nothing is skipped: without a browser the tests using it error with what to do.

Fixtures:

``chromium`` (session)
    The browser, started once per run.
``serve_console`` (function)
    ``serve_console(root) -> "http://127.0.0.1:PORT"``: :func:`soc.web.server.create_app` over
    the :class:`soc.app.App` ``root`` served by uvicorn in a thread until the test ends.
``browser_page`` (function)
    ``browser_page(base_url) -> BrowserPage``: a fresh browser context (no cookies) at 1366×768
    in Asia/Ho_Chi_Minh, recording every JavaScript dialog and page error -- a test of text from
    logs asserts that both lists stay empty.
``screenshot`` (function)
    ``screenshot(page, "alerts-queue")`` saves a PNG under ``SOC_TEST_SCREENSHOTS`` (default
    ``.cache/screenshots``; ``make screenshots`` writes the README's ``docs/screenshots``).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions"]
VIEWPORT = {"width": 1366, "height": 768}


def chromium_path() -> str:
    for candidate in (os.environ.get("SOC_TEST_CHROMIUM"), *CHROMIUM_CANDIDATES):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError("no chromium found: run tools/browser/ensure-chromium.sh (make test does) "
                       "or set SOC_TEST_CHROMIUM to a Chromium executable")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the browser tests last: Playwright's sync API keeps an event loop running in the
    main thread while the browser is open, so an ``asyncio.run()`` of a later test (signature
    checks, the SMTP server) would fail. Started once, the browser then stays open to the end."""
    items.sort(key=lambda item: "chromium" in getattr(item, "fixturenames", ()))


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def serve_console() -> Iterator[Callable[..., str]]:
    import uvicorn

    from soc.web.server import create_app

    servers: list[tuple[Any, threading.Thread]] = []

    def start(root: Any) -> str:
        port = _free_port()
        server = uvicorn.Server(uvicorn.Config(create_app(root), host="127.0.0.1", port=port,
                                               log_level="warning", lifespan="off"))
        thread = threading.Thread(target=server.run, name=f"console-{port}", daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the console did not start on port {port}")
            time.sleep(0.02)
        servers.append((server, thread))
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=10)


@dataclass
class BrowserPage:
    """A page of a fresh browser context, with what the page did that a test must see."""

    page: Any
    base_url: str
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def goto(self, path: str) -> Any:
        return self.page.goto(self.base_url + path)

    def login(self, name: str, password: str) -> None:
        self.goto("/login")
        self.page.fill("input[name=name]", name)
        self.page.fill("input[name=password]", password)
        self.page.click("form.login button[type=submit], main form button[type=submit]")
        self.page.wait_for_load_state()


@pytest.fixture
def browser_page(chromium: Any) -> Iterator[Callable[[str], BrowserPage]]:
    contexts: list[Any] = []

    def open_page(base_url: str) -> BrowserPage:
        context = chromium.new_context(viewport=VIEWPORT, locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh")
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        opened = BrowserPage(page, base_url)

        def on_dialog(dialog: Any) -> None:
            opened.dialogs.append(f"{dialog.type}: {dialog.message}")
            dialog.dismiss()

        page.on("dialog", on_dialog)
        page.on("pageerror", lambda error: opened.errors.append(str(error)))
        return opened

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def screenshot() -> Callable[[Any, str], Path]:
    folder = Path(os.environ.get("SOC_TEST_SCREENSHOTS") or ROOT / ".cache" / "screenshots")

    def save(page: Any, name: str) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=False)
        return path

    return save
