"""The incident service: open incidents from alerts, group, merge, split, move, walk the lifecycle.

Everything is a document in the store (collection ``incidents``), so it works the same on SQLite
and on Elasticsearch/OpenSearch, from any number of processes:

* **every change is a compare-and-set** on the incident's version (``store.put(...,
  expected_version=...)``), retried on :class:`~soc.store.base.Conflict` after re-reading, and
  appends a :class:`HistoryEntry` (who, when, what);
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
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

from pydantic import ValidationError

from soc.clock import Clock, system_clock
from soc.errors import SocError
from soc.incidents.model import (
    IMPACTS,
    INCIDENT_TYPES,
    STATUSES,
    AffectedSystem,
    HistoryEntry,
    Incident,
    Note,
    ReportRecord,
    Verdict,
)
from soc.incidents.types import TypeMap, default_type_map, severity_from_alerts, severity_rank
from soc.model import iso, parse_iso
from soc.store.base import Conflict, Doc, Store
from soc.store.lease import Claim, LeaseBusy, LeaseFields, LeaseLost, Leases

INCIDENTS = "incidents"
ALERTS = "alerts"  # soc.detect.engine.ALERTS (not imported: that module pulls in pySigma)
LOCKS = "incident_locks"
#: a membership lock document: ``{"owner": <nonce>, "until": <epoch seconds>}``; released: owner None, until 0
LOCK_FIELDS = LeaseFields(owner="owner", until="until", stamp="epoch", vacant=0)
OPEN_STATUSES = ("new", "triage", "contained")
GROUP_FIELDS = ("host.name", "user.name", "source.ip")
VERDICTS: tuple[str, ...] = get_args(Verdict)
#: fields :meth:`Incidents.update` may change; the first three are then pinned
UPDATABLE = ("title", "severity", "incident_type", "summary", "outcome", "affected_systems", "impacts")
PINNABLE = ("title", "severity", "incident_type")
MAX_ENTITY_VALUES = 100
MAX_HISTORY_IDS = 200
LEASE_SECONDS = 60.0
LOCK_WAIT_SECONDS = 120.0
CAS_ATTEMPTS = 50


class IncidentError(SocError, ValueError):
    """The change cannot be made; the message names the input and what to do instead."""


class IncidentNotFound(IncidentError):
    """No incident has that id."""


def incident_id_for(alert_id: str, salt: str = "open") -> str:
    """The id of the incident opened from (or split off with) ``alert_id`` first."""
    digest = hashlib.blake2b(f"{salt}\x1f{alert_id}".encode(), digest_size=8).hexdigest()
    return f"inc-{digest}"


def allowed_next(status: str) -> list[str]:
    """Statuses an incident in ``status`` may move to: any later one, or back to ``triage``."""
    here = STATUSES.index(status)
    later = list(STATUSES[here + 1:])
    return (["triage"] + later) if here > STATUSES.index("triage") else later


def _alert_times(alert: Mapping[str, Any]) -> tuple[str | None, str | None]:
    first = alert.get("first_seen") or alert.get("@timestamp")
    last = alert.get("last_seen") or first
    return first, last


def _alert_entities(alert: Mapping[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, values in (alert.get("entities") or {}).items():
        items = values if isinstance(values, list) else [values]
        out.setdefault(name, []).extend(str(v) for v in items if v not in (None, ""))
    for name, value in (alert.get("group") or {}).items():
        if value not in (None, "") and not isinstance(value, (list, dict)):
            out.setdefault(name, []).append(str(value))
    return out


def _add_values(target: dict[str, list[str]], name: str, values: Iterable[str]) -> None:
    bucket = target.setdefault(name, [])
    seen = {v.lower() for v in bucket}
    for value in values:
        if value.lower() not in seen and len(bucket) < MAX_ENTITY_VALUES:
            bucket.append(value)
            seen.add(value.lower())


def _default_title(alerts: Sequence[Mapping[str, Any]]) -> str:
    order = {"informational": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}
    lead = max(alerts, key=lambda a: order.get(str((a.get("rule") or {}).get("level")), 0))
    title = str((lead.get("rule") or {}).get("title") or "Incident")
    group = {k: v for k, v in (lead.get("group") or {}).items() if v not in (None, "")}
    if group:
        about = ", ".join(f"{k}={v}" for k, v in group.items())
    else:
        entities = _alert_entities(lead)
        about = ", ".join(f"{k}={entities[k][0]}" for k in ("source.ip", "user.name", "host.name") if entities.get(k))
    rules = {str((a.get("rule") or {}).get("id")) for a in alerts}
    more = f" and {len(rules) - 1} more rules" if len(rules) > 1 else ""
    return f"{title}{more}" + (f" ({about})" if about else "")


def _ids_detail(ids: Sequence[str]) -> dict[str, object]:
    return {"alert_ids": list(ids[:MAX_HISTORY_IDS]), "count": len(ids)}


_held = threading.local()  # the lease this thread holds, renewed by long loops


def _renew() -> None:
    lease = getattr(_held, "lease", None)
    if lease is not None:
        lease.renew()


class _Lease:
    """A short exclusive lease on a store document (:mod:`soc.store.lease`), for membership
    changes; re-entrant within its holder. Long operations renew it (:func:`_renew`) so it
    never expires while its holder works."""

    def __init__(self, store: Store, key: str, *, lease: float = LEASE_SECONDS, wait: float = LOCK_WAIT_SECONDS,
                 clock: Clock = system_clock):
        self.key, self.lease, self.wait = key, lease, wait
        self.leases = Leases(store, LOCKS, seconds=lease, owner=uuid.uuid4().hex, clock=clock, fields=LOCK_FIELDS)
        self.owner = self.leases.owner
        self.claim: Claim | None = None
        self.depth = 0
        self.renewed = 0.0

    def renew(self) -> None:
        if self.claim is None or time.monotonic() - self.renewed < self.lease / 4:
            return
        try:
            self.claim.renew()
        except LeaseLost as error:
            raise IncidentError(f"lost the lease {LOCKS}/{self.key} (the store was unreachable for longer "
                                f"than {self.lease:.0f}s?); run the command again") from error
        self.renewed = time.monotonic()

    def __enter__(self) -> _Lease:
        if self.depth:
            self.depth += 1
            return self
        try:
            self.claim = self.leases.acquire(self.key, wait=self.wait)
        except LeaseBusy as busy:
            raise IncidentError(f"incidents are busy: the lease {LOCKS}/{self.key} is held by {busy.holder or '?'} "
                                f"for more than {self.wait:.0f}s; try again") from None
        self.depth = 1
        self.renewed = time.monotonic()
        _held.lease = self
        return self

    def __exit__(self, *_: object) -> None:
        self.depth -= 1
        if self.depth:
            return
        _held.lease = None
        claim, self.claim = self.claim, None
        if claim is not None:
            try:
                claim.release()
            except LeaseLost:
                pass  # it expired and someone else took it


class Incidents:
    """Incidents in a store. See the module docstring for the guarantees."""

    def __init__(self, store: Store, *, clock: Callable[[], datetime] | None = None,
                 group_window_hours: float = 24.0, group_fields: Sequence[str] = GROUP_FIELDS,
                 type_map: TypeMap | None = None):
        self.store = store
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
        return _Lease(self.store, "membership")

    # -- lifecycle and fields ------------------------------------------------------------------------
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

    # -- alerts ----------------------------------------------------------------------------------
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

    def _new(self, incident_id: str, docs: Sequence[Doc], *, actor: str, title: str | None = None,
             severity: str | None = None, incident_type: str | None = None,
             affected_systems: Sequence[AffectedSystem] = (), detail: dict[str, Any] | None = None) -> Incident:
        bodies = [d.body for d in docs]
        now = self._now()
        detected = [str(b["detected_at"]) for b in bodies if b.get("detected_at")]
        incident = Incident(
            id=incident_id, title=title or _default_title(bodies),
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
