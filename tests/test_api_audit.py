"""The audit-trail routes of the API (issue #10, item 5) on SQLite: records newest first in
keyset pages with filters, the verification of the chain (which names an edited record), and the
export as JSON lines with the verification last -- itself recorded as ``export.audit``. Only
principals that see every agency read the trail."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from soc.app import App
from soc.audit import AUDIT, record_hash
from tests.api_fixtures import Api, every_page, make_root
from tests.scope_helpers import A


@pytest.fixture
def root(tmp_path: Path) -> Iterator[App]:
    app = make_root(tmp_path)
    yield app
    app.close()


@pytest.fixture
def api(root: App) -> Api:
    return Api(root)


def test_records_newest_first_in_pages_with_filters(api: Api, root: App) -> None:
    auditor, analyst = api.as_user("auditor"), api.as_user("analyst")
    for n in range(3):
        analyst.ok("post", "/exceptions", {"scope": {"kind": "rule", "value": f"r{n}"}, "owner": "o",
                                           "reason": "r"}, status=201)
    root.base_store.refresh()
    everything = [r.seq for r in root.audit.records()]
    listed = every_page(auditor, "/audit", limit=2)
    assert [r["seq"] for r in listed] == sorted(everything, reverse=True), "newest first, none repeated or missed"
    assert isinstance(listed[0]["details"], dict) and listed[0]["hash"]
    page = auditor.ok("get", "/audit", params={"action": "exceptions.create"})
    assert page["total"] == 3 and page["total_exact"] and {r["actor"]["name"] for r in page["items"]} == {analyst.name}
    page = auditor.ok("get", "/audit", params={"actor": analyst.name, "limit": 4})  # each exception and its entry
    assert page["total"] == 6 and len(page["items"]) == 4 and page["next"]
    rest = auditor.ok("get", "/audit", params={"actor": analyst.name, "limit": 4, "cursor": page["next"]})
    assert len(rest["items"]) == 2 and rest["next"] is None and rest["total"] == 6
    assert {r["seq"] for r in page["items"]}.isdisjoint(r["seq"] for r in rest["items"])
    assert auditor.ok("get", "/audit", params={"action": ["user.added", "token.created"]})["total"] == 4
    assert auditor.ok("get", "/audit", params={"until": "2020-01-01"})["items"] == []
    assert auditor.ok("get", "/audit", params={"since": "1h", "action": "exceptions.create"})["total"] == 3
    assert auditor.get("/audit", params={"since": "whenever"}).status_code == 400
    assert auditor.get("/audit", params={"cursor": "x"}).status_code == 400


def test_verify_names_an_edited_record(api: Api, root: App) -> None:
    auditor = api.as_user("auditor")
    result = auditor.ok("get", "/audit/verify")
    assert result["ok"] and result["records"] >= 2 and result["problems"] == []
    doc = root.base_store.get(AUDIT, "000000000002")
    assert doc is not None
    root.base_store.put(AUDIT, doc.id, {**doc.body, "action": "nothing.happened"})
    result = auditor.ok("get", "/audit/verify")
    assert not result["ok"] and result["problems"][0]["seq"] == 2 and result["problems"][0]["kind"] == "edited"
    assert auditor.get("/audit/verify", params={"checkpoint": "not a checkpoint"}).status_code == 400


def test_export_is_json_lines_with_the_verification_and_is_recorded(api: Api, root: App) -> None:
    auditor = api.as_user("auditor")
    root.base_store.refresh()
    before = [r.seq for r in root.audit.records()]
    answer = api.client.get("/api/v1/audit/export", headers=auditor.headers)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/x-ndjson")
    assert "attachment" in answer.headers["content-disposition"]
    lines = [json.loads(line) for line in answer.text.splitlines()]
    records, last = lines[:-1], lines[-1]
    assert [r["seq"] for r in records] == before
    assert all(record_hash(r) == r["hash"] for r in records) and records[1]["prev"] == records[0]["hash"]
    assert last["verification"]["ok"] is True and last["export"]["records"] == len(before)
    assert last["export"]["by"] == f"{auditor.name} (token api-test)"
    exported = auditor.ok("get", "/audit", params={"action": "export.audit"})["items"]
    assert len(exported) == 1 and exported[0]["details"]["records"] == len(before)
    assert exported[0]["actor"]["name"] == auditor.name
    window = api.client.get("/api/v1/audit/export", params={"since": "2020-01-01", "until": "2020-01-02"},
                            headers=auditor.headers)
    assert [json.loads(line) for line in window.text.splitlines()][0]["export"]["records"] == 0


def test_only_principals_that_see_every_agency_read_the_trail(api: Api) -> None:
    scoped = api.as_user("auditor", agency=A)
    for path in ("/audit", "/audit/verify", "/audit/export"):
        refused = scoped.get(path)
        assert refused.status_code == 403 and "belongs to no agency" in refused.json()["detail"], path
    analyst = api.as_user("analyst")
    for path in ("/audit", "/audit/verify", "/audit/export"):
        assert analyst.get(path).status_code == 403, path  # audit:read
    assert api.as_user("admin").get("/audit").status_code == 200


def test_pages_of_records_that_share_one_time(api: Api, root: App) -> None:
    """Many records in one millisecond: the cursor (time and sequence number) still gives every
    record once."""
    from datetime import UTC, datetime

    from soc.audit import AuditTrail

    auditor = api.as_user("auditor")
    same = datetime(2026, 12, 7, 1, 30, tzinfo=UTC)
    trail = AuditTrail(root.base_store, clock=lambda: same)
    for n in range(7):
        trail.record("tester", "test.same-time", ("things", str(n)))
    listed = every_page(auditor, "/audit", limit=2, action="test.same-time")
    assert [r["target"]["id"] for r in listed] == [str(n) for n in reversed(range(7))]
    assert {r["at"] for r in listed} == {"2026-12-07T01:30:00.000Z"}
