"""Periodic summaries: a monthly monitoring summary and Mẫu 05 whose counts match counts computed
independently here from the stored alerts, incidents and events; scheduling is idempotent."""

from __future__ import annotations

import datetime as dt
import io
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import stix2
from apscheduler.schedulers.background import BackgroundScheduler
from docx import Document

from soc.export.incident_report import parse_overrides
from soc.export.periods import parse_period
from soc.export.reports import Reports
from soc.export.schedule import build_and_enqueue_summary, register_report_jobs
from soc.export.snapshot import SNAPSHOTS
from soc.incidents.model import INCIDENT_TYPES, AffectedSystem
from soc.store import open_store
from soc.store.base import Store
from tests.test_export_fixtures import alert, incident, make_settings, seed

# November 2026 in Asia/Ho_Chi_Minh, in UTC
NOV = ("2026-10-31T17:00:00.000Z", "2026-11-30T17:00:00.000Z")
H2 = ("2026-06-30T17:00:00.000Z", "2026-12-31T17:00:00.000Z")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(f"sqlite:///{tmp_path / 'soc.db'}")
    yield s
    s.close()


def within(ts: str | None, span: tuple[str, str]) -> bool:
    return bool(ts) and span[0] <= ts < span[1]  # type: ignore[operator]


def populate(store: Store, settings: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    high_system = AffectedSystem(name="Hệ thống một cửa điện tử", level=4, operator="Sở Tài chính")
    incidents = [
        incident("I1", discovered="2026-11-03T02:00:00.000Z", first_seen="2026-11-03T01:30:00.000Z",
                 status="closed", closed_at="2026-11-05T00:00:00.000Z", response_ended_at="2026-11-04T02:00:00.000Z",
                 alert_ids=["A1", "A2"]),
        incident("I2", discovered="2026-11-10T05:00:00.000Z", first_seen="2026-11-10T04:00:00.000Z",
                 incident_type="malware", severity="critical", agency="so-tc", status="triage",
                 affected_systems=[high_system], impacts=["service_interrupted"], alert_ids=["A3"]),
        incident("I3", discovered="2026-11-20T05:00:00.000Z", incident_type="scan", severity="medium",
                 verdict="false_positive", status="closed", closed_at="2026-11-21T00:00:00.000Z", alert_ids=[]),
        incident("I4", discovered="2026-10-31T16:30:00.000Z", first_seen="2026-10-31T16:00:00.000Z", alert_ids=[]),
        incident("I5", discovered="2026-11-30T17:30:00.000Z", first_seen="2026-11-30T17:00:00.000Z",
                 incident_type="ransomware", alert_ids=[]),
        incident("I6", discovered="2026-11-15T05:00:00.000Z", incident_type="dos", merged_into="I1", alert_ids=[]),
        incident("I7", discovered="2026-11-25T05:00:00.000Z", first_seen="2026-11-25T03:00:00.000Z",
                 incident_type="defacement", severity="medium", agency="ubnd-huyen-a", status="resolved",
                 response_ended_at="2026-11-26T05:00:00.000Z", alert_ids=[]),
        incident("I8", discovered="2026-11-26T05:00:00.000Z", first_seen="2026-11-26T04:00:00.000Z",
                 incident_type="vulnerable", severity="low", status="new", alert_ids=[]),
    ]
    alerts = [
        alert("A1", first="2026-11-03T01:30:00.000Z", level="high", incident="I1"),
        alert("A2", first="2026-11-03T01:45:00.000Z", level="high", src="198.51.100.7", incident="I1"),
        alert("A3", first="2026-11-10T04:00:00.000Z", level="critical", agency="so-tc", host="mc01",
              src="198.51.100.7", incident="I2"),
        alert("A4", first="2026-11-12T04:00:00.000Z", level="medium", agency="ubnd-xa-a1", host="pc-xa",
              src="192.0.2.10"),
        alert("A5", first="2026-11-28T04:00:00.000Z", level="low", src="198.51.100.7", host="mc01"),
        alert("A6", first="2026-10-30T04:00:00.000Z", level="high"),  # October
        alert("A7", first="2026-11-30T17:05:00.000Z", level="high"),  # 1 December local time
    ]
    for inc in incidents:
        seed(store, inc, alerts=[])
    for body in alerts:
        store.create("alerts", body["id"], body)
    events = []
    for n, (ts, agency, host) in enumerate([
            ("2026-10-05T01:00:00.000Z", "so-tttt", "web01"), ("2026-10-06T01:00:00.000Z", "ubnd-xa-a1", "pc-xa"),
            ("2026-10-07T01:00:00.000Z", "ubnd-xa-a1", "pc-xa"), ("2026-10-08T01:00:00.000Z", "so-tc", "mc02"),
            ("2026-11-05T01:00:00.000Z", "so-tttt", "web01"), ("2026-11-06T01:00:00.000Z", "so-tc", "mc01"),
            ("2026-11-07T01:00:00.000Z", "so-tttt", "web01")]):
        events.append({"_id": f"ev-{n}", "@timestamp": ts, "event.dataset": "linux.sshd", "organization.id": agency,
                       "host.name": host, "message": "x"})
    assert store.write_events(events).created == len(events)
    # I7 was handled with help from domestic organisations, recorded with its report
    Reports(store, settings).build_incident("I7", "initial", overrides=parse_overrides(
        ["handled_by=domestic", "helpers=VNCERT/CC; Viettel Cyber Security", "est_damage_vnd=20000000",
         "detection_method=notified_by", "detection_notified_by=VNCERT/CC"]),
        built_at=dt.datetime(2026, 11, 26, tzinfo=dt.UTC))
    store.refresh()
    return [d.body for d in store.iter_all("incidents")], [d.body for d in store.iter_all("alerts")]


def expected_rows(incidents: list[dict[str, Any]], span: tuple[str, str]) -> dict[str, Counter[str]]:
    """Mẫu 05 computed from scratch: row -> column counts."""
    rows: dict[str, Counter[str]] = {}
    for inc in incidents:
        if not within(inc["discovered_at"], span) or inc.get("merged_into") or inc.get("verdict") == "false_positive":
            continue
        row = rows.setdefault(INCIDENT_TYPES[inc["incident_type"]][2], Counter())
        row["count"] += 1
        if inc["id"] == "I7":
            row["domestic_support"] += 1
            row["est_damage_vnd"] += 20000000
        elif inc["status"] in ("resolved", "closed"):
            row["self_handled"] += 1
    return rows


def test_monthly_summary_counts_match_an_independent_count(tmp_path: Path, store: Store) -> None:
    settings = make_settings(tmp_path, signing=False, default_profile="vn.mps.a05-2025")
    incidents, alerts = populate(store, settings)
    built = Reports(store, settings).build_summary("monthly", "2026-11", built_at=dt.datetime(2026, 12, 1, 2, tzinfo=dt.UTC))
    assert built.report_no == "TH-NA-01-monthly-2026-11" and built.document == "monitoring_summary"
    data = json.loads((built.directory / f"{built.report_no}.json").read_bytes())
    assert data["period"] == {"type": "monthly", "label": "2026-11", "start": "2026-11-01T00:00:00+07:00",
                              "end": "2026-12-01T00:00:00+07:00", "tz": "Asia/Ho_Chi_Minh"}
    assert data["profile_id"] == "vn.mps.a05-2025" and data["legal_basis"]

    nov_alerts = [a for a in alerts if within(a["first_seen"], NOV)]
    assert data["alerts"]["total"] == len(nov_alerts) == 5
    assert data["alerts"]["by_severity"] == dict(Counter(a["rule"]["level"] for a in nov_alerts))
    assert data["alerts"]["by_agency"] == dict(Counter(a["agency"] for a in nov_alerts))
    inc_type = {a: i["incident_type"] for i in incidents for a in i["alert_ids"]}
    assert data["alerts"]["by_type"] == dict(Counter(inc_type.get(a["id"], "unassigned") for a in nov_alerts))

    opened = [i for i in incidents if within(i["discovered_at"], NOV) and not i.get("merged_into")
              and i.get("verdict") != "false_positive"]
    assert sorted(i["id"] for i in opened) == ["I1", "I2", "I7", "I8"]
    s = data["incidents"]
    assert s["opened"] == len(opened)
    assert s["closed"] == sum(1 for i in incidents if within(i.get("closed_at"), NOV) and not i.get("merged_into"))
    assert s["by_type"] == dict(Counter(i["incident_type"] for i in opened))
    assert s["by_severity"] == dict(Counter(i["severity"] for i in opened))
    assert s["by_agency"] == dict(Counter(i["agency"] for i in opened))
    assert s["serious"] == 1
    mttd = [(dt.datetime.fromisoformat(i["discovered_at"]) - dt.datetime.fromisoformat(i["first_seen"])).total_seconds() / 60
            for i in opened]
    assert s["mttd_minutes"] == round(sum(mttd) / len(mttd), 2)
    ended = [i for i in incidents if within(i.get("response_ended_at"), NOV) and not i.get("merged_into")]
    mttr = [(dt.datetime.fromisoformat(i["response_ended_at"]) - dt.datetime.fromisoformat(i["discovered_at"])
             ).total_seconds() / 3600 for i in ended]
    assert s["mttr_hours"] == round(sum(mttr) / len(mttr), 2)
    open_at_end = [i for i in incidents if i["discovered_at"] < NOV[1] and not i.get("merged_into")
                   and not (i.get("closed_at") and i["closed_at"] < NOV[1])]
    assert s["open_at_end"] == len(open_at_end)
    rows = expected_rows(incidents, NOV)
    assert {r["code"]: {k: v for k, v in r.items() if k not in ("code", "label") and v} for r in s["by_type_handling"]} \
        == {code: dict(c) for code, c in rows.items()}

    sources = Counter(ip for a in nov_alerts for ip in set(a["entities"]["source.ip"]))
    assert data["top_sources"][0] == {"value": "198.51.100.7", "hits": sources["198.51.100.7"]}
    assert {t["value"]: t["hits"] for t in data["top_targets"]} == dict(
        Counter(h for a in nov_alerts for h in set(a["entities"]["host.name"])))
    logs = data["log_sources"]
    assert (logs["events_total"], logs["events_previous"]) == (3, 4)
    assert logs["by_agency"] == {"so-tc": 1, "so-tttt": 2}
    assert {(x["field"], x["value"], x["previous_count"]) for x in logs["silent"]} == {
        ("organization.id", "ubnd-xa-a1", 2), ("host.name", "pc-xa", 2), ("host.name", "mc02", 1)}

    doc = Document(io.BytesIO((built.directory / f"{built.report_no}.docx").read_bytes()))
    text = "\n".join(p.text for p in doc.paragraphs)
    assert "BÁO CÁO TỔNG HỢP TÌNH HÌNH GIÁM SÁT AN TOÀN THÔNG TIN" in text
    bundle = stix2.parse((built.directory / f"{built.report_no}.stix.json").read_text(), allow_custom=True)
    report = next(o for o in bundle.objects if o.type == "report")
    assert report.report_types == ["x-vn-periodic-summary"]
    (extension,) = report.extensions.values()
    assert extension["summary"]["alerts"] == data["alerts"]
    assert "indicator--" in " ".join(report.object_refs)
    # regenerated from the stored snapshot after the store changed: the same bytes
    before = {p.name: p.read_bytes() for p in built.files}
    store.put("incidents", "I8", {**store.get("incidents", "I8").body, "severity": "critical"})
    again = Reports(store, settings).render(built.report_no, tmp_path / "again")
    assert {p.name: p.read_bytes() for p in again.files} == before
    assert Reports(store, settings).build_summary("monthly", "2026-11").created is False  # idempotent
    assert "Nguồn ngừng gửi nhật ký" in text


def test_mau05_semiannual_table_matches_an_independent_count(tmp_path: Path, store: Store) -> None:
    settings = make_settings(tmp_path, signing=False)
    incidents, _alerts = populate(store, settings)
    built = Reports(store, settings).build_summary("semiannual", "2026-H2", built_at=dt.datetime(2027, 1, 1, tzinfo=dt.UTC))
    data = json.loads((built.directory / f"{built.report_no}.json").read_bytes())
    assert data["form"] == "Mẫu 05" and data["organisation"]["member_code"] == "NA-01"
    assert [r["label"] for r in data["rows"]] == [
        "Từ chối dịch vụ", "Tấn công giả mạo", "Tấn công sử dụng mã độc", "Truy cập trái phép, chiếm quyền điều khiển",
        "Thay đổi giao diện", "Mã hóa phần mềm, dữ liệu, thiết bị", "Phá hoại thông tin, dữ liệu, phần mềm",
        "Nghe trộm, gián điệp, lấy cắp thông tin, dữ liệu", "Tấn công tổng hợp (nhiều hình thức)",
        "Các hình thức tấn công khác"]
    rows = expected_rows(incidents, H2)
    columns = ("count", "self_handled", "domestic_support", "foreign_support", "vncert_support_requested",
               "est_damage_vnd")
    for row in data["rows"]:
        assert {k: row[k] for k in columns} == {k: rows.get(row["code"], Counter())[k] for k in columns}, row["code"]
    assert data["total"]["count"] == sum(c["count"] for c in rows.values()) == 6  # I1 I2 I4 I5 I7 I8
    assert data["total"]["est_damage_vnd"] == 20000000
    assert data["domestic_helpers"] == ["VNCERT/CC", "Viettel Cyber Security"]
    doc = Document(io.BytesIO((built.directory / f"{built.report_no}.docx").read_bytes()))
    text = "\n".join(p.text for p in doc.paragraphs)
    assert "BÁO CÁO TỔNG HỢP 06 THÁNG VỀ HOẠT ĐỘNG TIẾP NHẬN VÀ XỬ LÝ SỰ CỐ" in text
    assert "Kỳ báo cáo: từ tháng 07/2026 đến tháng 12/2026" in text
    (table,) = doc.tables
    assert [c.text for c in table.rows[-1].cells][1:3] == ["Tổng số", "6"]
    assert table.rows[0].cells[6].text == "Số sự cố đề nghị VNCERT hỗ trợ"


def test_scheduled_summaries_are_registered_and_idempotent(tmp_path: Path, store: Store) -> None:
    drop = tmp_path / "drop"
    settings = make_settings(tmp_path, signing=False, recipients=[
        {"name": "lanh-dao", "channel": "drop", "endpoint": str(drop), "kinds": ["summary"]}])
    scheduler = BackgroundScheduler()
    ids = register_report_jobs(scheduler, store, settings)
    assert ids == ["report-daily", "report-weekly", "report-monthly", "report-semiannual", "report-annual",
                   "report-outbox"]
    assert str(scheduler.get_job("report-monthly").trigger).startswith("cron[day='1', hour='1', minute='30'")
    first = build_and_enqueue_summary(store, settings, "daily")
    second = build_and_enqueue_summary(store, settings, "daily")
    assert first == second == f"TH-NA-01-daily-{parse_period('daily', None, settings.timezone).label}"
    assert [d.id for d in store.iter_all(SNAPSHOTS)] == [first]
    assert [d.id for d in store.iter_all("report_outbox")] == [f"{first}--lanh-dao"]
    settings_off = make_settings(tmp_path, signing=False, schedule=False)
    assert register_report_jobs(BackgroundScheduler(), store, settings_off) == []


def test_periods() -> None:
    p = parse_period("weekly", "2026-W48", "Asia/Ho_Chi_Minh")
    assert (p.start.isoformat(), p.end.isoformat()) == ("2026-11-23T00:00:00+07:00", "2026-11-30T00:00:00+07:00")
    assert parse_period("semiannual", "2026-H1", "Asia/Ho_Chi_Minh").end.isoformat() == "2026-07-01T00:00:00+07:00"
    last = parse_period("monthly", None, "Asia/Ho_Chi_Minh", now=dt.datetime(2026, 12, 2, tzinfo=dt.UTC))
    assert last.label == "2026-11"
    with pytest.raises(ValueError, match="2026-W48"):
        parse_period("weekly", "2026-48", "Asia/Ho_Chi_Minh")
