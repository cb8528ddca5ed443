"""Mẫu 03 (initial) and Mẫu 04 (closing) from an incident snapshot.

Where each field comes from (``docs/reporting.md`` has the full table):

* reporter, contact, signatory: ``reporting.*`` in ``soc.yml`` (or ``SOC_REPORTING__...``);
* system: the incident's first affected system; the operator falls back to the agency's name
  in ``ingest/agencies.yml``;
* summary, outcome, type, severity, discovery time: the incident (``soc incidents update``);
* status: handled when the incident is resolved or closed;
* detection method: from the alerts (IDS rules -> ``ids``, other rules -> ``log_review``);
* notified, attachments, confidential, support request...: overrides given at build time
  (``soc report build --set notified=coordinating_authority``) or ``reporting.default_notified``.

Every required (*) field is checked before anything is rendered, and one
:class:`MissingFieldsError` lists all that are missing, each with its form label in Vietnamese
and English and where to fill it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from soc.errors import SocError
from soc.export.documents import IncidentReport
from soc.export.timefmt import form_date, form_time, local_iso
from soc.incidents.model import INCIDENT_TYPES, Incident

LIST_OVERRIDES = {"detection_method", "notified", "attachments", "attachment_files", "services", "controls"}
TEXT_OVERRIDES = {"status", "detection_notified_by", "detection_other", "support_request", "future_measures",
                  "sec_provider", "isp", "purpose", "initial_ref", "handled_by", "helpers",
                  "summary", "outcome", "system_operator", "system_owner", "system_name"}
BOOL_OVERRIDES = {"confidential"}
INT_OVERRIDES = {"est_damage_vnd", "system_level"}
OVERRIDES = LIST_OVERRIDES | TEXT_OVERRIDES | BOOL_OVERRIDES | INT_OVERRIDES
IDS_HINTS = ("ids", "suricata", "snort", "zeek", "ips", "waf")


@dataclass(frozen=True)
class Missing:
    field: str
    label_vi: str
    label_en: str
    where: str

    def line(self) -> str:
        return f"  - {self.label_vi} / {self.label_en} [{self.field}]: {self.where}"


class MissingFieldsError(SocError, ValueError):
    """Required form fields are empty; ``missing`` lists them all."""

    def __init__(self, form: str, subject: str, missing: list[Missing]):
        self.missing = missing
        lines = "\n".join(m.line() for m in missing)
        super().__init__(f"{form} for {subject} cannot be built: {len(missing)} required field(s) "
                         f"missing (thiếu trường bắt buộc):\n{lines}")


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """``["notified=isp,coordinating_authority", "confidential=yes"]`` -> typed overrides."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in OVERRIDES:
            raise ValueError(f"--set {pair!r}: expected FIELD=VALUE with FIELD one of {', '.join(sorted(OVERRIDES))}")
        value = value.strip()
        if key in LIST_OVERRIDES:
            out[key] = [v.strip() for v in value.split(",") if v.strip()]
        elif key in BOOL_OVERRIDES:
            out[key] = value.lower() in ("1", "true", "yes", "y", "có", "co")
        elif key in INT_OVERRIDES:
            out[key] = int(value)
        else:
            out[key] = value
    return out


_INTERNAL = [ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "169.254.0.0/16", "100.64.0.0/10",
    "0.0.0.0/8", "224.0.0.0/4", "240.0.0.0/4", "::1/128", "fc00::/7", "fe80::/10", "ff00::/8", "::/128")]


