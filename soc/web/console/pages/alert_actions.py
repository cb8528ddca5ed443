"""Changes from the alert queue: one form (``POST /alerts-queue/bulk``) for the selected alerts or for
every alert the queue's filters match ("select all N matching").

* acknowledge, assign (to a user or to oneself), close with a reason and a note, reopen --
  :meth:`soc.alerts.BulkAlerts.apply` over the same :class:`~soc.alerts.AlertQuery` the queue
  shows (no cap of 100, no page limit): the queue then shows the job's exact counts (changed,
  already so, not applicable, changed meanwhile by someone else, gone); a large set runs as a
  background job whose progress the queue shows;
* open an incident from them, or attach them to an open incident -- the incident service
  (:class:`soc.incidents.Incidents`), at most :data:`MAX_INCIDENT_ALERTS` alerts at once;
* turn a false positive into an exception -- sends to :mod:`.alert_exception` with the selection.

The form carries the queue's query string (``q``) and the URL to return to (``back``, a queue
URL only). Every change goes through the user's service layer: scoped and audited.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from soc.alerts import AlertChange, AlertQuery
from soc.alerts.query import scan
from soc.web.console.i18n import language
from soc.web.console.pages.alert_query import NOT_FILTERS, parse_params
from soc.web.console.render import LANG_COOKIE
from soc.web.console.security import console_caller, safe_next
from soc.web.deps import Caller

__all__ = ["MAX_INCIDENT_ALERTS", "MAX_SELECTED", "refuse", "router", "safe_back", "selection", "with_notice"]

router = APIRouter(include_in_schema=False)

#: alerts that go into one incident at once (the incident keeps every alert id)
MAX_INCIDENT_ALERTS = 1000
#: alerts selected one by one at most (beyond: "select all N matching")
MAX_SELECTED = 10_000
CHANGES = {"ack": "ack", "assign": "assign", "assign_me": "assign", "close": "close", "reopen": "reopen"}


def safe_back(target: str | None) -> str:
    """Where to return after an action: a queue URL of this console, else the queue."""
    back = safe_next(target)
    return back if back == "/alerts" or back.startswith("/alerts?") else "/alerts"


def with_notice(back: str, **notice: str | int) -> str:
    """``back`` (a queue URL) without an earlier notice, with this one."""
    path, _, query = safe_back(back).partition("?")
    kept = [(k, v) for k, v in parse_qsl(query) if k not in NOT_FILTERS and k != "select"]
    kept += [(k, str(v)) for k, v in notice.items() if v not in (None, "")]
    return f"{path}?{urlencode(kept)}" if kept else path


def refuse(request: Request, message: str, **values: Any) -> ValueError:
    """A refusal shown in the user's language (a 400 page)."""
    return ValueError(language(request.cookies.get(LANG_COOKIE)).gettext(message, **values))


def selection(request: Request, who: Caller, q: str, ids: list[str], all_matching: bool) -> AlertQuery:
    """The alerts an action applies to: every alert the queue's filters ``q`` match, or the
    alerts selected by id."""
    if all_matching:
        params = parse_params(parse_qsl(q[:8000]))
        return params.query(who.services.settings.zone, who.services.clock)
    chosen = list(dict.fromkeys(i.strip() for i in ids if i.strip()))
    if not chosen:
        raise refuse(request, "Select alerts first (x, or the boxes), or select all matching alerts.")
    if len(chosen) > MAX_SELECTED:
        raise refuse(request, "At most {n} alerts can be selected one by one: select all matching alerts instead.",
                    n=MAX_SELECTED)
    return AlertQuery(ids=chosen).check()


