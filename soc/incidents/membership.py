"""Which alerts belong to an incident: reading and linking alert documents (their
``incident_id``), folding alerts into an incident's derived fields (and re-deriving them when
alerts leave), a new incident from alerts, attaching and detaching."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from soc.incidents.errors import IncidentError
from soc.incidents.from_alerts import (
    _add_values,
    _alert_entities,
    _alert_times,
    _default_title,
    _ids_detail,
)
from soc.incidents.lease import _renew
from soc.incidents.model import AffectedSystem, HistoryEntry, Incident
from soc.incidents.records import ALERTS, CAS_ATTEMPTS, IncidentRecords
from soc.incidents.titles import has_placeholders, render_title
from soc.incidents.types import severity_from_alerts, severity_rank
from soc.store.base import Conflict, Doc


class IncidentMembership(IncidentRecords):
    """Alerts joining and leaving incidents (the caller holds the membership lease)."""

    def _alert_docs(self, alerts: Iterable[Mapping[str, Any] | str], *, create_missing: bool) -> list[Doc]:
        """The stored alerts, earliest first; alerts given as dicts and not stored are stored."""
        docs: dict[str, Doc] = {}
        for alert in alerts:
            alert_id = alert if isinstance(alert, str) else str(alert.get("id") or "")
            if not alert_id:
                raise IncidentError("an alert without an 'id': pass alerts as recorded by detection")
            if alert_id in docs:
                continue
            _renew()
            doc = self.store.get(ALERTS, alert_id)
            if doc is None:
                if not create_missing or isinstance(alert, str):
                    raise IncidentError(f"no alert {alert_id!r}; `soc alerts list --json` shows the ids")
                self.store.create(ALERTS, alert_id, dict(alert))
                doc = self.store.get(ALERTS, alert_id)
                assert doc is not None
            docs[alert_id] = doc
        return sorted(docs.values(), key=lambda d: (_alert_times(d.body)[0] or "", d.id))

    def _link(self, docs: Iterable[Doc], incident_id: str) -> None:
        """Set ``incident_id`` on the alert documents (compare-and-set, re-read on a lost race)."""
        for doc in docs:
            _renew()
            current: Doc | None = doc
            for _attempt in range(CAS_ATTEMPTS):
                if current is None or current.body.get("incident_id") == incident_id:
                    break
                try:
                    self.store.put(ALERTS, current.id, {**current.body, "incident_id": incident_id},
                                   expected_version=current.version)
                    break
                except Conflict:
                    current = self.store.get(ALERTS, current.id)
            else:
                raise IncidentError(f"alert {doc.id} kept changing; could not link it to {incident_id}")

    def _absorb(self, incident: Incident, alerts: Sequence[Mapping[str, Any]]) -> list[str]:
        """Add alerts to the incident's lists and derived fields; returns the ids added."""
        known = set(incident.alert_ids)
        added = [str(a["id"]) for a in alerts if str(a["id"]) not in known]
        incident.alert_ids.extend(added)
        for alert in alerts:
            rule_id = str((alert.get("rule") or {}).get("id") or "")
            if rule_id and rule_id not in incident.rule_ids:
                incident.rule_ids.append(rule_id)
            agency = alert.get("agency")
            if agency and agency not in incident.agencies:
                incident.agencies.append(agency)
            if incident.agency is None and agency:
                incident.agency = agency
            for name, values in _alert_entities(alert).items():
                _add_values(incident.entities, name, values)
            first, last = _alert_times(alert)
            if first and (incident.first_seen is None or first < incident.first_seen):
                incident.first_seen = first
            if last and (incident.last_seen is None or last > incident.last_seen):
                incident.last_seen = last
            detected = alert.get("detected_at")
            if detected and detected < incident.discovered_at:
                incident.discovered_at = detected
        if incident.title_template:
            incident.title = render_title(incident.title_template, incident, self.zone)
        if not alerts:
            return added
        if "severity" not in incident.pinned:
            derived = severity_from_alerts(alerts)
            if severity_rank(derived) > severity_rank(incident.severity):
                incident.severity = derived  # type: ignore[assignment]
        if "incident_type" not in incident.pinned:
            incident.incident_type = self.types.best(  # type: ignore[assignment]
                [incident.incident_type, self.types.type_from_alerts(alerts)])
        return added

    def _recompute(self, incident: Incident, alerts: Sequence[Mapping[str, Any]]) -> None:
        """Re-derive the alert-derived fields from the alerts that remain (after a move/split)."""
        incident.alert_ids = [str(a["id"]) for a in alerts]
        if not alerts:
            incident.rule_ids, incident.entities = [], {}
            return
        incident.rule_ids, incident.agencies, incident.entities = [], [], {}
        incident.first_seen = incident.last_seen = None
        severity, kind = incident.severity, incident.incident_type
        self._absorb(incident, alerts)
        if "severity" not in incident.pinned:
            incident.severity = severity_from_alerts(alerts)  # type: ignore[assignment]
        else:
            incident.severity = severity
        if "incident_type" not in incident.pinned:
            incident.incident_type = self.types.type_from_alerts(alerts)  # type: ignore[assignment]
        else:
            incident.incident_type = kind

    def _attach_docs(self, incident_id: str, docs: Sequence[Doc], *, actor: str,
                     detail: dict[str, Any] | None = None,
                     affected_systems: Sequence[AffectedSystem] = ()) -> Incident:
        bodies = [d.body for d in docs]

        def change(incident: Incident, _now: str) -> dict[str, Any] | None:
            added = self._absorb(incident, bodies)
            names = {s.name for s in incident.affected_systems}
            new_systems = [s for s in affected_systems if s.name not in names]
            incident.affected_systems.extend(new_systems)
            if not added and not new_systems:
                return None
            return {**_ids_detail(added), **(detail or {})}

        incident = self._mutate(incident_id, change, actor=actor, action="attach")
        self._link(docs, incident_id)
        return incident

    def _new(self, incident_id: str, docs: Sequence[Doc], *, actor: str, title: str | None = None,
             severity: str | None = None, incident_type: str | None = None,
             affected_systems: Sequence[AffectedSystem] = (), detail: dict[str, Any] | None = None) -> Incident:
        bodies = [d.body for d in docs]
        now = self._now()
        detected = [str(b["detected_at"]) for b in bodies if b.get("detected_at")]
        template = (title if has_placeholders(title) else None) if title else _default_title(bodies)
        incident = Incident(
            id=incident_id, title=title or template, title_template=template,
            severity=severity or severity_from_alerts(bodies),  # type: ignore[arg-type]
            incident_type=incident_type or self.types.type_from_alerts(bodies),  # type: ignore[arg-type]
            discovered_at=min(detected) if detected else now, created_at=now, created_by=actor,
            updated_at=now, affected_systems=list(affected_systems),
            pinned=[name for name, value in (("title", title), ("severity", severity),
                                             ("incident_type", incident_type)) if value],
        )
        self._absorb(incident, bodies)
        if severity:
            incident.severity = severity  # type: ignore[assignment]
        incident.history.append(HistoryEntry(at=now, actor=actor, action="opened",
                                             detail={**_ids_detail(incident.alert_ids), **(detail or {})}))
        return incident

    def attach(self, incident_id: str, alert_ids: Sequence[str], *, actor: str) -> Incident:
        """Add recorded alerts to an incident. An alert already in another incident is refused
        (use :meth:`move_alerts`)."""
        with self._lease():
            self.require(incident_id)
            docs = self._alert_docs(alert_ids, create_missing=False)
            elsewhere = [f"{d.id} (in {d.body['incident_id']})" for d in docs
                         if d.body.get("incident_id") not in (None, incident_id)]
            if elsewhere:
                raise IncidentError(f"alerts already in another incident: {', '.join(elsewhere)}; "
                                    "move them with `soc incidents move`")
            return self._attach_docs(incident_id, docs, actor=actor)

    def _members(self, incident: Incident, alert_ids: Sequence[str]) -> list[Doc]:
        members = set(incident.alert_ids)
        outside = [a for a in alert_ids if a not in members]
        if outside:
            raise IncidentError(f"alerts not in incident {incident.id}: {', '.join(outside)}")
        return self._alert_docs(alert_ids, create_missing=False)

    def _detach(self, incident_id: str, alert_ids: Sequence[str], *, actor: str, action: str,
                detail: dict[str, Any]) -> Incident:
        gone = set(alert_ids)

        def change(incident: Incident, _now: str) -> dict[str, Any] | None:
            remaining = [a for a in incident.alert_ids if a not in gone]
            if len(remaining) == len(incident.alert_ids):
                return None
            docs = self._alert_docs(remaining, create_missing=False) if remaining else []
            self._recompute(incident, [d.body for d in docs])
            return {**_ids_detail(list(alert_ids)), **detail}

        return self._mutate(incident_id, change, actor=actor, action=action)
