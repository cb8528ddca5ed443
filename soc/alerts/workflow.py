"""The alert workflow service: acknowledge, assign, close and reopen one alert at a time.

Every method takes the acting :class:`~soc.access.Principal`, requires its permission
(``alerts:write`` to change, ``alerts:read`` to read the history) and works on the store it
was given (the front doors give a store scoped to the principal's agencies and audited, so an
alert outside the scope reads as missing).

**Never a lost change.** A change is a compare-and-set on the alert document (``put`` with the
version read); when someone else wrote first it reads the alert again and applies the change to
what is there now, up to :data:`MAX_ATTEMPTS` times. **Never a lost history.** The change's
history entry is written into the alert itself (``last_change``, with the alert's next
``history_seq``) in the same compare-and-set, then created in ``alert_history`` under the id
``<alert id>:<seq>`` (create-only). If the process stops in between, the next change of that
alert (or reading its history) writes the missing entry first.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any, Literal

from soc.access import Principal
from soc.alerts.model import (
    ALERTS,
    HISTORY,
    AlertChange,
    AlertNotFound,
    AlertWorkflowError,
    InvalidTransition,
    apply_change,
)
from soc.clock import Clock, system_clock
from soc.model import iso
from soc.store.base import Conflict, Doc, Store

__all__ = ["MAX_ATTEMPTS", "AlertUpdate", "AlertWorkflow", "Outcome"]

#: compare-and-set attempts of one change before giving up
MAX_ATTEMPTS = 25
Outcome = Literal["changed", "unchanged", "invalid", "concurrent", "missing"]
"""What one change did to one alert: ``changed``; ``unchanged`` (already as asked);
``invalid`` (does not apply to its status); ``concurrent`` (someone changed it meanwhile so
that it no longer matches the bulk query); ``missing`` (gone, or out of scope)."""


@dataclass(frozen=True, slots=True)
class AlertUpdate:
    """The result of one change: the alert as it is now, and its new history entry (None when
    nothing changed)."""

    alert: dict[str, Any]
    changed: bool
    history: dict[str, Any] | None = None


class AlertWorkflow:
    """Changes of alerts by principals, each recorded in ``alert_history``."""

    def __init__(self, store: Store, *, clock: Clock = system_clock) -> None:
        self.store = store
        self.clock = clock

    # -- one alert -------------------------------------------------------------------------
    def acknowledge(self, principal: Principal, alert_id: str, *, note: str = "") -> AlertUpdate:
        """``open`` -> ``acknowledged`` (the first acknowledgement time is kept)."""
        return self.change(principal, alert_id, AlertChange("ack", note=note))

    def assign(self, principal: Principal, alert_id: str, assignee: str | None, *, note: str = "") -> AlertUpdate:
        """Set the assignee (``None`` clears it), in any status."""
        return self.change(principal, alert_id, AlertChange("assign", assignee=assignee, note=note))

    def close(self, principal: Principal, alert_id: str, *, reason: str, note: str = "") -> AlertUpdate:
        """``open``/``acknowledged`` -> ``closed`` with a reason (``other`` needs a note)."""
        return self.change(principal, alert_id, AlertChange("close", reason=reason, note=note))

    def reopen(self, principal: Principal, alert_id: str, *, note: str = "") -> AlertUpdate:
        """``closed`` -> ``open``; the close reason and note stay in the history."""
        return self.change(principal, alert_id, AlertChange("reopen", note=note))

    def change(self, principal: Principal, alert_id: str, change: AlertChange) -> AlertUpdate:
        """Apply ``change`` to one alert. Raises :class:`AlertNotFound`,
        :class:`InvalidTransition`, :class:`AlertWorkflowError` (an incomplete change, or too
        many concurrent writers) or :class:`~soc.access.Forbidden`."""
        principal.require("alerts:write")
        change.check()
        outcome, alert, entry = self.apply(alert_id, change, actor=principal.label)
        if outcome == "missing":
            raise AlertNotFound(f"no alert {alert_id!r}; `soc alerts list` shows the ids")
        assert alert is not None
        return AlertUpdate(alert, outcome == "changed", entry)

    def get(self, principal: Principal, alert_id: str) -> dict[str, Any]:
        """One alert (``alerts:read``)."""
        principal.require("alerts:read")
        doc = self.store.get(ALERTS, alert_id)
        if doc is None:
            raise AlertNotFound(f"no alert {alert_id!r}; `soc alerts list` shows the ids")
        return doc.body

    def history(self, principal: Principal, alert_id: str) -> list[dict[str, Any]]:
        """Every change of an alert, oldest first (``alerts:read``)."""
        principal.require("alerts:read")
        doc = self.store.get(ALERTS, alert_id)
        if doc is None:
            raise AlertNotFound(f"no alert {alert_id!r}; `soc alerts list` shows the ids")
        entries = {d.id: d.body for d in self.store.find(HISTORY, {"alert_id": alert_id}, sort="seq", limit=100_000)}
        last = doc.body.get("last_change")
        if last and last["id"] not in entries:  # written into the alert; its own entry not yet
            entries[last["id"]] = last
        return sorted(entries.values(), key=lambda e: e["seq"])

    # -- the compare-and-set loop (also used by bulk jobs) ---------------------------------
    def apply(self, alert_id: str, change: AlertChange, *, actor: str, doc: Doc | None = None,
              still_matches: Any = None, job: str | None = None, job_page: int | None = None,
              ) -> tuple[Outcome, dict[str, Any] | None, dict[str, Any] | None]:
        """Apply a checked ``change`` by ``actor`` (a principal's label) to alert ``alert_id``
        (as ``doc`` if it was just read), retrying on conflicts. ``still_matches(body)``, when
        given, re-judges an alert read again after a conflict (a bulk query): ``concurrent``
        when it no longer matches. Returns the outcome, the alert and the history entry.
        Raises :class:`InvalidTransition` only when no ``still_matches`` is given (one alert);
        a bulk change counts it as ``invalid``."""
        for attempt in range(MAX_ATTEMPTS):
            if doc is None or attempt:
                doc = self.store.get(ALERTS, alert_id)
                if doc is None:
                    return "missing", None, None
                if still_matches is not None and attempt and not still_matches(doc.body):
                    return "concurrent", doc.body, None
            self.write_pending_history(doc.body)
            try:
                result = apply_change(doc.body, change, actor=actor, at=iso(self.clock()), job=job,
                                      job_page=job_page)
            except InvalidTransition:
                if still_matches is None:
                    raise
                return "invalid", doc.body, None
            if result is None:
                return "unchanged", doc.body, None
            body, entry = result
            try:
                self.store.put(ALERTS, alert_id, body, expected_version=doc.version)
            except Conflict:
                time.sleep(random.uniform(0, 0.002 * (attempt + 1)))
                continue
            self.store.create(HISTORY, entry["id"], entry)
            return "changed", body, entry
        raise AlertWorkflowError(f"alert {alert_id} was changed by others {MAX_ATTEMPTS} times while "
                                 f"trying to {change.describe()}; try again")

    def write_pending_history(self, alert: dict[str, Any]) -> None:
        """Create the history entry carried in the alert (``last_change``) if its process
        stopped before creating it (create-only: nothing happens when it exists)."""
        last = alert.get("last_change")
        if last and last.get("id"):
            self.store.create(HISTORY, last["id"], last)
