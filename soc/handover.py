"""Shift handover (giao ca): what the outgoing shift saw, did and left open, and the handover
record the outgoing analyst signs off.

**The shift window** is ``[start, end)``: by default from the end of the previous signed
handover of the same scope (when it ended less than a day ago) or the last
:data:`DEFAULT_HOURS` hours, up to now; the analyst may give other bounds (at most
:data:`MAX_WINDOW`).

**The summary** (:meth:`Handovers.summary`) is computed from the store the analyst acts on (the
service layer's scoped store: only the agencies the analyst may see) and from the audit trail
(the analyst's own actions), each part only when the analyst may read it:

* *saw*: alerts detected in the window by severity, incidents opened in the window;
* *did*: alert changes in the window (``alert_history``) by person and action, closes by
  reason, incidents changed in the window, and the outgoing analyst's own audited actions;
* *left open*: alerts open and acknowledged now by severity and the rules with most open
  alerts, incidents not closed by status, playbook approvals pending (they belong to no agency:
  only principals that see every agency have them), remediation tasks not done (overdue
  first), national reports due or overdue.

**The record** (collection :data:`HANDOVERS`, owned by the outgoing analyst's agency; none for
a province-wide analyst) holds the window, the note, who takes over, the summary as computed
when it was saved (``summary_json``) and, once signed, ``digest``: the SHA-256 of the record's
content. A draft may be saved and changed by its author; a signed record is never changed
(:class:`HandoverError`), and every write goes through the audited store, so the audit trail
holds the digest of each sign-off under the analyst's name: :meth:`Handovers.check` compares
the record with both.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from soc.access import Forbidden, Principal
from soc.errors import SocError
from soc.model import iso, parse_iso
from soc.store.base import Conflict, DocPage, DocQuery
from soc.timeexpr import resolve_range

if TYPE_CHECKING:
    from soc.app import App

__all__ = ["DEFAULT_HOURS", "HANDOVERS", "MAX_NOTE", "MAX_WINDOW", "HandoverError", "HandoverNotFound",
           "Handovers", "ShiftWindow"]

HANDOVERS = "handovers"
DEFAULT_HOURS = 8
MAX_WINDOW = timedelta(days=7)
#: a previous handover that ended longer ago than this does not start the next window
FOLLOW_WITHIN = timedelta(hours=24)
MAX_NOTE = 10_000
#: rows kept per list of the summary (incidents, approvals, tasks, reports)
MAX_ROWS = 50
OPEN_ALERT = ["new", "open"]
LEVELS = ("critical", "high", "medium", "low", "informational")
#: the content the digest covers (everything but the digest itself)
SIGNED_FIELDS = ("id", "agency", "status", "shift_start", "shift_end", "outgoing", "outgoing_name", "incoming",
                 "note", "summary_json", "created_at", "signed_at")


class HandoverError(SocError, ValueError):
    """A handover was refused (a signed one changed, a window too long...); the message says why."""


class HandoverNotFound(HandoverError, LookupError):
    """No such handover, or one of an agency outside the caller's scope."""


@dataclass(frozen=True, slots=True)
class ShiftWindow:
    """The shift's ``[start, end)`` (aware UTC) and the handover it follows, if any."""

    start: datetime
    end: datetime
    follows: str | None = None


def digest_of(body: dict[str, Any]) -> str:
    """The SHA-256 of a handover's content (:data:`SIGNED_FIELDS`, canonical JSON)."""
    content = {name: body.get(name) for name in SIGNED_FIELDS}
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _counts(rows: list[tuple[tuple[Any, ...], int]]) -> dict[str, int]:
    return {str(key[0]): count for key, count in rows if key}


