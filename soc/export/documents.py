"""The exported documents as pydantic models: the JSON Schema is generated from these.

* :class:`IncidentReport` -- Mẫu 03 (initial) and Mẫu 04 (closing) of Circular 20/2017, with the
  fields of ``national-reporting.md`` §2.A; fields the form marks (*) are required here too.
* :class:`SummaryReport` -- Mẫu 05 (six-monthly / yearly: counts per incident type and handling).
* :class:`MonitoringSummary` -- the daily / weekly / monthly operational summary (§2.B).

Every document carries ``profile_id``, ``schema_version`` and ``legal_basis``. Times are ISO 8601
in the report's zone (``+07:00`` for Asia/Ho_Chi_Minh), as the forms show local time.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

DetectionMethod = Literal["ids", "log_review", "notified_by", "other"]
Notified = Literal["network_member", "isp", "coordinating_authority"]
Attachment = Literal["system_logs", "malware_sample", "progress_report", "response_plan", "other"]
Service = Literal["web_server", "mail_server", "database_server", "other"]
Control = Literal["antivirus", "firewall", "ids", "other"]
SeverityName = Literal["low", "medium", "high", "critical"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Envelope(_Model):
    profile_id: str = Field(description="report profile (soc/export/profiles)")
    schema_version: str
    legal_basis: list[str] = Field(min_length=1)
    report_no: str = Field(min_length=1, description="Số/ký hiệu báo cáo")
    reported_at: str = Field(description="THỜI GIAN THỰC HIỆN BÁO CÁO (ISO 8601, local zone)")
    timezone: str
    addressee: str | None = Field(None, description="Kính gửi")


class Reporter(_Model):
    name: str = Field(min_length=1, description="Tên tổ chức/cá nhân báo cáo sự cố*")
    address: str = Field(min_length=1, description="Địa chỉ*")
    phone: str = Field(min_length=1, description="Điện thoại*")
    email: str = Field(min_length=1, description="Email*")
    member_code: str | None = Field(None, description="Mã thành viên mạng lưới")


class Contact(_Model):
    full_name: str = Field(min_length=1, description="Họ và tên*")
    position: str | None = Field(None, description="Chức vụ")
    phone: str = Field(min_length=1, description="Điện thoại*")
    email: str = Field(min_length=1, description="Email*")


class SystemInfo(_Model):
    operator: str = Field(min_length=1, description="Tên đơn vị vận hành hệ thống thông tin*")
    owner: str | None = Field(None, description="Cơ quan chủ quản")
    name: str | None = Field(None, description="Tên hệ thống bị sự cố")
    level: int | None = Field(None, ge=1, le=5, description="Phân loại cấp độ (Nghị định 85/2016)")
    sec_provider: str | None = Field(None, description="Tổ chức cung cấp dịch vụ ATTT")
    isp: str | None = Field(None, description="Nhà cung cấp dịch vụ kết nối")
    os: str | None = None
    os_version: str | None = None
    purpose: str | None = Field(None, description="Mục đích sử dụng")
    services: list[Service] = Field(default_factory=list)
    services_other: str | None = None
    controls: list[Control] = Field(default_factory=list)
    controls_other: str | None = None
    public_ips: list[str] = Field(default_factory=list)
    domains: list[str] = Field(default_factory=list)
    hosts: list[str] = Field(default_factory=list)


class Signatory(_Model):
    name: str = Field(min_length=1)
    title: str = Field(min_length=1)
    signed_by: Literal["seal", "digital_signature"]


class InitialRef(_Model):
    report_no: str = Field(min_length=1)
    date: str = Field(description="dd/mm/yyyy")


class Ioc(_Model):
    type: Literal["ipv4-addr", "ipv6-addr", "domain-name", "url", "user-account", "file-sha256"]
    value: str
    first_seen: str | None = None
    last_seen: str | None = None
    to_ids: bool = False


class TimelineEntry(_Model):
    at: str
    action: str
    actor: str


class AlertRef(_Model):
    id: str
    rule_id: str
    title: str
    level: str
    first_seen: str
    last_seen: str
    event_count: int
    agency: str | None = None


class IncidentReport(Envelope):
    """Mẫu 03 (Báo cáo ban đầu sự cố mạng) / Mẫu 04 (Báo cáo kết thúc ứng phó sự cố)."""

    document: Literal["incident_report"] = "incident_report"
    form: Literal["Mẫu 03", "Mẫu 04"]
    report_kind: Literal["initial", "update", "closing"]
    initial_ref: InitialRef | None = Field(None, description="KÝ HIỆU BÁO CÁO BAN ĐẦU SỰ CỐ (Mẫu 04)")
    reporter: Reporter
    contact: Contact | None = None
    system: SystemInfo
    summary: str = Field(min_length=1, description="Mô tả sơ bộ về sự cố* / Tên, mô tả sự cố")
    discovered_at: str = Field(description="Ngày và thời gian phát hiện sự cố*")
    discovered_date: str = Field(description="dd/mm/yy")
    discovered_time: str = Field(description="hh:mm")
    status: Literal["handled", "not_handled"] | None = Field(None, description="Hiện trạng sự cố*")
    detection_method: list[DetectionMethod] = Field(default_factory=list, description="Cách thức phát hiện*")
    detection_notified_by: str | None = None
    detection_other: str | None = None
    notified: list[Notified] = Field(default_factory=list, description="Đã gửi thông báo sự cố cho*")
    attachments: list[Attachment] = Field(default_factory=list, description="Thông tin gửi kèm")
    attachment_files: list[str] = Field(default_factory=list)
    confidential: bool | None = Field(None, description="Giữ bí mật")
    support_request: str | None = Field(None, description="Kiến nghị, đề xuất hỗ trợ")
    outcome: str | None = Field(None, description="Kết quả xử lý sự cố (Mẫu 04)")
    future_measures: str | None = Field(None, description="Đề xuất đối với sự cố tương tự (Mẫu 04)")
    signatory: Signatory
    # extensions (not on the forms)
    incident_id: str
    incident_title: str
    incident_type: str
    incident_type_label: str
    rsit: list[str]
    severity: SeverityName
    serious: bool
    deadline_due_at: str | None
    agency: dict[str, str | None]
    iocs: list[Ioc] = Field(default_factory=list)
    timeline: list[TimelineEntry] = Field(default_factory=list)
    alerts: list[AlertRef] = Field(default_factory=list)


class Period(_Model):
    type: Literal["daily", "weekly", "monthly", "quarterly", "semiannual", "annual"]
    label: str = Field(description="e.g. 2026-11, 2026-H1, 2026-W48")
    start: str
    end: str
    tz: str


class Organisation(_Model):
    name: str = Field(min_length=1)
    address: str = Field(min_length=1)
    member_code: str | None = None
    province: str | None = None


class HandlingRow(_Model):
    code: str
    label: str
    count: int = 0
    self_handled: int = 0
    domestic_support: int = 0
    foreign_support: int = 0
    vncert_support_requested: int = 0
    est_damage_vnd: int = 0


class AuditCheckpoint(_Model):
    """The head of the audit trail when the summary was built (soc/audit): kept under the
    report's signature so that `soc audit verify` can tell if records were removed or rewritten."""

    seq: int = Field(ge=1, description="sequence number of the newest audit record")
    hash: str = Field(pattern="^[0-9a-f]{64}$", description="its SHA-256 hash (hex)")
    at: str | None = Field(None, description="its time (ISO 8601, UTC)")


