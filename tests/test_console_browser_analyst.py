"""Issue #11, "Done when", browser test 1: after the Elastic "suspicious login activity" auth.log
is ingested (the embedded service: inbox -> store -> the SSH rules -> alerts -> the brute-force
playbook, which opens the incident), an analyst who also holds the reporter role logs in to the
Vietnamese console, groups the queue by rule, selects all brute-force alerts, assigns and
acknowledges them, attaches them to the incident the playbook opened, adds a note, sends a
remediation task to the agency's contact, opens the report builder, sees the missing fields,
fills them, builds and signs Mẫu 03 and finds it in the incident's timeline; the audit trail
shows each step under the analyst's name. Screenshots: incidents-list, incident-detail,
report-builder, playbooks (Debian's chromium through Playwright, 1366×768)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from soc.access import Principal
from soc.alerts import status_of
from soc.app import App
from soc.config import PlaybookSettings, SmtpSettings
from soc.export import snapshot as snapshots
from soc.export.sign import keygen
from soc.service import run_service
from tests.api_fixtures import FAST_AUTH, PASSWORD
from tests.conftest import ROOT, shared
from tests.service_helpers import workspace
from tests.test_export_fixtures import CONTACT, REPORTER, SIGNATORY

SHELL = Principal.local("test-admin")
RULES = [ROOT / "detections" / "linux" / "ssh"]
BRUTE_FORCE = "SSH Brute Force From One Source"
AGENCY = {"id": "so-yte", "name": "Sở Y tế", "level": "department", "parent": "ubnd-tinh",
          "contact_email": ["cntt@soyte.example"]}
ANALYST = "an"


def ingested(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The settings of a service that has ingested auth.log once (alerts, playbook runs, incident)."""
    settings = workspace(tmp_path, monkeypatch, {"inbox.yml": {"name": "inbox", "type": "inbox", "agency": "so-yte",
                                                               "timezone": "UTC"}}, [AGENCY])
    cert, key = tmp_path / "pki" / "cert.pem", tmp_path / "pki" / "key.pem"
    keygen(cert, key, "SOC tỉnh (TEST)", "Công an tỉnh")
    reporting = settings.reporting.model_copy(update={
        "reporter": settings.reporting.reporter.model_validate(REPORTER),
        "contact": settings.reporting.contact.model_validate(CONTACT),
        "signatory": settings.reporting.signatory.model_validate(SIGNATORY),
        "default_notified": [], "out_dir": tmp_path / "reports", "certificate": cert, "private_key": key})
    settings = settings.model_copy(update={
        "reporting": reporting, "auth": FAST_AUTH, "playbooks": PlaybookSettings(folder=ROOT / "playbooks"),
        "smtp": SmtpSettings(host="127.0.0.1", port=9, timeout_seconds=1)})
    settings.inbox.mkdir(parents=True, exist_ok=True)
    shutil.copy(shared("elastic-examples", "suspicious_login_activity", "data", "auth.log"), settings.inbox / "auth.log")
    with App(settings, rule_dirs=RULES) as service:
        run_service(service, once=True)
    return settings


def audit_of(root: App, actor: str) -> list[tuple[str, str]]:
    root.base_store.refresh()
    return [(r.action, str(r.target)) for r in root.audit.records() if r.actor.name == actor]


