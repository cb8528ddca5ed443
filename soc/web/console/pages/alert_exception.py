"""A false positive becomes a detection exception (``/alerts-queue/exception``), from the alerts
selected in the queue (or every alert its filters match).

The page proposes the exception: one rule (the selection's most frequent; the analyst may pick
another of the selection's rules), conditions from the values the selected alerts recorded --
agency, host, user, addresses, process, domain (ticked when the selection shares one value) --
and one free condition (field, operator, value); an expiry, an owner and a reason. Before
anything is saved it **previews** how many past alerts of that rule the exception matches (and
how many of them are not closed), and offers to close those as false positives when it is added.

The preview is computed on what the alerts recorded (their entities and correlation group; an
episode's value holds only when all its values do, as the detection engine judges an episode),
while the exception itself is checked against each event when the rules run
(:mod:`soc.detect.suppressions`): a condition on a field the alerts do not record is not counted,
and the page says so. Adding needs ``exceptions:write`` and a principal that sees every agency
(exceptions belong to no agency); closing goes through the bulk alert change, audited.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from soc.alerts import AlertChange, AlertQuery, status_of
from soc.alerts.query import lookup, scan
from soc.detect.engine import ENTITY_FIELDS
from soc.detect.suppressions import Condition, parse_expiry
from soc.web.console.pages.alert_actions import refuse, safe_back, selection, with_notice
from soc.web.console.render import render
from soc.web.console.security import console_caller
from soc.web.deps import Caller

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

#: alerts of the selection read to propose rules and values
SAMPLE = 500
#: past alerts of the rule read at most for the preview
PREVIEW_LIMIT = 100_000
#: not-closed alerts closed at most with the exception (beyond: close them from the queue)
MAX_CLOSE = 10_000
#: fields proposed as conditions, in this order; the first four are ticked when shared
PROPOSED = ("agency", *ENTITY_FIELDS)
TICKED = ("agency", "host.name", "user.name", "source.ip")
EXPIRIES = ("7d", "30d", "90d", "365d", "never")
OPS = ("equals", "cidr", "wildcard")


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def countable(field: str) -> bool:
    return field == "agency" or field.startswith("rule.") or field in ENTITY_FIELDS


def _matches(condition: Condition, value: Any) -> bool:
    text = str(value).strip()
    if not text:
        return False
    if condition.op in ("equals", "in"):
        return text.casefold() in {v.casefold() for v in condition.values}
    if condition.op == "wildcard":
        return any(fnmatchcase(text.casefold(), v.casefold()) for v in condition.values)
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(v, strict=False) for v in condition.values)


def holds(condition: Condition, alert: dict[str, Any]) -> bool:
    """Whether an alert's recorded values satisfy a condition (see the module docstring)."""
    field = condition.field
    if field == "agency" or field.startswith("rule."):
        return _matches(condition, alert.get("agency") if field == "agency" else lookup(alert, field))
    group = alert.get("group") or {}
    if field in group:
        return any(_matches(condition, v) for v in _as_list(group[field]))
    values = _as_list((alert.get("entities") or {}).get(field))
    return bool(values) and all(_matches(condition, v) for v in values)


@dataclass
class Preview:
    matched: int
    open: int
    rule_total: int
    exact: bool
    uncounted: list[str]


def preview(who: Caller, rule_id: str, conditions: list[Condition], *, collect: bool = False
            ) -> tuple[Preview, list[str]]:
    """How many past alerts of ``rule_id`` the conditions match (and the ids of those not
    closed, when ``collect``)."""
    counted = [c for c in conditions if countable(c.field)]
    uncounted = [c.field for c in conditions if not countable(c.field)]
    query = AlertQuery(rule=rule_id)
    matched = still_open = read = 0
    ids: list[str] = []
    exact = True
    for docs, _ in scan(who.services.store, query):
        for doc in docs:
            read += 1
            if counted and all(holds(c, doc.body) for c in counted):
                matched += 1
                if status_of(doc.body) != "closed":
                    still_open += 1
                    if collect:
                        ids.append(doc.id)
        if read >= PREVIEW_LIMIT:
            exact = False
            break
    return Preview(matched, still_open, read, exact, uncounted), ids


def _form_conditions(cond: list[str], custom_field: str, custom_op: str, custom_value: str) -> list[Condition]:
    by_field: dict[str, list[str]] = {}
    for item in cond:
        field, sep, value = item.partition("=")
        if sep and field.strip() and value.strip():
            by_field.setdefault(field.strip(), [])
            if value not in by_field[field.strip()]:
                by_field[field.strip()].append(value)
    conditions = [Condition(field=f, op="equals" if len(v) == 1 else "in", value=v[0] if len(v) == 1 else v)
                  for f, v in by_field.items()]
    if custom_field.strip() and custom_value.strip():
        values = [v.strip() for v in custom_value.split(",") if v.strip()]
        conditions.append(Condition(field=custom_field.strip()[:200], op=custom_op if custom_op in OPS else "equals",
                                    value=values[0] if len(values) == 1 else values))
    return conditions


def _sample(who: Caller, query: AlertQuery) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for docs, _ in scan(who.services.store, query, page=SAMPLE):
        found += [d.body for d in docs if query.matches(d.body)]
        if len(found) >= SAMPLE:
            break
    return found[:SAMPLE]


