"""Periodic summaries: Mẫu 05 (six-monthly / yearly) and the daily / weekly / monthly
monitoring summary (``national-reporting.md`` §2.B), captured into a snapshot and built from it.

Each summary carries ``audit_checkpoint``: the head of the audit trail (sequence number, hash,
time) when its snapshot was captured, in the document and so under the report's signature
(:mod:`soc.audit.checkpoints`; ``soc audit verify`` checks the chain against it).

Counting rules (also in ``docs/reporting.md``):

* an incident *belongs to a period* when it was discovered in it (``discovered_at`` in
  ``[start, end)``); merged incidents are left out, and so are false positives and benign ones;
* Mẫu 05 row = the incident type's Mẫu 05 row (``scan``/``vulnerable`` roll up to ``other``);
  handling (self / domestic / foreign / national-centre help, estimated damage) comes from the
  incident's latest report (``--set handled_by=self|domestic|foreign|vncert``,
  ``--set est_damage_vnd=N``); an incident resolved or closed without that counts as self-handled;
* alerts belong to a period by ``first_seen``; severity is the rule level; type is the type of
  the incident the alert is attached to (``unassigned`` otherwise);
* MTTD, MTTA and MTTR (median and mean, with how many incidents each counts) as
  :mod:`soc.export.measures` defines them: MTTD only over incidents whose first event was
  stored within ``oversight.backfill_hours`` of when it happened -- back-filled ones (replayed
  old logs) are counted apart with their delivery delay, so a month of replayed logs no longer
  reads "MTTD 336.148,95 phút"; the snapshot keeps, per incident, when a person first acted on
  it and (for the ones detected late) how late its first event was stored;
* alerts over time: per hour of a daily summary, else per day, by level (the report's charts);
* a log source *went silent* when it sent events in the previous period and none in this one
  (per ``organization.id`` and per ``host.name``, event time).
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from soc.audit.checkpoints import audit_checkpoint
from soc.config import Settings
from soc.export.documents import HandlingRow, MonitoringSummary, SummaryReport
from soc.export.incident_report import Missing, MissingFieldsError
from soc.export.measures import (
    DEFAULT_BACKFILL_HOURS,
    TimeFigures,
    acknowledged_at,
    first_event_lags,
    summarize,
    timing_of,
)
from soc.export.periods import ReportPeriod
from soc.export.profiles import Profile
from soc.export.snapshot import ALERTS, INCIDENTS, SNAPSHOTS, _base, _safe
from soc.export.timefmt import local_iso
from soc.incidents.model import INCIDENT_TYPES
from soc.model import parse_iso
from soc.store.base import Store, Window

MAU05_ROWS = ("dos", "spoofing", "malware", "unauthorized_access", "defacement", "ransomware",
              "sabotage", "espionage", "combined", "other")
SILENT_FIELDS = ("organization.id", "host.name")
INCIDENT_KEEP = ("id", "title", "status", "severity", "incident_type", "agency", "agencies", "alert_ids",
                 "first_seen", "discovered_at", "response_ended_at", "closed_at", "merged_into", "verdict",
                 "affected_systems", "impacts", "reports")
ALERT_KEEP = ("id", "rule", "agency", "first_seen", "last_seen", "detected_at", "event_count",
              "entities", "incident_id", "kind")
LEVELS = ("informational", "low", "medium", "high", "critical")


def summary_document(kind: str) -> str:
    return "summary_report" if kind in ("semiannual", "annual") else "monitoring_summary"


def summary_report_no(settings: Settings, period: ReportPeriod, document: str) -> str:
    code = _safe(settings.reporting.reporter.member_code or "SOC")
    return f"{'BC05' if document == 'summary_report' else 'TH'}-{code}-{period.type}-{period.label}"


def _counts(store: Store, period: ReportPeriod) -> dict[str, Any]:
    def window(p: ReportPeriod) -> Window:
        return Window(p.start.timestamp(), p.end.timestamp(), field="@timestamp")

    prev = period.previous()
    out: dict[str, Any] = {"total": store.count_events(window(period)).get("", 0),
                           "previous_total": store.count_events(window(prev)).get("", 0)}
    for field in SILENT_FIELDS:
        out[field] = {k: v for k, v in store.count_events(window(period), group_by=field).items()
                      if k not in ("None", "")}
        out["previous:" + field] = {k: v for k, v in store.count_events(window(prev), group_by=field).items()
                                    if k not in ("None", "")}
    return out


def _handling(store: Store, incident_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Per incident, the handling facts recorded with its latest report (closing first)."""
    out: dict[str, dict[str, Any]] = {}
    for incident_id in incident_ids:
        docs = store.find(SNAPSHOTS, {"incident_id": incident_id}, sort="built_at", descending=True, limit=50)
        docs.sort(key=lambda d: (d.body.get("kind") == "closing", d.body.get("built_at", "")), reverse=True)
        for doc in docs:
            ov = doc.body.get("overrides") or {}
            facts = {k: ov[k] for k in ("handled_by", "helpers", "est_damage_vnd") if k in ov}
            if facts:
                out[incident_id] = facts
                break
    return out


