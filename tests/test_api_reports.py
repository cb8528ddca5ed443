"""The report routes of the API (issue #10, item 5): build (with the missing fields listed),
preview for the report builder, sign, send through the outbox, receipts, what is due, and the
files -- only a report's own, every download audited. An agency user sees only the reports of
its agencies' incidents (404 by number, absent from lists; a province-wide summary is
invisible), on SQLite and the real OpenSearch."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from soc.app import App
from soc.config import Settings
from soc.store.base import Store
from tests.api_fixtures import Api, app_settings, every_page, make_root
from tests.scope_helpers import A_CHILD, STORE_KINDS, A, B, close_kind, open_kind
from tests.test_export_fixtures import alert, incident, make_settings, seed

INC_A, INC_B = "INC-A-1", "INC-B-1"


def seed_incidents(store: Store) -> None:
    """An incident of A's child agency (visible to A) and one of B, each with its alert."""
    for iid, agency in ((INC_A, A_CHILD), (INC_B, B)):
        seed(store, incident(iid, agency=agency, agencies=[agency], alert_ids=[f"AL-{iid}"]),
             [alert(f"AL-{iid}", first="2026-11-30T01:00:00.000Z", agency=agency, incident=iid)])


def settings_for(tmp_path: Path, *, signing: bool = True) -> Settings:
    drop = {"name": "drop", "channel": "drop", "endpoint": str(tmp_path / "drop")}
    return app_settings(tmp_path, make_settings(tmp_path, signing=signing, recipients=[drop]))


@pytest.fixture
def root(tmp_path: Path) -> Iterator[App]:
    app = make_root(tmp_path, settings_for(tmp_path))
    seed_incidents(app.base_store)
    yield app
    app.close()


@pytest.fixture
def api(root: App) -> Api:
    return Api(root)


def audit_actions(root: App, action: str) -> list[dict[str, Any]]:
    root.base_store.refresh()
    return [{**r.body, "details": r.details} for r in root.audit.records() if r.action == action]


def test_build_preview_and_read_a_report(api: Api) -> None:
    reporter = api.as_user("reporter")
    built = reporter.ok("post", "/reports", {"incident": INC_A, "kind": "initial",
                                             "overrides": {"notified": ["isp"], "confidential": True}}, status=201)
    no = built["report_no"]
    assert built["created"] and built["document"] == "incident_report" and no.startswith("BC03-")
    assert built["files"] and {f + ".p7s" for f in built["files"]} == set(built["signatures"])
    shown = reporter.ok("get", f"/reports/{no}")
    assert shown["incident_id"] == INC_A and shown["owner_agencies"] == [A_CHILD]
    assert set(shown["files"]) == {*built["files"], *built["signatures"]} and shown["deliveries"] == []
    preview = reporter.ok("get", f"/reports/{no}/preview")
    assert preview["stored"] and preview["complete"] and preview["missing"] == []
    assert preview["document"]["report_no"] == no and preview["document"]["notified"] == ["isp"]
    assert preview["document"]["confidential"] is True and preview["document"]["incident_id"] == INC_A
    listed = every_page(reporter, "/reports", limit=1)
    assert [r["report_no"] for r in listed] == [no]
    assert reporter.ok("get", "/reports", params={"incident": INC_B})["items"] == []
    assert reporter.get("/reports/BC03-nothing/preview").status_code == 404


def test_missing_fields_are_listed_and_overrides_fill_them(api: Api, root: App) -> None:
    seed(root.base_store, incident("INC-EMPTY", agency=A, agencies=[A], summary="", alert_ids=[]), [])
    reporter = api.as_user("reporter")
    refused = reporter.post("/reports", {"incident": "INC-EMPTY"})
    assert refused.status_code == 400 and refused.headers["content-type"].startswith("application/problem+json")
    assert {"summary", "detection_method"} <= {m["field"] for m in refused.json()["missing"]}
    draft = reporter.ok("post", "/reports/preview", {"incident": "INC-EMPTY"})
    assert not draft["complete"] and draft["document"] is None and not draft["stored"]
    assert {m["field"] for m in draft["missing"]} == {"summary", "detection_method"}
    assert all(m["label_vi"] and m["where"] for m in draft["missing"])
    overrides = {"summary": "Dò quét cổng", "detection_method": "log_review"}
    draft = reporter.ok("post", "/reports/preview", {"incident": "INC-EMPTY", "overrides": overrides})
    assert draft["complete"] and draft["document"]["summary"] == "Dò quét cổng" and draft["missing"] == []
    assert reporter.ok("get", "/reports")["total"] == 0, "a preview stores nothing"
    assert reporter.ok("post", "/reports", {"incident": "INC-EMPTY", "overrides": overrides}, status=201)["created"]
    assert reporter.post("/reports", {"incident": INC_A, "overrides": {"nope": "x"}}).status_code == 400
    assert reporter.post("/reports", {"incident": INC_A, "overrides": {"confidential": 3}}).status_code == 400
    assert reporter.post("/reports", {"incident": "INC-NONE"}).status_code == 404
    assert reporter.post("/reports", {}).status_code == 422  # neither an incident nor a summary
    assert reporter.post("/reports", {"incident": INC_A, "summary": "monthly"}).status_code == 422


