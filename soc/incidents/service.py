"""The incident service: open incidents from alerts, group, merge, split, move, walk the lifecycle.

Everything is a document in the store (collection ``incidents``), so it works the same on SQLite
and on Elasticsearch/OpenSearch, from any number of processes:

* **every change is a compare-and-set** on the incident's version (``store.put(...,
  expected_version=...)``), retried on :class:`~soc.store.base.Conflict` after re-reading, and
  appends a :class:`~soc.incidents.model.HistoryEntry` (who, when, what);
* **changes of membership** (which alerts belong to which incident: open, attach, move, merge,
  split) additionally hold a short store lease (collection ``incident_locks``), so two callers
  never group the same burst into two incidents, and an alert is never in two incidents. A
  process that dies holding the lease blocks the others for at most :data:`LEASE_SECONDS`;
* **opening is idempotent**: alerts that already carry an ``incident_id`` return that incident;
  otherwise the alerts join an open incident (status new/triage/contained) of the same agency
  that shares an entity with them (``host.name``, ``user.name``, ``source.ip`` by default)
  and whose ``[first_seen, last_seen]`` lies within ``group_window_hours`` of theirs; otherwise
  a new incident is created create-only under an id derived from the earliest alert's id, so
  a retry after a crash, or a second caller with the same alerts, finds the same incident.
* the incident's alerts carry ``incident_id`` (a compare-and-set update of the alert document;
  the detection engine keeps the field when it extends a correlation alert).

The incident is written first and its alerts after it; a crash in between is repaired by the
next call with the same alerts (it finds the incident by its derived id or by grouping).

:class:`Incidents` is put together from one module per job: :mod:`.records` (reading, the
compare-and-set write), :mod:`.lifecycle` (status, assignee, notes, verdict, fields, reports),
:mod:`.membership` (alert documents in and out of an incident), :mod:`.grouping` (opening from
alerts), :mod:`.regroup` (move, merge, split), over :mod:`.lease` (the membership lease),
:mod:`.from_alerts` (what an incident takes from its alerts) and :mod:`.errors`.
"""

from __future__ import annotations

from soc.incidents.errors import IncidentError, IncidentNotFound
from soc.incidents.from_alerts import MAX_ENTITY_VALUES, MAX_HISTORY_IDS, incident_id_for
from soc.incidents.grouping import OPEN_STATUSES, IncidentGrouping
from soc.incidents.lease import LEASE_SECONDS, LOCK_FIELDS, LOCK_WAIT_SECONDS, LOCKS
from soc.incidents.lifecycle import PINNABLE, UPDATABLE, VERDICTS, IncidentLifecycle, allowed_next
from soc.incidents.records import ALERTS, CAS_ATTEMPTS, GROUP_FIELDS, INCIDENTS
from soc.incidents.regroup import IncidentRegrouping

__all__ = ["ALERTS", "CAS_ATTEMPTS", "GROUP_FIELDS", "INCIDENTS", "LEASE_SECONDS", "LOCKS", "LOCK_FIELDS",
           "LOCK_WAIT_SECONDS", "MAX_ENTITY_VALUES", "MAX_HISTORY_IDS", "OPEN_STATUSES", "PINNABLE", "UPDATABLE",
           "VERDICTS", "IncidentError", "IncidentNotFound", "Incidents", "allowed_next", "incident_id_for"]


class Incidents(IncidentLifecycle, IncidentGrouping, IncidentRegrouping):
    """Incidents in a store. See the module docstring for the guarantees."""