def capture_summary(store: Store, settings: Settings, profile: Profile, period: ReportPeriod, *,
                    built_at: datetime | None = None, report_no: str | None = None,
                    recommendations: str | None = None) -> dict[str, Any]:
    document = summary_document(period.type)
    start, end = period.start_utc, period.end_utc
    incidents = []
    for doc in store.iter_all(INCIDENTS):
        inc = doc.body
        discovered = inc.get("discovered_at") or ""
        ended = inc.get("response_ended_at") or ""
        closed = inc.get("closed_at") or ""
        delivered = [r.get("delivered_at") or "" for r in inc.get("reports", [])]
        touches = (discovered < end and (not closed or closed >= start)) or start <= ended < end \
            or any(start <= d < end for d in delivered)
        if touches:
            kept = {k: inc.get(k) for k in INCIDENT_KEEP if k in inc}
            kept["acknowledged_at"] = acknowledged_at(inc)
            incidents.append(kept)
    incidents.sort(key=lambda i: i["id"])
    backfill_hours = settings.oversight.backfill_hours
    for incident_id, delay in first_event_lags(store, incidents, backfill_hours * 3600).items():
        kept = next(i for i in incidents if i["id"] == incident_id)
        kept.update(ingest_checked=True, first_event_ingest_delay=delay)
    alerts = [{k: d.body.get(k) for k in ALERT_KEEP if k in d.body}
              for d in store.find(ALERTS, None, time_field="first_seen", start=start, end=end,
                                  sort="first_seen", limit=10_000_000)]
    alerts.sort(key=lambda a: (a.get("first_seen", ""), a.get("id", "")))
    snap = _base(report_no or summary_report_no(settings, period, document), document, period.type,
                 profile, settings, built_at or datetime.now(UTC))
    snap.update({
        "period": {"type": period.type, "label": period.label, "start": start, "end": end,
                   "previous_start": period.previous().start_utc},
        "incidents": incidents,
        "alerts": alerts,
        "event_counts": _counts(store, period) if document == "monitoring_summary" else {},
        "handling": _handling(store, [i["id"] for i in incidents]),
        "recommendations": recommendations,
        "backfill_hours": backfill_hours,
        # the audit trail's head, signed with the report (soc audit verify checks the chain against it)
        "audit_checkpoint": audit_checkpoint(store),
    })
    return snap


# -- building -----------------------------------------------------------------------------------
def _in(text: str | None, start: str, end: str) -> bool:
    return bool(text) and start <= text < end  # type: ignore[operator]


