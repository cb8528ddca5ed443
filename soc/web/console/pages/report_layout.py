"""The layout of Mẫu 03 and Mẫu 04 in the report builder: the form's sections in the order of
Circular 20/2017, each row with where its value comes from in the built document (the export
engine's), whether it is a required field that is missing, and how it is edited in place.

Labels are English message ids; the Vietnamese catalogue gives the form's own wording.
"""

from __future__ import annotations

from typing import Any

from soc.incidents.model import Incident

__all__ = ["FORMS", "INCIDENT_KEYS", "LIST_KEYS", "OVERRIDE_KEYS", "PLACEHOLDERS", "REPORT_KEYS", "rows"]

#: form -> the report kinds built on it (the first is the default)
FORMS: dict[str, tuple[str, ...]] = {"03": ("initial", "update"), "04": ("closing",)}
#: values only a report holds (kept in the builder's URL until the report is built)
REPORT_KEYS = ("notified", "detection_method", "status", "confidential", "support_request", "sec_provider",
               "isp", "purpose", "initial_ref", "attachments", "future_measures")
#: values the incident holds (given as overrides only by a user who may not change the incident)
INCIDENT_KEYS = ("summary", "outcome", "system_operator", "system_name", "system_owner", "system_level")
OVERRIDE_KEYS = REPORT_KEYS + INCIDENT_KEYS
LIST_KEYS = frozenset({"notified", "detection_method", "attachments"})
#: a missing required field -> the override that fills it, and a placeholder to preview the rest
PLACEHOLDERS: dict[str, tuple[str, Any]] = {
    "summary": ("summary", "…"), "outcome": ("outcome", "…"), "system.operator": ("system_operator", "…"),
    "detection_method": ("detection_method", ["log_review"]), "notified": ("notified", ["coordinating_authority"]),
    "initial_ref": ("initial_ref", "…@01/01/2000")}

DETECTION = (("ids", "Intrusion detection system (IDS)"), ("log_review", "Review of stored logs"),
             ("notified_by", "Notified by another party"), ("other", "Other"))
NOTIFIED = (("network_member", "The network member responsible for the response"),
            ("isp", "The ISP providing the service"), ("coordinating_authority", "The coordinating authority"))
STATUS = (("handled", "Handled"), ("not_handled", "Not handled"))
ATTACHMENTS = (("system_logs", "System logs"), ("malware_sample", "Malware sample"),
               ("progress_report", "Progress reports"), ("response_plan", "Response plan"), ("other", "Other"))
CHOICES = dict(DETECTION + NOTIFIED + STATUS + ATTACHMENTS + (
    ("web_server", "Web server"), ("mail_server", "Mail server"), ("database_server", "Database server"),
    ("antivirus", "Antivirus"), ("firewall", "Firewall")))

#: document path -> (input kind, form name, choices)
EDITS: dict[str, tuple[str, str, tuple[tuple[str, str], ...]]] = {
    "summary": ("textarea", "summary", ()), "outcome": ("textarea", "outcome", ()),
    "system.operator": ("text", "system_operator", ()), "system.owner": ("text", "system_owner", ()),
    "system.name": ("text", "system_name", ()), "system.level": ("level", "system_level", ()),
    "system.sec_provider": ("text", "sec_provider", ()), "system.isp": ("text", "isp", ()),
    "system.purpose": ("text", "purpose", ()), "detection_method": ("checks", "detection_method", DETECTION),
    "notified": ("checks", "notified", NOTIFIED), "status": ("radio", "status", STATUS),
    "confidential": ("yesno", "confidential", ()), "support_request": ("textarea", "support_request", ()),
    "initial_ref": ("text", "initial_ref", ()), "attachments": ("checks", "attachments", ATTACHMENTS),
    "future_measures": ("textarea", "future_measures", ()),
}

_REPORTER = ("1. Reporting organisation", (("Name of the reporting organisation", "reporter.name"), ("Address", "reporter.address"),
                                            ("Phone", "reporter.phone"), ("E-mail", "reporter.email"),
                                            ("Network member code", "reporter.member_code")))