def _alerts(request: Request, who: Caller, query: AlertQuery) -> list[dict[str, Any]]:
    """The alerts of ``query`` (for an incident), at most :data:`MAX_INCIDENT_ALERTS`."""
    found: list[dict[str, Any]] = []
    for docs, _ in scan(who.services.store, query):
        found += [d.body for d in docs if query.matches(d.body)]
        if len(found) > MAX_INCIDENT_ALERTS:
            raise refuse(request, "More than {n} alerts: an incident takes at most {n} at once; narrow the "
                        "selection (a group, a host, a time range).", n=MAX_INCIDENT_ALERTS)
    if not found:
        raise refuse(request, "No alert matches the selection any more.")
    return found


def _incident(request: Request, who: Caller, query: AlertQuery, mode: str, incident_id: str, title: str,
              back: str, keep: str) -> Response:
    who.principal.require("incidents:write")
    alerts = _alerts(request, who, query)
    service = who.services.incidents
    actor = who.principal.label
    if mode == "attach":
        incident_id = incident_id.strip()
        target = service.get(incident_id) if incident_id else None
        if target is None:
            raise refuse(request, "Choose an open incident to attach the alerts to.")
        elsewhere = sorted({str(a["incident_id"]) for a in alerts if a.get("incident_id") not in (None, target.id)})
        if elsewhere:
            raise refuse(request, "Some selected alerts are already in another incident ({ids}); move them from "
                        "that incident's page.", ids=", ".join(elsewhere[:5]))
        new = [str(a["id"]) for a in alerts if a.get("incident_id") != target.id]
        incident = service.attach(target.id, new, actor=actor) if new else target
        return RedirectResponse(with_notice(back, incident=incident.id, added=len(new), select=keep), status_code=303)
    before = {str(a["id"]) for a in alerts if a.get("incident_id")}
    incident = service.open_from_alerts(alerts, actor=actor, title=title.strip()[:300] or None)
    added = sum(1 for a in alerts if str(a["id"]) not in before)
    return RedirectResponse(with_notice(back, incident=incident.id, added=added, select=keep), status_code=303)


@router.post("/alerts-queue/bulk")
def bulk(request: Request, action: str = Form(...), q: str = Form(""), back: str = Form("/alerts"),  # noqa: B008
         all_matching: str = Form(""), id: list[str] = Form([]), assignee: str = Form(""),  # noqa: A002, B008
         reason: str = Form(""), note: str = Form(""), incident_id: str = Form(""), title: str = Form(""),  # noqa: B008
         who: Caller = Depends(console_caller)) -> Response:  # noqa: B008
    all_ = all_matching == "1"
    if action == "none":  # Enter in a field (the form's default button): nothing to do
        return RedirectResponse(safe_back(back), status_code=303)
    if action == "exception":
        target = urlencode([("q", q), ("back", safe_back(back))] if all_ else
                           [("id", i) for i in id[:200]] + [("back", safe_back(back))])
        return RedirectResponse(f"/alerts-queue/exception?{target}", status_code=303)
    query = selection(request, who, q, id, all_)
    if action in ("incident_open", "incident_attach"):
        return _incident(request, who, query, action.removeprefix("incident_"), incident_id, title, back,
                         "all" if all_ else "")
    if action not in CHANGES:
        raise refuse(request, "Unknown action.")
    who.principal.require("alerts:write")
    if action == "close" and not reason:
        raise refuse(request, "Closing needs a reason: choose one.")
    if action == "close" and reason == "other" and not note.strip():
        raise refuse(request, "Closing with the reason “other” needs a note saying why.")
    if action in ("assign", "assign_me"):
        name = who.principal.name if action == "assign_me" else assignee.strip()[:200]
        change = AlertChange("assign", assignee=name or None, note=note[:4000])
    elif action == "close":
        change = AlertChange("close", reason=reason[:40], note=note[:4000])
    else:
        change = AlertChange(CHANGES[action], note=note[:4000])  # type: ignore[arg-type]
    job = who.services.bulk_alerts().apply(who.principal, query, change.check())
    # the same alerts stay selected for the next step (assign, then acknowledge, then attach)
    return RedirectResponse(with_notice(back, job=job["id"], select="all" if all_ else ""), status_code=303)