def counted_incidents(snapshot: dict[str, Any]) -> list[dict[str, Any]]:
    """Incidents discovered in the period, not merged, not false positive or benign."""
    p = snapshot["period"]
    return [i for i in snapshot["incidents"] if _in(i.get("discovered_at"), p["start"], p["end"])
            and not i.get("merged_into") and i.get("verdict") not in ("false_positive", "benign")]


def handling_rows(incidents: list[dict[str, Any]], handling: dict[str, dict[str, Any]]) -> tuple[
        list[HandlingRow], HandlingRow, list[str], list[str]]:
    rows = {code: HandlingRow(code=code, label=INCIDENT_TYPES[code][0]) for code in MAU05_ROWS}
    domestic: set[str] = set()
    foreign: set[str] = set()
    for inc in incidents:
        row = rows[INCIDENT_TYPES[inc.get("incident_type") or "other"][2]]
        row.count += 1
        facts = handling.get(inc["id"], {})
        how = facts.get("handled_by") or ("self" if inc.get("status") in ("resolved", "closed") else None)
        if how == "self":
            row.self_handled += 1
        elif how == "domestic":
            row.domestic_support += 1
            domestic.update(h.strip() for h in str(facts.get("helpers", "")).split(";") if h.strip())
        elif how == "foreign":
            row.foreign_support += 1
            foreign.update(h.strip() for h in str(facts.get("helpers", "")).split(";") if h.strip())
        elif how == "vncert":
            row.vncert_support_requested += 1
        row.est_damage_vnd += int(facts.get("est_damage_vnd") or 0)
    total = HandlingRow(code="total", label="Tổng số")
    for row in rows.values():
        for name in ("count", "self_handled", "domestic_support", "foreign_support",
                     "vncert_support_requested", "est_damage_vnd"):
            setattr(total, name, getattr(total, name) + getattr(row, name))
    return list(rows.values()), total, sorted(domestic), sorted(foreign)


def _organisation(snapshot: dict[str, Any], form: str) -> dict[str, Any]:
    rep = snapshot["reporting"]["reporter"]
    missing = []
    for key, vi, en in (("name", "Tên tổ chức", "Organisation name"), ("address", "Địa chỉ", "Address")):
        if not rep.get(key):
            missing.append(Missing(f"reporter.{key}", vi, en,
                                   f"set reporting.reporter.{key} in soc.yml (or SOC_REPORTING__REPORTER__{key.upper()})"))
    return {"name": rep.get("name"), "address": rep.get("address"), "member_code": rep.get("member_code"),
            "province": rep.get("province"), "_missing": missing}


def _envelope(snapshot: dict[str, Any]) -> dict[str, Any]:
    profile, tz = snapshot["profile"], snapshot["timezone"]
    p = snapshot["period"]
    return {"profile_id": profile["id"], "schema_version": profile["schema_version"],
            "legal_basis": profile["legal_basis"], "report_no": snapshot["report_no"],
            "reported_at": local_iso(snapshot["built_at"], tz), "timezone": tz,
            "addressee": profile.get("addressee"),
            "period": {"type": p["type"], "label": p["label"], "start": local_iso(p["start"], tz),
                       "end": local_iso(p["end"], tz), "tz": tz}}


def build_summary_report(snapshot: dict[str, Any]) -> SummaryReport:
    """Mẫu 05 from a summary snapshot; raises :class:`MissingFieldsError`."""
    org = _organisation(snapshot, "Mẫu 05")
    missing: list[Missing] = org.pop("_missing")
    sig = snapshot["reporting"].get("signatory", {})
    for key in ("name", "title"):
        if not sig.get(key):
            missing.append(Missing(f"signatory.{key}", f"Người ký: {'Họ và tên' if key == 'name' else 'Chức vụ'}",
                                   f"Signatory {key}", f"set reporting.signatory.{key} in soc.yml"))
    if missing:
        raise MissingFieldsError("Mẫu 05", f"period {snapshot['period']['label']}", missing)
    incidents = counted_incidents(snapshot)
    rows, total, domestic, foreign = handling_rows(incidents, snapshot.get("handling", {}))
    data = _envelope(snapshot)
    data.update({
        "organisation": org, "rows": [r.model_dump() for r in rows], "total": total.model_dump(),
        "domestic_helpers": domestic, "foreign_helpers": foreign,
        "recommendations": snapshot.get("recommendations"),
        "incident_ids": sorted(i["id"] for i in incidents),
        "signatory": {"name": sig["name"], "title": sig["title"],
                      "signed_by": "digital_signature" if snapshot["reporting"].get("digital_signature") else "seal"},
        "audit_checkpoint": snapshot.get("audit_checkpoint"),
    })
    return SummaryReport.model_validate(data)


