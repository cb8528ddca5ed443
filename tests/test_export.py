"""National reports: profiles, required fields, JSON Schema, .docx, STIX 2.1, MISP, byte-identical
regeneration from the stored snapshot, signatures, deadlines (SQLite store, no mocks)."""

from __future__ import annotations

import datetime as dt
import io
import json
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
import stix2
import yaml
from cryptography import x509
from docx import Document

from soc.export import schema
from soc.export.due import due_reports
from soc.export.incident_report import MissingFieldsError, parse_overrides
from soc.export.profiles import ProfileError, load_profiles
from soc.export.render_stix import INCIDENT_EXT
from soc.export.reports import Reports
from soc.export.sign import keygen, verify_bytes, verify_file
from soc.export.snapshot import SNAPSHOTS
from soc.store import open_store
from soc.store.base import Store
from tests.test_export_fixtures import incident, make_settings, seed

BUILT_AT = dt.datetime(2026, 12, 1, 3, 0, tzinfo=dt.UTC)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = open_store(f"sqlite:///{tmp_path / 'soc.db'}")
    yield s
    s.close()


def all_formats_profile(folder: Path) -> Path:
    """A profile added as configuration: every format, for a hypothetical recipient."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "test.all-formats.yml").write_text(yaml.safe_dump({
        "id": "test.all-formats", "schema_version": "9.1", "title": "Tất cả định dạng",
        "recipient": "Đơn vị thử nghiệm", "addressee": "Cục A05 (thử nghiệm)",
        "legal_basis": ["Thông tư 20/2017/TT-BTTTT"], "documents": ["initial", "closing"],
        "formats": ["json", "docx", "stix", "misp"]}, allow_unicode=True), encoding="utf-8")
    return folder


# -- profiles and schemas ---------------------------------------------------------------------------
def test_profiles_are_data_and_extra_ones_come_from_configuration(tmp_path: Path) -> None:
    profiles = load_profiles()
    assert {"vn.mic.tt20-2017", "vn.mps.a05-2025", "vn.mic.ncsc-2020", "intl.stix21", "intl.misp"} <= set(profiles)
    for p in profiles.values():
        assert p.schema_version and p.legal_basis
    assert profiles["vn.mic.tt20-2017"].superseded_by == "vn.mps.a05-2025"
    extra = load_profiles([all_formats_profile(tmp_path / "profiles")])
    assert extra["test.all-formats"].formats == ["json", "docx", "stix", "misp"]
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.yml").write_text("id: y\n")
    with pytest.raises(ProfileError, match="x.yml"):
        load_profiles([tmp_path / "bad"])


def test_shipped_schemas_match_the_models() -> None:
    for document in ("incident_report", "summary_report", "monitoring_summary"):
        assert schema.shipped_path(document).read_text(encoding="utf-8") == schema.schema_text(document), \
            "run: python -m soc.export.schema"


# -- required fields ---------------------------------------------------------------------------
def test_every_missing_required_field_is_named_in_one_error(tmp_path: Path, store: Store) -> None:
    settings = make_settings(tmp_path, signing=False, reporter={}, contact={}, signatory={}, default_notified=[])
    inc = incident(summary="", affected_systems=[], agency="no-such-agency", agencies=[])
    seed(store, inc)
    with pytest.raises(MissingFieldsError) as caught:
        Reports(store, settings).build_incident(inc.id, "initial")
    message = str(caught.value)
    fields = [m.field for m in caught.value.missing]
    assert fields == ["reporter.name", "reporter.address", "reporter.phone", "reporter.email",
                      "contact.full_name", "contact.phone", "contact.email", "system.operator", "summary",
                      "notified", "signatory.name", "signatory.title"]
    assert message.count("\n  - ") == len(fields)
    for text in ("Mẫu 03", "Tên tổ chức/cá nhân báo cáo sự cố / Reporting organisation",
                 "Mô tả sơ bộ về sự cố / Incident summary", "Đã gửi thông báo sự cố cho / Already notified",
                 "reporting.reporter.name", "SOC_REPORTING__REPORTER__NAME",
                 f"`soc incidents update {inc.id}` --summary TEXT", "--set notified=",
                 "Tên đơn vị vận hành hệ thống thông tin / System operator"):
        assert text in message, text
    assert list(store.iter_all(SNAPSHOTS)) == [], "nothing is stored for a report that cannot be built"


def test_closing_report_needs_the_initial_report_and_the_outcome(tmp_path: Path, store: Store) -> None:
    settings = make_settings(tmp_path, signing=False)
    inc = seed(store, incident(status="resolved", response_ended_at="2026-12-01T02:00:00.000Z"))
    reports = Reports(store, settings)
    with pytest.raises(MissingFieldsError) as caught:
        reports.build_incident(inc.id, "closing")
    assert [m.field for m in caught.value.missing] == ["initial_ref", "outcome"]
    assert "Kết quả xử lý sự cố / Outcome of the response" in str(caught.value)
    initial = reports.build_incident(inc.id, "initial", built_at=BUILT_AT)
    closing = reports.build_incident(inc.id, "closing", overrides={"outcome": "Đã chặn IP nguồn, đổi mật khẩu."},
                                     built_at=BUILT_AT + dt.timedelta(days=1))
    data = json.loads((closing.directory / f"{closing.report_no}.json").read_bytes())
    assert data["form"] == "Mẫu 04" and data["initial_ref"] == {"report_no": initial.report_no, "date": "01/12/2026"}
    assert data["outcome"].startswith("Đã chặn")
    kinds = [r["kind"] for r in store.get("incidents", inc.id).body["reports"]]
    assert kinds == ["initial", "closing"]


def test_overrides_are_typed_and_unknown_ones_rejected() -> None:
    assert parse_overrides(["notified=isp, coordinating_authority", "confidential=có", "est_damage_vnd=5000000"]) == {
        "notified": ["isp", "coordinating_authority"], "confidential": True, "est_damage_vnd": 5000000}
    with pytest.raises(ValueError, match="FIELD=VALUE"):
        parse_overrides(["severity=low"])


# -- Mẫu 03 as JSON, docx, STIX, MISP --------------------------------------------------------------
@pytest.fixture
def built(tmp_path: Path, store: Store):  # type: ignore[no-untyped-def]
    settings = make_settings(tmp_path, profile_dirs=[str(all_formats_profile(tmp_path / "profiles"))])
    inc = seed(store)
    reports = Reports(store, settings)
    result = reports.build_incident(inc.id, "initial", "test.all-formats",
                                    parse_overrides(["support_request=Đề nghị hỗ trợ phân tích nhật ký",
                                                     "attachments=system_logs"]), built_at=BUILT_AT)
    return settings, reports, result


def _file(result, suffix: str) -> Path:  # type: ignore[no-untyped-def]
    return next(p for p in result.files if p.name == result.report_no + suffix)


def test_mau03_json_validates_against_the_shipped_schema(built) -> None:  # type: ignore[no-untyped-def]
    _settings, _reports, result = built
    data = json.loads(_file(result, ".json").read_bytes())
    jsonschema.validate(data, json.loads(schema.shipped_path("incident_report").read_text()))
    assert data["profile_id"] == "test.all-formats" and data["schema_version"] == "9.1"
    assert data["legal_basis"] == ["Thông tư 20/2017/TT-BTTTT"]
    assert data["form"] == "Mẫu 03" and data["report_kind"] == "initial"
    assert data["reported_at"] == "2026-12-01T10:00:00+07:00"
    assert data["discovered_date"] == "30/11/26" and data["discovered_time"] == "08:11"
    assert data["reporter"]["name"] == "Công an tỉnh Nghệ An"
    assert data["system"]["operator"] == "Sở Thông tin và Truyền thông"
    assert data["system"]["public_ips"] == ["203.0.113.80"], "private addresses are not public IPs"
    assert data["system"]["controls"] == ["firewall", "other"] and data["system"]["controls_other"] == "waf"
    assert data["status"] == "not_handled" and data["detection_method"] == ["log_review"]
    assert data["notified"] == ["coordinating_authority"]
    assert data["deadline_due_at"] == "2026-12-05T08:11:00+07:00"
    assert data["iocs"][0]["value"] == "203.0.113.5" and data["iocs"][0]["to_ids"] is True
    assert data["signatory"]["signed_by"] == "digital_signature"
    broken = dict(data)
    del broken["summary"]
    with pytest.raises(schema.SchemaError, match="summary"):
        schema.validate(broken)


def test_docx_reads_back_with_the_vietnamese_form_filled(built) -> None:  # type: ignore[no-untyped-def]
    _settings, _reports, result = built
    doc = Document(io.BytesIO(_file(result, ".docx").read_bytes()))
    text = "\n".join(p.text for p in doc.paragraphs)
    text += "\n" + "\n".join(c.text for t in doc.tables for row in t.rows for c in row.cells)
    for expected in ("BÁO CÁO BAN ĐẦU SỰ CỐ MẠNG", "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
                     "1. THÔNG TIN VỀ TỔ CHỨC/CÁ NHÂN BÁO CÁO SỰ CỐ", "2. NGƯỜI LIÊN HỆ",
                     "3. THÔNG TIN CHI TIẾT VỀ HỆ THỐNG BỊ SỰ CỐ", "4. MÔ TẢ SƠ BỘ VỀ SỰ CỐ (*)",
                     "6. HIỆN TRẠNG SỰ CỐ (*)", "7. CÁCH THỨC PHÁT HIỆN (*)", "8. ĐÃ GỬI THÔNG BÁO SỰ CỐ CHO (*)",
                     "11. THỜI GIAN THỰC HIỆN BÁO CÁO (*)",
                     "Tên tổ chức/cá nhân (*): Công an tỉnh Nghệ An", "Họ và tên (*): Nguyễn Văn Hùng",
                     "Tên đơn vị vận hành hệ thống thông tin (*): Sở Thông tin và Truyền thông",
                     "Ngày phát hiện sự cố (dd/mm/yy) (*): 30/11/26", "Thời gian phát hiện (hh:mm) (*): 08:11",
                     "☐ Đã được xử lý", "☒ Chưa được xử lý", "☒ Kiểm tra dữ liệu lưu lại (Log File)",
                     "☐ Qua hệ thống phát hiện xâm nhập (IDS)", "☒ Cơ quan điều phối", "☒ Cấp độ 3", "☐ Cấp độ 4",
                     "☒ Web server", "☒ Nhật ký hệ thống", "Đề nghị hỗ trợ phân tích nhật ký", "01/12/2026 10:00",
                     "Trần Quốc Bảo", "Kính gửi: Cục A05 (thử nghiệm)", "Truy cập trái phép, chiếm quyền điều khiển",
                     "203.0.113.5"):
        assert expected in text, expected
    assert doc.core_properties.author == "Công an tỉnh Nghệ An"
    assert doc.core_properties.created == BUILT_AT


def test_stix_bundle_parses_and_carries_the_incident_extension(built) -> None:  # type: ignore[no-untyped-def]
    _settings, _reports, result = built
    bundle = stix2.parse(_file(result, ".stix.json").read_text(), allow_custom=True)
    by_type: dict[str, list] = {}
    for obj in bundle.objects:
        by_type.setdefault(obj.type, []).append(obj)
    (report,) = by_type["report"]
    (inc,) = by_type["incident"]
    assert report.report_types == ["incident"] and report.x_vn_profile_id == "test.all-formats"
    assert report.x_vn_report_no == result.report_no and report.x_vn_report_kind == "initial"
    assert set(report.object_refs) >= {inc.id, *(o.id for o in by_type["indicator"])}
    ext = inc.extensions[INCIDENT_EXT]
    assert ext["determination"] == "confirmed" and ext["investigation_status"] == "open"
    assert ext["criticality"] == 75 and ext["incident_types"] == ["unauthorized_access"]
    assert report.created_by_ref == next(i.id for i in by_type["identity"] if i.name == "Công an tỉnh Nghệ An")
    (infra,) = by_type["infrastructure"]
    assert infra.x_vn_system_level == 3
    assert [i.pattern for i in by_type["indicator"]] == ["[ipv4-addr:value = '203.0.113.5']"]
    (sighting,) = by_type["sighting"]
    assert sighting.sighting_of_ref == by_type["indicator"][0].id
    assert {r.relationship_type for r in by_type["relationship"]} == {"impacts", "consists-of"}
    (marking,) = by_type["marking-definition"]
    assert marking.name == "TLP:AMBER+STRICT" and all(marking.id in o.object_marking_refs for o in by_type["incident"])
    assert [n.abstract for n in by_type["note"]] == ["Kiến nghị, đề xuất hỗ trợ"]


def test_misp_event_mapping(built) -> None:  # type: ignore[no-untyped-def]
    _settings, _reports, result = built
    event = json.loads(_file(result, ".misp.json").read_bytes())["Event"]
    assert event["threat_level_id"] == "1" and event["analysis"] == "0" and event["distribution"] == "1"
    assert event["date"] == "2026-11-30" and event["info"].startswith("[Mẫu 03] Máy chủ web01")
    tags = {t["name"] for t in event["Tag"]}
    assert {"tlp:amber+strict", 'rsit:intrusions="unprivileged-account-compromise"',
            'x-vn:system-level="3"'} <= tags
    (ioc,) = event["Attribute"]
    assert (ioc["type"], ioc["value"], ioc["to_ids"]) == ("ip-src", "203.0.113.5", True)
    (system,) = event["Object"]
    assert {(a["object_relation"], a["value"]) for a in system["Attribute"]} >= {
        ("ip", "203.0.113.80"), ("domain", "nghean.gov.vn"), ("operator", "Sở Thông tin và Truyền thông")}


# -- reproducible ----------------------------------------------------------------------------------
def test_regenerating_from_the_snapshot_is_byte_identical(built, store: Store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings, reports, result = built
    original = {p.name: p.read_bytes() for p in result.files}
    assert set(original) == {result.report_no + s for s in (".json", ".docx", ".stix.json", ".misp.json")}
    # the world changes after the build: the incident is edited, the settings too
    doc = store.get("incidents", "INC-2026-0001")
    store.put("incidents", doc.id, {**doc.body, "summary": "đã sửa", "severity": "low"})
    changed = make_settings(tmp_path, reporter={"name": "Tên khác", "address": "x", "phone": "1", "email": "e"},
                            profile_dirs=settings.reporting.profile_dirs)
    again = Reports(store, changed).render(result.report_no, tmp_path / "elsewhere")
    assert {p.name: p.read_bytes() for p in again.files} == original
    # and the signatures made the second time verify over the same bytes
    for path in again.files:
        assert verify_file(path, trust_path=settings.reporting.certificate).ok


# -- signatures ------------------------------------------------------------------------------------
def test_sign_and_verify_ok_tampered_wrong_cert_expired(built, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings, _reports, result = built
    assert len(result.signatures) == len(result.files) == 4
    path = _file(result, ".json")
    ok = verify_file(path, trust_path=settings.reporting.certificate)
    assert ok.ok and ok.trusted and "SOC tỉnh Nghệ An (TEST)" in ok.signer, ok.summary()
    other = tmp_path / "other"
    keygen(other / "cert.pem", other / "key.pem", "Kẻ mạo danh")
    wrong = verify_file(path, trust_path=other / "cert.pem")
    assert not wrong.ok and "wrong certificate" in wrong.summary()
    anchor = x509.load_pem_x509_certificate(settings.reporting.certificate.read_bytes())
    expired = verify_file(path, trust_path=settings.reporting.certificate,
                          now=ok.signed_at + dt.timedelta(days=400))
    assert not expired.ok and "expired" in expired.summary()
    assert not verify_file(path).ok and "no trust anchor" in verify_file(path).summary()
    data = bytearray(path.read_bytes())
    data[10:11] = b"X"
    tampered = verify_bytes(bytes(data), Path(str(path) + ".p7s").read_bytes(), anchor)
    assert not tampered.ok and "changed after signing" in tampered.summary()
    # a certificate issued by a trusted CA is accepted with --ca CA
    ca_cert = keygen(tmp_path / "ca" / "ca.pem", tmp_path / "ca" / "ca-key.pem", "CA tỉnh (TEST)")
    from cryptography.hazmat.primitives import serialization

    ca_key = serialization.load_pem_private_key((tmp_path / "ca" / "ca-key.pem").read_bytes(), None)
    keygen(tmp_path / "leaf" / "cert.pem", tmp_path / "leaf" / "key.pem", "SOC (issued)", issuer=(ca_cert, ca_key))
    from soc.export.sign import load_signer, sign_file

    signed = tmp_path / "leaf" / "x.json"
    signed.write_bytes(b"{}\n")
    sign_file(signed, *load_signer(tmp_path / "leaf" / "cert.pem", tmp_path / "leaf" / "key.pem"))
    assert verify_file(signed, trust_path=tmp_path / "ca" / "ca.pem").ok


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_openssl_verifies_our_signature_as_the_national_centre_would(built) -> None:  # type: ignore[no-untyped-def]
    settings, _reports, result = built
    path = _file(result, ".docx")
    run = subprocess.run(["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", f"{path}.p7s",
                          "-content", str(path), "-CAfile", str(settings.reporting.certificate), "-purpose", "any",
                          "-out", "/dev/null"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


# -- deadlines -----------------------------------------------------------------------------------------
def test_due_lists_overdue_reports_until_delivered(tmp_path: Path, store: Store) -> None:
    settings = make_settings(tmp_path, signing=False)
    inc = seed(store)
    now = dt.datetime(2026, 12, 10, tzinfo=dt.UTC)
    (row,) = due_reports(store, now)
    assert (row.kind, row.state, row.overdue, row.due_at) == ("initial", "not_built", True, "2026-12-05T01:11:00.000Z")
    assert due_reports(store, dt.datetime(2026, 12, 2, tzinfo=dt.UTC))[0].overdue is False
    reports = Reports(store, settings)
    built = reports.build_incident(inc.id, "initial", built_at=BUILT_AT)
    assert due_reports(store, now)[0].state == "built"
    reports.mark_delivered(built.report_no, "2026-12-01T04:00:00.000Z")
    assert due_reports(store, now) == []
    assert due_reports(store, now, include_delivered=True)[0].state == "delivered"