def test_sign_needs_a_key_and_is_audited(tmp_path: Path) -> None:
    unsigned = make_root(tmp_path / "u", settings_for(tmp_path / "u", signing=False))
    seed_incidents(unsigned.base_store)
    reporter = Api(unsigned).as_user("reporter")
    built = reporter.ok("post", "/reports", {"incident": INC_A}, status=201)
    assert built["signatures"] == []
    refused = reporter.post(f"/reports/{built['report_no']}/sign")
    assert refused.status_code == 400 and "reporting.certificate" in refused.json()["detail"]
    unsigned.close()
    signed = make_root(tmp_path / "s", settings_for(tmp_path / "s"))
    seed_incidents(signed.base_store)
    reporter = Api(signed).as_user("reporter")
    no = reporter.ok("post", "/reports", {"incident": INC_A}, status=201)["report_no"]
    for sig in (signed.reports.out_dir / no).glob("*.p7s"):
        sig.unlink()
    answer = reporter.ok("post", f"/reports/{no}/sign")
    assert answer["signatures"] and all((signed.reports.out_dir / no / s).is_file() for s in answer["signatures"])
    (record,) = audit_actions(signed, "report.sign")
    assert record["target"] == {"type": "report_snapshots", "id": no}
    assert record["actor"]["name"] == reporter.name and sorted(record["details"]["signatures"]) == sorted(
        answer["signatures"])
    signed.close()


def test_send_receipts_and_due(api: Api, root: App) -> None:
    reporter = api.as_user("reporter")
    due = reporter.ok("get", "/reports/due")
    assert {(r["incident_id"], r["kind"], r["state"]) for r in due["items"]} == {
        (INC_A, "initial", "not_built"), (INC_B, "initial", "not_built")}
    assert all(r["overdue"] for r in due["items"])  # discovered in 2026-11: five days are long gone
    no = reporter.ok("post", "/reports", {"incident": INC_A}, status=201)["report_no"]
    assert reporter.post(f"/reports/{no}/send", {"recipients": ["nobody"]}).status_code == 400
    sent = reporter.ok("post", f"/reports/{no}/send")
    assert sent["queued"] == [f"{no}--drop"] and [d["status"] for d in sent["deliveries"]] == ["delivered"]
    assert (root.settings.reporting.recipients[0].endpoint and Path(root.settings.reporting.recipients[0].endpoint,
                                                                    no, "receipt.json").is_file())
    again = reporter.ok("post", f"/reports/{no}/send")
    assert again["queued"] == [] and again["deliveries"] == []  # enqueued once per recipient
    receipts = reporter.ok("get", f"/reports/{no}/receipts")
    assert receipts["total"] == 1 and receipts["items"][0]["recipient"] == "drop"
    assert receipts["items"][0]["late"] is True
    shown = reporter.ok("get", f"/reports/{no}")
    assert [d["status"] for d in shown["deliveries"]] == ["delivered"] and "endpoint" not in shown["deliveries"][0]
    due = reporter.ok("get", "/reports/due")
    assert [(r["incident_id"], r["state"]) for r in due["items"]] == [(INC_B, "not_built")]
    due = reporter.ok("get", "/reports/due", params={"include_delivered": True})
    assert (INC_A, "delivered", no) in {(r["incident_id"], r["state"], r["report_no"]) for r in due["items"]}


def test_files_are_the_reports_own_and_downloads_are_audited(api: Api, root: App, tmp_path: Path) -> None:
    reporter = api.as_user("reporter")
    first = reporter.ok("post", "/reports", {"incident": INC_A}, status=201)
    other = reporter.ok("post", "/reports", {"incident": INC_B}, status=201)
    no, name = first["report_no"], first["files"][0]
    answer = reporter.get(f"/reports/{no}/files/{name}")
    assert answer.status_code == 200 and answer.content == (root.reports.out_dir / no / name).read_bytes()
    assert "attachment" in answer.headers["content-disposition"] and answer.headers["x-content-type-options"] == "nosniff"
    (record,) = audit_actions(root, "download.report")
    assert record["target"]["id"] == no and record["details"]["file"] == name and record["actor"]["name"] == reporter.name
    secret = tmp_path / "secret.txt"
    secret.write_text("not a report", encoding="utf-8")
    os.symlink(secret, root.reports.out_dir / no / f"{no}.link.json")
    for bad in ("..%2F..%2Fsecret.txt", "%2E%2E", "%2E%2E%2F%2E%2E%2Fsecret.txt", "..%5C..%5Csecret.txt", f"..%2F{other['report_no']}%2F{other['files'][0]}",
                other["files"][0], "secret.txt", f"{no}.link.json", f"{no}.json.tmp"):
        refused = reporter.get(f"/reports/{no}/files/{bad}")
        assert refused.status_code in (400, 404), bad
        assert b"not a report" not in refused.content
    assert reporter.get(f"/reports/{no}/../{other['report_no']}/files/{other['files'][0]}").status_code == 200, \
        "the client resolves dot segments before sending: that is the other report, read as itself"
    assert len(audit_actions(root, "download.report")) == 2
    shutil.rmtree(root.reports.out_dir / no)  # the folder is gone: written again from the snapshot
    assert reporter.get(f"/reports/{no}/files/{name}").content == answer.content


