"""Opening incidents from alerts: the incident they are already in, an open one they group
with (same agency, a shared entity, within the window), or a new one under an id derived from
the earliest alert's (see :mod:`soc.incidents.service`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from soc.incidents.errors import IncidentError
from soc.incidents.from_alerts import _alert_entities, _alert_times, incident_id_for
from soc.incidents.membership import IncidentMembership
from soc.incidents.model import INCIDENT_TYPES, AffectedSystem, Incident
from soc.incidents.records import INCIDENTS
from soc.model import iso, parse_iso
from soc.store.base import Doc

OPEN_STATUSES = ("new", "triage", "contained")


class IncidentGrouping(IncidentMembership):
    """Alerts into incidents: :meth:`open_from_alerts`."""

    def _resolve(self, incident_id: str) -> Incident | None:
        """The incident, following ``merged_into``."""
        seen: set[str] = set()
        incident = self.get(incident_id)
        while incident is not None and incident.merged_into and incident.merged_into not in seen:
            seen.add(incident.id)
            incident = self.get(incident.merged_into)
        return incident

    def _group_candidate(self, docs: Sequence[Doc]) -> tuple[Incident, list[str]] | None:
        """An open incident of the same agency sharing an entity, within the window."""
        keys: set[tuple[str, str]] = set()
        agencies = {d.body.get("agency") for d in docs}
        firsts, lasts = [], []
        for doc in docs:
            entities = _alert_entities(doc.body)
            keys.update((f, v.lower()) for f in self.group_fields for v in entities.get(f, []))
            first, last = _alert_times(doc.body)
            if first:
                firsts.append(parse_iso(first))
            if last:
                lasts.append(parse_iso(last))
        if not keys or not firsts:
            return None
        start, end = min(firsts), max(lasts or firsts)
        self.store.refresh()  # other processes' incidents (a no-op on SQLite)
        found = self.store.find(INCIDENTS, {"status": list(OPEN_STATUSES)}, time_field="last_seen",
                                start=iso(start - self.window), sort="last_seen", descending=True,
                                limit=10_000)
        best: tuple[int, str, str] | None = None
        chosen: tuple[Incident, list[str]] | None = None
        for doc in found:
            incident = Incident.model_validate(doc.body)
            if incident.merged_into or not incident.first_seen:
                continue
            if not agencies & (set(incident.agencies) | {incident.agency}):
                continue
            if parse_iso(incident.first_seen) - self.window > end:
                continue
            theirs = {(f, v.lower()) for f in self.group_fields for v in incident.entities.get(f, [])}
            shared = keys & theirs
            if not shared:
                continue
            rank = (len(shared), incident.last_seen or "", incident.id)
            if best is None or rank[:2] > best[:2] or (rank[:2] == best[:2] and rank[2] < best[2]):
                best = rank
                chosen = (incident, sorted(f"{f}={v}" for f, v in shared))
        return chosen

    def open_from_alerts(self, alerts: Sequence[Mapping[str, Any]], *, actor: str, title: str | None = None,
                         severity: str | None = None, incident_type: str | None = None,
                         affected_systems: list[AffectedSystem] | None = None) -> Incident:
        """The incident for these alerts: the one they are already in, an open one they group
        with, or a new one (see the module docstring). ``title``/``severity``/``incident_type``
        apply (and are pinned) only when a new incident is opened; ``affected_systems`` are
        added to whichever incident is returned."""
        if not alerts:
            raise IncidentError("no alerts to open an incident from")
        if severity is not None and severity not in ("low", "medium", "high", "critical"):
            raise IncidentError(f"unknown severity {severity!r}: use low, medium, high, critical")
        if incident_type is not None and incident_type not in INCIDENT_TYPES:
            raise IncidentError(f"unknown incident type {incident_type!r}: use {', '.join(INCIDENT_TYPES)}")
        systems = list(affected_systems or [])
        with self._lease():
            docs = self._alert_docs(alerts, create_missing=True)
            free: list[Doc] = []
            stale: list[Doc] = []  # linked to an incident since merged into the target
            target: Incident | None = None
            for doc in docs:
                linked = doc.body.get("incident_id")
                owner = self._resolve(linked) if linked else None
                if owner is None:
                    free.append(doc)
                    continue
                target = target or owner
                if owner.id == target.id and (linked != owner.id or doc.id not in owner.alert_ids):
                    stale.append(doc)
                # an alert in another incident stays where an analyst or a playbook put it
            if target is not None:
                if free or stale or systems:
                    return self._attach_docs(target.id, free + stale, actor=actor, affected_systems=systems)
                return target
            group = self._group_candidate(free)
            if group is not None:
                incident, shared = group
                return self._attach_docs(incident.id, free, actor=actor, detail={"grouped_by": shared},
                                         affected_systems=systems)
            new_id = incident_id_for(free[0].id)
            if self.store.get(INCIDENTS, new_id) is None:
                incident = self._new(new_id, free, actor=actor, title=title, severity=severity,
                                     incident_type=incident_type, affected_systems=systems)
                if self.store.create(INCIDENTS, new_id, self.body(incident)):
                    self._link(free, new_id)
                    return incident
            # opened before (a retry after a crash, or another caller): join it
            return self._attach_docs(new_id, free, actor=actor, affected_systems=systems)
