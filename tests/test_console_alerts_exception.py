"""A false positive becomes a detection exception from the queue, on real logs: the brute-force
correlation over loghub's OpenSSH_2k.log, the console's proposal and preview, the exception added
with its owner, reason and expiry, the matching alerts closed -- and the preview's count is what
the detection engine then holds back when the same logs are detected again."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from soc.detect.compiler import RuleSet, compile_rules
from soc.detect.engine import ALERTS, DetectionEngine
from soc.detect.rules import load_rules
from soc.detect.suppressions import AUDIT, ActiveExceptions
from soc.hunt import ingest_files
from soc.store.base import Window
from soc.store.sqlite import SQLiteStore
from tests.api_seed_helpers import A, Api, build_api
from tests.conftest import ROOT, shared
from tests.console_alert_helpers import console, csrf, statuses

BRUTE_FORCE = "0b8e3f4c-2a6d-4e71-8c1f-5d9b7a3e6c21"
RULES = ROOT / "detections" / "linux" / "ssh" / "ssh_brute_force.yml"
EVERYTHING = Window(None, None, "@timestamp")


@pytest.fixture(scope="module")
def ruleset() -> RuleSet:
    return compile_rules(load_rules([RULES]))


def _detected(path: Path, ruleset: RuleSet, **engine: object) -> tuple[SQLiteStore, object]:
    store = SQLiteStore(path)
    ingest_files(store, [shared("loghub", "OpenSSH", "OpenSSH_2k.log")], fmt="auto", timezone="UTC", agency=A,
                 progress=False)
    result = DetectionEngine(store, ruleset, **engine).run(ruleset.detections[BRUTE_FORCE], EVERYTHING)  # type: ignore[arg-type]
    return store, result


@pytest.fixture
def api(tmp_path: Path, ruleset: RuleSet) -> Iterator[Api]:
    store, _ = _detected(tmp_path / "soc.db", ruleset)
    made = build_api(store, tmp_path)
    yield made
    for client in made.clients.values():
        client.close()
    store.close()


def test_the_preview_counts_what_the_exception_then_holds_back(api: Api, ruleset: RuleSet, tmp_path: Path) -> None:
    alerts = [d.body for d in api.store.find(ALERTS, {"rule.id": BRUTE_FORCE}, limit=10_000)]
    per_source = Counter(a["group"]["source.ip"] for a in alerts)
    noisy, expected = per_source.most_common(1)[0]
    assert expected >= 2 and len(per_source) >= 5
    soc = console(api, "soc")
    chosen = [a["id"] for a in alerts if a["group"]["source.ip"] == noisy][:2]
    # from the queue's bulk form to the exception page, with the selection
    queue = soc.get("/alerts").text
    answer = soc.post("/alerts-queue/bulk", data={"csrf_token": csrf(queue), "action": "exception", "id": chosen,
                                                  "back": "/alerts?status=open"}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/alerts-queue/exception?")
    page = soc.get(answer.headers["location"])
    assert page.status_code == 200 and "Cảnh báo nhầm → ngoại lệ" in page.text
    # the values the selection shares are proposed and ticked: the agency and the source address
    assert f'value="source.ip={noisy}" checked' in page.text and f'value="agency={A}" checked' in page.text
    assert f"Ngoại lệ khớp với {expected} cảnh báo trước đây của quy tắc này" in page.text
    # only the address: the same count (every alert of this data is agency A's)
    preview = soc.post("/alerts-queue/exception/preview", data={
        "csrf_token": csrf(page.text), "id": chosen, "rule": BRUTE_FORCE, "cond": [f"source.ip={noisy}"],
        "back": "/alerts?status=open"})
    assert f"Ngoại lệ khớp với {expected} cảnh báo trước đây" in preview.text
    assert f"{expected} chưa đóng" in preview.text and f"quy tắc có {len(alerts)} cảnh báo" in preview.text
    # a condition on a field the alerts do not record is said not to be counted
    other = soc.post("/alerts-queue/exception/preview", data={
        "csrf_token": csrf(page.text), "id": chosen, "rule": BRUTE_FORCE, "cond": [f"source.ip={noisy}"],
        "custom_field": "url.path", "custom_op": "wildcard", "custom_value": "/admin*"})
    assert "Chưa được đếm: cảnh báo không lưu url.path" in other.text
    # add it, closing the matching alerts as false positives
    added = soc.post("/alerts-queue/exception", data={
        "csrf_token": csrf(page.text), "rule": BRUTE_FORCE, "cond": [f"source.ip={noisy}"], "owner": "Tổ CNTT Xã A",
        "reason": "máy quét lỗ hổng của tổ CNTT", "expires": "30d", "close": "1", "back": "/alerts?status=open"},
        follow_redirects=False)
    assert added.status_code == 303, added.text
    notice = dict(parse_qsl(urlsplit(added.headers["location"]).query))
    assert notice["status"] == "open" and notice["exception"].startswith("exc-") and notice["closed_job"]
    exception = api.app.exceptions.get(notice["exception"])
    assert exception is not None and exception.scope.value == BRUTE_FORCE and exception.owner == "Tổ CNTT Xã A"
    assert [c.model_dump() for c in exception.conditions] == [{"field": "source.ip", "op": "equals", "value": noisy}]
    assert exception.expires_at is not None and exception.created_by == "soc"
    assert [d.body["actor"] for d in api.store.find(AUDIT, {"exception_id": exception.id})] == ["soc"]
    theirs = [a["id"] for a in alerts if a["group"]["source.ip"] == noisy]
    assert set(statuses(api, theirs).values()) == {"closed"}
    assert set(statuses(api, [a["id"] for a in alerts if a["id"] not in theirs]).values()) == {"open"}
    closed = api.store.get(ALERTS, theirs[0])
    assert closed is not None and closed.body["close_reason"] == "false_positive"
    assert exception.id in closed.body["close_note"] and closed.body["closed_by"] == "soc"
    shown = soc.get(added.headers["location"]).text
    assert f"Đã thêm ngoại lệ {exception.id}" in shown and f"{expected} đã thay đổi" in shown
    # the same logs detected again with the exception in force: exactly the previewed alerts held back
    again, result = _detected(tmp_path / "again.db", ruleset, suppress=ActiveExceptions(api.store))
    assert result.suppressed == expected and result.suppressed_by == {exception.id: expected}  # type: ignore[attr-defined]
    again.close()


def test_who_may_turn_alerts_into_exceptions(api: Api) -> None:
    alert = api.store.find(ALERTS, {"rule.id": BRUTE_FORCE}, limit=1)[0]
    # an agency's analyst may not: exceptions apply to every agency
    refused = console(api, "ana").get(f"/alerts-queue/exception?id={alert.id}")
    assert refused.status_code == 400 and "chỉ SOC của tỉnh" in refused.text
    # an auditor reads, changes nothing
    assert console(api, "reader").get(f"/alerts-queue/exception?id={alert.id}").status_code == 403
    soc = console(api, "soc")
    page = soc.get(f"/alerts-queue/exception?id={alert.id}").text
    for missing in ({"reason": ""}, {"cond": []}):
        form = {"csrf_token": csrf(page), "rule": BRUTE_FORCE, "cond": [f"agency={A}"], "owner": "soc",
                "reason": "thử", **missing}
        answer = soc.post("/alerts-queue/exception", data=form, follow_redirects=False)
        assert answer.status_code == 400
    assert api.app.exceptions.list() == []
    # the queue offers the action to those who may take it only
    assert "Cảnh báo nhầm → ngoại lệ…" in soc.get("/alerts").text
    assert "Cảnh báo nhầm → ngoại lệ…" not in console(api, "ana").get("/alerts").text
