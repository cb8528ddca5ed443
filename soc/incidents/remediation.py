"""Remediation tasks the SOC sends to an agency's IT staff (issue #10, item 4).

The SOC (``tasks:write``) sends a task -- title, description, the agency (required, from
``ingest/agencies.yml``), an incident (optional), a due time -- and the agency's users
(``tasks:respond``, scoped to their agency by the store they act on) acknowledge it and mark it
done with a note. A task is *overdue* while it is not done after its due time (computed with
the service's clock when read, never stored).

Tasks are documents of the ``tasks`` collection with ``kind: remediation`` (the playbooks'
response-team tasks live there too, without that kind), owned by their ``agency`` field::

    id, kind, agency, agency_name, title, description, incident_id, due_at, status (open,
    acknowledged, done), created_at, created_by, acknowledged_at, acknowledged_by, done_at,
    done_by, done_note, updated_at, events [{at, actor, action, note}],
    notifications [{event, at, to, sent, error}]

Every change is a compare-and-set (retried); ``events`` keeps who did what. When a task is sent
and when it is done an e-mail goes to the agency's recipients (:func:`agency_recipients`: its
``contact_email`` and its users with an address) -- and, when done, to the SOC
(``tasks.soc_email``); a mail that cannot be sent is logged and recorded in ``notifications``,
and never fails the task.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, tzinfo
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from soc.access import Principal
from soc.agencies import Agency, AgencyTree
from soc.clock import Clock, system_clock
from soc.config import SmtpSettings, TaskSettings
from soc.errors import SocError
from soc.mail import send_mail
from soc.model import iso
from soc.store.base import Conflict, Store

__all__ = ["STATUSES", "TASKS", "Notifier", "RemediationTasks", "TaskError", "agency_recipients",
           "is_overdue", "mail_notifier"]

log = logging.getLogger(__name__)

TASKS = "tasks"  # soc.playbooks.actions.tasks.TASKS
KIND = "remediation"
INCIDENTS = "incidents"
STATUSES = ("open", "acknowledged", "done")
MAX_TITLE, MAX_TEXT = 300, 10_000

Notifier = Callable[[Sequence[str], str, str], object]
"""Sends one e-mail: ``notify(to, subject, text)``; raises when it was not sent."""


class TaskError(SocError, ValueError):
    """A task was refused (no title, an unknown agency or task...); the message says what to give."""


class _User(Protocol):
    agency: str | None
    email: str | None
    disabled: bool


def agency_recipients(users: Callable[[], Iterable[_User]] | None = None) -> Callable[[Agency], list[str]]:
    """Who is told about an agency's tasks: its ``contact_email`` and, when ``users`` (the user
    store's list) is given, the enabled users of that agency with an e-mail address."""

    def recipients(agency: Agency) -> list[str]:
        found = list(agency.contact_email)
        for user in users() if users is not None else ():
            if user.agency == agency.id and user.email and not user.disabled:
                found.append(user.email)
        return list(dict.fromkeys(found))

    return recipients


def mail_notifier(smtp: SmtpSettings) -> Notifier:
    """E-mail through the configured server (:func:`soc.mail.send_mail`)."""
    sender = smtp.sender or "soc@localhost"

    def notify(to: Sequence[str], subject: str, text: str) -> object:
        return send_mail(smtp, sender=sender, to=list(to), subject=subject, text=text)

    return notify


def is_overdue(task: dict[str, Any], now: datetime) -> bool:
    """Not done, and past its due time."""
    due = task.get("due_at")
    return task.get("status") != "done" and bool(due) and str(due) <= iso(now)


def _one_line(text: str) -> str:
    return re.sub(r"[\x00-\x1f\x7f]+", " ", text).strip()


