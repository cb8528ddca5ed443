"""``soc events search``: search stored events (``Store.search_events``, ``event_histogram``,
``top_values``), page by page with the cursor the previous page printed."""

from __future__ import annotations

import re
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.table import Table
from rich.text import Text

from soc.cli.common import fail, service_layer
from soc.cli.listing import Page
from soc.cli.timeargs import SinceOption, UntilOption, time_range
from soc.model import iso
from soc.store.base import EventPage, EventQuery, FieldFilter, Store, StoreError
from soc.store.event_query import INTERVALS, MAX_PAGE_SIZE, MAX_TOP_SIZE, field_kind
from soc.ui import cell, console, json_text, literal, show_time, zone_note

app = typer.Typer(help="Search stored events.", no_args_is_help=True)

#: FIELD, operator, VALUE of one filter argument (a field name never holds ! ^ < > =)
_FILTER = re.compile(r"(?P<field>[^!^<>=]+)(?P<op>!=|\^=|>=|<|=)(?P<value>.*)", re.DOTALL)
_OPS = {"=": "equals", "!=": "not_equals", "^=": "prefix"}
FILTER_HELP = ("FIELD=VALUE (equal, ignoring case; the same field twice: any of the values; an IP field "
               "and a network such as 10.0.0.0/8: in it), FIELD!=VALUE (not equal), FIELD^=VALUE (starts "
               "with), FIELD>=N and FIELD<N (numbers or times).")


def parse_filters(args: list[str], has: list[str], missing: list[str]) -> list[FieldFilter]:
    """The filter arguments as checked filters (raises ValueError naming a bad one)."""
    equal: dict[str, list[str]] = {}
    bounds: dict[str, dict[str, str]] = {}
    out: list[FieldFilter] = []
    for arg in args:
        m = _FILTER.fullmatch(arg)
        if not m:
            raise ValueError(f"filter {arg!r}: use {FILTER_HELP}")
        name, op, value = m["field"].strip(), m["op"], m["value"]
        if op == "=" and field_kind(name) == "ip" and "/" in value:
            out.append(FieldFilter(name, "cidr", value))
        elif op == "=":
            equal.setdefault(name, []).append(value)
        elif op in (">=", "<"):
            bounds.setdefault(name, {})["gte" if op == ">=" else "lt"] = value
        else:
            out.append(FieldFilter(name, _OPS[op], value))
    for name, values in equal.items():
        out.append(FieldFilter(name, "equals", values[0]) if len(values) == 1 else FieldFilter(name, "in", values))
    out.extend(FieldFilter(name, "range", spec) for name, spec in bounds.items())
    out.extend(FieldFilter(name, "exists", True) for name in has)
    out.extend(FieldFilter(name, "exists", False) for name in missing)
    return out


