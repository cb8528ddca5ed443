"""Regrouping alerts by hand: move alerts between incidents, merge incidents into one, split
alerts off into a new incident."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from soc.incidents.errors import IncidentError
from soc.incidents.from_alerts import _ids_detail, incident_id_for
from soc.incidents.membership import IncidentMembership
from soc.incidents.model import Incident, Note
from soc.incidents.records import INCIDENTS


class IncidentRegrouping(IncidentMembership):
    """Moving alerts, merging and splitting incidents."""

    def move_alerts(self, alert_ids: Sequence[str], from_id: str, to_id: str, *, actor: str) -> Incident:
        """Move alerts from one incident to another; returns the receiving incident."""
        if from_id == to_id:
            raise IncidentError("moving alerts to the incident they are in")
        alert_ids = list(dict.fromkeys(alert_ids))
        with self._lease():
            source, target = self.require(from_id), self.require(to_id)
            if target.merged_into:
                raise IncidentError(f"incident {to_id} was merged into {target.merged_into}; move to that one")
            docs = self._members(source, alert_ids)
            self._detach(from_id, alert_ids, actor=actor, action="detach", detail={"to": to_id})
            return self._attach_docs(to_id, docs, actor=actor, detail={"from": from_id})

    def merge(self, target_id: str, source_ids: Sequence[str], *, actor: str) -> Incident:
        """Fold incidents into ``target_id``: their alerts, notes, affected systems and impacts
        move over; each source is closed with ``merged_into`` pointing at the target."""
        sources = [s for s in dict.fromkeys(source_ids) if s != target_id]
        if not sources:
            raise IncidentError("nothing to merge: name incidents other than the target")
        with self._lease():
            target = self.require(target_id)
            if target.merged_into:
                raise IncidentError(f"incident {target_id} was itself merged into {target.merged_into}")
            for source_id in sources:
                source = self.require(source_id)
                if source.merged_into:
                    raise IncidentError(f"incident {source_id} was already merged into {source.merged_into}")
            for source_id in sources:
                source = self.require(source_id)
                docs = self._alert_docs(source.alert_ids, create_missing=False)
                bodies = [d.body for d in docs]

                def fold(incident: Incident, _now: str, source: Incident = source,
                         bodies: list[dict[str, Any]] = bodies) -> dict[str, Any]:
                    added = self._absorb(incident, bodies)
                    names = {s.name for s in incident.affected_systems}
                    incident.affected_systems.extend(s for s in source.affected_systems if s.name not in names)
                    incident.impacts.extend(i for i in source.impacts if i not in incident.impacts)
                    incident.notes.extend(Note(at=n.at, author=n.author, text=f"[{source.id}] {n.text}")
                                          for n in source.notes)
                    if source.discovered_at < incident.discovered_at:
                        incident.discovered_at = source.discovered_at
                    return {**_ids_detail(added), "from": source.id}

                self._mutate(target_id, fold, actor=actor, action="merge")
                self._link(docs, target_id)

                def close(incident: Incident, now: str) -> dict[str, Any]:
                    moved = list(incident.alert_ids)
                    incident.alert_ids = []
                    incident.merged_into = target_id
                    incident.status = "closed"
                    incident.closed_at = now
                    return {**_ids_detail(moved), "into": target_id}

                self._mutate(source_id, close, actor=actor, action="merged")
            return self.require(target_id)

    def split(self, incident_id: str, alert_ids: Sequence[str], *, actor: str, title: str | None = None) -> Incident:
        """Take alerts out of an incident into a new one (returned). Repeating the same split
        returns the same new incident."""
        alert_ids = list(dict.fromkeys(alert_ids))
        if not alert_ids:
            raise IncidentError("name the alerts to split off")
        with self._lease():
            source = self.require(incident_id)
            new_id = incident_id_for("\x1f".join(sorted(alert_ids)), salt=f"split\x1f{incident_id}")
            existing = self.get(new_id)
            pending = [a for a in alert_ids if a in set(source.alert_ids)]
            if existing is not None and not pending:
                return existing
            outside = [a for a in alert_ids if a not in set(source.alert_ids)]
            if existing is None and outside:  # (a repeated split finds its alerts moved already)
                raise IncidentError(f"alerts not in incident {incident_id}: {', '.join(outside)}")
            if existing is None and len(pending) == len(source.alert_ids):
                raise IncidentError(f"that is every alert of {incident_id}: nothing would remain; "
                                    "change its title or type with `soc incidents update` instead")
            docs = self._members(source, pending)
            if existing is None:
                incident = self._new(new_id, docs, actor=actor, title=title,
                                     detail={"split_from": incident_id})
                incident.affected_systems = list(source.affected_systems)
                incident.assignee = source.assignee
                if not self.store.create(INCIDENTS, new_id, self.body(incident)):
                    raise IncidentError(f"incident {new_id} appeared while splitting; run the split again")
            self._detach(incident_id, pending, actor=actor, action="split", detail={"to": new_id})
            if existing is not None:
                return self._attach_docs(new_id, docs, actor=actor, detail={"from": incident_id})
            self._link(docs, new_id)
            return self.require(new_id)