class RemediationTasks:
    """Remediation tasks over ``store`` (the acting principal's: scoped and audited)."""

    def __init__(self, store: Store, agencies: AgencyTree, *, clock: Clock = system_clock,
                 settings: TaskSettings | None = None, notifier: Notifier | None = None,
                 recipients: Callable[[Agency], Sequence[str]] | None = None,
                 zone: tzinfo = ZoneInfo("Asia/Ho_Chi_Minh")) -> None:
        self.store = store
        self.agencies = agencies
        self.clock = clock
        self.settings = settings or TaskSettings()
        self.notifier = notifier
        self.recipients = recipients or agency_recipients()
        self.zone = zone

    # -- the SOC -------------------------------------------------------------------------------
    def create(self, principal: Principal, *, agency: str, title: str, description: str = "",
               incident_id: str | None = None, due: datetime | None = None) -> dict[str, Any]:
        """Send a task to ``agency`` (``tasks:write``); its recipients are e-mailed."""
        principal.require("tasks:write")
        title = _one_line(title or "")
        if not title:
            raise TaskError("a task needs a title")
        if len(title) > MAX_TITLE or len(description) > MAX_TEXT:
            raise TaskError(f"the title is at most {MAX_TITLE} characters and the description {MAX_TEXT}")
        target = self.agencies.get(agency)
        if target is None:
            raise TaskError(f"unknown agency {agency!r}: use an id of ingest/agencies.yml "
                            f"({', '.join(sorted(a.id for a in self.agencies)) or 'none'})")
        if target.merged_into:
            raise TaskError(f"agency {agency!r} was merged into {target.merged_into!r}: send the task there")
        if incident_id and self.store.get(INCIDENTS, incident_id) is None:
            raise TaskError(f"no incident {incident_id!r}; `soc incidents list` shows the ids")
        now = self.clock()
        if due is not None and (due.tzinfo is None or due <= now):
            raise TaskError(f"the due time must be an aware time after now ({iso(now)})")
        task_id = f"task-{uuid.uuid4().hex[:16]}"
        body = {"id": task_id, "kind": KIND, "agency": target.id, "agency_name": target.name, "title": title,
                "description": description, "incident_id": incident_id or None,
                "due_at": iso(due) if due else None, "status": "open", "created_at": iso(now),
                "created_by": principal.label, "acknowledged_at": None, "acknowledged_by": None, "done_at": None,
                "done_by": None, "done_note": None, "updated_at": iso(now),
                "events": [{"at": iso(now), "actor": principal.label, "action": "created", "note": ""}],
                "notifications": []}
        self.store.put(TASKS, task_id, body, expected_version=0)
        return self._notify(body, "created")

    # -- the agency ----------------------------------------------------------------------------
    def acknowledge(self, principal: Principal, task_id: str, *, note: str = "") -> dict[str, Any]:
        """The agency has seen the task (``tasks:respond``); acknowledging again changes nothing."""
        principal.require("tasks:respond")

        def ack(body: dict[str, Any], at: str) -> dict[str, Any] | None:
            if body["status"] != "open":
                return None
            return {**body, "status": "acknowledged", "acknowledged_at": at, "acknowledged_by": principal.label}

        return self._change(principal, task_id, "acknowledged", note, ack)

    def done(self, principal: Principal, task_id: str, *, note: str) -> dict[str, Any]:
        """The agency has done it (``tasks:respond``), saying what it did; the SOC is e-mailed."""
        principal.require("tasks:respond")
        if not (note or "").strip():
            raise TaskError("marking a task done needs a note saying what was done")
        if len(note) > MAX_TEXT:
            raise TaskError(f"the note is at most {MAX_TEXT} characters")

        def finish(body: dict[str, Any], at: str) -> dict[str, Any] | None:
            if body["status"] == "done":
                raise TaskError(f"task {task_id} is done already ({body['done_at']}, {body['done_by']})")
            return {**body, "status": "done", "done_at": at, "done_by": principal.label, "done_note": note,
                    "acknowledged_at": body.get("acknowledged_at") or at,
                    "acknowledged_by": body.get("acknowledged_by") or principal.label}

        task = self._change(principal, task_id, "done", note, finish)
        return self._notify(task, "done")

    # -- reading -------------------------------------------------------------------------------
    def get(self, principal: Principal, task_id: str) -> dict[str, Any]:
        """One task with its ``overdue`` flag (``tasks:read``)."""
        principal.require("tasks:read")
        doc = self.store.get(TASKS, task_id)
        if doc is None or doc.body.get("kind") != KIND:
            raise TaskError(f"no remediation task {task_id!r}; `soc tasks list` shows them")
        return self._shown(doc.body)

    def list(self, principal: Principal, *, agency: str | None = None, status: str | list[str] | None = None,
             incident_id: str | None = None, overdue: bool = False, limit: int = 100) -> list[dict[str, Any]]:
        """Tasks, newest first (``overdue``: only those past due, earliest due first)."""
        principal.require("tasks:read")
        where: dict[str, Any] = {"kind": KIND}
        for name, value in (("agency", agency), ("status", status), ("incident_id", incident_id)):
            if value:
                where[name] = value
        if overdue:
            statuses = [s for s in ([status] if isinstance(status, str) else status or ["open", "acknowledged"])
                        if s != "done"]
            where["status"] = statuses
            docs = self.store.find(TASKS, where, time_field="due_at", end=iso(self.clock()), sort="due_at",
                                   limit=limit)
        else:
            docs = self.store.find(TASKS, where, sort="created_at", descending=True, limit=limit)
        return [self._shown(d.body) for d in docs]

    # -- inside --------------------------------------------------------------------------------
    def _shown(self, body: dict[str, Any]) -> dict[str, Any]:
        return {**body, "overdue": is_overdue(body, self.clock())}

    def _change(self, principal: Principal, task_id: str, action: str, note: str,
                change: Callable[[dict[str, Any], str], dict[str, Any] | None]) -> dict[str, Any]:
        for _ in range(20):
            doc = self.store.get(TASKS, task_id)
            if doc is None or doc.body.get("kind") != KIND:
                raise TaskError(f"no remediation task {task_id!r}; `soc tasks list` shows them")
            at = iso(self.clock())
            body = change(doc.body, at)
            if body is None:
                return self._shown(doc.body)
            body["events"] = [*doc.body.get("events", []), {"at": at, "actor": principal.label, "action": action,
                                                           "note": note or ""}]
            body["updated_at"] = at
            try:
                self.store.put(TASKS, task_id, body, expected_version=doc.version)
            except Conflict:
                continue
            return self._shown(body)
        raise TaskError(f"task {task_id} was changed by others too often at the same time; try again")

    def _notify(self, task: dict[str, Any], event: str) -> dict[str, Any]:
        """E-mail about ``task``; a failure is logged and recorded, never raised."""
        if not self.settings.notify or self.notifier is None:
            return self._shown(task)
        agency = self.agencies.get(task["agency"])
        to = list(self.recipients(agency)) if agency is not None else []
        if event == "done" and self.settings.soc_email:
            to = list(dict.fromkeys([*self.settings.soc_email, *to]))
        if not to:
            log.warning("task %s (%s): nobody to e-mail: agency %s has no contact_email and no user with an "
                        "e-mail address", task["id"], event, task["agency"])
            return self._record(task, {"event": event, "at": iso(self.clock()), "to": [], "sent": False,
                                       "error": "no recipient"})
        subject, text = self._message(task, event)
        try:
            self.notifier(to, subject, text)
            outcome: dict[str, Any] = {"sent": True, "error": None}
        except Exception as error:  # a mail failure never fails the task
            log.warning("task %s (%s): e-mail to %s not sent: %s", task["id"], event, ", ".join(to), error)
            outcome = {"sent": False, "error": str(error)}
        return self._record(task, {"event": event, "at": iso(self.clock()), "to": to, **outcome})

    def _record(self, task: dict[str, Any], notification: dict[str, Any]) -> dict[str, Any]:
        for _ in range(5):
            doc = self.store.get(TASKS, task["id"])
            if doc is None:
                break
            body = {**doc.body, "notifications": [*doc.body.get("notifications", []), notification]}
            try:
                self.store.put(TASKS, task["id"], body, expected_version=doc.version)
                return self._shown(body)
            except Conflict:
                continue
            except SocError as error:  # recording is best effort too
                log.warning("task %s: notification not recorded: %s", task["id"], error)
                break
        return self._shown(task)

    def _local(self, text: str | None) -> str:
        if not text:
            return "-"
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(self.zone).strftime("%Y-%m-%d %H:%M %Z")

    def _message(self, task: dict[str, Any], event: str) -> tuple[str, str]:
        prefix = self.settings.subject_prefix
        title = _one_line(task["title"])
        lines = [f"Đơn vị / Agency: {task['agency_name']} ({task['agency']})", f"Nhiệm vụ / Task: {title}",
                 f"Mã / Id: {task['id']}", f"Hạn / Due: {self._local(task.get('due_at'))}"]
        if task.get("incident_id"):
            lines.append(f"Sự cố / Incident: {task['incident_id']}")
        if event == "created":
            subject = f"{prefix} Yêu cầu khắc phục / Remediation task: {title}"
            lines += ["", task.get("description") or "", "",
                      "Xác nhận và báo cáo hoàn thành trên cổng SOC / Acknowledge it and mark it done "
                      f"in the SOC console (soc tasks ack {task['id']}; soc tasks done {task['id']} --note ...).",
                      f"Gửi bởi / Sent by: {task['created_by']}"]
        else:
            subject = f"{prefix} Đã hoàn thành / Done: {title}"
            lines += ["", f"Hoàn thành bởi / Done by: {task['done_by']} ({self._local(task.get('done_at'))})",
                      f"Ghi chú / Note: {task.get('done_note') or ''}"]
        return subject, "\n".join(lines) + "\n"
