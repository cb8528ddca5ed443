"""The shift handover service (soc/handover.py) on both stores: the summary of what the shift
saw, did and left open -- counted inside the analyst's agency scope -- the shift window, drafts,
sign-off by the outgoing analyst, and signed handovers that never change (their digest is in
the audit trail, and a record edited behind the service's back is seen)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from soc.access import Forbidden, Principal
from soc.app import App
from soc.handover import HANDOVERS, HandoverError, HandoverNotFound, Handovers, digest_of
from soc.model import iso
from tests.api_seed_helpers import A, B, Ticking, api_fixture
from tests.scope_helpers import PARENT, STORE_KINDS

SOC = Principal("soc", frozenset({"analyst"}), None)
ANA = Principal("ana", frozenset({"analyst"}), A)
BOB = Principal("bob", frozenset({"analyst"}), B)
ADMIN = Principal("admin", frozenset({"admin"}), None)
READER = Principal("reader", frozenset({"auditor"}), None)


@pytest.fixture(scope="module", params=STORE_KINDS)
def shift(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The seeded service layer (alerts, incidents and tasks of A and B), then a shift's work:
    soc acknowledges two of B's alerts, ana closes one of A's as a false positive, a task of A
    becomes overdue, a playbook step waits for an approval."""
    for api in api_fixture(request, tmp_path_factory.mktemp("handover")):
        app = api.app
        clock = app.clock
        assert isinstance(clock, Ticking)
        seeded = api.seeded["alerts"]
        as_soc, as_ana = app.acting_as(SOC), app.acting_as(ANA)
        for alert_id in seeded[B][:2]:
            as_soc.alerts.acknowledge(SOC, alert_id)
        as_ana.alerts.close(ANA, seeded[A][0], reason="false_positive", note="máy quét của phòng CNTT")
        late = app.acting_as(Principal.local("seed")).tasks.create(
            Principal.local("seed"), agency=A, title="Vá máy chủ web", due=clock() + timedelta(minutes=5))
        app.base_store.create("playbook_approvals", "run-1:block", {
            "id": "run-1:block", "run_id": "run-1", "playbook_id": "bruteforce", "step_id": "block",
            "prompt": "Chặn IP 203.0.113.9?", "approvers": [], "status": "pending",
            "requested_at": iso(clock()), "deadline": iso(clock() + timedelta(hours=4))})
        clock.now += timedelta(hours=2)  # the task is now overdue
        app.base_store.refresh()
        yield {"api": api, "app": app, "late_task": late["id"]}


def _handovers(shift: dict[str, Any], who: Principal) -> Handovers:
    app: App = shift["app"]
    return Handovers(app.acting_as(who))


def test_the_province_analyst_sees_every_agency_s_shift(shift: dict[str, Any]) -> None:
    service = _handovers(shift, SOC)
    window = service.window()
    assert window.end - window.start == timedelta(hours=8) and window.follows is None
    summary = service.summary(window)
    alerts = summary["alerts"]
    assert alerts["detected"] == 14 and alerts["detected_by_level"] == {"high": 11, "critical": 3}
    assert alerts["changes"] == {"ack": 2, "close": 1}
    assert alerts["changes_by_person"] == {"soc": {"ack": 2}, "ana": {"close": 1}}
    assert alerts["closed_by_reason"] == {"false_positive": 1}
    assert alerts["open"] == 11 and alerts["acknowledged"] == 2
    assert sum(r["count"] for r in alerts["open_top_rules"]) == 13
    incidents = summary["incidents"]
    assert incidents["opened"] == 2 and incidents["touched"] == 2
    assert {i["title"] for i in incidents["touched_list"]} == {"Incident of A", "Incident of B"}
    assert summary["approvals"]["pending"] == 1 and summary["approvals"]["list"][0]["prompt"] == "Chặn IP 203.0.113.9?"
    tasks = summary["tasks"]
    assert tasks["open"] == 3 and tasks["overdue"] == 1
    assert tasks["list"][0]["id"] == shift["late_task"] and tasks["list"][0]["overdue"]  # overdue first
    assert summary["reports_due"]["due"] == 2 and summary["reports_due"]["overdue"] == 0
    assert summary["my_actions"].get("alerts.update") == 2  # soc's own two acknowledgements
    assert summary["hidden"] == []


def test_an_agency_analyst_s_summary_holds_only_their_agencies(shift: dict[str, Any]) -> None:
    service = _handovers(shift, ANA)
    summary = service.summary(service.window())
    alerts = summary["alerts"]
    assert alerts["detected"] == 8 and alerts["detected_by_level"] == {"high": 6, "critical": 2}
    assert alerts["changes_by_person"] == {"ana": {"close": 1}}  # soc's acknowledgements were of B's alerts
    assert alerts["acknowledged"] == 0 and alerts["open"] == 7
    assert [i["title"] for i in summary["incidents"]["touched_list"]] == ["Incident of A"]
    assert summary["approvals"] == {"pending": 0, "list": [], "scoped": True}  # playbook runs belong to no agency
    assert summary["tasks"]["open"] == 2 and summary["reports_due"]["due"] == 1
    assert json.dumps(summary, ensure_ascii=False).count("Incident of B") == 0
    assert summary["my_actions"].get("alerts.update") == 1