class Handovers:
    """Handovers as seen and made by the principal of ``services`` (an :class:`~soc.app.App`
    made by :meth:`~soc.app.App.acting_as`)."""

    def __init__(self, services: App) -> None:
        if services.principal is None:
            raise HandoverError("a handover is made by someone: use the service layer acting as the analyst")
        self.services = services
        self.principal: Principal = services.principal
        self.store = services.store
        self.clock = services.clock

    # -- the window ------------------------------------------------------------------------------
    def window(self, since: str | None = None, until: str | None = None) -> ShiftWindow:
        """The shift window: ``since``/``until`` as analysts write times (``8h``,
        ``2026-12-07T07:00``...), by default from the previous handover or the last 8 hours."""
        now = self.clock()
        picked = resolve_range(since or None, until or None, self.services.settings.zone, now)
        end = picked.end or now
        follows = None
        start = picked.start
        if start is None:
            previous = self.previous(before=end)
            if previous is not None and end - parse_iso(previous["shift_end"]) <= FOLLOW_WITHIN \
                    and parse_iso(previous["shift_end"]) < end:
                start, follows = parse_iso(previous["shift_end"]), previous["id"]
            else:
                start = end - timedelta(hours=DEFAULT_HOURS)
        elif (previous := self.previous(before=end)) is not None and previous["shift_end"] == iso(start):
            follows = previous["id"]
        if start >= end:
            raise HandoverError(f"the shift must start before it ends ({iso(start)} is not before {iso(end)})")
        if end - start > MAX_WINDOW:
            raise HandoverError(f"a shift is at most {MAX_WINDOW.days} days long: give a later start")
        return ShiftWindow(start, end, follows)

    def previous(self, *, before: datetime | None = None) -> dict[str, Any] | None:
        """The newest signed handover of this scope that ended by ``before``."""
        mine = ("agency", "equals", self.principal.agency) if self.principal.agency else ("agency", "exists", False)
        filters: list[tuple[str, str, Any]] = [("status", "equals", "signed"), mine]
        if before is not None:
            filters.append(("shift_end", "range", (None, iso(before + timedelta(milliseconds=1)))))
        page = self.store.query_documents(DocQuery(HANDOVERS, filters=tuple(filters), sort=("shift_end",),
                                                   order="desc", size=1, track_total=0))
        return page.docs[0].body if page.docs else None

    # -- the summary -----------------------------------------------------------------------------
    def summary(self, window: ShiftWindow) -> dict[str, Any]:
        """What the shift saw, did and left open (see the module docstring). Parts the analyst
        may not read are left out and named in ``hidden``."""
        now = self.clock()
        span = (iso(window.start), iso(window.end))
        who = self.principal
        out: dict[str, Any] = {"computed_at": iso(now), "shift_start": span[0], "shift_end": span[1],
                               "scope": who.agency, "hidden": []}
        if who.can("alerts:read"):
            out["alerts"] = self._alerts(span)
        else:
            out["hidden"].append("alerts")
        if who.can("incidents:read"):
            out["incidents"] = self._incidents(span)
        else:
            out["hidden"].append("incidents")
        if who.can("playbooks:read"):
            out["approvals"] = self._approvals()
        else:
            out["hidden"].append("approvals")
        if who.can("tasks:read"):
            out["tasks"] = self._tasks(now)
        else:
            out["hidden"].append("tasks")
        if who.can("reports:read"):
            out["reports_due"] = self._reports_due(now)
        else:
            out["hidden"].append("reports_due")
        out["my_actions"] = self._my_actions(span)
        return out

    def _count(self, collection: str, filters: list[tuple[str, str, Any]], group_by: tuple[str, ...] = (),
               size: int = 20) -> list[tuple[tuple[Any, ...], int]]:
        return self.store.count_documents(DocQuery(collection, filters=tuple(filters)), group_by, size=size)

    def _total(self, collection: str, filters: list[tuple[str, str, Any]]) -> int:
        rows = self._count(collection, filters)
        return rows[0][1] if rows else 0

    def _alerts(self, span: tuple[str, str]) -> dict[str, Any]:
        detected = [("detected_at", "range", span)]
        in_shift = [("at", "range", span)]
        open_now = [("status", "in", OPEN_ALERT)]
        acknowledged = [("status", "equals", "acknowledged")]
        by_person: dict[str, dict[str, int]] = {}
        for (actor, action), count in self._count("alert_history", in_shift, ("actor", "action"), size=50):
            by_person.setdefault(str(actor), {})[str(action)] = count
        return {
            "detected": self._total("alerts", detected),
            "detected_by_level": _counts(self._count("alerts", detected, ("rule.level",))),
            "changes": _counts(self._count("alert_history", in_shift, ("action",))),
            "changes_by_person": by_person,
            "closed_by_reason": _counts(self._count("alert_history", [*in_shift, ("action", "equals", "close")],
                                                    ("reason",))),
            "open": self._total("alerts", open_now),
            "open_by_level": _counts(self._count("alerts", open_now, ("rule.level",))),
            "acknowledged": self._total("alerts", acknowledged),
            "acknowledged_by_level": _counts(self._count("alerts", acknowledged, ("rule.level",))),
            "open_top_rules": [{"rule": str(key[0]), "count": count} for key, count in
                               self._count("alerts", [("status", "in", [*OPEN_ALERT, "acknowledged"])],
                                           ("rule.title",), size=5)],
        }

    def _incidents(self, span: tuple[str, str]) -> dict[str, Any]:
        touched = self.store.query_documents(DocQuery("incidents", filters=(("updated_at", "range", span),),
                                                      sort=("updated_at",), order="desc", size=MAX_ROWS))
        rows = [{"id": d.body.get("id", d.id), "title": d.body.get("title", ""), "status": d.body.get("status"),
                 "severity": d.body.get("severity"), "assignee": d.body.get("assignee"),
                 "updated_at": d.body.get("updated_at"), "opened_in_shift": span[0] <= str(d.body.get("created_at"))
                 < span[1]} for d in touched.docs]
        return {
            "opened": self._total("incidents", [("created_at", "range", span)]),
            "touched": touched.total,
            "touched_list": rows,
            "not_closed": _counts(self._count("incidents", [("status", "not_equals", "closed"),
                                                            ("merged_into", "exists", False)], ("status",))),
        }

    def _approvals(self) -> dict[str, Any]:
        page = self.store.query_documents(DocQuery("playbook_approvals", filters=(("status", "equals", "pending"),),
                                                   sort=("requested_at",), size=MAX_ROWS))
        rows = [{"run_id": d.body.get("run_id"), "playbook_id": d.body.get("playbook_id"),
                 "step_id": d.body.get("step_id"), "prompt": d.body.get("prompt", ""),
                 "requested_at": d.body.get("requested_at"), "deadline": d.body.get("deadline")} for d in page.docs]
        return {"pending": page.total, "list": rows, "scoped": self.principal.agency is not None}

    def _tasks(self, now: datetime) -> dict[str, Any]:
        not_done = (("kind", "equals", "remediation"), ("status", "in", ["open", "acknowledged"]))
        page = self.store.query_documents(DocQuery("tasks", filters=not_done, sort=("due_at",), size=MAX_ROWS))
        late = self._total("tasks", [*not_done, ("due_at", "range", (None, iso(now)))])
        rows = [{"id": d.body.get("id", d.id), "title": d.body.get("title", ""), "agency": d.body.get("agency"),
                 "agency_name": d.body.get("agency_name"), "status": d.body.get("status"), "due_at": d.body.get("due_at"), "incident_id": d.body.get("incident_id"),
                 "overdue": bool(d.body.get("due_at")) and str(d.body.get("due_at")) <= iso(now)} for d in page.docs]
        rows.sort(key=lambda r: (not r["overdue"], r["due_at"] or "~"))
        return {"open": page.total, "overdue": late, "list": rows}

    def _reports_due(self, now: datetime) -> dict[str, Any]:
        from soc.export.due import due_reports

        rows = due_reports(self.store, now)
        return {"due": len(rows), "overdue": sum(1 for r in rows if r.overdue),
                "list": [{"incident_id": r.incident_id, "title": r.title, "kind": r.kind, "due_at": r.due_at,
                          "state": r.state, "overdue": r.overdue, "serious": r.serious} for r in rows[:MAX_ROWS]]}

    def _my_actions(self, span: tuple[str, str]) -> dict[str, int]:
        """The outgoing analyst's own audited actions in the window, by action (theirs only:
        the trail belongs to no agency)."""
        trail = self.services.audit
        query = DocQuery("audit", filters=(("actor.name", "equals", self.principal.name),
                                           ("actor.kind", "in", ["user", "token"]), ("at", "range", span)))
        return _counts(trail.store.count_documents(query, ("action",), size=50))

    # -- records ---------------------------------------------------------------------------------
    def draft(self) -> dict[str, Any] | None:
        """The principal's unsigned handover, if any."""
        page = self.store.query_documents(DocQuery(HANDOVERS, filters=(
            ("status", "equals", "draft"), ("outgoing_name", "equals", self.principal.name)),
            sort=("updated_at",), order="desc", size=1, track_total=0))
        return page.docs[0].body if page.docs else None

    def save(self, window: ShiftWindow, *, note: str, incoming: str | None = None, sign: bool = False,
             handover_id: str | None = None) -> dict[str, Any]:
        """Save the principal's draft (``handover_id``: the draft to change; none: a new one) with
        the summary computed now, or sign it off (``sign``): then it never changes again."""
        self._may_hand_over()
        note = (note or "").replace("\r\n", "\n").strip()
        if len(note) > MAX_NOTE:
            raise HandoverError(f"the note is {len(note)} characters long; at most {MAX_NOTE}")
        incoming = (incoming or "").strip()[:64] or None
        now = iso(self.clock())
        for _ in range(8):
            stored = self.store.get(HANDOVERS, handover_id) if handover_id else None
            if handover_id and stored is None:
                raise HandoverNotFound(f"no handover {handover_id!r}")
            if stored is not None:
                if stored.body.get("status") == "signed":
                    raise HandoverError(f"handover {handover_id} was signed off at {stored.body.get('signed_at')}: "
                                        "a signed handover is never changed (write a new one)")
                if stored.body.get("outgoing_name") != self.principal.name:
                    raise Forbidden(f"{self.principal.label} may not change the handover of "
                                    f"{stored.body.get('outgoing')}")
            body = {"id": handover_id or f"ho-{uuid.uuid4().hex[:16]}", "agency": self.principal.agency,
                    "status": "signed" if sign else "draft", "shift_start": iso(window.start),
                    "shift_end": iso(window.end), "follows": window.follows, "outgoing": self.principal.label,
                    "outgoing_name": self.principal.name, "incoming": incoming, "note": note,
                    "summary_json": json.dumps(self.summary(window), ensure_ascii=False, sort_keys=True),
                    "created_at": stored.body.get("created_at", now) if stored else now, "updated_at": now,
                    "signed_at": now if sign else None, "digest": None}
            if sign:
                body["digest"] = digest_of(body)
            try:
                self.store.put(HANDOVERS, body["id"], body, expected_version=stored.version if stored else 0)
            except Conflict:
                continue
            return body
        raise HandoverError("the handover changed meanwhile, again and again: reload the page")

    def get(self, handover_id: str) -> dict[str, Any]:
        """One handover (its summary parsed into ``summary``)."""
        doc = self.store.get(HANDOVERS, handover_id)
        if doc is None:
            raise HandoverNotFound(f"no handover {handover_id!r}")
        body = dict(doc.body)
        try:
            body["summary"] = json.loads(body.get("summary_json") or "{}")
        except ValueError:
            body["summary"] = {}
        return body

    def check(self, body: dict[str, Any]) -> dict[str, Any]:
        """Whether a signed handover is as it was signed: its digest against its content, and
        against the sign-off recorded in the audit trail (when the principal may read the trail)."""
        if body.get("status") != "signed":
            return {"signed": False}
        intact = digest_of(body) == body.get("digest")
        result: dict[str, Any] = {"signed": True, "intact": intact, "audit_seq": None, "audit_agrees": None}
        trail = self.services.audit
        if self.principal.can("audit:read") and self.principal.scope(self.services.agencies).everything:
            found = trail.page(target=f"{HANDOVERS}/{body['id']}", limit=20)
            for record in found.records:
                new = ((record.details.get("values") or {}).get("digest") or {}).get("new")
                if new:
                    result.update(audit_seq=record.seq, audit_agrees=new == body.get("digest"))
                    break
        return result

    def list(self, *, limit: int = 20, cursor: str | None = None) -> DocPage:
        """Handovers of this scope, the newest shift first (keyset pages)."""
        return self.store.query_documents(DocQuery(HANDOVERS, sort=("shift_end",), order="desc", size=limit,
                                                   cursor=cursor))

    # -- inside ----------------------------------------------------------------------------------
    def _may_hand_over(self) -> None:
        """A shift is handed over by who worked it: someone who may change alerts or incidents."""
        if not (self.principal.can("alerts:write") or self.principal.can("incidents:write")):
            raise Forbidden(f"{self.principal.label} may not sign a shift handover (needs alerts:write or "
                            "incidents:write)")