_SIGNATORY = ("Legal representative (signatory)", (("Full name", "signatory.name"), ("Position", "signatory.title")))
SECTIONS: dict[str, tuple[tuple[str, tuple[tuple[str, str], ...]], ...]] = {
    "03": (
        _REPORTER,
        ("2. Contact person", (("Full name", "contact.full_name"), ("Position", "contact.position"),
                               ("Phone", "contact.phone"), ("E-mail", "contact.email"))),
        ("3. The affected information system", (
            ("Operator of the information system", "system.operator"), ("Governing body", "system.owner"),
            ("System name", "system.name"), ("Security level (Decree 85/2016)", "system.level"),
            ("Security service provider", "system.sec_provider"), ("Internet service provider", "system.isp"))),
        ("4. Preliminary description of the incident", (("Summary", "summary"),)),
        ("5. Discovery", (("Date discovered", "discovered_date"), ("Time discovered", "discovered_time"))),
        ("6. Current state of the incident", (("State", "status"),)),
        ("7. How it was detected", (("Detection", "detection_method"),)),
        ("8. Incident already notified to", (("Notified", "notified"),)),
        ("9. Additional information", (
            ("Operating system", "system.os"), ("Services", "system.services"),
            ("Security controls in place", "system.controls"), ("Public IP addresses", "system.public_ips"),
            ("Domain names", "system.domains"), ("Purpose of use", "system.purpose"),
            ("Attachments", "attachments"), ("Keep confidential", "confidential"))),
        ("10. Requests for support", (("Requests", "support_request"),)),
        ("11. Time of the report", (("Reported at", "reported_at"),)),
        _SIGNATORY),
    "04": (
        _REPORTER,
        ("2. Reference of the initial report", (("Number@date of the initial report", "initial_ref"),)),
        ("3. The affected information system", (
            ("Operator of the information system", "system.operator"), ("Governing body", "system.owner"),
            ("System name", "system.name"), ("Security level (Decree 85/2016)", "system.level"))),
        ("4. Name or description of the incident", (("Summary", "summary"),)),
        ("5. Discovery", (("Date discovered", "discovered_date"), ("Time discovered", "discovered_time"))),
        ("6. Outcome of the response", (("Outcome", "outcome"),)),
        ("7. Attachments", (("Attachments", "attachments"),)),
        ("8. Measures against similar incidents", (("Measures", "future_measures"),)),
        ("9. Time of the report", (("Reported at", "reported_at"),)),
        _SIGNATORY),
}


def _at(document: dict[str, Any] | None, path: str) -> Any:
    value: Any = document
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _incident_value(incident: Incident, name: str) -> Any:
    system = incident.affected_systems[0] if incident.affected_systems else None
    if name in ("summary", "outcome"):
        return getattr(incident, name) or None
    if system is None:
        return None
    value = getattr(system, name.removeprefix("system_"))
    return None if value is None else str(value)


def _current(path: str, name: str, document: dict[str, Any] | None, missing: bool, incident: Incident,
             given: dict[str, Any]) -> Any:
    """What an input shows: the value given in this builder, else the incident's (for what it
    holds), else the document's (unless missing: then its value is a placeholder)."""
    if name in given:
        return given[name]
    if name in INCIDENT_KEYS:
        return _incident_value(incident, name) or ""
    if missing:
        return [] if name in LIST_KEYS else ""
    value = _at(document, path)
    if path == "initial_ref" and isinstance(value, dict):
        return f"{value.get('report_no')}@{value.get('date')}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return value if value is not None else ([] if name in LIST_KEYS else "")


def _shown(path: str, document: dict[str, Any] | None) -> Any:
    value = _at(document, path)
    if isinstance(value, dict) and path == "initial_ref":
        return f"{value.get('report_no')} ({value.get('date')})"
    if isinstance(value, list):  # (text, whether it is a message id to translate)
        return [(CHOICES[v], True) if isinstance(v, str) and v in CHOICES else (v, False) for v in value]
    if isinstance(value, str) and value in CHOICES:
        return [(CHOICES[value], True)]
    return value


def rows(form: str, document: dict[str, Any] | None, missing: dict[str, dict[str, Any]], incident: Incident,
         given: dict[str, Any]) -> list[dict[str, Any]]:
    """The sections of ``form``, each ``{"title", "rows": [...]}``; a row has its ``label``,
    ``value`` (shown), ``missing`` (the engine's entry, or None), ``edit`` (input kind or None),
    ``name``, ``choices`` and ``current`` (the input's value)."""
    out = []
    for title, fields in SECTIONS[form]:
        section = []
        for label, path in fields:
            lack = missing.get(path)
            kind, name, choices = EDITS.get(path, (None, "", ()))
            section.append({"label": label, "path": path, "missing": lack, "edit": kind, "name": name,
                            "choices": choices, "value": None if lack else _shown(path, document),
                            "current": _current(path, name, document, lack is not None, incident, given)
                            if kind else None})
        out.append({"title": title, "rows": section})
    return out
