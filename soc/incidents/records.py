"""Incident documents in the store (collection ``incidents``): reading them, and the one way
to change one -- a compare-and-set on its version, retried after re-reading on
:class:`~soc.store.base.Conflict`, that appends a :class:`~soc.incidents.model.HistoryEntry`."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from soc.incidents.errors import IncidentError, IncidentNotFound
from soc.incidents.lease import _Lease
from soc.incidents.model import STATUSES, HistoryEntry, Incident
from soc.incidents.types import TypeMap, default_type_map
from soc.model import iso
from soc.store.base import Conflict, Store

INCIDENTS = "incidents"
ALERTS = "alerts"  # soc.detect.engine.ALERTS (not imported: that module pulls in pySigma)
GROUP_FIELDS = ("host.name", "user.name", "source.ip")
CAS_ATTEMPTS = 50


class IncidentRecords:
    """Reading and writing incident documents; the base of
    :class:`~soc.incidents.service.Incidents`."""

    def __init__(self, store: Store, *, clock: Callable[[], datetime] | None = None,
                 group_window_hours: float = 24.0, group_fields: Sequence[str] = GROUP_FIELDS,
                 type_map: TypeMap | None = None, zone: tzinfo = UTC, lock_store: Store | None = None):
        self.store = store
        #: where the membership lease lives (default: ``store``). A lock holds no agency's data:
        #: over a principal's scoped store the application gives the shared store, so a principal
        #: scoped to some agencies can group, merge and split its own incidents.
        self.lock_store = lock_store or store
        self.zone = zone  # the analyst's zone: the date in titles (soc.incidents.titles)
        self.clock = clock or (lambda: datetime.now(UTC))
        self.window = timedelta(hours=group_window_hours)
        self.group_fields = tuple(group_fields)
        self.types = type_map or default_type_map()

    # -- reading -------------------------------------------------------------------------------
    def _now(self) -> str:
        return iso(self.clock())

    def get(self, incident_id: str) -> Incident | None:
        doc = self.store.get(INCIDENTS, incident_id)
        return Incident.model_validate(doc.body) if doc else None

    def require(self, incident_id: str) -> Incident:
        incident = self.get(incident_id)
        if incident is None:
            raise IncidentNotFound(f"no incident {incident_id!r}; `soc incidents list` shows the ids")
        return incident

    def list(self, *, status: str | Sequence[str] | None = None, agency: str | None = None,
             limit: int = 1000) -> list[Incident]:
        """Incidents, most recently updated first."""
        where: dict[str, Any] = {}
        if status:
            statuses = [status] if isinstance(status, str) else list(status)
            unknown = [s for s in statuses if s not in STATUSES]
            if unknown:
                raise IncidentError(f"unknown status {unknown}: use {', '.join(STATUSES)}")
            where["status"] = statuses
        if agency:
            where["agency"] = agency
        docs = self.store.find(INCIDENTS, where or None, sort="updated_at", descending=True, limit=limit)
        return [Incident.model_validate(d.body) for d in docs]

    @staticmethod
    def body(incident: Incident) -> dict[str, Any]:
        """The stored document: the model plus the computed fields (for searches and reports)."""
        body = incident.model_dump(mode="json")
        body.update(serious=incident.serious, notify_due=incident.notify_due, closing_due=incident.closing_due)
        return body

    # -- writing one incident ----------------------------------------------------------------------
    def _mutate(self, incident_id: str, change: Callable[[Incident, str], dict[str, Any] | None], *,
                actor: str, action: str) -> Incident:
        """Read, apply ``change`` (returns the history detail, or None for no change), write with
        compare-and-set; on a lost race re-read and apply again."""
        for _attempt in range(CAS_ATTEMPTS):
            doc = self.store.get(INCIDENTS, incident_id)
            if doc is None:
                raise IncidentNotFound(f"no incident {incident_id!r}; `soc incidents list` shows the ids")
            incident = Incident.model_validate(doc.body)
            now = self._now()
            detail = change(incident, now)
            if detail is None:
                return incident
            incident.updated_at = now
            incident.history.append(HistoryEntry(at=now, actor=actor, action=action, detail=detail))
            try:
                self.store.put(INCIDENTS, incident_id, self.body(incident), expected_version=doc.version)
            except Conflict:
                time.sleep(random.uniform(0, 0.02))
                continue
            return incident
        raise IncidentError(f"incident {incident_id} changed {CAS_ATTEMPTS} times while updating it; try again")

    def _lease(self) -> _Lease:
        return _Lease(self.lock_store, "membership")
