"""STIX 2.1 bundle of an incident report (``national-reporting.md`` §2.C), with the ``stix2``
library.

Objects: the report (``report_types: ["incident"]``, custom ``x_vn_*`` properties), identities
(reporter = ``created_by_ref``, operator, contact), the incident with the Incident Core Extension
(``extension-definition--ef765651-680c-498d-9894-99799f2fa126``), the affected system as
``infrastructure`` (custom ``x_vn_system_level`` ...) with its public IPs and domains as SCOs,
one ``indicator`` + ``sighting`` per IoC, ``note``s for the support request and the outcome, and
a TLP 2.0 marking (AMBER+STRICT by default and whenever the report is confidential).

Deterministic: every id is a uuid5 of the report number and the object's role, every timestamp
comes from the report, and the JSON is written with sorted keys, so the same snapshot always
gives the same bytes.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import stix2

from soc.export.documents import IncidentReport

INCIDENT_EXT = "extension-definition--ef765651-680c-498d-9894-99799f2fa126"
TLP2_EXT = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"
TLP2 = {  # TLP 2.0 marking definitions (FIRST / OASIS published ids)
    "clear": "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    "green": "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    "amber": "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    "amber+strict": "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    "red": "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}
NAMESPACE = uuid.UUID("6f0d1f7e-6c1b-5a4e-9a53-1c2b6d0e7a11")
CRITICALITY = {"low": 25, "medium": 50, "high": 75, "critical": 100}
DETECTION = {"ids": "automated-tool", "log_review": "automated-tool", "notified_by": "external-notification",
             "other": "human-review"}


def sid(kind: str, *parts: object) -> str:
    return f"{kind}--{uuid.uuid5(NAMESPACE, '|'.join(map(str, (kind, *parts))))}"


def _ts(text: str) -> str:
    """Local ISO -> STIX UTC timestamp with milliseconds."""
    return datetime.fromisoformat(text).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def tlp_marking(level: str) -> stix2.MarkingDefinition:
    return stix2.MarkingDefinition(
        id=TLP2[level], created="2022-10-01T00:00:00.000Z", name=f"TLP:{level.upper()}",
        extensions={TLP2_EXT: {"extension_type": "property-extension", "tlp_2_0": level}},
        allow_custom=True)


def _pattern(kind: str, value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    path = {"ipv4-addr": "ipv4-addr:value", "ipv6-addr": "ipv6-addr:value",
            "domain-name": "domain-name:value", "url": "url:value"}.get(kind, f"{kind}:value")
    return f"[{path} = '{escaped}']"


def build_bundle(r: IncidentReport, tlp: str = "amber+strict") -> stix2.Bundle:
    no = r.report_no
    at = _ts(r.reported_at)
    discovered = _ts(r.discovered_at)
    level = "amber+strict" if r.confidential else tlp
    marking = tlp_marking(level)
    common: dict[str, Any] = {"created": at, "modified": at, "object_marking_refs": [marking.id]}
    objects: list[Any] = [marking]
    reporter = stix2.Identity(id=sid("identity", "reporter", r.reporter.name), name=r.reporter.name,
                              identity_class="organization",
                              contact_information=f"{r.reporter.address}; {r.reporter.phone}; {r.reporter.email}",
                              **common)
    objects.append(reporter)
    common["created_by_ref"] = reporter.id
    operator = stix2.Identity(id=sid("identity", "operator", r.system.operator), name=r.system.operator,
                              identity_class="organization", **common)
    objects.append(operator)
    if r.contact:
        objects.append(stix2.Identity(
            id=sid("identity", "contact", no, r.contact.full_name), name=r.contact.full_name,
            identity_class="individual", roles=[r.contact.position] if r.contact.position else None,
            contact_information=f"{r.contact.phone}; {r.contact.email}", **common))
    scos = []
    for ip in r.system.public_ips:
        scos.append(stix2.IPv6Address(value=ip) if ":" in ip else stix2.IPv4Address(value=ip))
    for domain in r.system.domains:
        scos.append(stix2.DomainName(value=domain))
    objects.extend(scos)
    infra = stix2.Infrastructure(
        id=sid("infrastructure", no, r.system.name or r.system.operator),
        name=r.system.name or r.system.operator, infrastructure_types=["unknown"],
        description=f"Đơn vị vận hành: {r.system.operator}" + (f"; cơ quan chủ quản: {r.system.owner}" if r.system.owner else ""),
        x_vn_system_level=r.system.level, x_vn_services=r.system.services, x_vn_controls=r.system.controls,
        x_vn_os=" ".join(x for x in (r.system.os, r.system.os_version) if x) or None,
        x_vn_hosts=r.system.hosts, allow_custom=True, **common)
    objects.append(infra)
    closed = r.status == "handled"
    ext = {
        "extension_type": "property-extension",
        "determination": "confirmed" if r.severity in ("high", "critical") or closed else "suspected",
        "investigation_status": "closed" if closed else "open",
        "criticality": CRITICALITY[r.severity],
        "detection_methods": sorted({DETECTION[d] for d in r.detection_method}),
        "incident_types": [r.incident_type],
        "other_object_refs": [],
    }
    incident_id = sid("incident", no, r.incident_id)
    rels = [stix2.Relationship(id=sid("relationship", no, "impacts", infra.id), relationship_type="impacts",
                               source_ref=incident_id, target_ref=infra.id, **common)]
    for sco in scos:
        rels.append(stix2.Relationship(id=sid("relationship", no, "consists-of", sco.id),
                                       relationship_type="consists-of", source_ref=infra.id,
                                       target_ref=sco.id, **common))
    sightings = []
    indicators = []
    for ioc in r.iocs:
        if ioc.type not in ("ipv4-addr", "ipv6-addr", "domain-name", "url"):
            continue
        first = _ts(ioc.first_seen) if ioc.first_seen else discovered
        last = _ts(ioc.last_seen) if ioc.last_seen else first
        indicator = stix2.Indicator(
            id=sid("indicator", no, ioc.type, ioc.value), name=f"{ioc.type} {ioc.value}",
            pattern=_pattern(ioc.type, ioc.value), pattern_type="stix", valid_from=first,
            indicator_types=["malicious-activity"] if ioc.to_ids else ["anomalous-activity"], **common)
        indicators.append(indicator)
        count = len(r.alerts) or 1
        sightings.append(stix2.Sighting(
            id=sid("sighting", no, indicator.id), sighting_of_ref=indicator.id, first_seen=first,
            last_seen=last if last > first else None, count=count, where_sighted_refs=[reporter.id], **common))
    ext["other_object_refs"] = [i.id for i in indicators] + [s.id for s in sightings] + [infra.id]
    incident = stix2.Incident(
        id=incident_id, name=r.incident_title, description=r.summary,
        extensions={INCIDENT_EXT: ext}, labels=[r.incident_type, *r.rsit],
        x_vn_incident_id=r.incident_id, x_vn_type_label=r.incident_type_label,
        x_vn_serious=r.serious, x_vn_status=r.status, allow_custom=True, **common)
    notes = []
    if r.support_request:
        notes.append(stix2.Note(id=sid("note", no, "support"), abstract="Kiến nghị, đề xuất hỗ trợ",
                                content=r.support_request, object_refs=[incident.id], **common))
    if r.outcome:
        notes.append(stix2.Note(id=sid("note", no, "outcome"), abstract="Kết quả xử lý sự cố",
                                content=r.outcome, object_refs=[incident.id], **common))
    refs = [o.id for o in objects if not o.id.startswith("marking-definition--")] + [incident.id] + \
        [o.id for o in (*rels, *indicators, *sightings, *notes)]
    report = stix2.Report(
        id=sid("report", no), name=f"{r.form} {no}: {r.incident_title}", description=r.summary,
        report_types=["incident"], published=at, object_refs=refs,
        x_vn_profile_id=r.profile_id, x_vn_schema_version=r.schema_version, x_vn_legal_basis=r.legal_basis,
        x_vn_report_kind=r.report_kind, x_vn_report_no=no,
        x_vn_initial_ref=r.initial_ref.model_dump() if r.initial_ref else None,
        x_vn_discovered_at=discovered, x_vn_deadline_due_at=_ts(r.deadline_due_at) if r.deadline_due_at else None,
        allow_custom=True, **common)
    return stix2.Bundle(report, *objects, incident, *rels, *indicators, *sightings, *notes,
                        id=sid("bundle", no), allow_custom=True)


def render_stix(r: IncidentReport, tlp: str = "amber+strict") -> bytes:
    bundle = build_bundle(r, tlp)
    data = json.loads(bundle.serialize())
    return (json.dumps(data, ensure_ascii=False, sort_keys=True, indent=2) + "\n").encode("utf-8")


# -- periodic summaries ----------------------------------------------------------------------------
SUMMARY_EXT_NAME = "x-vn-periodic-summary"


def build_summary_bundle(doc: Any, tlp: str = "amber") -> stix2.Bundle:
    """A periodic summary (Mẫu 05 or monitoring) as a STIX ``report`` with ``report_types``
    ``["x-vn-periodic-summary"]`` and the summary JSON in a property extension defined here (an
    ``extension-definition`` whose ``schema`` is the shipped JSON Schema); top attack sources as
    indicators. TLP:AMBER unless the profile says otherwise."""
    no = doc.report_no
    at = _ts(doc.reported_at)
    marking = tlp_marking(tlp)
    org = getattr(doc, "organisation", None) or doc.unit
    reporter = stix2.Identity(id=sid("identity", "reporter", org.name), name=org.name, identity_class="organization",
                              created=at, modified=at, object_marking_refs=[marking.id])
    common: dict[str, Any] = {"created": at, "modified": at, "object_marking_refs": [marking.id],
                              "created_by_ref": reporter.id}
    ext_id = sid("extension-definition", SUMMARY_EXT_NAME, doc.document, doc.schema_version)
    extension = stix2.ExtensionDefinition(
        id=ext_id, name=f"{SUMMARY_EXT_NAME} ({doc.document})", version=doc.schema_version,
        schema=f"urn:soc:export:{doc.document}", extension_types=["property-extension"],
        description="Báo cáo tổng hợp định kỳ / periodic summary (national-reporting §2.B, Mẫu 05)",
        created=at, modified=at, created_by_ref=reporter.id)
    indicators = []
    for source in getattr(doc, "top_sources", []):
        if ":" in source.value or source.value.replace(".", "").isdigit():
            kind = "ipv6-addr" if ":" in source.value else "ipv4-addr"
            indicators.append(stix2.Indicator(
                id=sid("indicator", no, kind, source.value), name=f"{kind} {source.value}",
                pattern=_pattern(kind, source.value), pattern_type="stix", valid_from=_ts(doc.period.start),
                indicator_types=["anomalous-activity"], description=f"{source.hits} cảnh báo / alerts", **common))
    data = doc.model_dump(mode="json")
    report = stix2.Report(
        id=sid("report", no), name=f"{getattr(doc, 'form', 'Báo cáo giám sát')} {no} ({doc.period.label})",
        report_types=[SUMMARY_EXT_NAME], published=at,
        object_refs=[reporter.id, *(i.id for i in indicators)],
        extensions={ext_id: {"extension_type": "property-extension", "summary": data}},
        x_vn_profile_id=doc.profile_id, x_vn_report_no=no, allow_custom=True, **common)
    return stix2.Bundle(report, marking, extension, reporter, *indicators, id=sid("bundle", no), allow_custom=True)


def render_summary_stix(doc: Any, tlp: str = "amber") -> bytes:
    data = json.loads(build_summary_bundle(doc, tlp).serialize())
    return (json.dumps(data, ensure_ascii=False, sort_keys=True, indent=2) + "\n").encode("utf-8")