def test_an_analyst_triages_the_brute_force_and_reports_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          serve_console, browser_page, screenshot) -> None:
    settings = ingested(tmp_path, monkeypatch)
    root = App(settings, rule_dirs=RULES)
    store = root.base_store
    alerts = [d.body for d in store.iter_all("alerts")]
    brute = [a for a in alerts if a["rule"]["title"] == BRUTE_FORCE]
    incidents = [d.body for d in store.iter_all("incidents")]
    assert len(brute) >= 40 and len(incidents) == 1  # the playbook opened one incident for the campaign
    incident_id = incidents[0]["id"]
    root.identity.users.add(SHELL, ANALYST, ["analyst", "reporter"], password=PASSWORD, must_change_password=False)
    site = browser_page(serve_console(root))
    page = site.page
    site.login(ANALYST, PASSWORD)
    assert page.locator("html").get_attribute("lang") == "vi"

    # the queue, grouped by rule: all brute-force alerts selected, assigned, acknowledged, attached
    site.goto("/alerts")
    page.select_option("select[name=group] >> nth=0", "rule.title")
    page.click("#filters button.primary")
    group = page.locator("tr.group", has_text=BRUTE_FORCE)
    assert re.sub(r"\D", "", group.locator("td.num").inner_text()) == str(len(brute))
    group.get_by_role("link", name=re.compile("Chọn tất cả")).click()
    page.wait_for_load_state()
    assert page.locator("#all-matching").is_checked()
    page.click("#assign-panel summary")
    page.fill("#assign-panel input[name=assignee]", ANALYST)
    page.click("#assign-panel button[value=assign]")
    page.wait_for_load_state()
    page.check("#all-matching")
    page.click("#do-ack")
    page.wait_for_load_state()
    page.check("#all-matching")
    page.click("#incident-panel summary")
    page.fill("#incident-panel input[name=incident_id]", incident_id)
    page.click("#incident-panel button[value=incident_attach]")
    page.wait_for_load_state()
    page.get_by_role("link", name=incident_id).click()
    page.wait_for_url(f"**/incidents/{incident_id}**")
    store.refresh()
    for alert_id in (a["id"] for a in brute):
        body = store.get("alerts", alert_id).body  # type: ignore[union-attr]
        assert status_of(body) == "acknowledged" and body["assignee"] == ANALYST and body["incident_id"] == incident_id

    # a note, and a remediation task for the agency's contact
    page.fill("#notes textarea[name=text]", "Đã xác minh: dò mật khẩu SSH từ nhiều địa chỉ, chưa đăng nhập được.")
    page.click("#notes button[type=submit]")
    page.wait_for_url("**done=note**")
    page.fill("#task-form input[name=title]", "Chặn các địa chỉ tấn công SSH tại tường lửa")
    page.fill("#task-form textarea[name=description]", "Danh sách địa chỉ trong sự cố.")
    page.click("#task-form button[type=submit]")
    page.wait_for_url("**done=task**")
    task = next(d.body for d in store.iter_all("tasks") if d.body.get("kind") == "remediation")
    assert task["agency"] == "so-yte" and task["incident_id"] == incident_id and task["created_by"] == ANALYST
    assert task["notifications"][0]["to"] == ["cntt@soyte.example"]

    # the report builder: the missing fields, filled in place, then built and signed
    page.click("#reports a.button.primary")
    page.wait_for_url("**/report/03**")
    missing = page.locator(".form-row.missing")
    assert sorted(missing.evaluate_all("rows => rows.map(r => r.id)")) == ["f-notified", "f-summary"]
    assert page.locator("#build").is_disabled()
    page.locator("#f-system-level").scroll_into_view_if_needed()
    page.evaluate("window.scrollBy(0, 120)")
    screenshot(page, "report-builder")
    page.fill("#f-summary-in", "Dò mật khẩu SSH vào máy chủ ip-10-77-20-248 của Sở Y tế từ nhiều địa chỉ; "
                               "chưa ghi nhận đăng nhập thành công.")
    page.check("#f-notified input[value=coordinating_authority]")
    page.click("#save")
    page.wait_for_url("**done=saved**")
    assert page.locator(".form-row.missing").count() == 0
    page.click("#build")
    page.wait_for_url("**/reports/**")
    report_no = page.url.split("/reports/")[1].split("?")[0]
    page.click("#sign")
    page.wait_for_url("**done=signed**")
    assert page.locator(".badge.signed").count() == 3
    signed = sorted(p.name for p in (tmp_path / "reports" / report_no).iterdir() if p.name.endswith(".p7s"))
    assert len(signed) == 3
    snap = store.get(snapshots.SNAPSHOTS, report_no).body  # type: ignore[union-attr]
    assert snap["kind"] == "initial" and snap["incident"]["id"] == incident_id
    assert snap["overrides"]["notified"] == ["coordinating_authority"]  # the values the form showed go with it
    assert snap["overrides"]["detection_method"] == ["log_review"] and snap["overrides"]["status"] == "not_handled"

    # the report in the incident's timeline
    page.click(f"a[href='/incidents/{incident_id}#timeline']")
    page.wait_for_url(f"**/incidents/{incident_id}**")
    report_entry = page.locator("li.tl-report", has_text=report_no)
    assert report_entry.count() == 1 and "Đã lập báo cáo" in report_entry.inner_text()
    assert page.locator("li.tl-note", has_text="Đã xác minh").count() == 1
    site.goto(f"/incidents/{incident_id}")
    screenshot(page, "incident-detail")
    site.goto("/incidents")
    screenshot(page, "incidents-list")
    site.goto("/playbooks")
    assert page.locator("#runs tbody tr").count() >= 1
    screenshot(page, "playbooks")

    # the audit trail: each step under the analyst's name
    actions = audit_of(root, ANALYST)
    done = {a for a, _ in actions}
    assert {"login.ok", "alerts.update", "incidents.update", "tasks.create", "report_snapshots.create",
            "report.sign"} <= done, done
    assert sum(1 for a, t in actions if a == "alerts.update") >= 2 * len(brute)  # assigned, then acknowledged
    assert ("report.sign", f"report_snapshots/{report_no}") in actions
    assert ("incidents.update", f"incidents/{incident_id}") in actions  # the note, the summary
    assert site.dialogs == [] and site.errors == []
    root.close()