def _serious(inc: dict[str, Any]) -> bool:
    systems = inc.get("affected_systems") or []
    high = any((s.get("level") or 0) >= 4 or s.get("national_critical") for s in systems)
    return high and bool(inc.get("impacts"))


def _time_fields(times: TimeFigures) -> dict[str, Any]:
    (d_median, d_mean), (a_median, a_mean), (r_median, r_mean) = \
        times.mttd.minutes(), times.mtta.minutes(), times.mttr.hours()
    return {"mttd_minutes": d_mean, "mttd_median_minutes": d_median, "mttd_count": times.mttd.count,
            "backfill_hours": times.threshold_hours, "backfilled": times.backfilled,
            "backfill_delay_median_hours": times.backfill_delay.hours()[0], "detect_unknown": times.unknown,
            "mtta_minutes": a_mean, "mtta_median_minutes": a_median, "mtta_count": times.mtta.count,
            "not_acknowledged": times.not_acknowledged,
            "mttr_hours": r_mean, "mttr_median_hours": r_median, "mttr_count": times.mttr.count}


def alerts_over_time(alerts: list[dict[str, Any]], kind: str, start: str, end: str, tz: str) -> list[dict[str, Any]]:
    """Alerts per hour (a daily summary) or per day of the period, by level, in the report's zone."""
    zone = ZoneInfo(tz)
    step = timedelta(hours=1) if kind == "daily" else timedelta(days=1)
    first, last = parse_iso(start).astimezone(zone), parse_iso(end).astimezone(zone)
    buckets: list[dict[str, Any]] = []
    moment = first
    while moment < last and len(buckets) < 400:
        buckets.append({"label": moment.strftime("%H:00" if kind == "daily" else "%d/%m"), "start": moment.isoformat(),
                        "by_severity": {}})
        moment = (moment + step).astimezone(zone) if kind == "daily" else \
            datetime.combine(moment.date() + step, time(), zone)  # local midnights
    starts = [parse_iso(b["start"]) for b in buckets]
    for alert in alerts:
        seen = parse_iso(alert["first_seen"])
        index = bisect_right(starts, seen) - 1
        if index >= 0:
            level = (alert.get("rule") or {}).get("level") or "unknown"
            counts = buckets[index]["by_severity"]
            counts[level] = counts.get(level, 0) + 1
    return buckets