class _Checkpointed(Envelope):
    """A periodic summary: carries ``audit_checkpoint`` (left out of the JSON when there is
    none, so that summaries built before it existed render as they did)."""

    audit_checkpoint: AuditCheckpoint | None = Field(None, description="head of the audit trail at build time")

    @model_serializer(mode="wrap")
    def _without_empty_checkpoint(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = handler(self)
        if data.get("audit_checkpoint") is None:
            data.pop("audit_checkpoint", None)
        return data


class SummaryReport(_Checkpointed):
    """Mẫu 05: Báo cáo tổng hợp 06 tháng / 01 năm về hoạt động tiếp nhận và xử lý sự cố."""

    document: Literal["summary_report"] = "summary_report"
    form: Literal["Mẫu 05"] = "Mẫu 05"
    period: Period
    organisation: Organisation
    rows: list[HandlingRow] = Field(min_length=10, max_length=10, description="the ten rows of table 1")
    total: HandlingRow
    domestic_helpers: list[str] = Field(default_factory=list)
    foreign_helpers: list[str] = Field(default_factory=list)
    recommendations: str | None = None
    incident_ids: list[str] = Field(default_factory=list)
    signatory: Signatory


class CountBy(_Model):
    total: int = 0
    by_severity: dict[str, int] = Field(default_factory=dict)
    by_type: dict[str, int] = Field(default_factory=dict)
    by_agency: dict[str, int] = Field(default_factory=dict)


class IncidentStats(CountBy):
    opened: int = 0
    closed: int = 0
    open_at_end: int = 0
    serious: int = 0
    mttd_minutes: float | None = Field(None, description="mean first event -> discovery, incidents opened whose "
                                       "first event was ingested within backfill_hours (soc/export/measures.py)")
    mttd_median_minutes: float | None = None
    mttd_count: int = Field(0, description="incidents MTTD counts")
    backfill_hours: float = Field(24.0, description="events stored later than this after they happened are back-filled")
    backfilled: int = Field(0, description="incidents from back-filled events, counted apart from MTTD")
    backfill_delay_median_hours: float | None = Field(None, description="median delay of their first event's storing")
    detect_unknown: int = Field(0, description="incidents detected late whose first event can no longer be read")
    mtta_minutes: float | None = Field(None, description="mean discovery -> first action by a person")
    mtta_median_minutes: float | None = None
    mtta_count: int = 0
    not_acknowledged: int = Field(0, description="incidents opened that no person has acted on yet")
    mttr_hours: float | None = Field(None, description="mean discovery -> response ended, in the period")
    mttr_median_hours: float | None = None
    mttr_count: int = 0
    by_type_handling: list[HandlingRow] = Field(default_factory=list)
    reports_sent: dict[str, int] = Field(default_factory=dict)


class SilentSource(_Model):
    field: str
    value: str
    previous_count: int


class Ranked(_Model):
    value: str
    hits: int


class LogSources(_Model):
    events_total: int
    events_previous: int
    by_agency: dict[str, int]
    silent: list[SilentSource]


class TimeBucket(_Model):
    label: str = Field(description="the hour (HH:00) of a daily summary, else the day (dd/mm), in the report's zone")
    start: str
    by_severity: dict[str, int] = Field(default_factory=dict)


class MonitoringSummary(_Checkpointed):
    """§2.B: operational summary for a day, week or month."""

    document: Literal["monitoring_summary"] = "monitoring_summary"
    period: Period
    unit: Organisation
    alerts: CountBy
    alerts_over_time: list[TimeBucket] = Field(default_factory=list, description="alerts per hour or day by level")
    incidents: IncidentStats
    log_sources: LogSources
    top_sources: list[Ranked]
    top_targets: list[Ranked]
    signatory: Signatory | None = None


DOCUMENT_MODELS: dict[str, type[Envelope]] = {
    "incident_report": IncidentReport,
    "summary_report": SummaryReport,
    "monitoring_summary": MonitoringSummary,
}