def test_permissions(api: Api) -> None:
    reporter, analyst, agency_user = api.as_user("reporter"), api.as_user("analyst"), api.as_user("agency", agency=A)
    no = reporter.ok("post", "/reports", {"incident": INC_A}, status=201)["report_no"]
    assert analyst.post("/reports", {"incident": INC_A}).status_code == 403  # reports:write
    assert analyst.post(f"/reports/{no}/send").status_code == 403  # reports:send
    assert agency_user.get(f"/reports/{no}/preview").status_code == 403  # reports:write
    assert agency_user.post(f"/reports/{no}/sign").status_code == 403
    assert api.as_user("responder").get("/reports/due").status_code == 200  # reports:read
    assert reporter.get("/reports").status_code == 200


# -- agency scope, on both stores -----------------------------------------------------------------------
@pytest.fixture(params=STORE_KINDS)
def any_root(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[App]:
    store = open_kind(request.param, request, tmp_path)
    app = make_root(tmp_path, settings_for(tmp_path), store=store)
    seed_incidents(store)
    try:
        yield app
    finally:
        close_kind(store)


def test_an_agency_user_sees_only_its_agencies_reports(any_root: App) -> None:
    api = Api(any_root)
    reporter = api.as_user("reporter")
    mine = reporter.ok("post", "/reports", {"incident": INC_A}, status=201)
    theirs = reporter.ok("post", "/reports", {"incident": INC_B}, status=201)
    summary = reporter.ok("post", "/reports", {"summary": "monthly", "period": "2026-11"}, status=201)
    for built in (mine, theirs):
        reporter.ok("post", f"/reports/{built['report_no']}/send")
    everything = {r["report_no"] for r in every_page(reporter, "/reports")}
    assert everything == {mine["report_no"], theirs["report_no"], summary["report_no"]}

    agency_user = api.as_user("agency", agency=A)
    listed = every_page(agency_user, "/reports", limit=1)
    assert [r["report_no"] for r in listed] == [mine["report_no"]]
    assert agency_user.ok("get", "/reports")["total"] == 1
    assert agency_user.ok("get", f"/reports/{mine['report_no']}")["incident_id"] == INC_A
    assert agency_user.ok("get", f"/reports/{mine['report_no']}/receipts")["total"] == 1
    assert agency_user.get(f"/reports/{mine['report_no']}/files/{mine['files'][0]}").status_code == 200
    for built in (theirs, summary):  # another agency's report, and the province-wide summary
        no = built["report_no"]
        assert agency_user.get(f"/reports/{no}").status_code == 404
        assert agency_user.get(f"/reports/{no}/receipts").status_code == 404
        assert agency_user.get(f"/reports/{no}/files/{built['files'][0]}").status_code == 404
    assert [r["incident_id"] for r in agency_user.ok("get", "/reports/due",
                                                     params={"include_delivered": True})["items"]] == [INC_A]
    scoped_reporter = api.as_user("reporter", agency=A)
    assert scoped_reporter.get(f"/reports/{theirs['report_no']}/preview").status_code == 404
    assert scoped_reporter.post(f"/reports/{theirs['report_no']}/send").status_code == 404
    assert scoped_reporter.post("/reports", {"incident": INC_B}).status_code == 404
    assert scoped_reporter.post("/reports", {"summary": "monthly", "period": "2026-10"}).status_code == 403
    assert scoped_reporter.ok("post", "/reports", {"incident": INC_A}, status=201)["report_no"] != mine["report_no"]


def test_reports_built_at_one_time_are_each_listed_once(api: Api, root: App) -> None:
    from soc.export import snapshot as snapshots

    for n in range(5):
        assert snapshots.save(root.base_store, {"report_no": f"R-{n}", "document": "summary_report", "kind": "monthly",
                                                "built_at": "2026-12-01T00:00:00.000Z"})
    listed = every_page(api.as_user("reporter"), "/reports", limit=2)
    assert sorted(r["report_no"] for r in listed) == [f"R-{n}" for n in range(5)]
