"""Which national reports are due or overdue (Circular 20/2017 deadlines, computed by the
incident model): the initial report (Mẫu 03) 5 days after discovery, the closing report
(Mẫu 04) 5 days after the response ended. A report counts as sent once an outbox delivery of it
succeeded (its ``delivered_at`` on the incident)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from soc.incidents.model import Incident
from soc.model import parse_iso
from soc.store.base import Store


@dataclass
class DueReport:
    incident_id: str
    title: str
    kind: str  # initial | closing
    due_at: str
    state: str  # not_built | built | delivered
    report_no: str | None
    overdue: bool
    serious: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def due_of(incident: Incident, now: datetime, include_delivered: bool = False) -> list[DueReport]:
    """The national reports one incident owes (none for a merged, false-positive or benign one)."""
    rows: list[DueReport] = []
    if incident.merged_into or incident.verdict in ("false_positive", "benign"):
        return rows
    for kind, due in (("initial", incident.notify_due), ("closing", incident.closing_due)):
        if not due:
            continue
        records = [r for r in incident.reports if r.kind == kind or (kind == "initial" and r.kind == "update")]
        delivered = [r for r in records if r.delivered_at]
        state = "delivered" if delivered else "built" if records else "not_built"
        if state == "delivered" and not include_delivered:
            continue
        latest = (delivered or records or [None])[-1]
        rows.append(DueReport(incident.id, incident.title, kind, due, state, latest.report_no if latest else None,
                              state != "delivered" and parse_iso(due) < now, incident.serious))
    return rows


def due_reports(store: Store, now: datetime | None = None, include_delivered: bool = False) -> list[DueReport]:
    now = now or datetime.now(UTC)
    rows = []
    for doc in store.iter_all("incidents"):
        try:
            incident = Incident.model_validate(doc.body)
        except ValueError:
            continue
        rows += due_of(incident, now, include_delivered)
    rows.sort(key=lambda r: (not r.overdue, r.due_at, r.incident_id))
    return rows
