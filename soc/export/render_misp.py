"""MISP event (MISP core format) of an incident report (``national-reporting.md`` §2.C).

One event per incident report: ``info`` = summary, ``date`` = discovery date,
``threat_level_id`` critical/high -> 1, medium -> 2, low -> 3; ``analysis`` initial -> 0,
update -> 1, closing -> 2; ``distribution`` 0 (this organisation only) when confidential,
otherwise 1 (this community); tags ``rsit:*``, ``tlp:*``, ``x-vn:*``; attributes for the IoCs
(``ip-src``, ``domain``, ``url``; ``to_ids`` as decided for the IoC) and the system's public IPs
and domains; an ``Object`` for the affected system. uuid5 ids and the report time as timestamp
make it deterministic.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from soc.export.documents import IncidentReport
from soc.export.render_stix import NAMESPACE

THREAT_LEVEL = {"critical": "1", "high": "1", "medium": "2", "low": "3"}
ANALYSIS = {"initial": "0", "update": "1", "closing": "2"}
ATTR_TYPE = {"ipv4-addr": "ip-src", "ipv6-addr": "ip-src", "domain-name": "domain", "url": "url",
             "file-sha256": "sha256", "user-account": "target-user"}


def _uuid(*parts: object) -> str:
    return str(uuid.uuid5(NAMESPACE, "misp|" + "|".join(map(str, parts))))


def build_event(r: IncidentReport, tlp: str = "amber+strict") -> dict[str, Any]:
    ts = str(int(datetime.fromisoformat(r.reported_at).timestamp()))
    no = r.report_no
    level = "amber+strict" if r.confidential else tlp
    tags = [{"name": f"tlp:{level}"}, *({"name": t} for t in r.rsit),
            {"name": f'x-vn:incident-type="{r.incident_type}"'},
            {"name": f'x-vn:profile="{r.profile_id}"'},
            {"name": f'x-vn:report-kind="{r.report_kind}"'}]
    if r.system.level:
        tags.append({"name": f'x-vn:system-level="{r.system.level}"'})
    if r.serious:
        tags.append({"name": 'x-vn:serious="true"'})
    attributes = []
    for ioc in r.iocs:
        attributes.append({
            "uuid": _uuid(no, "ioc", ioc.type, ioc.value), "type": ATTR_TYPE[ioc.type],
            "category": "Network activity" if ioc.type != "user-account" else "Targeting data",
            "value": ioc.value, "to_ids": ioc.to_ids, "timestamp": ts,
            "first_seen": ioc.first_seen, "last_seen": ioc.last_seen,
            "comment": "quan sát bởi SOC tỉnh / observed by the provincial SOC"})
    system_attrs = [{"object_relation": "name", "type": "text", "value": r.system.name or r.system.operator},
                    {"object_relation": "operator", "type": "text", "value": r.system.operator}]
    system_attrs += [{"object_relation": "ip", "type": "ip-dst", "value": ip} for ip in r.system.public_ips]
    system_attrs += [{"object_relation": "domain", "type": "domain", "value": d} for d in r.system.domains]
    system_attrs += [{"object_relation": "hostname", "type": "hostname", "value": h} for h in r.system.hosts]
    for attr in system_attrs:
        attr.update({"uuid": _uuid(no, "system", attr["object_relation"], attr["value"]),
                     "category": "Network activity" if attr["type"] != "text" else "Other",
                     "to_ids": False, "timestamp": ts})
    event = {
        "uuid": _uuid(no, "event"),
        "info": f"[{r.form}] {r.summary}",
        "date": datetime.fromisoformat(r.discovered_at).date().isoformat(),
        "timestamp": ts,
        "publish_timestamp": ts,
        "published": False,
        "threat_level_id": THREAT_LEVEL[r.severity],
        "analysis": ANALYSIS[r.report_kind],
        "distribution": "0" if r.confidential else "1",
        "Orgc": {"name": r.reporter.name, "uuid": _uuid("org", r.reporter.name)},
        "Tag": tags,
        "Attribute": attributes,
        "Object": [{
            "uuid": _uuid(no, "object", "system"), "name": "x-vn-affected-system",
            "meta-category": "network", "description": "Hệ thống bị sự cố (Mẫu 03 mục 3)",
            "comment": f"cấp độ {r.system.level}" if r.system.level else "",
            "timestamp": ts, "distribution": "5", "Attribute": system_attrs}],
        "EventReport": [{"uuid": _uuid(no, "report"), "name": f"{r.form} {no}", "timestamp": ts,
                         "distribution": "5",
                         "content": "\n\n".join(x for x in (r.summary, r.support_request, r.outcome) if x)}],
        "x_vn": {"profile_id": r.profile_id, "schema_version": r.schema_version, "legal_basis": r.legal_basis,
                 "report_no": no, "report_kind": r.report_kind, "incident_id": r.incident_id},
    }
    return {"Event": event}


def render_misp(r: IncidentReport, tlp: str = "amber+strict") -> bytes:
    return (json.dumps(build_event(r, tlp), ensure_ascii=False, sort_keys=True, indent=2) + "\n").encode("utf-8")
