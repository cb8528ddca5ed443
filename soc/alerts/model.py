"""The alert workflow's states, changes and history entries -- pure functions, no store.

Statuses: ``open`` -> ``acknowledged`` -> ``closed`` (``open`` -> ``closed`` too), and back
with *reopen* (``closed`` -> ``open``). Alerts recorded before the workflow existed carry
``new``: it reads as ``open`` (:func:`status_of`) and is written as ``open`` by the next change.

A close needs a reason (:data:`CLOSE_REASONS`); ``other`` also needs a note. A change is
applied to an alert body by :func:`apply_change`, which returns the new body and the history
entry (the entry goes to the append-only ``alert_history`` collection with the id
``<alert id>:<sequence>``), or ``None`` when the alert is already in the state asked for.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from soc.errors import SocError

__all__ = [
    "ACTIONS",
    "ALERTS",
    "CLOSE_REASONS",
    "HISTORY",
    "JOBS",
    "STATUSES",
    "AlertChange",
    "AlertNotFound",
    "AlertWorkflowError",
    "InvalidTransition",
    "apply_change",
    "history_id",
    "status_of",
]

ALERTS = "alerts"  # soc.detect.engine.ALERTS (not imported: that module pulls in pySigma)
HISTORY = "alert_history"
JOBS = "jobs"
STATUSES = ("open", "acknowledged", "closed")
#: why an alert was closed
CLOSE_REASONS = ("true_positive", "benign", "false_positive", "duplicate", "other")
ACTIONS = ("ack", "assign", "close", "reopen")
MAX_NOTE = 4000
Action = Literal["ack", "assign", "close", "reopen"]


class AlertWorkflowError(SocError, ValueError):
    """A change of an alert was refused (a missing reason, an unknown alert...); the message
    says what to give instead."""


class AlertNotFound(AlertWorkflowError):
    """No such alert (or not one the principal may see)."""


class InvalidTransition(AlertWorkflowError):
    """The change does not apply to the alert's status (acknowledging a closed alert...)."""


def status_of(alert: dict[str, Any]) -> str:
    """The workflow status of an alert: ``new`` (the detection engine's) reads as ``open``."""
    status = alert.get("status") or "open"
    return "open" if status == "new" else str(status)


def history_id(alert_id: str, seq: int) -> str:
    """The id of the ``seq``-th history entry of an alert (create-only: a replay writes nothing)."""
    return f"{alert_id}:{seq:06d}"


@dataclass(frozen=True, slots=True)
class AlertChange:
    """What to do to an alert: ``ack``, ``assign`` (``assignee``; None clears), ``close``
    (``reason`` and ``note``) or ``reopen`` (``note``)."""

    action: Action
    reason: str | None = None
    note: str = ""
    assignee: str | None = None

    def check(self) -> AlertChange:
        """This change when it is complete, else :class:`AlertWorkflowError` saying what is missing."""
        if self.action not in ACTIONS:
            raise AlertWorkflowError(f"unknown alert action {self.action!r}: use {', '.join(ACTIONS)}")
        if len(self.note or "") > MAX_NOTE:
            raise AlertWorkflowError(f"the note is {len(self.note)} characters long; at most {MAX_NOTE}")
        if self.action == "close":
            if not self.reason:
                raise AlertWorkflowError(f"closing an alert needs a reason: {', '.join(CLOSE_REASONS)}")
            if self.reason not in CLOSE_REASONS:
                raise AlertWorkflowError(f"unknown close reason {self.reason!r}: use {', '.join(CLOSE_REASONS)}")
            if self.reason == "other" and not (self.note or "").strip():
                raise AlertWorkflowError("closing with reason 'other' needs a note saying why")
        elif self.reason is not None:
            raise AlertWorkflowError(f"a reason is only given when closing, not to {self.action}")
        if self.action == "assign" and self.assignee is not None and not self.assignee.strip():
            raise AlertWorkflowError("the assignee is empty: give a user name, or clear the assignment")
        return self

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AlertChange:
        return cls(action=data["action"], reason=data.get("reason"), note=data.get("note") or "",
                   assignee=data.get("assignee"))

    def describe(self) -> str:
        """``close (false_positive)``, ``assign to an``, ``ack``..."""
        if self.action == "close":
            return f"close ({self.reason})"
        if self.action == "assign":
            return f"assign to {self.assignee}" if self.assignee else "clear the assignee"
        return self.action


_TARGET = {"ack": "acknowledged", "close": "closed", "reopen": "open"}


def apply_change(alert: dict[str, Any], change: AlertChange, *, actor: str, at: str,
                 job: str | None = None, job_page: int | None = None
                 ) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The alert after ``change`` by ``actor`` at ``at`` (ISO text) and its history entry;
    ``None`` when the alert is already as asked. Raises :class:`InvalidTransition` when the
    change does not apply to the alert's status."""
    before = status_of(alert)
    body = dict(alert)
    after = before
    if change.action == "assign":
        if (alert.get("assignee") or None) == change.assignee:
            return None
        body.update(assignee=change.assignee, assigned_at=at, assigned_by=actor)
    else:
        after = _TARGET[change.action]
        if before == after:
            return None
        if change.action == "ack" and before != "open":
            raise InvalidTransition(f"alert {alert.get('id')} is {before}: only an open alert is acknowledged "
                                    "(reopen it first)")
        if change.action == "reopen" and before != "closed":
            raise InvalidTransition(f"alert {alert.get('id')} is {before}: only a closed alert is reopened")
        body["status"] = after
        if change.action == "ack":
            body.setdefault("acknowledged_at", at)  # the first acknowledgement (time to acknowledge)
            body.setdefault("acknowledged_by", actor)
        elif change.action == "close":
            body.update(closed_at=at, closed_by=actor, close_reason=change.reason, close_note=change.note)
        else:  # reopen: the close reason and note stay in the history
            for name in ("closed_at", "closed_by", "close_reason", "close_note"):
                body.pop(name, None)
            body.update(reopened_at=at, reopened_by=actor, reopen_count=int(alert.get("reopen_count") or 0) + 1)
    body["status"] = after  # "new" is written as "open"
    seq = int(alert.get("history_seq") or 0) + 1
    entry = {"id": history_id(str(alert["id"]), seq), "alert_id": alert["id"], "seq": seq,
             "agency": alert.get("agency"), "rule_id": (alert.get("rule") or {}).get("id"), "at": at,
             "actor": actor, "action": change.action, "from": before, "to": after,
             "reason": change.reason, "note": change.note or "", "job": job, "job_page": job_page}
    if change.action == "assign":
        entry.update(assignee_from=alert.get("assignee") or None, assignee_to=change.assignee)
    body.update(history_seq=seq, last_change=entry, updated_at=at, updated_by=actor)
    return body, entry
