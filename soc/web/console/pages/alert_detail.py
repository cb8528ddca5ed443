"""One alert: its rule (credited to its author as the Detection Rule License asks), its state and
history with the triage forms, the events it points at with the fields the rule matched
highlighted, and pivots to the same host, user or address around it.

Everything goes through the caller's service layer: the alert, its history and its events are
read through the scoped store (another agency's alert is a 404 page, like an unknown one), and
the triage forms post to :class:`~soc.alerts.AlertWorkflow` acting as the user, which records
the change in the alert's history and the audit trail under the user's name.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from soc.alerts import CLOSE_REASONS, AlertChange, AlertNotFound, AlertWorkflowError, status_of
from soc.alerts.model import MAX_NOTE
from soc.config import content_dir
from soc.model import parse_iso
from soc.web.console.highlight import highlight_event, rule_tests
from soc.web.console.render import render
from soc.web.console.security import console_caller
from soc.web.deps import Caller
from soc.web.problems import NotFound

__all__ = ["ENTITY_KINDS", "PIVOT_MINUTES", "attack_links", "entity_pivots", "router"]

router = APIRouter(include_in_schema=False)

#: minutes around an alert its pivots to events cover (the first is the default)
PIVOT_MINUTES = (15, 5, 60, 240, 1440)
#: events of an alert shown (an alert of a correlation may point at up to 1,000)
EVENTS_SHOWN = 50
#: entity kind of the entity page -> (alert entity fields, event field, alert queue filter)
ENTITY_KINDS: dict[str, tuple[tuple[str, ...], str, str]] = {
    "host": (("host.name",), "host.name", "host"),
    "user": (("user.name", "user.target.name"), "user.name", "user"),
    "ip": (("source.ip", "destination.ip"), "source.ip", "source_ip"),
}
#: alert entity field -> entity kind
_KIND_OF = {"host.name": "host", "user.name": "user", "user.target.name": "user", "source.ip": "ip",
            "destination.ip": "ip"}
#: close reasons as the page names them (message ids of the catalogue)
REASON_LABELS = {"true_positive": "True positive", "benign": "Benign", "false_positive": "False positive",
                 "duplicate": "Duplicate", "other": "Other"}
DRL_URL = "https://github.com/SigmaHQ/Detection-Rule-License/blob/main/LICENSE.Detection.Rules.md"
#: ATT&CK tactic short names (Sigma tags) -> tactic ids of the Enterprise matrix
TACTICS = {"reconnaissance": "TA0043", "resource-development": "TA0042", "initial-access": "TA0001",
           "execution": "TA0002", "persistence": "TA0003", "privilege-escalation": "TA0004",
           "defense-evasion": "TA0005", "credential-access": "TA0006", "discovery": "TA0007",
           "lateral-movement": "TA0008", "collection": "TA0009", "command-and-control": "TA0011",
           "exfiltration": "TA0010", "impact": "TA0040"}
_TECHNIQUE = re.compile(r"^t(\d{4})(?:\.(\d{3}))?$")
_OTHER = {"g": "groups", "s": "software", "m": "mitigations", "ds": "datasources"}


def attack_links(tags: list[str]) -> tuple[list[dict[str, str]], list[str]]:
    """Sigma tags as ATT&CK links (``attack.t1110.001`` -> the technique's page on
    attack.mitre.org) and the other tags as they are."""
    links: list[dict[str, str]] = []
    other: list[str] = []
    for tag in tags:
        namespace, _, name = str(tag).lower().partition(".")
        if namespace != "attack" or not name:
            other.append(str(tag))
            continue
        technique = _TECHNIQUE.match(name)
        if technique:
            main, sub = technique.groups()
            path = f"techniques/T{main}/" + (f"{sub}/" if sub else "")
            links.append({"label": f"T{main}" + (f".{sub}" if sub else ""), "url": f"https://attack.mitre.org/{path}"})
        elif name.replace("_", "-") in TACTICS:
            tactic = TACTICS[name.replace("_", "-")]
            links.append({"label": name.replace("_", "-"), "url": f"https://attack.mitre.org/tactics/{tactic}/"})
        elif (m := re.match(r"^(g|s|m|ds)(\d{4})$", name)):
            links.append({"label": name.upper(), "url": f"https://attack.mitre.org/{_OTHER[m.group(1)]}/{name.upper()}/"})
        else:
            other.append(str(tag))
    return links, other


def _local(moment: Any, zone: Any) -> str:
    """A time as the events page's ``since``/``until`` take it: the analyst's wall clock."""
    return moment.astimezone(zone).strftime("%Y-%m-%dT%H:%M:%S")


def events_url(filters: list[str], since: str | None = None, until: str | None = None) -> str:
    """A link to the event search with these ``FIELD:OP:VALUE`` filters and time range."""
    params = [("filter", f) for f in filters]
    params += [(k, v) for k, v in (("since", since), ("until", until)) if v is not None]
    return "/events?" + urlencode(params)


def entity_url(kind: str, value: str) -> str:
    return f"/entities/{kind}/{quote(value, safe='')}"


def entity_pivots(alert: dict[str, Any], zone: Any, minutes: int) -> list[dict[str, Any]]:
    """For each host, user and address the alert is about: its events ``minutes`` around the
    alert, every alert about it, and its page."""
    first = parse_iso(alert.get("first_seen") or alert.get("@timestamp") or alert["detected_at"])
    last = parse_iso(alert.get("last_seen") or alert.get("first_seen") or alert["detected_at"])
    since, until = _local(first - timedelta(minutes=minutes), zone), _local(last + timedelta(minutes=minutes), zone)
    pivots: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for bag in (alert.get("group") or {}, alert.get("entities") or {}):
        for field, kind in _KIND_OF.items():
            found = bag.get(field)
            for value in found if isinstance(found, list) else [] if found in (None, "") else [found]:
                text = str(value)
                if (field, text.casefold()) in seen or not text:
                    continue
                seen.add((field, text.casefold()))
                queue_filter = ENTITY_KINDS[kind][2]
                pivots.append({"field": field, "value": text, "kind": kind,
                               "events": events_url([f"{field}:eq:{text}"], since, until),
                               "alerts": "/alerts?" + urlencode({queue_filter: text}),
                               "page": entity_url(kind, text)})
    return pivots


def _rule_source(who: Caller, rule_id: str) -> tuple[str | None, Any]:
    """The rule file (relative to the project's content when it is there) and its compiled
    detection, when the rule is loaded."""
    try:
        detections = who.services.rules.detections
    except (OSError, ValueError):
        return None, {}
    detection = detections.get(rule_id)
    if detection is None or not detection.info.path:
        return None, detections
    path = Path(detection.info.path)
    for base in (content_dir("detections").parent, *[d.parent for d in who.services.rule_dirs]):
        try:
            return str(path.resolve().relative_to(base.resolve())), detections
        except ValueError:
            continue
    return str(path), detections


def _alert(who: Caller, alert_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    flow = who.services.alerts
    try:
        return flow.get(who.principal, alert_id), flow.history(who.principal, alert_id)
    except AlertNotFound:
        raise NotFound(f"no alert {alert_id!r}") from None


def _events(who: Caller, alert: dict[str, Any]) -> list[dict[str, Any]]:
    if not who.principal.can("events:read"):
        return []
    ids = [str(i) for i in (alert.get("event_ids") or [])[:EVENTS_SHOWN]]
    found = who.services.store.get_events(ids) if ids else []
    return sorted(found, key=lambda e: (str(e.get("@timestamp") or ""), str(e.get("_id"))))


def _page(request: Request, who: Caller, alert_id: str, selected: str | None, minutes: int,
          error: str | None = None, status: int = 200) -> Response:
    who.principal.require("alerts:read")
    alert, history = _alert(who, alert_id)
    rule = dict(alert.get("rule") or {})
    source, detections = _rule_source(who, str(rule.get("id") or ""))
    events = _events(who, alert)
    event = next((e for e in events if e.get("_id") == selected), events[0] if events else None)
    tests = rule_tests(str(rule.get("id") or ""), detections) if event is not None else ()
    links, other_tags = attack_links(list(rule.get("tags") or []))
    zone = who.services.settings.zone
    return render(request, "alert_detail/alert.html", status=status, alert=alert, status_name=status_of(alert),
                  rule=rule, rule_source=source, drl_url=DRL_URL, attack=links, other_tags=other_tags,
                  history=list(reversed(history)), events=events, event=event,
                  highlighted=highlight_event(event, tests) if event is not None else None,
                  more_events=max(0, int(alert.get("event_count") or len(alert.get("event_ids") or [])) - len(events)),
                  pivots=entity_pivots(alert, zone, minutes), minutes=minutes, pivot_minutes=PIVOT_MINUTES,
                  close_reasons=CLOSE_REASONS, reason_labels=REASON_LABELS, can_write=who.principal.can("alerts:write"),
                  error=error, max_note=MAX_NOTE, agency_name=who.services.agencies.name_of)


@router.get("/alerts/{alert_id}")
def alert_page(request: Request, alert_id: str, event: str | None = Query(None, max_length=128),
               minutes: int = Query(PIVOT_MINUTES[0], ge=1, le=10_080),
               who: Caller = Depends(console_caller)) -> Response:  # noqa: B008
    return _page(request, who, alert_id, event, minutes)


def _change(request: Request, who: Caller, alert_id: str, change: AlertChange) -> Response:
    who.principal.require("alerts:write")
    try:
        who.services.alerts.change(who.principal, alert_id, change)
    except AlertNotFound:
        raise NotFound(f"no alert {alert_id!r}") from None
    except AlertWorkflowError as refused:
        return _page(request, who, alert_id, None, PIVOT_MINUTES[0], error=str(refused), status=400)
    return RedirectResponse(f"/alerts/{quote(alert_id, safe='')}", status_code=303)


Note = Annotated[str, Form(max_length=MAX_NOTE)]


@router.post("/alerts/{alert_id}/acknowledge")
def acknowledge(request: Request, alert_id: str, note: Note = "",
                who: Caller = Depends(console_caller)) -> Response:  # noqa: B008
    return _change(request, who, alert_id, AlertChange("ack", note=note))


@router.post("/alerts/{alert_id}/assign")
def assign(request: Request, alert_id: str, assignee: Annotated[str, Form(max_length=200)] = "", note: Note = "",
           who: Caller = Depends(console_caller)) -> Response:  # noqa: B008
    return _change(request, who, alert_id, AlertChange("assign", assignee=assignee.strip() or None, note=note))


@router.post("/alerts/{alert_id}/close")
def close(request: Request, alert_id: str, reason: Annotated[str, Form(max_length=40)] = "", note: Note = "",
          who: Caller = Depends(console_caller)) -> Response:  # noqa: B008
    return _change(request, who, alert_id, AlertChange("close", reason=reason or None, note=note))


@router.post("/alerts/{alert_id}/reopen")
def reopen(request: Request, alert_id: str, note: Note = "",
           who: Caller = Depends(console_caller)) -> Response:  # noqa: B008
    return _change(request, who, alert_id, AlertChange("reopen", note=note))
