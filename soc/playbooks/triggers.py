"""What starts playbook runs: recorded alerts (one run per alert, or per batch with
``group_by``), incident events and schedule fire times, and which playbooks an alert or an
incident event matches. Each trigger has a key, so the same trigger never starts two runs."""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from soc.model import iso, now_utc
from soc.playbooks.model import LEVELS, SEVERITIES
from soc.playbooks.runs import RunnerHost

log = logging.getLogger("soc.playbooks.runner")  # the runner's log, whichever part writes

CLAIMS = "playbook_alerts"  # which alerts a playbook with group_by has batched (create-only)


def _claim_id(playbook_id: str, alert_id: str) -> str:
    return hashlib.sha256(f"{playbook_id}\x00{alert_id}".encode()).hexdigest()[:32]



class PlaybookTriggers(RunnerHost):
    """Starting the runs of alerts, incident events and schedules; a part of
    :class:`~soc.playbooks.runner.PlaybookRunner`."""

    def on_alerts(self, alerts: Iterable[dict[str, Any]]) -> list[str]:
        """Start the runs for newly recorded alerts (the detection run's ``created`` list).
        Idempotent: an alert already handled by a playbook starts nothing. Returns run ids."""
        alerts = [a for a in alerts if isinstance(a, dict) and a.get("id")]
        started: list[str] = []
        if not alerts:
            return started
        for playbook in self.playbooks.values():
            spec = playbook.trigger.alerts
            if not playbook.enabled or spec is None:
                continue
            matching = [a for a in alerts if alert_matches(spec, a)]
            if spec.group_by:  # an alert already in a batch of this playbook is not batched again
                matching = [a for a in matching if self.store.get(CLAIMS, _claim_id(playbook.id, a["id"])) is None]
            if not matching:
                continue
            if spec.group_by:
                groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
                for alert in matching:
                    groups.setdefault(tuple(_entity(alert, f) for f in spec.group_by), []).append(alert)
                batches = [(dict(zip(spec.group_by, k, strict=True)), g) for k, g in groups.items()]
            else:
                batches = [({}, [a]) for a in matching]
            for group, batch in batches:
                ids = sorted(a["id"] for a in batch)
                key = f"alert:{ids[0]}" if len(ids) == 1 else \
                    "alerts:" + hashlib.sha256("|".join(ids).encode()).hexdigest()[:24]
                trigger = {"type": "alerts", "alerts": batch, "alert": batch[0], "group": group,
                           "alert_ids": ids}
                try:
                    run_id, created = self.start(playbook, trigger, key, actor="system:detection",
                                                 execute=False)
                    if spec.group_by:  # after the run exists: a crash in between re-batches, never loses
                        for alert_id in ids:
                            self.store.create(CLAIMS, _claim_id(playbook.id, alert_id),
                                              {"playbook_id": playbook.id, "alert_id": alert_id, "run_id": run_id,
                                               "at": iso(now_utc())})
                    if created:
                        self._dispatch(run_id)
                except Exception as error:  # one broken playbook never stops the others
                    log.error("playbook %s: could not start for alerts %s: %s", playbook.id, ids[:3], error)
                    continue
                if created:
                    started.append(run_id)
        return started

    def on_incident_event(self, incident: dict[str, Any], event: str, *, detail: str = "",
                          depth: int = 0, actor: str = "system") -> list[str]:
        """Start the runs of playbooks triggered by an incident event (``opened``,
        ``status_changed`` with ``detail`` = the new status, ...)."""
        started: list[str] = []
        if depth >= 5:
            log.warning("incident %s: event %s not dispatched (playbook chain deeper than 5)", incident.get("id"), event)
            return started
        for playbook in self.playbooks.values():
            spec = playbook.trigger.incident
            if not playbook.enabled or spec is None or not incident_matches(spec, incident, event, detail):
                continue
            key = f"incident:{incident['id']}" if spec.once_per_incident else \
                f"incident:{incident['id']}:{event}" + (f":{detail}" if detail else "")
            trigger = {"type": "incident", "event": event, "detail": detail, "incident": incident}
            try:
                run_id, created = self.start(playbook, trigger, key, actor=actor, depth=depth, execute=False)
                if created:
                    self._dispatch(run_id, defer=depth > 0)
            except Exception as error:
                log.error("playbook %s: could not start for incident %s: %s", playbook.id, incident.get("id"), error)
                continue
            if created:
                started.append(run_id)
        return started

    def on_schedule(self, playbook_id: str, fire_time: datetime | None = None) -> tuple[str, bool]:
        """The run of a scheduled playbook for one fire time (one per fire time, whichever
        process fires it)."""
        fire = (fire_time or now_utc()).astimezone(UTC).replace(second=0, microsecond=0)
        trigger = {"type": "schedule", "fired_at": iso(fire)}
        return self.start(playbook_id, trigger, f"schedule:{iso(fire)}", actor="system:schedule")
    def catch_up(self, since_seconds: float = 3600.0) -> list[str]:
        """Hand the alerts detected in the last ``since_seconds`` to :meth:`on_alerts` again.

        Detection records an alert and only then hands it over; a process that dies in between
        leaves an alert no playbook saw. :meth:`on_alerts` is idempotent (run keys, batch
        claims), so re-offering recent alerts at start-up starts only what is missing."""
        start = iso(datetime.fromtimestamp(self.clock() - since_seconds, UTC))
        docs = self.store.find("alerts", None, time_field="detected_at", start=start, sort="detected_at",
                               limit=100_000)
        return self.on_alerts([d.body for d in docs])


# -- trigger matching --------------------------------------------------------------------------
def _entity(alert: dict[str, Any], name: str) -> str:
    if name in (alert.get("group") or {}):
        return str(alert["group"][name]).lower()
    values = (alert.get("entities") or {}).get(name) or []
    if values:
        return str(values[0]).lower()
    value = alert.get(name)
    return "" if value is None else str(value).lower()


def alert_matches(spec: Any, alert: dict[str, Any]) -> bool:
    rule = alert.get("rule") or {}
    if spec.rules and rule.get("id") not in spec.rules:
        return False
    if spec.tags and not set(spec.tags) & set(rule.get("tags") or []):
        return False
    if spec.min_level:
        level = rule.get("level")
        if level not in LEVELS or LEVELS.index(level) < LEVELS.index(spec.min_level):
            return False
    return not (spec.agencies and alert.get("agency") not in spec.agencies)


def incident_matches(spec: Any, incident: dict[str, Any], event: str, detail: str) -> bool:
    if event not in spec.events:
        return False
    if event == "status_changed" and spec.statuses and detail not in spec.statuses:
        return False
    severity = incident.get("severity", "medium")
    if spec.min_severity and (severity not in SEVERITIES
                              or SEVERITIES.index(severity) < SEVERITIES.index(spec.min_severity)):
        return False
    if spec.types and incident.get("incident_type") not in spec.types:
        return False
    if spec.serious_only:
        with contextlib.suppress(Exception):
            from soc.incidents.model import Incident

            return Incident.model_validate(incident).serious
        return False
    return True


def _agency_of(trigger: dict[str, Any]) -> str | None:
    if trigger.get("alert"):
        return trigger["alert"].get("agency")
    if trigger.get("incident"):
        return trigger["incident"].get("agency")
    return None