def _public(ip: str) -> bool:
    """Routable on the Internet: not RFC 1918, loopback, link-local, CGNAT or multicast
    (documentation ranges count as public, so examples behave like real addresses)."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return not any(address.version == n.version and address in n for n in _INTERNAL)


def _iocs(alerts: list[dict[str, Any]], tz: str) -> list[dict[str, Any]]:
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for alert in alerts:
        entities = alert.get("entities", {})
        for field, kind in (("source.ip", "ip"), ("url.domain", "domain-name")):
            for value in entities.get(field, []):
                value = str(value)
                if kind == "ip":
                    try:
                        kind_ = "ipv6-addr" if ipaddress.ip_address(value).version == 6 else "ipv4-addr"
                    except ValueError:
                        continue
                else:
                    kind_ = kind
                entry = seen.setdefault((kind_, value), {
                    "type": kind_, "value": value, "first_seen": alert["first_seen"],
                    "last_seen": alert["last_seen"], "to_ids": kind_ == "domain-name" or _public(value)})
                entry["first_seen"] = min(entry["first_seen"], alert["first_seen"])
                entry["last_seen"] = max(entry["last_seen"], alert["last_seen"])
    out = []
    for entry in sorted(seen.values(), key=lambda e: (e["type"], e["value"])):
        out.append({**entry, "first_seen": local_iso(entry["first_seen"], tz),
                    "last_seen": local_iso(entry["last_seen"], tz)})
    return out


def _detection(alerts: list[dict[str, Any]]) -> list[str]:
    methods = []
    for alert in alerts:
        rule = alert.get("rule", {})
        words = " ".join([*map(str, rule.get("tags", [])), str(rule.get("id", "")),
                          str(rule.get("logsource", ""))]).lower()
        methods.append("ids" if any(h in words for h in IDS_HINTS) else "log_review")
    return sorted(set(methods))


def _initial_ref(snapshot: dict[str, Any], overrides: dict[str, Any], tz: str) -> dict[str, str] | None:
    if overrides.get("initial_ref"):
        no, _, date = str(overrides["initial_ref"]).partition("@")
        return {"report_no": no, "date": date}
    ref = snapshot.get("initial_ref")
    if ref:
        return {"report_no": ref["report_no"], "date": form_date(ref["built_at"], tz)}
    return None


def build_incident_report(snapshot: dict[str, Any]) -> IncidentReport:
    """The Mẫu 03/04 document of a snapshot; raises :class:`MissingFieldsError`."""
    tz = snapshot["timezone"]
    kind = snapshot["kind"]
    profile = snapshot["profile"]
    ident = snapshot["reporting"]
    ov: dict[str, Any] = snapshot.get("overrides") or {}
    incident = Incident.model_validate(snapshot["incident"])
    alerts = snapshot.get("alerts", [])
    closing = kind == "closing"
    form = "Mẫu 04" if closing else "Mẫu 03"
    agency_id = incident.agency or (incident.agencies[0] if incident.agencies else None)
    agency_name = snapshot.get("agencies", {}).get(agency_id or "", None)
    system = incident.affected_systems[0] if incident.affected_systems else None
    missing: list[Missing] = []
    upd = f"`soc incidents update {incident.id}`"

    def need(value: Any, field: str, vi: str, en: str, where: str) -> Any:
        if value in (None, "", [], {}):
            missing.append(Missing(field, vi, en, where))
        return value

    rep = ident.get("reporter", {})
    setting = "set reporting.reporter.{0} in soc.yml (or SOC_REPORTING__REPORTER__{1})"
    reporter = {k: need(rep.get(k), f"reporter.{k}", vi, en, setting.format(k, k.upper()))
                for k, vi, en in (("name", "Tên tổ chức/cá nhân báo cáo sự cố", "Reporting organisation"),
                                  ("address", "Địa chỉ", "Address"), ("phone", "Điện thoại", "Phone"),
                                  ("email", "Email", "E-mail"))}
    reporter["member_code"] = rep.get("member_code")
    contact = None
    if not closing:
        con = ident.get("contact", {})
        setting = "set reporting.contact.{0} in soc.yml (or SOC_REPORTING__CONTACT__{1})"
        contact = {k: need(con.get(k), f"contact.{k}", vi, en, setting.format(k, k.upper()))
                   for k, vi, en in (("full_name", "Người liên hệ: Họ và tên", "Contact person: full name"),
                                     ("phone", "Người liên hệ: Điện thoại", "Contact person: phone"),
                                     ("email", "Người liên hệ: Email", "Contact person: e-mail"))}
        contact["position"] = con.get("position")
    operator = ov.get("system_operator") or (system.operator if system else None) or agency_name
    need(operator, "system.operator", "Tên đơn vị vận hành hệ thống thông tin", "System operator",
         f"{upd} --systems-file FILE (affected system `operator`), or the agency's name in "
         "ingest/agencies.yml, or --set system_operator=...")
    summary = ov.get("summary") or incident.summary
    need(summary, "summary", "Tên/Mô tả sơ bộ về sự cố" if closing else "Mô tả sơ bộ về sự cố",
         "Incident summary", f"{upd} --summary TEXT (or --set summary=...)")
    status = ov.get("status") or ("handled" if incident.status in ("resolved", "closed") else "not_handled")
    detection = ov.get("detection_method") or _detection(alerts)
    notified = ov.get("notified") or ident.get("default_notified") or []
    initial_ref = None
    outcome = ov.get("outcome") or incident.outcome or None
    if not closing:
        need(detection, "detection_method", "Cách thức phát hiện", "How it was detected",
             "no alerts on the incident: --set detection_method=ids|log_review|notified_by|other")
        need(notified, "notified", "Đã gửi thông báo sự cố cho", "Already notified",
             "--set notified=network_member,isp,coordinating_authority at build time, "
             "or reporting.default_notified in soc.yml")
    else:
        initial_ref = _initial_ref(snapshot, ov, tz)
        need(initial_ref, "initial_ref", "Ký hiệu báo cáo ban đầu sự cố", "Initial report reference",
             f"build the initial report first (`soc report build --incident {incident.id} --kind initial`) "
             "or --set initial_ref=NUMBER@dd/mm/yyyy")
        need(outcome, "outcome", "Kết quả xử lý sự cố", "Outcome of the response",
             f"{upd} --outcome TEXT (or --set outcome=...)")
    sig = ident.get("signatory", {})
    for k, vi, en in (("name", "Người đại diện theo pháp luật: Họ và tên", "Signatory: name"),
                      ("title", "Người đại diện theo pháp luật: Chức vụ", "Signatory: title")):
        need(sig.get(k), f"signatory.{k}", vi, en,
             f"set reporting.signatory.{k} in soc.yml (or SOC_REPORTING__SIGNATORY__{k.upper()})")
    if missing:
        raise MissingFieldsError(form, f"incident {incident.id}", missing)

    services = ov.get("services") or (system.services if system else [])
    controls = ov.get("controls") or (system.controls if system else [])
    known_services = {"web_server", "mail_server", "database_server"}
    known_controls = {"antivirus", "firewall", "ids"}
    other_services = [s for s in services if s not in known_services and s != "other"]
    other_controls = [c for c in controls if c not in known_controls and c != "other"]
    type_label, rsit, _row = INCIDENT_TYPES[incident.incident_type]
    deadline = incident.closing_due if closing else incident.notify_due
    data: dict[str, Any] = {
        "profile_id": profile["id"],
        "schema_version": profile["schema_version"],
        "legal_basis": profile["legal_basis"],
        "report_no": snapshot["report_no"],
        "reported_at": local_iso(snapshot["built_at"], tz),
        "timezone": tz,
        "addressee": profile.get("addressee"),
        "form": form,
        "report_kind": kind,
        "initial_ref": initial_ref,
        "reporter": reporter,
        "contact": contact,
        "system": {
            "operator": operator,
            "owner": ov.get("system_owner") or (system.owner if system else None),
            "name": ov.get("system_name") or (system.name if system else None),
            "level": ov.get("system_level") or (system.level if system else None),
            "sec_provider": ov.get("sec_provider"),
            "isp": ov.get("isp"),
            "os": system.os if system else None,
            "os_version": system.os_version if system else None,
            "purpose": ov.get("purpose"),
            "services": sorted({s for s in services if s in known_services} | ({"other"} if other_services else set())),
            "services_other": ", ".join(other_services) or None,
            "controls": sorted({c for c in controls if c in known_controls} | ({"other"} if other_controls else set())),
            "controls_other": ", ".join(other_controls) or None,
            "public_ips": [ip for ip in (system.public_ips if system else []) if _public(ip)],
            "domains": list(system.domains) if system else [],
            "hosts": sorted({h for s in incident.affected_systems for h in s.hosts}
                            | set(incident.entities.get("host.name", []))),
        },
        "summary": summary,
        "discovered_at": local_iso(incident.discovered_at, tz),
        "discovered_date": form_date(incident.discovered_at, tz, 2),
        "discovered_time": form_time(incident.discovered_at, tz),
        "status": status,
        "detection_method": detection,
        "detection_notified_by": ov.get("detection_notified_by"),
        "detection_other": ov.get("detection_other"),
        "notified": sorted(set(notified)),
        "attachments": ov.get("attachments", []),
        "attachment_files": ov.get("attachment_files", []),
        "confidential": ov.get("confidential"),
        "support_request": ov.get("support_request"),
        "outcome": outcome if closing else None,
        "future_measures": ov.get("future_measures"),
        "signatory": {"name": sig["name"], "title": sig["title"],
                      "signed_by": "digital_signature" if ident.get("digital_signature") else "seal"},
        "incident_id": incident.id,
        "incident_title": incident.title,
        "incident_type": incident.incident_type,
        "incident_type_label": type_label,
        "rsit": list(rsit),
        "severity": incident.severity,
        "serious": incident.serious,
        "deadline_due_at": local_iso(deadline, tz),
        "agency": {"id": agency_id, "name": agency_name},
        "iocs": _iocs(alerts, tz),
        "timeline": [{"at": local_iso(h.at, tz), "action": h.action, "actor": h.actor} for h in incident.history],
        "alerts": [{"id": a["id"], "rule_id": a.get("rule", {}).get("id", ""),
                    "title": a.get("rule", {}).get("title", ""), "level": a.get("rule", {}).get("level", ""),
                    "first_seen": local_iso(a["first_seen"], tz), "last_seen": local_iso(a["last_seen"], tz),
                    "event_count": int(a.get("event_count", 0)), "agency": a.get("agency")} for a in alerts],
    }
    return IncidentReport.model_validate(data)