def _text(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return "" if value is None else str(value)


def events_table(page: EventPage, zone: ZoneInfo, *, ascending: bool) -> Table:
    """One row per event with its id; every value from the event shown literally."""
    title = Page(page.events, page.total, capped=not page.total_exact).title(
        "events", "oldest first" if ascending else "newest first")
    table = Table(title=title, caption=zone_note(zone), expand=False, min_width=len(title))
    for name in ("time", "agency", "dataset", "host", "user"):
        table.add_column(name, no_wrap=name == "time")
    table.add_column("message", overflow="fold")
    table.add_column("id", no_wrap=True)
    for event in page.events:
        table.add_row(show_time(event.get("@timestamp"), zone, with_zone=False), cell(event.get("organization.id")),
                      cell(event.get("event.dataset")), cell(_text(event.get("host.name"))),
                      cell(_text(event.get("user.name"))), cell(event.get("message") or event.get("event.original")),
                      cell(event.get("_id")))
    return table


def _histogram(store: Store, query: EventQuery, interval: str, zone: ZoneInfo, jsonl: bool) -> None:
    buckets = store.event_histogram(query, interval, zone=zone.key)
    if jsonl:
        for start, count in buckets:
            print(json_text({"start": iso(start), "count": count}))
        return
    title = f"{sum(n for _, n in buckets):,} events per {interval} ({len(buckets):,} non-empty bucket{'' if len(buckets) == 1 else 's'})"
    table = Table(title=title, caption=zone_note(zone), expand=False, min_width=len(title))
    table.add_column("from", no_wrap=True)
    table.add_column("events", justify="right")
    table.add_column("")
    most = max((n for _, n in buckets), default=1)
    for start, count in buckets:
        table.add_row(show_time(start, zone, with_zone=False), f"{count:,}", "#" * max(1, round(40 * count / most)))
    console().print(table)


def _top(store: Store, query: EventQuery, field: str, size: int, jsonl: bool) -> None:
    values = store.top_values(query, field, size)
    if jsonl:
        for value, count in values:
            print(json_text({"field": field, "value": value, "count": count}))
        return
    title = literal(f"top {len(values)} values of {field}")
    table = Table(title=Text(title), expand=False, min_width=len(title))
    table.add_column("value", overflow="fold")
    table.add_column("events", justify="right")
    for value, count in values:
        table.add_row(cell(value), f"{count:,}")
    console().print(table)


@app.command("search")
def events_search(
    filters: Annotated[list[str] | None, typer.Argument(help=FILTER_HELP, show_default=False)] = None,
    text: Annotated[str | None, typer.Option("--text", help="Free text in the message or the original line "
                                             "(ignoring case; taken literally: * ? : ( are just characters).")] = None,
    since: SinceOption = None,
    until: UntilOption = None,
    agency: Annotated[list[str] | None, typer.Option("--agency", help="Only this agency id (repeat for several).",
                                                     show_default=False)] = None,
    has: Annotated[list[str] | None, typer.Option("--has", metavar="FIELD", help="Only events with this field.",
                                                  show_default=False)] = None,
    missing: Annotated[list[str] | None, typer.Option("--missing", metavar="FIELD",
                                                      help="Only events without this field.", show_default=False)] = None,
    limit: Annotated[int, typer.Option(min=1, max=MAX_PAGE_SIZE, help="Events per page.")] = 50,
    cursor: Annotated[str | None, typer.Option(help="Continue after the page that printed this cursor.")] = None,
    ascending: Annotated[bool, typer.Option("--oldest-first", help="Oldest first (default: newest first).")] = False,
    format_: Annotated[str, typer.Option("--format", help="table or jsonl (one JSON object per line).")] = "table",
    histogram: Annotated[str | None, typer.Option(metavar="INTERVAL", help=f"Instead of events: how many per "
                                                  f"interval ({', '.join(INTERVALS)}), in the analyst's zone.")] = None,
    top: Annotated[str | None, typer.Option(metavar="FIELD", help="Instead of events: the most frequent values "
                                            "of this field.")] = None,
    top_size: Annotated[int, typer.Option(min=1, max=MAX_TOP_SIZE, help="How many values --top shows.")] = 10,
    source: Annotated[str | None, typer.Option("--source", metavar="NAME", help="Search the logs of this search "
                                               "source in place (setting search_sources: winlogbeat-*...), with "
                                               "the shipper's field names; values compare as stored.",
                                               show_default=False)] = None,
) -> None:
    """Search stored events, newest first, with their ids; --since/--until select on the event
    time. A page ends with the cursor of the next one (`--cursor`). Examples:

        soc events search user.name=root source.ip=10.0.0.0/8 --since 2h

        soc events search --text "failed password" --agency so-tttt --since today --histogram 1h

        soc events search event.dataset=linux.sshd --since 7d --top source.ip
    """
    if format_ not in ("table", "jsonl"):
        fail(f"--format {format_!r}: use table or jsonl")
    if source is not None and (histogram or top or cursor):
        fail("--source: only a page of events in place (no --histogram, --top or --cursor)")
    service = service_layer()
    zone = service.settings.zone
    window = time_range(since, until, zone)
    try:
        query = EventQuery(filters=parse_filters(filters or [], has or [], missing or []), text=text,
                           start=window.start, end=window.end, agencies=set(agency) if agency else None,
                           order="asc" if ascending else "desc", size=limit, cursor=cursor)
        if histogram or top:
            if histogram:
                _histogram(service.store, query, histogram, zone, format_ == "jsonl")
            if top:
                _top(service.store, query, top, top_size, format_ == "jsonl")
            return
        if source is not None:
            try:
                page = service.search_source(source).search_events(query)
            except KeyError as error:
                fail(str(error.args[0]))
        else:
            page = service.store.search_events(query)
    except ValueError as error:
        fail(str(error))
    except StoreError as error:
        fail(str(error), code=1)
    if format_ == "jsonl":
        for event in page.events:
            print(json_text(event))
    else:
        console().print(events_table(page, zone, ascending=ascending))
    if page.cursor:
        console(stderr=format_ == "jsonl").print(Text(f"more: --cursor {page.cursor}"), highlight=False)
