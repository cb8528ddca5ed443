"""The audit trail pages (/audit): records with filters (actor, action, object, time) in keyset
pages, one record with its own checks, and the verification of the chain -- intact, or the
first broken record named and linked. Auditors and administrators who see every agency only."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from soc.access import Principal
from soc.app import App
from soc.audit import AUDIT
from tests.api_fixtures import make_root
from tests.scope_helpers import A
from tests.test_console_admin import Console

SEQ = re.compile(r'<a href="/audit/(\d+)">')


@pytest.fixture
def root(tmp_path: Path) -> App:
    root = make_root(tmp_path)
    system = Principal.system("scheduler")
    for i in range(60):
        root.audit.record(system, "rule.run", ("rule_state", f"r-{i % 3}"), {"hits": i})
    root.audit.record(Principal("minh", frozenset({"analyst"})), "alerts.update", ("alerts", "al-1"),
                      {"note": "<script>alert(1)</script>\"><img src=x onerror=alert(1)>"})
    return root


@pytest.fixture
def auditor(root: App) -> Console:
    return Console(root, "kiemtoan", ["auditor"])


def test_records_newest_first_in_keyset_pages_without_repeats(root: App, auditor: Console) -> None:
    first = auditor.get("/audit")
    assert first.status_code == 200 and "Nhật ký kiểm toán" in first.text
    seqs = [int(s) for s in SEQ.findall(first.text)]
    assert len(seqs) == 50 and seqs == sorted(seqs, reverse=True)
    following = re.search(r'href="(/audit\?cursor=[^"]+)"', first.text)
    assert following
    second = [int(s) for s in SEQ.findall(auditor.get(following.group(1).replace("&amp;", "&")).text)]
    head = root.audit.head().seq
    assert sorted(seqs + second, reverse=True) == list(range(head, 0, -1))  # every record once


def test_filters_by_actor_action_object_and_time(root: App, auditor: Console) -> None:
    by_object = auditor.get("/audit?object=rule_state/r-1").text
    assert len(SEQ.findall(by_object)) == 20 and "rule_state/r-1" in by_object
    assert len(SEQ.findall(auditor.get("/audit?object=rule_state/").text)) == 50  # every object of a type
    by_actor = auditor.get("/audit?actor=minh").text
    assert len(SEQ.findall(by_actor)) == 1 and "alerts/al-1" in by_actor
    assert len(SEQ.findall(auditor.get("/audit?action=user.added").text)) == 1  # the auditor's own account
    assert len(SEQ.findall(auditor.get("/audit?since=2000-01-01&until=2000-01-02").text)) == 0
    refused = auditor.get("/audit?since=yesterday-ish")
    assert refused.status_code == 400


def test_text_from_records_is_shown_as_text(auditor: Console) -> None:
    page = auditor.get("/audit?actor=minh").text
    assert "<script>alert(1)" not in page and "<img src=x" not in page
    seq = SEQ.findall(page)[0]
    record = auditor.get(f"/audit/{seq}").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in record and "<img src=x" not in record
    assert "nội dung khớp mã băm" in record and "nối đúng bản ghi liền trước" in record


def test_the_verification_says_intact_then_names_the_first_broken_record(root: App, auditor: Console) -> None:
    intact = auditor.get("/audit/verify").text
    assert 'data-ok="true"' in intact and "Chuỗi nguyên vẹn" in intact
    store = root.base_store
    doc = store.get(AUDIT, "000000000017")
    assert doc is not None
    store.put(AUDIT, doc.id, {**doc.body, "action": "rule.skipped"})  # edited behind the trail
    broken = auditor.get("/audit/verify").text
    assert 'data-ok="false"' in broken and "Chuỗi bị phá vỡ" in broken
    assert re.search(r'Lỗi đầu tiên: <a href="/audit/17">', broken)  # the first broken record, linked
    assert "record 17 was edited" in broken
    record = auditor.get("/audit/17").text
    assert "nội dung không khớp mã băm: đã bị sửa" in record


@pytest.mark.parametrize(("roles", "agency"), [(["analyst"], None), (["auditor"], A), (["admin"], A),
                                               (["responder", "reporter"], None)])
def test_only_auditors_and_administrators_of_every_agency_read_it(root: App, roles: list[str],
                                                                  agency: str | None) -> None:
    other = Console(root, "khac", roles, agency=agency)
    for path in ("/audit", "/audit/verify", "/audit/1"):
        answer = other.get(path)
        assert answer.status_code == 403 and "rule.run" not in answer.text, path
    assert Console(root, "quantri", ["admin"]).get("/audit/verify").status_code == 200


def test_an_unknown_record_is_the_not_found_page(auditor: Console) -> None:
    for path in ("/audit/999999", "/audit/abc", "/audit/0"):
        assert auditor.get(path).status_code == 404, path
