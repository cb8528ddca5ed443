"""The page of one host, user or address: its latest alerts and how many there are by status, how
many events name it lately, and the values most often seen with it -- each a link to the alert
queue or the event search with the matching filter. Read through the caller's scoped store:
another agency's alerts and events are not counted.
"""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from soc.alerts import status_of
from soc.store.base import DocQuery, EventQuery, FieldFilter
from soc.web.console.pages.alert_detail import ENTITY_KINDS, events_url
from soc.web.console.render import render
from soc.web.console.security import console_caller
from soc.web.deps import Caller
from soc.web.problems import NotFound

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

#: alerts listed on an entity's page
ALERTS_SHOWN = 20
#: the periods events are counted over, (label, days): each count reads the matching events
PERIODS = (("24 hours", 1), ("7 days", 7))
#: fields whose top values are shown next to an entity, per kind
RELATED = {"host": ("user.name", "source.ip"), "user": ("host.name", "source.ip"), "ip": ("user.name", "host.name")}


def _alert_rows(who: Caller, fields: tuple[str, ...], value: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The newest alerts naming the entity in any of ``fields``, and per field its counts by status."""
    store = who.services.store
    found: dict[str, dict[str, Any]] = {}
    counts: list[dict[str, Any]] = []
    for field in fields:
        query = DocQuery("alerts", filters=((f"entities.{field}", "equals", value),), sort=("first_seen",),
                         order="desc", size=ALERTS_SHOWN)
        for doc in store.query_documents(query).docs:
            found.setdefault(doc.id, doc.body)
        by_status: dict[str, int] = {}
        for (status,), n in store.count_documents(query, ["status"], size=10):
            key = status_of({"status": status})
            by_status[key] = by_status.get(key, 0) + n
        counts.append({"field": field, "total": sum(by_status.values()), "by_status": by_status})
    alerts = sorted(found.values(), key=lambda a: (str(a.get("first_seen") or ""), str(a.get("id"))), reverse=True)
    return alerts[:ALERTS_SHOWN], counts


def _event_counts(who: Caller, field: str, value: str) -> list[dict[str, Any]]:
    now = who.services.clock()
    zone = who.services.settings.zone
    rows = []
    for label, days in PERIODS:
        start = now - timedelta(days=days)
        page = who.services.store.search_events(EventQuery(filters=(FieldFilter(field, "equals", value),),
                                                           start=start, size=1))
        rows.append({"label": label, "count": page.total, "exact": page.total_exact,
                     "url": events_url([f"{field}:eq:{value}"], start.astimezone(zone).strftime("%Y-%m-%dT%H:%M:%S"))})
    return rows


@router.get("/entities/{kind}/{value:path}")
def entity_page(request: Request, kind: str, value: str, who: Caller = Depends(console_caller)) -> Response:  # noqa: B008
    who.principal.require("alerts:read")
    if kind not in ENTITY_KINDS or not value.strip():
        raise NotFound(f"no entity kind {kind[:40]!r}: use host, user or ip")
    if kind == "ip":
        try:
            value = str(ipaddress.ip_address(value.strip()))
        except ValueError:
            raise ValueError(f"{value[:60]!r} is not an IP address") from None
    alert_fields, event_field, queue_filter = ENTITY_KINDS[kind]
    alerts, counts = _alert_rows(who, alert_fields, value)
    events: list[dict[str, Any]] = []
    related: list[dict[str, Any]] = []
    if who.principal.can("events:read"):
        for field in (alert_fields if kind == "ip" else (event_field,)):
            events.append({"field": field, "periods": _event_counts(who, field, value)})
        day = who.services.clock() - timedelta(days=1)
        for field in RELATED[kind]:
            query = EventQuery(filters=(FieldFilter(event_field, "equals", value),), start=day, size=1)
            top = who.services.store.top_values(query, field, 5)
            related.append({"field": field, "values": [
                {"value": v, "count": n, "url": events_url([f"{event_field}:eq:{value}", f"{field}:eq:{v}"],
                                                           day.astimezone(who.services.settings.zone)
                                                           .strftime("%Y-%m-%dT%H:%M:%S"))} for v, n in top]})
    return render(request, "events/entity.html", kind=kind, value=value, alerts=alerts, counts=counts, events=events,
                  related=related, queue_url="/alerts?" + urlencode({queue_filter: value}),
                  status_of=status_of, agency_name=who.services.agencies.name_of)
