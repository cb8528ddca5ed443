"""Event search: field filters and free text, a time range, a histogram, the top values of a
field, keyset pages of events, one event with its raw text and its neighbours, and exports.

Every filter lives in the URL, in the API's own form (``filter=FIELD:OP:VALUE``, repeatable;
``text``, ``since``, ``until``, ``agency``, ``time_field``), so a search can be bookmarked,
shared and linked to (the alert page's pivots do). The search form posts its rows as
``ff``/``fo``/``fv`` (field, operator, value) and is answered with a redirect to that form.
Without ``since`` the last :data:`DEFAULT_SINCE` is searched; an empty ``since=`` searches
all time. Free text is the store's: a substring of the message or the raw line, ignoring case
and diacritics (``dang nhap`` finds ``Đăng nhập``).

All of it goes through the caller's scoped store (:class:`soc.web.api.events.EventFilters`,
the API's own filters); an event of another agency is a 404 page. Exports are the API's
(:func:`soc.web.api.events.export_events`): streamed, at most :data:`EXPORT_ROWS` events, CSV
cells a spreadsheet would run as formulas neutralised, and recorded in the audit trail under
the user's name before the first byte is sent.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response

from soc.model import parse_iso
from soc.store.base import EventQuery
from soc.web.api.events import EventFilters, export_events, parse_filters
from soc.web.console.event_chart import histogram
from soc.web.console.highlight import highlight_event
from soc.web.console.render import render
from soc.web.console.security import console_caller
from soc.web.deps import Caller
from soc.web.problems import NotFound

__all__ = ["DEFAULT_SINCE", "EXPORT_ROWS", "SearchForm", "router"]

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
#: the time range searched when the URL names none
DEFAULT_SINCE = "24h"
#: most events one console export holds (the API allows more with ``max_rows``)
EXPORT_ROWS = 10_000
#: fields offered for the top values and the filter rows
COMMON_FIELDS = ("host.name", "user.name", "source.ip", "destination.ip", "event.dataset", "event.action",
                 "event.outcome", "organization.id", "process.name", "url.path", "http.response.status_code",
                 "user.target.name", "log.syslog.appname")
#: filter operators and how the form names them (message ids of the catalogue)
OPERATORS = {"eq": "equals", "ne": "is not", "prefix": "starts with", "in": "any of (JSON list)",
             "cidr": "in network", "gte": "at least", "lt": "less than", "exists": "exists (true/false)"}
#: neighbours shown on each side of an event, and how far they are looked for
NEIGHBOURS = 10
NEIGHBOUR_REACH = 86_400.0
#: matching events beyond which the histogram and top values wait until the user asks for them
#: (on the embedded store each reads every matching event: about 4 s for 400,000 events)
CHART_LIMIT = 200_000


@dataclass(frozen=True)
class SearchForm:
    """The search as the URL holds it (see the module docstring)."""

    filters: tuple[str, ...] = ()
    text: str = ""
    since: str | None = None
    until: str = ""
    agency: tuple[str, ...] = ()
    time_field: str = "@timestamp"
    order: str = "desc"
    top: str = COMMON_FIELDS[0]
    cursor: str = ""
    charts: bool = False

    @classmethod
    def of(cls, request: Request) -> SearchForm:
        q = request.query_params
        return cls(tuple(f for f in q.getlist("filter") if f.strip()), q.get("text", "").strip(),
                   q.get("since"), q.get("until", ""), tuple(a for a in q.getlist("agency") if a),
                   q.get("time_field", "@timestamp"), q.get("order", "desc"), q.get("top") or COMMON_FIELDS[0],
                   q.get("cursor", ""), q.get("charts") == "1")

    @property
    def since_value(self) -> str | None:
        return DEFAULT_SINCE if self.since is None else (self.since.strip() or None)

    def event_filters(self) -> EventFilters:
        if self.time_field not in ("@timestamp", "event.ingested"):
            raise ValueError(f"time_field {self.time_field[:40]!r}: use @timestamp or event.ingested")
        if self.order not in ("desc", "asc"):
            raise ValueError("order: use desc or asc")
        return EventFilters(list(self.filters), self.text or None, self.since_value, self.until.strip() or None,
                            list(self.agency), self.time_field)

    def pairs(self, *, paging: bool = False) -> list[tuple[str, str]]:
        pairs = [("filter", f) for f in self.filters]
        pairs += [(k, v) for k, v in (("text", self.text), ("until", self.until)) if v]
        if self.since is not None:
            pairs.append(("since", self.since))
        pairs += [("agency", a) for a in self.agency]
        if self.time_field != "@timestamp":
            pairs.append(("time_field", self.time_field))
        if self.order != "desc":
            pairs.append(("order", self.order))
        if paging:
            pairs += [(k, v) for k, v in (("top", self.top if self.top != COMMON_FIELDS[0] else ""),
                                          ("charts", "1" if self.charts else ""), ("cursor", self.cursor)) if v]
        return pairs

    def url(self, path: str = "/events", *, paging: bool = True, **changes: Any) -> str:
        form = replace(self, **changes) if changes else self
        query = urlencode(form.pairs(paging=paging))
        return f"{path}?{query}" if query else path

    def export_url(self, format: str) -> str:  # noqa: A002
        """The export of this search as a file (``csv`` or ``json``)."""
        return "/events/export?" + urlencode([*self.pairs(), ("format", format)])

    def rows(self) -> list[tuple[str, str, str]]:
        """The filters as (field, operator, value) rows of the form."""
        out = []
        for spec in self.filters:
            name, _, rest = spec.partition(":")
            op, _, value = rest.partition(":")
            out.append((name, op, value))
        return out


def _local(moment: datetime, zone: Any) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%dT%H:%M:%S")


def _from_rows(request: Request, form: SearchForm) -> str:
    """The canonical URL of a submitted form (its ``ff``/``fo``/``fv`` rows as filters)."""
    q = request.query_params
    rows = zip(q.getlist("ff"), q.getlist("fo"), q.getlist("fv"), strict=False)
    filters = tuple(f"{f.strip()}:{o.strip() or 'eq'}:{v}" for f, o, v in rows if f.strip())
    return replace(form, filters=filters, cursor="").url()


@router.get("/events")
def search_page(request: Request, who: Caller = Depends(console_caller)) -> Response:  # noqa: B008
    who.principal.require("events:read")
    form = SearchForm.of(request)
    if "ff" in request.query_params:
        return RedirectResponse(_from_rows(request, form), status_code=303)
    error = None
    page = chart = None
    top: list[tuple[Any, int]] = []
    try:
        filters = form.event_filters()
        query = filters.query(who, order=form.order, size=PAGE_SIZE, cursor=form.cursor or None)
        page = who.services.store.search_events(query)
        if page.total and (page.total <= CHART_LIMIT or form.charts):
            chart = histogram(who, query, form)
            top = who.services.store.top_values(query, form.top, 10)
    except ValueError as invalid:
        error = str(invalid)
    return render(request, "events/search.html", status=400 if error else 200, form=form, error=error, page=page,
                  chart=chart, top=top, common_fields=COMMON_FIELDS, operators=list(OPERATORS),
                  operator_labels=OPERATORS,
                  default_since=DEFAULT_SINCE, export_rows=EXPORT_ROWS, page_size=PAGE_SIZE,
                  can_export=who.principal.can("events:export"), agencies=_agencies(who), chart_limit=CHART_LIMIT)


def _agencies(who: Caller) -> list[tuple[str, str]]:
    tree = who.services.agencies
    visible = who.principal.scope(tree).agencies
    return [(a.id, a.name) for a in tree if visible is None or a.id in visible]


@router.get("/events/export")
def export(request: Request, format: Literal["csv", "json"] = Query("csv"),  # noqa: A002
           who: Caller = Depends(console_caller)) -> Response:  # noqa: B008
    """The search's events as a file (the API's export: streamed, capped, audited)."""
    who.principal.require("events:export")
    form = SearchForm.of(request)
    return export_events(request, form.event_filters(), format=format, fields=None, order=form.order,
                         max_rows=EXPORT_ROWS, who=who)


def _around(who: Caller, event: dict[str, Any], count: int) -> tuple[list[str], dict[str, list[dict[str, Any]]]]:
    """The events just before and after ``event`` on its host (else of its agency and dataset),
    within :data:`NEIGHBOUR_REACH` seconds, and those stored at the very same time."""
    if event.get("host.name") not in (None, ""):
        specs = [f"host.name:eq:{event['host.name']}"]
    else:
        specs = [f"{name}:eq:{event[name]}" for name in ("organization.id", "event.dataset") if event.get(name)]
    filters = tuple(parse_filters(specs))
    at = parse_iso(str(event["@timestamp"])).timestamp()
    step = 0.001  # stored times have milliseconds
    search = who.services.store.search_events
    before = search(EventQuery(filters=filters, start=at - NEIGHBOUR_REACH, end=at, order="desc", size=count)).events
    same = search(EventQuery(filters=filters, start=at, end=at + step, order="asc", size=100)).events
    after = search(EventQuery(filters=filters, start=at + step, end=at + NEIGHBOUR_REACH, size=count,
                              order="asc")).events
    return specs, {"before": list(reversed(before)), "same": [e for e in same if e.get("_id") != event.get("_id")],
                   "after": list(after)}


@router.get("/events/{event_id}")
def event_page(request: Request, event_id: str, n: int = Query(NEIGHBOURS, ge=1, le=100),
               who: Caller = Depends(console_caller)) -> Response:  # noqa: B008
    who.principal.require("events:read")
    found = who.services.store.get_events([event_id])
    if not found:
        raise NotFound(f"no event {event_id!r}")
    event = dict(found[0])
    zone = who.services.settings.zone
    moment = parse_iso(str(event["@timestamp"]))
    hour = {"since": _local(moment - timedelta(hours=1), zone), "until": _local(moment + timedelta(hours=1), zone)}
    specs, neighbours = _around(who, event, n)
    around = SearchForm(filters=tuple(specs), since=hour["since"], until=hour["until"])
    return render(request, "events/event.html", event=event, highlighted=highlight_event(event, ()),
                  neighbours=neighbours, neighbour_filters=specs, n=n, around_url=around.url(),
                  filter_url=lambda name, value: SearchForm(filters=(f"{name}:eq:{value}",), **hour).url())
