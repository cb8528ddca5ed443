"""Text from logs is shown as text (issue #11, browser test 3): an event whose user name and
message contain ``<script>alert(1)</script>`` and ``"><img src=x onerror=alert(1)>`` is ingested,
a rule raises an alert on it, an incident is opened from the alert; the alert queue, the alert
page, the event search, the event page, the entity page and the incident with its timeline
show the literal text -- no dialog opens, no script runs, no element is injected -- in a real
browser (Debian's chromium through Playwright)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

from soc.model import iso
from soc.store.base import Window
from tests.api_fixtures import PASSWORD, SHELL, make_root
from tests.scope_helpers import A

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
USER = SCRIPT + IMG
MESSAGE = f"new user: name={SCRIPT}, comment={IMG}, UID=1001, GID=1001, home=/home/x, shell=/bin/bash"


def seed(tmp_path: Path):  # type: ignore[no-untyped-def]
    root = make_root(tmp_path)
    now = root.clock()
    event = {"_id": "ev-xss", "@timestamp": iso(now - timedelta(minutes=5)), "event.dataset": "linux.auth",
             "organization.id": A, "host.name": "srv-xss", "process.name": "useradd", "user.name": USER,
             "event.action": "user_created", "event.outcome": "success", "message": MESSAGE,
             "event.original": f"Dec  7 10:00:00 srv-xss useradd[750]: {MESSAGE}"}
    assert not root.base_store.write_events([event]).rejected
    engine = root.detection_engine()
    engine.run_all(root.detections, Window(None, None, "@timestamp"))
    engine.flush()
    alerts = [d.body for d in root.base_store.iter_all("alerts")]
    assert len(alerts) == 1 and USER in alerts[0]["entities"]["user.name"]
    root.identity.users.add(SHELL, "an", ["analyst"], agency=A, password=PASSWORD, must_change_password=False)
    analyst = root.acting_as(root.identity.users.require("an").principal())
    incident = analyst.incidents.open_from_alerts(alerts, actor="an")
    analyst.incidents.add_note(incident.id, f"copied from the log: {USER}", actor="an")
    return root, alerts[0], incident.id


def shown_literally(site, path: str) -> str:  # type: ignore[no-untyped-def]
    """Open ``path``; its visible text, after checking nothing was injected."""
    site.goto(path)
    site.page.wait_for_load_state("load")
    text = site.page.inner_text("main")
    assert site.page.locator("main img").count() == 0, path  # no <img> from the log
    assert site.page.locator("main script").count() == 0, path
    assert site.dialogs == [] and site.errors == [], (path, site.dialogs, site.errors)
    return text


def test_log_text_with_markup_is_shown_as_text_on_every_page(tmp_path: Path, serve_console, browser_page,
                                                             screenshot) -> None:
    root, alert, incident_id = seed(tmp_path)
    site = browser_page(serve_console(root))
    site.login("an", PASSWORD)
    pages = {
        "queue": "/alerts",
        "alert": f"/alerts/{alert['id']}",
        "search": "/events?text=" + quote("onerror"),
        "event": "/events/ev-xss",
        "entity": "/entities/user/" + quote(USER, safe=""),
        "incident": f"/incidents/{incident_id}",
    }
    seen = {name: shown_literally(site, path) for name, path in pages.items()}
    for name in ("queue", "alert", "entity", "incident"):
        assert SCRIPT in seen[name] and IMG in seen[name], name
    for name in ("alert", "search", "event"):  # the message and the raw line
        assert "comment=" + IMG in seen[name] and "name=" + SCRIPT in seen[name], name
    # the alert page's triage note takes the same text and shows it back as text
    site.goto(pages["alert"])
    site.page.fill("form[action$='/acknowledge'] input[name=note]", USER)
    site.page.click("form[action$='/acknowledge'] button[type=submit]")
    site.page.wait_for_load_state("load")
    assert USER in site.page.inner_text(".history-list")
    assert site.page.locator("main img").count() == 0 and site.dialogs == [] and site.errors == []
    screenshot(site.page, "alert-detail-xss")
    assert root.alerts.get(SHELL, alert["id"])["status"] == "acknowledged"