def build_monitoring_summary(snapshot: dict[str, Any]) -> MonitoringSummary:
    """The §2.B monitoring summary of a snapshot (no field is required beyond the unit's name)."""
    org = _organisation(snapshot, "monitoring summary")
    missing = org.pop("_missing")
    if missing:
        raise MissingFieldsError("Báo cáo tổng hợp giám sát", f"period {snapshot['period']['label']}", missing)
    p = snapshot["period"]
    start, end = p["start"], p["end"]
    by_id = {i["id"]: i for i in snapshot["incidents"]}
    alert_type: dict[str, str] = {}
    for inc in snapshot["incidents"]:
        for alert_id in inc.get("alert_ids") or []:
            alert_type[alert_id] = inc.get("incident_type") or "other"
    alerts = [a for a in snapshot["alerts"] if _in(a.get("first_seen"), start, end)]
    sev: Counter[str] = Counter()
    typ: Counter[str] = Counter()
    agency: Counter[str] = Counter()
    sources: Counter[str] = Counter()
    targets: Counter[str] = Counter()
    for a in alerts:
        sev[(a.get("rule") or {}).get("level") or "unknown"] += 1
        incident = by_id.get(a.get("incident_id") or "")
        typ[alert_type.get(a["id"]) or (incident or {}).get("incident_type") or "unassigned"] += 1
        agency[a.get("agency") or "unknown"] += 1
        entities = a.get("entities") or {}
        for ip in set(entities.get("source.ip", [])):
            sources[str(ip)] += 1
        for target in set(map(str, entities.get("host.name", []))) | set(map(str, entities.get("destination.ip", []))):
            targets[target] += 1
    valid = [i for i in snapshot["incidents"] if not i.get("merged_into")]
    opened = counted_incidents(snapshot)
    closed = [i for i in valid if _in(i.get("closed_at"), start, end)]
    open_at_end = [i for i in valid if (i.get("discovered_at") or "") < end
                   and not (i.get("closed_at") and i["closed_at"] < end)]
    hours = float(snapshot.get("backfill_hours") or DEFAULT_BACKFILL_HOURS)
    times = summarize([timing_of(i, threshold=hours * 3600, ingest_delay=i.get("first_event_ingest_delay"),
                                 looked_up=bool(i.get("ingest_checked"))) for i in snapshot["incidents"]],
                      start=parse_iso(start), end=parse_iso(end), threshold_hours=hours)
    rows, _total, _d, _f = handling_rows(opened, snapshot.get("handling", {}))
    sent: Counter[str] = Counter()
    for inc in valid:
        for r in inc.get("reports") or []:
            if _in(r.get("delivered_at"), start, end):
                sent[r["kind"]] += 1
    counts = snapshot.get("event_counts") or {}
    silent = []
    for field in SILENT_FIELDS:
        now_counts = counts.get(field, {})
        for value, previous in sorted(counts.get("previous:" + field, {}).items()):
            if previous > 0 and not now_counts.get(value):
                silent.append({"field": field, "value": value, "previous_count": previous})
    data = _envelope(snapshot)
    data.update({
        "unit": org,
        "alerts": {"total": len(alerts), "by_severity": dict(sorted(sev.items())),
                   "by_type": dict(sorted(typ.items())), "by_agency": dict(sorted(agency.items()))},
        "alerts_over_time": alerts_over_time(alerts, p["type"], start, end, snapshot["timezone"]),
        "incidents": {
            "total": len(opened), "opened": len(opened), "closed": len(closed), "open_at_end": len(open_at_end),
            "serious": sum(1 for i in opened if _serious(i)),
            "by_severity": dict(sorted(Counter(i.get("severity") or "medium" for i in opened).items())),
            "by_type": dict(sorted(Counter(i.get("incident_type") or "other" for i in opened).items())),
            "by_agency": dict(sorted(Counter(i.get("agency") or "unknown" for i in opened).items())),
            **_time_fields(times),
            "by_type_handling": [r.model_dump() for r in rows if r.count],
            "reports_sent": dict(sorted(sent.items())),
        },
        "log_sources": {"events_total": int(counts.get("total", 0)),
                        "events_previous": int(counts.get("previous_total", 0)),
                        "by_agency": dict(sorted(counts.get("organization.id", {}).items())),
                        "silent": silent},
        "top_sources": [{"value": v, "hits": n} for v, n in sorted(sources.items(), key=lambda x: (-x[1], x[0]))[:10]],
        "top_targets": [{"value": v, "hits": n} for v, n in sorted(targets.items(), key=lambda x: (-x[1], x[0]))[:10]],
        "audit_checkpoint": snapshot.get("audit_checkpoint"),
    })
    return MonitoringSummary.model_validate(data)