def test_parts_the_analyst_may_not_read_are_left_out(shift: dict[str, Any]) -> None:
    agency_user = Principal("it-a", frozenset({"agency"}), A)
    summary = _handovers(shift, agency_user).summary(_handovers(shift, agency_user).window())
    assert set(summary["hidden"]) == {"approvals"} and "approvals" not in summary
    with pytest.raises(Forbidden):
        _handovers(shift, agency_user).save(_handovers(shift, agency_user).window(), note="x", sign=True)
    with pytest.raises(Forbidden):
        _handovers(shift, READER).save(_handovers(shift, READER).window(), note="x")


def test_windows_are_checked(shift: dict[str, Any]) -> None:
    service = _handovers(shift, BOB)
    with pytest.raises(HandoverError, match="at most 7 days"):
        service.window("10d")
    with pytest.raises(ValueError):
        service.window("2h", "3h")  # since is not before until
    given = service.window("2026-12-07", "2026-12-07T06:00")
    assert (iso(given.start), iso(given.end)) == ("2026-12-06T17:00:00.000Z", "2026-12-06T23:00:00.000Z")


def test_a_draft_is_changed_by_its_author_then_signed_and_never_changed_again(shift: dict[str, Any]) -> None:
    service = _handovers(shift, BOB)
    window = service.window()
    draft = service.save(window, note="Theo dõi IP 203.0.113.9", incoming="lan")
    assert draft["status"] == "draft" and draft["digest"] is None and draft["agency"] == B
    assert service.draft()["id"] == draft["id"]
    with pytest.raises((Forbidden, HandoverNotFound)):  # another user cannot change it (nor see it: A is not B)
        _handovers(shift, ANA).save(window, note="x", handover_id=draft["id"])
    changed = service.save(window, note="Theo dõi IP 203.0.113.9\r\nGọi anh Nam lúc 8h", incoming="lan",
                           handover_id=draft["id"])
    assert changed["note"] == "Theo dõi IP 203.0.113.9\nGọi anh Nam lúc 8h" and changed["id"] == draft["id"]
    signed = service.save(window, note=changed["note"], incoming="lan", sign=True, handover_id=draft["id"])
    assert signed["status"] == "signed" and signed["digest"] == digest_of(signed) and signed["outgoing"] == "bob"
    assert service.draft() is None
    with pytest.raises(HandoverError, match="never changed"):
        service.save(window, note="sửa lại", handover_id=draft["id"])
    stored = service.get(signed["id"])
    assert stored["note"] == changed["note"] and stored["summary"]["alerts"]["detected"] == 5
    # the next shift starts where this one ended
    later = service.window()
    assert later.start == window.end and later.follows == signed["id"]


def test_the_sign_off_is_audited_under_the_analyst_and_a_tampered_record_is_seen(shift: dict[str, Any]) -> None:
    service = _handovers(shift, SOC)
    signed = service.save(service.window(), note="Ca đêm bình thường", sign=True)
    admin = _handovers(shift, ADMIN)
    record = admin.get(signed["id"])
    check = admin.check(record)
    assert check["intact"] and check["audit_agrees"] and check["audit_seq"]
    trail = shift["app"].audit
    entry = trail.get(check["audit_seq"])
    assert entry.actor.label == "soc" and entry.action == "handovers.create"
    assert entry.details["values"]["digest"]["new"] == signed["digest"]
    store = shift["app"].base_store
    doc = store.get(HANDOVERS, signed["id"])
    store.put(HANDOVERS, signed["id"], {**doc.body, "note": "Ca đêm có sự cố"})  # edited behind the service
    store.refresh()
    edited = admin.check(admin.get(signed["id"]))
    assert not edited["intact"] and edited["audit_agrees"]
    forged = {**doc.body, "note": "Ca đêm có sự cố"}
    store.put(HANDOVERS, signed["id"], {**forged, "digest": digest_of(forged)})  # digest recomputed too
    store.refresh()
    recomputed = admin.check(admin.get(signed["id"]))
    assert recomputed["intact"] and recomputed["audit_agrees"] is False  # the audit trail still has the original


def test_handovers_are_seen_only_within_the_scope(shift: dict[str, Any]) -> None:
    mine = _handovers(shift, ANA)
    signed = mine.save(mine.window(), note="ca của xã A", sign=True)
    shift["app"].base_store.refresh()
    with pytest.raises(HandoverNotFound):
        _handovers(shift, BOB).get(signed["id"])
    parent = Principal("so-x-analyst", frozenset({"analyst"}), PARENT)
    assert _handovers(shift, parent).get(signed["id"])["note"] == "ca của xã A"
    assert signed["id"] in {d.id for d in _handovers(shift, SOC).list(limit=50).docs}
    assert signed["id"] not in {d.id for d in _handovers(shift, BOB).list(limit=50).docs}
    province = _handovers(shift, SOC).save(_handovers(shift, SOC).window(), note="toàn tỉnh", sign=True)
    shift["app"].base_store.refresh()
    with pytest.raises(HandoverNotFound):
        mine.get(province["id"])
    assert mine.window().follows == signed["id"]  # a province handover does not end an agency's shift
