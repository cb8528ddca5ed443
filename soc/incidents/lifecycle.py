"""An incident's lifecycle and fields: status transitions, assignee, notes, verdict, edits
(pinning what an analyst set) and the national reports recorded for it."""

from __future__ import annotations

from typing import Any, get_args

from pydantic import ValidationError

from soc.incidents.errors import IncidentError
from soc.incidents.model import (
    IMPACTS,
    INCIDENT_TYPES,
    STATUSES,
    AffectedSystem,
    Incident,
    Note,
    ReportRecord,
    Verdict,
)
from soc.incidents.records import IncidentRecords

VERDICTS: tuple[str, ...] = get_args(Verdict)
#: fields :meth:`Incidents.update` may change; the first three are then pinned
UPDATABLE = ("title", "severity", "incident_type", "summary", "outcome", "affected_systems", "impacts")
PINNABLE = ("title", "severity", "incident_type")


def allowed_next(status: str) -> list[str]:
    """Statuses an incident in ``status`` may move to: any later one, or back to ``triage``."""
    here = STATUSES.index(status)
    later = list(STATUSES[here + 1:])
    return (["triage"] + later) if here > STATUSES.index("triage") else later


class IncidentLifecycle(IncidentRecords):
    """Status, assignee, notes, verdict, fields and reports of one incident."""

    def transition(self, incident_id: str, status: str, *, actor: str, note: str | None = None) -> Incident:
        """Move to ``status``: forward (steps may be skipped) or back to ``triage`` (re-open).
        Reaching ``resolved`` (or ``closed``) the first time sets ``response_ended_at``, from
        which the closing report is due; ``closed`` sets ``closed_at``."""
        if status not in STATUSES:
            raise IncidentError(f"unknown status {status!r}: use one of {', '.join(STATUSES)}")

        def change(incident: Incident, now: str) -> dict[str, Any]:
            if incident.merged_into:
                raise IncidentError(f"incident {incident.id} was merged into {incident.merged_into}; "
                                    "change that one")
            old = incident.status
            if status == old:
                raise IncidentError(f"incident {incident.id} is already {status}")
            if status not in allowed_next(old):
                raise IncidentError(f"incident {incident.id} is {old}: it can go to "
                                    f"{', '.join(allowed_next(old)) or 'nothing else'}, not {status}")
            incident.status = status  # type: ignore[assignment]
            if status in ("resolved", "closed") and not incident.response_ended_at:
                incident.response_ended_at = now
            if status == "closed":
                incident.closed_at = now
            elif old == "closed":
                incident.closed_at = None
            if note:
                incident.notes.append(Note(at=now, author=actor, text=note))
            return {"from": old, "to": status, "note": note or ""}

        return self._mutate(incident_id, change, actor=actor, action="status")

    def assign(self, incident_id: str, assignee: str | None, *, actor: str) -> Incident:
        def change(incident: Incident, _now: str) -> dict[str, Any] | None:
            new = assignee or None
            if incident.assignee == new:
                return None
            old, incident.assignee = incident.assignee, new
            return {"from": old or "", "to": new or ""}

        return self._mutate(incident_id, change, actor=actor, action="assign")

    def add_note(self, incident_id: str, text: str, *, actor: str) -> Incident:
        if not text.strip():
            raise IncidentError("an empty note: write what you found or did")

        def change(incident: Incident, now: str) -> dict[str, Any]:
            incident.notes.append(Note(at=now, author=actor, text=text))
            return {"text": text[:500]}

        return self._mutate(incident_id, change, actor=actor, action="note")

    def set_verdict(self, incident_id: str, verdict: str | None, *, actor: str) -> Incident:
        if verdict is not None and verdict not in VERDICTS:
            raise IncidentError(f"unknown verdict {verdict!r}: use {', '.join(VERDICTS)}")

        def change(incident: Incident, _now: str) -> dict[str, Any] | None:
            if incident.verdict == verdict:
                return None
            old, incident.verdict = incident.verdict, verdict  # type: ignore[assignment]
            return {"from": old or "", "to": verdict or ""}

        return self._mutate(incident_id, change, actor=actor, action="verdict")

    def update(self, incident_id: str, *, actor: str, **fields: Any) -> Incident:
        """Change ``title``, ``severity``, ``incident_type``, ``summary``, ``outcome``,
        ``affected_systems`` (AffectedSystem or dicts) or ``impacts``. Title, severity and type
        set here are pinned: alerts attached later no longer change them."""
        unknown = sorted(set(fields) - set(UPDATABLE))
        if unknown:
            raise IncidentError(f"cannot update {', '.join(unknown)}: the fields are {', '.join(UPDATABLE)}")
        if "impacts" in fields:
            bad = [i for i in fields["impacts"] or [] if i not in IMPACTS]
            if bad:
                raise IncidentError(f"unknown impacts {bad}: use {', '.join(IMPACTS)}")
        if "incident_type" in fields and fields["incident_type"] not in INCIDENT_TYPES:
            raise IncidentError(f"unknown incident type {fields['incident_type']!r}: use {', '.join(INCIDENT_TYPES)}")

        def change(incident: Incident, _now: str) -> dict[str, Any] | None:
            before = incident.model_dump(mode="json")
            try:
                updated = Incident.model_validate({**before, **{
                    k: ([s.model_dump() if isinstance(s, AffectedSystem) else s for s in v]
                        if k == "affected_systems" else v) for k, v in fields.items()}})
            except ValidationError as error:
                raise IncidentError(f"incident {incident_id}: {error}") from error
            after = updated.model_dump(mode="json")
            detail = {k: {"from": before[k], "to": after[k]} for k in fields if before[k] != after[k]}
            if not detail:
                return None
            for name in detail:
                setattr(incident, name, getattr(updated, name))
                if name in PINNABLE and name not in incident.pinned:
                    incident.pinned.append(name)
            if "title" in detail:
                incident.title_template = None  # kept as written, no longer filled from the alerts
            return detail

        return self._mutate(incident_id, change, actor=actor, action="edit")

    def record_report(self, incident_id: str, record: ReportRecord, *, actor: str) -> Incident:
        """Record a national report built (and, with ``delivered_at``, delivered) for it. A record
        with the same kind and number replaces the earlier one (e.g. when it was delivered)."""

        def change(incident: Incident, _now: str) -> dict[str, Any]:
            incident.reports = [r for r in incident.reports
                                if (r.kind, r.report_no) != (record.kind, record.report_no)] + [record]
            return {"kind": record.kind, "report_no": record.report_no,
                    "delivered_at": record.delivered_at or ""}

        return self._mutate(incident_id, change, actor=actor, action="report")