def _proposals(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per proposed field, the distinct values the alerts recorded (at most 10)."""
    out = []
    for field in PROPOSED:
        values: list[str] = []
        for alert in alerts:
            found = [alert.get("agency")] if field == "agency" else \
                _as_list((alert.get("group") or {}).get(field)) + _as_list((alert.get("entities") or {}).get(field))
            for value in found:
                if value not in (None, "") and str(value) not in values and len(values) < 10:
                    values.append(str(value))
        if values:
            out.append({"field": field, "values": values, "shared": len(values) == 1 and field in TICKED})
    return out


def _check(request: Request, who: Caller) -> None:
    who.principal.require("exceptions:write")
    if who.principal.agency is not None:
        raise refuse(request, "Detection exceptions apply to every agency: only the province's SOC may add them.")


async def form_data(request: Request) -> Any:
    """The posted form (read once; a sync route then uses it)."""
    return await request.form()


def _page(request: Request, who: Caller, form: Any, *, submitted: bool) -> Response:
    """The proposal and its preview; ``form`` is the query (first visit) or the posted form."""
    _check(request, who)
    back = safe_back(form.get("back"))
    q = str(form.get("q") or "")
    ids = [str(i) for i in form.getlist("id")]
    alerts = _sample(who, selection(request, who, q, ids, all_matching=bool(q) and not ids))
    if not alerts:
        raise refuse(request, "No alert matches the selection any more.")
    rules = Counter(str((a.get("rule") or {}).get("id") or "") for a in alerts)
    titles = {str((a.get("rule") or {}).get("id")): (a.get("rule") or {}).get("title") or "" for a in alerts}
    rule_id = form.get("rule") if form.get("rule") in rules else rules.most_common(1)[0][0]
    of_rule = [a for a in alerts if str((a.get("rule") or {}).get("id")) == rule_id]
    proposals = _proposals(of_rule)
    chosen = [str(c) for c in form.getlist("cond")] if submitted else \
        [f"{p['field']}={p['values'][0]}" for p in proposals if p["shared"]]
    custom = (str(form.get("custom_field") or ""), str(form.get("custom_op") or "equals"),
              str(form.get("custom_value") or ""))
    try:
        conditions = _form_conditions(chosen, *custom)
    except ValueError as error:
        raise refuse(request, "A condition is not valid: {detail}", detail=str(error)[:300]) from None
    result, _ = preview(who, rule_id, conditions)
    return render(request, "alerts/exception.html", back=back, q=q, ids=ids, rules=rules.most_common(20),
                  titles=titles, rule_id=rule_id, proposals=proposals, chosen=set(chosen), conditions=conditions,
                  preview=result, selected=len(alerts), sample_limit=SAMPLE, expiries=EXPIRIES, ops=OPS,
                  custom=custom, expires=str(form.get("expires") or "30d"),
                  owner=str(form.get("owner") or who.principal.name), reason=str(form.get("reason") or ""),
                  close=str(form.get("close") or "") if submitted else "1")


@router.get("/alerts-queue/exception")
def exception_page(request: Request, who: Caller = Depends(console_caller)) -> Response:  # noqa: B008
    return _page(request, who, request.query_params, submitted=False)


@router.post("/alerts-queue/exception/preview")
def exception_preview(request: Request, who: Caller = Depends(console_caller),  # noqa: B008
                      form: Any = Depends(form_data)) -> Response:  # noqa: B008
    return _page(request, who, form, submitted=True)


@router.post("/alerts-queue/exception")
def add_exception(request: Request, rule: str = Form(...), reason: str = Form(""), owner: str = Form(""),  # noqa: B008
                  expires: str = Form("30d"), cond: list[str] = Form([]), custom_field: str = Form(""),  # noqa: B008
                  custom_op: str = Form("equals"), custom_value: str = Form(""), close: str = Form(""),  # noqa: B008
                  back: str = Form("/alerts"), who: Caller = Depends(console_caller)) -> Response:  # noqa: B008
    _check(request, who)
    if not reason.strip() or not owner.strip():
        raise refuse(request, "An exception needs an owner and a reason.")
    try:
        conditions = _form_conditions(cond, custom_field, custom_op, custom_value)
    except ValueError as error:
        raise refuse(request, "A condition is not valid: {detail}", detail=str(error)[:300]) from None
    if not conditions:
        raise refuse(request, "Choose at least one condition: an exception without one would silence the whole rule.")
    book = who.services.exceptions
    expires_at = parse_expiry(expires[:64], book.clock(), who.services.settings.zone)
    added = book.add(scope={"kind": "rule", "value": rule[:200]}, conditions=conditions, owner=owner.strip()[:200],
                     reason=reason.strip()[:2000], actor=who.principal.label, expires_at=expires_at)
    notice: dict[str, Any] = {"exception": added.id}
    if close == "1":
        result, ids = preview(who, rule[:200], conditions, collect=True)
        if len(ids) > MAX_CLOSE:
            raise refuse(request, "The exception {id} was added, but more than {n} alerts are to be closed: close them "
                        "from the queue (select all matching).", id=added.id, n=MAX_CLOSE)
        if ids:
            change = AlertChange("close", reason="false_positive", note=f"exception {added.id}: {reason.strip()[:300]}")
            job = who.services.bulk_alerts().apply(who.principal, AlertQuery(ids=ids), change)
            notice["closed_job"] = job["id"]
    return RedirectResponse(with_notice(back, **notice), status_code=303)
