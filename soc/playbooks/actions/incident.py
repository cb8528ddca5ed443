"""Incident actions, over :class:`soc.incidents.service.Incidents`.

They emit incident events (``opened``, ``attached``, ``status_changed``, ``assigned``,
``updated``, ``note``) to the runner, which starts the playbooks those events trigger. The
actor recorded on the incident is ``playbook:<playbook id>/<run id prefix>``, which also tells
``open_or_attach`` whether *this* run opened the incident (``created``) -- also after a resume.
"""

from __future__ import annotations

import hashlib
from typing import Any

from soc.playbooks.actions._util import as_list
from soc.playbooks.registry import ActionContext, ActionError, action


def actor_of(ctx: ActionContext) -> str:
    return f"playbook:{ctx.playbook_id}/{ctx.run_id[:8]}"


def _dump(incident: Any) -> dict[str, Any]:
    if hasattr(incident, "model_dump"):
        data = incident.model_dump(mode="json")
        for name in ("serious", "notify_due", "closing_due"):
            value = getattr(incident, name, None)
            if value is not None:
                data[name] = value
        return data
    return dict(incident)


def _emit(ctx: ActionContext, incident: dict[str, Any], event: str, detail: str = "") -> list[str]:
    return ctx.runner.on_incident_event(incident, event, detail=detail, depth=ctx.depth + 1, actor=actor_of(ctx))


def _get(ctx: ActionContext, incident_id: str) -> Any:
    if not incident_id:
        raise ActionError("no incident id given (did the step that opens the incident run?)", retryable=False)
    incident = ctx.runner.incidents.get(incident_id)
    if incident is None:
        raise ActionError(f"no incident {incident_id!r}", retryable=False)
    return incident


@action("incident.open_or_attach")
def open_or_attach(ctx: ActionContext, alerts: Any, title: str | None = None, severity: str | None = None,
                   incident_type: str | None = None, affected_systems: Any = None,
                   group_by: Any = None, group_window_hours: float | None = None) -> dict[str, Any]:
    """Open an incident for these alerts, or attach them to the open incident that shares an
    entity with them within the grouping window (idempotent: the same alerts never open two).

    ``group_by`` names the entity fields that group (default: host.name, user.name,
    source.ip); ``[source.ip]`` gives one incident per attacking address."""
    alerts = [a for a in as_list(alerts) if isinstance(a, dict)]
    if not alerts:
        raise ActionError("incident.open_or_attach: no alerts given", retryable=False)
    if ctx.dry_run:
        return {"dry_run": True, "would": f"open or attach an incident for {len(alerts)} alert(s)",
                "id": None, "created": False, "title": title}
    from soc.incidents.model import AffectedSystem

    systems = [s if isinstance(s, AffectedSystem) else AffectedSystem.model_validate(s)
               for s in as_list(affected_systems) if isinstance(s, (dict, AffectedSystem))]
    service = ctx.runner.incidents_for(tuple(str(f) for f in as_list(group_by)) or None, group_window_hours)
    incident = service.open_from_alerts(
        alerts, actor=actor_of(ctx), title=title or None, severity=severity or None,
        incident_type=incident_type or None, affected_systems=systems or None)
    data = _dump(incident)
    created = data.get("created_by") == actor_of(ctx)
    if created:
        runs = _emit(ctx, data, "opened")
    else:
        tag = hashlib.sha256("|".join(sorted(a["id"] for a in alerts)).encode()).hexdigest()[:16]
        runs = _emit(ctx, data, "attached", tag)
    return {"id": data["id"], "created": created, "title": data.get("title"), "status": data.get("status"),
            "severity": data.get("severity"), "incident_type": data.get("incident_type"),
            "serious": data.get("serious"), "alert_count": len(data.get("alert_ids") or []),
            "notify_due": data.get("notify_due"), "runs_started": runs}


@action("incident.transition")
def transition(ctx: ActionContext, incident_id: str, status: str, note: str | None = None) -> dict[str, Any]:
    """Move an incident to ``status`` (new, triage, contained, resolved, closed)."""
    if ctx.dry_run:
        return {"dry_run": True, "would": f"move incident {incident_id} to {status}"}
    current = _dump(_get(ctx, incident_id))
    if current.get("status") == status:
        return {"id": incident_id, "status": status, "changed": False}
    data = _dump(ctx.runner.incidents.transition(incident_id, status, actor=actor_of(ctx), note=note))
    _emit(ctx, data, "status_changed", status)
    return {"id": incident_id, "status": data.get("status"), "changed": True}


@action("incident.assign")
def assign(ctx: ActionContext, incident_id: str, assignee: str) -> dict[str, Any]:
    """Assign an incident to an analyst."""
    if ctx.dry_run:
        return {"dry_run": True, "would": f"assign incident {incident_id} to {assignee}"}
    current = _dump(_get(ctx, incident_id))
    if current.get("assignee") == assignee:
        return {"id": incident_id, "assignee": assignee, "changed": False}
    data = _dump(ctx.runner.incidents.assign(incident_id, assignee, actor=actor_of(ctx)))
    _emit(ctx, data, "assigned", assignee)
    return {"id": incident_id, "assignee": assignee, "changed": True}


@action("incident.note")
def note(ctx: ActionContext, incident_id: str, text: str) -> dict[str, Any]:
    """Add a note to an incident (once per step, also when the step is resumed)."""
    if ctx.dry_run:
        return {"dry_run": True, "would": f"add a note to incident {incident_id}"}
    _get(ctx, incident_id)

    def perform() -> dict[str, Any]:
        ctx.runner.incidents.add_note(incident_id, text, actor=actor_of(ctx))
        return {"id": incident_id, "noted": True}

    return ctx.once(f"note on {incident_id}", perform)


@action("incident.update")
def update(ctx: ActionContext, incident_id: str, **fields: Any) -> dict[str, Any]:
    """Set incident fields (severity, incident_type, summary, impacts, affected_systems...)."""
    fields = {k: v for k, v in fields.items() if v is not None}
    if ctx.dry_run:
        return {"dry_run": True, "would": f"update incident {incident_id}: {', '.join(sorted(fields))}"}
    if not fields:
        return {"id": incident_id, "changed": False}
    data = _dump(ctx.runner.incidents.update(incident_id, actor=actor_of(ctx), **fields))
    _emit(ctx, data, "updated", hashlib.sha256(repr(sorted(fields.items())).encode()).hexdigest()[:12])
    return {"id": incident_id, "changed": True, "severity": data.get("severity"),
            "incident_type": data.get("incident_type"), "serious": data.get("serious")}
