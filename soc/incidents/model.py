"""The incident: what the response team works on and what the national reports are built from.

An incident is a document in the store's ``incidents`` collection (``store.put`` with
compare-and-set on its version), so it works the same on SQLite and on Elasticsearch/OpenSearch.
Times are ISO 8601 UTC text with a ``Z`` (:func:`soc.model.iso`), shown in the analyst's zone.

Lifecycle: ``new -> triage -> contained -> resolved -> closed`` (a step may be skipped forward;
``contained``, ``resolved`` and ``closed`` may go back to ``triage``, which re-opens it). Every change is appended to ``history`` with who and
when. Deadlines follow Circular 20/2017 (``docs/reporting.md``):

* the notification (initial report, Mẫu 03) is due 5 days after discovery;
* the closing report (Mẫu 04) is due 5 days after the response ended (status ``resolved``).

"Serious" is the Decision 05/2017 test: an affected system of level 4-5 (or national-critical)
*and* one of the listed impacts.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field

from soc.model import iso, parse_iso

STATUSES = ("new", "triage", "contained", "resolved", "closed")
Status = Literal["new", "triage", "contained", "resolved", "closed"]
Severity = Literal["low", "medium", "high", "critical"]
Verdict = Literal["true_positive", "false_positive", "benign"]

#: the ten incident types of Circular 20/2017 Mẫu 05 (rows of table 1), plus two SOC types that
#: roll up to ``other`` on Mẫu 05. code -> (Vietnamese row label, RSIT tags, Mẫu 05 row code)
INCIDENT_TYPES: dict[str, tuple[str, tuple[str, ...], str]] = {
    "dos": ("Từ chối dịch vụ", ("rsit:availability=\"dos\"", "rsit:availability=\"ddos\""), "dos"),
    "spoofing": ("Tấn công giả mạo", ("rsit:fraud=\"phishing\"", "rsit:fraud=\"masquerade\""), "spoofing"),
    "malware": ("Tấn công sử dụng mã độc", ("rsit:malicious-code=\"malware\"",), "malware"),
    "unauthorized_access": ("Truy cập trái phép, chiếm quyền điều khiển",
                            ("rsit:intrusions=\"unprivileged-account-compromise\"",
                             "rsit:intrusion-attempts=\"login-attempts\""), "unauthorized_access"),
    "defacement": ("Thay đổi giao diện", ("rsit:intrusions=\"application-compromise\"",
                                          "rsit:information-content-security=\"unauthorised-modification-of-information\""),
                   "defacement"),
    "ransomware": ("Mã hóa phần mềm, dữ liệu, thiết bị",
                   ("rsit:malicious-code=\"malware\"",
                    "rsit:information-content-security=\"unauthorised-modification-of-information\""), "ransomware"),
    "sabotage": ("Phá hoại thông tin, dữ liệu, phần mềm",
                 ("rsit:information-content-security=\"data-loss\"",), "sabotage"),
    "espionage": ("Nghe trộm, gián điệp, lấy cắp thông tin, dữ liệu",
                  ("rsit:information-gathering=\"sniffing\"",
                   "rsit:information-content-security=\"unauthorised-access-to-information\""), "espionage"),
    "combined": ("Tấn công tổng hợp (nhiều hình thức)", ("rsit:other=\"other\"",), "combined"),
    "other": ("Các hình thức tấn công khác", ("rsit:other=\"other\"",), "other"),
    "scan": ("Dò quét thông tin", ("rsit:information-gathering=\"scanner\"",), "other"),
    "vulnerable": ("Điểm yếu, lỗ hổng", ("rsit:vulnerable=\"vulnerable-system\"",), "other"),
}
IncidentType = Literal["dos", "spoofing", "malware", "unauthorized_access", "defacement", "ransomware",
                       "sabotage", "espionage", "combined", "other", "scan", "vulnerable"]

#: Decision 05/2017 impacts; any one of them on a level 4-5 system makes an incident serious
IMPACTS = ("service_interrupted", "secret_data_exposure", "irrecoverable_integrity_loss",
           "loss_of_control", "wide_spread_risk")
Impact = Literal["service_interrupted", "secret_data_exposure", "irrecoverable_integrity_loss",
                 "loss_of_control", "wide_spread_risk"]

NOTIFY_DAYS = 5
CLOSING_DAYS = 5


class AffectedSystem(BaseModel):
    """An information system hit by the incident (Mẫu 03 section 3 and 9)."""

    name: str
    level: int | None = Field(None, ge=1, le=5, description="security level, Decree 85/2016")
    national_critical: bool = False
    operator: str | None = None
    owner: str | None = None
    hosts: list[str] = Field(default_factory=list)
    public_ips: list[str] = Field(default_factory=list)
    domains: list[str] = Field(default_factory=list)
    services: list[str] = Field(default_factory=list, description="web_server, mail_server, database_server, ...")
    controls: list[str] = Field(default_factory=list, description="antivirus, firewall, ids, ...")
    os: str | None = None
    os_version: str | None = None


class HistoryEntry(BaseModel):
    """One change to an incident, append-only."""

    at: str
    actor: str
    action: str  # opened | status | assign | note | verdict | severity | type | attach | detach | merge | split | report | edit
    detail: dict[str, object] = Field(default_factory=dict)


class Note(BaseModel):
    at: str
    author: str
    text: str


class ReportRecord(BaseModel):
    """A national report built for this incident (the export module fills these)."""

    kind: Literal["initial", "update", "closing"]
    report_no: str
    built_at: str
    delivered_at: str | None = None
    path: str | None = None


class Incident(BaseModel):
    id: str
    title: str
    title_template: str | None = Field(None, description="the title with placeholders ({target}, {source}, "
                                       "{user}, {date}, {more_rules}) filled again whenever alerts join or "
                                       "leave (soc.incidents.titles); None: the title is kept as written")
    status: Status = "new"
    severity: Severity = "medium"
    incident_type: IncidentType = "other"
    agency: str | None = None
    agencies: list[str] = Field(default_factory=list)
    alert_ids: list[str] = Field(default_factory=list)
    rule_ids: list[str] = Field(default_factory=list)
    entities: dict[str, list[str]] = Field(default_factory=dict, description="host.name, user.name, source.ip, ...")
    first_seen: str | None = None
    last_seen: str | None = None
    discovered_at: str = Field(description="when the SOC discovered it: the first alert's detection time")
    created_at: str
    created_by: str = "system"
    updated_at: str
    response_ended_at: str | None = Field(None, description="set when the status first reaches resolved")
    closed_at: str | None = None
    assignee: str | None = None
    verdict: Verdict | None = None
    summary: str = ""
    outcome: str = Field("", description="what happened and how it was resolved (Mẫu 04)")
    affected_systems: list[AffectedSystem] = Field(default_factory=list)
    impacts: list[Impact] = Field(default_factory=list)
    notes: list[Note] = Field(default_factory=list)
    reports: list[ReportRecord] = Field(default_factory=list)
    history: list[HistoryEntry] = Field(default_factory=list)
    merged_into: str | None = None
    pinned: list[str] = Field(default_factory=list,
                              description="fields an analyst or a playbook set (title, severity, incident_type): "
                                          "alerts attached later never change them")

    # -- computed --------------------------------------------------------------------------
    @property
    def serious(self) -> bool:
        """Decision 05/2017: a level 4-5 or national-critical system and one of the impacts."""
        high = any((s.level or 0) >= 4 or s.national_critical for s in self.affected_systems)
        return high and bool(self.impacts)

    @property
    def rsit(self) -> tuple[str, ...]:
        return INCIDENT_TYPES[self.incident_type][1]

    @property
    def type_label(self) -> str:
        return INCIDENT_TYPES[self.incident_type][0]

    @property
    def notify_due(self) -> str:
        return iso(parse_iso(self.discovered_at) + timedelta(days=NOTIFY_DAYS))

    @property
    def closing_due(self) -> str | None:
        if not self.response_ended_at:
            return None
        return iso(parse_iso(self.response_ended_at) + timedelta(days=CLOSING_DAYS))

    def overdue(self, now: datetime | None = None) -> list[str]:
        """Which reports are late: ``initial`` (no initial report by notify_due), ``closing``."""
        now = now or datetime.now(UTC)
        late: list[str] = []
        if self.verdict in ("false_positive", "benign") or self.merged_into:
            return late  # not an incident (or now part of another one): nothing to report here
        kinds = {r.kind for r in self.reports if r.delivered_at}
        if "initial" not in kinds and parse_iso(self.notify_due) < now:
            late.append("initial")
        if self.closing_due and "closing" not in kinds and parse_iso(self.closing_due) < now:
            late.append("closing")
        return late
