"""Snapshots: everything a report is built from, captured once and stored.

A report is a pure function of its snapshot (collection ``report_snapshots``, id = the report
number, create-only): the incident, its alerts, the reporting identity from the settings, the
profile, the agency names, the build time and the analyst's overrides for form fields the
incident does not hold. Rebuilding from the snapshot gives byte-identical files, whatever changed
in the store or the settings since.

A stored snapshot also carries ``owner_agencies`` (:data:`soc.store.scoped.REPORT_OWNER_FIELD`):
the agencies of its incident, which decide who may see the report, its outbox entries and
receipts. A province-wide summary has none: only principals that see every agency see it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from soc.config import Settings
from soc.errors import SocError
from soc.export.profiles import Profile
from soc.model import iso
from soc.store.base import Store
from soc.store.scoped import REPORT_OWNER_FIELD

SNAPSHOTS = "report_snapshots"
ALERTS = "alerts"
INCIDENTS = "incidents"
FORM_CODE = {"initial": "03", "update": "03", "closing": "04"}


class SnapshotError(SocError, ValueError):
    pass


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9-]+", "-", text).strip("-")[:40] or "x"


def reporting_identity(settings: Settings) -> dict[str, Any]:
    """The part of ``settings.reporting`` a report shows (no paths, no secrets)."""
    r = settings.reporting
    return {
        "reporter": r.reporter.model_dump(mode="json"),
        "contact": r.contact.model_dump(mode="json"),
        "signatory": r.signatory.model_dump(mode="json"),
        "default_notified": list(r.default_notified),
        "digital_signature": r.certificate is not None,
    }


def agency_names() -> dict[str, str]:
    try:
        from soc.agencies import load_agencies

        agencies = load_agencies()
    except Exception:  # no agencies file: names are optional on the forms
        return {}
    names = {a.id: a.name for a in agencies.agencies}
    names[agencies.unknown.id] = agencies.unknown.name
    return names


def _base(report_no: str, document: str, kind: str, profile: Profile, settings: Settings,
          built_at: datetime | None) -> dict[str, Any]:
    return {
        "report_no": report_no,
        "document": document,
        "kind": kind,
        "profile": profile.model_dump(mode="json", by_alias=True),
        "built_at": iso(built_at or datetime.now(UTC)),
        "timezone": settings.timezone,
        "reporting": reporting_identity(settings),
        "agencies": agency_names(),
    }


def incident_report_no(store: Store, incident_id: str, kind: str, settings: Settings,
                       at: datetime) -> str:
    """``BC03-<member code or SOC>-<yyyymmdd>-<incident>-<n>``: n counts this incident's reports
    of this kind, so a rebuilt report gets a new number and the old snapshot stays."""
    code = _safe(settings.reporting.reporter.member_code or "SOC")
    local = at.astimezone(settings.zone).strftime("%Y%m%d")
    stem = f"BC{FORM_CODE[kind]}-{code}-{local}-{_safe(incident_id)}"
    n = 1
    while store.get(SNAPSHOTS, f"{stem}-{n}") is not None:
        n += 1
    return f"{stem}-{n}"


def capture_incident(store: Store, settings: Settings, profile: Profile, incident_id: str, kind: str,
                     overrides: dict[str, Any] | None = None, *, built_at: datetime | None = None,
                     report_no: str | None = None) -> dict[str, Any]:
    """Read the incident and its alerts and return the snapshot (not yet stored)."""
    doc = store.get(INCIDENTS, incident_id)
    if doc is None:
        raise SnapshotError(f"no incident {incident_id!r} in the store (`soc incidents list` shows the ids)")
    incident = doc.body
    alerts = []
    for alert_id in incident.get("alert_ids", []):
        alert = store.get(ALERTS, alert_id)
        if alert is not None:
            alerts.append(alert.body)
    alerts.sort(key=lambda a: (a.get("first_seen", ""), a.get("id", "")))
    at = built_at or datetime.now(UTC)
    snap = _base(report_no or incident_report_no(store, incident_id, kind, settings, at),
                 "incident_report", kind, profile, settings, at)
    snap.update({"incident": incident, "alerts": alerts, "overrides": dict(overrides or {}),
                 "initial_ref": _initial_ref(store, incident) if kind == "closing" else None})
    return snap


def _initial_ref(store: Store, incident: dict[str, Any]) -> dict[str, Any] | None:
    """The latest initial report of the incident: its number and build time."""
    found = store.find(SNAPSHOTS, {"incident_id": incident["id"], "kind": ["initial", "update"]},
                       sort="built_at", descending=True, limit=1)
    if found:
        return {"report_no": found[0].body["report_no"], "built_at": found[0].body["built_at"]}
    for record in reversed(incident.get("reports", [])):
        if record.get("kind") in ("initial", "update"):
            return {"report_no": record["report_no"], "built_at": record["built_at"]}
    return None


def owner_agencies(snapshot: dict[str, Any]) -> list[str]:
    """The agencies a report belongs to: its incident's (``agencies`` and ``agency``); none for
    a summary."""
    incident = snapshot.get("incident") or {}
    found = [*(incident.get("agencies") or []), incident.get("agency")]
    return sorted({a for a in found if isinstance(a, str) and a})


def save(store: Store, snapshot: dict[str, Any]) -> bool:
    """Store a snapshot, create-only (returns False when that report number exists)."""
    body = dict(snapshot)
    if snapshot["document"] == "incident_report":
        body["incident_id"] = snapshot["incident"]["id"]
    body[REPORT_OWNER_FIELD] = owner_agencies(snapshot)
    ok = store.create(SNAPSHOTS, snapshot["report_no"], body)
    store.refresh()
    return ok


def load(store: Store, report_no: str) -> dict[str, Any]:
    doc = store.get(SNAPSHOTS, report_no)
    if doc is None:
        raise SnapshotError(f"no report snapshot {report_no!r} (`soc report outbox` lists report numbers)")
    return doc.body
