"""``soc intel ...``: threat-intel feeds and indicators, a thin shell over :mod:`soc.intel`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.table import Table

from soc.cli.common import JsonOption, fail, service_layer
from soc.ui import cell, console, json_text

app = typer.Typer(
    help="Threat intelligence: indicator feeds (TAXII 2.1, MISP, plain lists), the indicators in the "
         "store, matching and retro-hunt.\n\n"
         "Examples:\n\n"
         "  soc intel feeds\n\n"
         "  soc intel poll ncsc\n\n"
         "  soc intel add 198.51.100.7 --confidence 90 --tlp amber --note 'phishing C2'\n\n"
         "  soc intel indicators --type domain --live\n\n"
         "  soc intel revoke 198.51.100.7 --reason 'false positive: CDN address'\n\n"
         "  soc intel hunt --days 30",
    no_args_is_help=True, rich_markup_mode="rich")

T = TypeVar("T")
TLPS = ("clear", "green", "amber", "amber+strict", "red")


def _call(action: Callable[[], T]) -> T:
    from soc.intel import IndicatorError, IntelError

    try:
        return action()
    except (IntelError, IndicatorError) as error:
        fail(str(error))


@app.command("feeds")
def feeds(as_json: JsonOption = False) -> None:
    """The configured feeds (and hand-loaded ones) with their status: last poll, indicators
    taken, errors."""
    layer = service_layer()
    statuses = layer.intel_poller().statuses()
    if as_json:
        print(json_text(statuses))
        return
    table = Table(title="intel feeds")
    for name in ("feed", "kind", "polls", "last poll", "last ok", "taken (last / all)", "error"):
        table.add_column(name)
    for s in statuses:
        table.add_row(cell(s.get("name")), cell(s.get("kind") or ""), str(s.get("polls", 0)),
                      cell(s.get("last_poll") or "never"), cell(s.get("last_ok") or ""),
                      f"{s.get('last_taken', 0)} / {s.get('total_taken', 0)}", cell(s.get("last_error") or ""))
    console().print(table)


@app.command("poll")
def poll(name: Annotated[str | None, typer.Argument(help="The feed (default: every configured feed).")] = None,
         as_json: JsonOption = False) -> None:
    """Poll a feed now (or all of them) and take its indicators into the store."""
    poller = service_layer().intel_poller()
    results = _call(lambda: {name: poller.poll(name)} if name else poller.poll_all())
    if as_json:
        print(json_text(results))
    else:
        for feed, status in results.items():
            if status.get("last_error"):
                console().print(cell(f"{feed}: failed: {status['last_error']}", "red"))
            else:
                console().print(cell(f"{feed}: read {status.get('last_read', 0)}, counts {status.get('last_counts')}"))
    if any(s.get("last_error") for s in results.values()):
        raise typer.Exit(1)


@app.command("load")
def load(path: Annotated[Path, typer.Argument(help="A list, CSV, STIX bundle file or MISP feed folder.")],
         feed: Annotated[str, typer.Option(help="Record the indicators as coming from this feed.")],
         kind: Annotated[str, typer.Option(help="list | csv | stix | misp")] = "list",
         confidence: Annotated[int, typer.Option(min=0, max=100)] = 50,
         tlp: Annotated[str, typer.Option(help=f"one of {', '.join(TLPS)}")] = "amber",
         as_json: JsonOption = False) -> None:
    """Load a feed file received by e-mail or on a medium (the same formats as the feeds)."""
    from soc.config_intel import FeedSettings
    from soc.intel import FeedPoller

    layer = service_layer()
    try:
        settings = FeedSettings(name=feed, kind=kind, path=path, confidence=confidence, tlp=tlp)  # type: ignore[arg-type]
    except ValueError as error:
        fail(str(error))
    status = FeedPoller(layer.store, [settings], clock=layer.clock).poll(feed)
    if as_json:
        print(json_text(status))
    elif status.get("last_error"):
        fail(f"{feed}: {status['last_error']}")
    else:
        console().print(cell(f"{feed}: read {status.get('last_read', 0)}, counts {status.get('last_counts')}"))


def _row(body: dict[str, Any]) -> list[Any]:
    state = "revoked" if body.get("revoked") else "unmatchable" if not body.get("matchable") else "live"
    return [cell(body.get("type")), cell(body.get("value")), state, cell(", ".join(body.get("sources") or [])),
            str(body.get("confidence")), cell(body.get("tlp")), cell(body.get("valid_until") or ""),
            cell(body.get("last_seen") or "")]


@app.command("indicators")
def indicators(type_: Annotated[str | None, typer.Option("--type", help="ipv4, ipv6, domain, url, md5, sha1, "
                                                          "sha256, email or pattern")] = None,
               feed: Annotated[str | None, typer.Option(help="Only indicators from this feed.")] = None,
               live: Annotated[bool, typer.Option("--live", help="Only live ones (not revoked, valid now).")] = False,
               text: Annotated[str | None, typer.Option(help="Part of the value.")] = None,
               limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
               as_json: JsonOption = False) -> None:
    """List indicators, the most recently changed first."""
    from soc.intel import IndicatorBook

    layer = service_layer()
    docs, _, total = IndicatorBook(layer.store, clock=layer.clock).search(
        type_=type_, feed=feed, live=True if live else None, text=text, size=limit)
    if as_json:
        print(json_text({"total": total, "indicators": [dict(d.body, id=d.id) for d in docs]}))
        return
    table = Table(title=f"indicators ({len(docs)} of {total})")
    for name in ("type", "value", "state", "feeds", "confidence", "tlp", "valid until", "last seen"):
        table.add_column(name)
    for doc in docs:
        table.add_row(*_row(doc.body))
    console().print(table)


@app.command("add")
def add(value: Annotated[str, typer.Argument(help="An address or network, domain, URL, hash or e-mail.")],
        type_: Annotated[str | None, typer.Option("--type", help="Default: guessed from the value.")] = None,
        confidence: Annotated[int, typer.Option(min=0, max=100)] = 80,
        tlp: Annotated[str, typer.Option(help=f"one of {', '.join(TLPS)}")] = "amber",
        until: Annotated[str | None, typer.Option(help="Valid until (ISO 8601 with a zone).")] = None,
        note: Annotated[str | None, typer.Option(help="Why it is bad.")] = None,
        as_json: JsonOption = False) -> None:
    """Add an indicator by hand (feed ``manual``); it is retro-hunted at the next cycle."""
    from soc.intel import IndicatorBook, guess_type

    if tlp not in TLPS:
        fail(f"--tlp {tlp}: use one of {', '.join(TLPS)}")
    layer = service_layer()
    book = IndicatorBook(layer.store, clock=layer.clock)
    kind = type_ or _call(lambda: guess_type(value).type)
    actor = layer.principal.label if layer.principal else "soc"
    body = _call(lambda: book.add(kind, value, actor=actor, confidence=confidence, tlp=tlp, valid_until=until,
                                  note=note))
    if as_json:
        print(json_text(body))
    else:
        console().print(cell(f"indicator {body['type']} {body['value']} added (feeds: {', '.join(body['sources'])})"))


@app.command("revoke")
def revoke(indicator: Annotated[str, typer.Argument(help="The indicator's id or value.")],
           reason: Annotated[str | None, typer.Option(help="Why.")] = None,
           as_json: JsonOption = False) -> None:
    """Revoke an indicator for every feed: it raises no new alert."""
    from soc.intel import IndicatorBook

    layer = service_layer()
    actor = layer.principal.label if layer.principal else "soc"
    body = _call(lambda: IndicatorBook(layer.store, clock=layer.clock).revoke(indicator, actor=actor, reason=reason))
    if as_json:
        print(json_text(body))
    else:
        console().print(cell(f"indicator {body['type']} {body['value']} revoked"))


@app.command("hunt")
def hunt(days: Annotated[int | None, typer.Option(min=1, help="How far back (default: intel.retro_hunt_days).")] = None,
         indicator: Annotated[list[str] | None, typer.Option(help="Hunt these indicators (id or value) again, "
                                                              "not only the new ones.")] = None,
         cycle: Annotated[bool, typer.Option("--cycle", help="First run the matching cycle over the events stored "
                                             "since the last one (as `soc run` does).")] = False,
         as_json: JsonOption = False) -> None:
    """Run the retro-hunt now: new or newly valid indicators (or the ones named) are searched over
    the stored events; matches raise alerts marked retrospective."""
    from soc.intel import IndicatorBook

    layer = service_layer()
    matching = layer.intel_matching()
    ids = None
    if indicator:
        book = IndicatorBook(layer.base_store)
        ids = []
        for item in indicator:
            doc = book.find_one(item)
            if doc is None:
                fail(f"no indicator {item!r}")
            ids.append(doc.id)
    figures: dict[str, Any] = {}
    if cycle:
        matching.retro_hunt_days = 0  # the cycle only; the hunt below
        figures = matching.run_once()
        matching.retro_hunt_days = layer.settings.intel.retro_hunt_days
    figures["hunt"] = matching.hunt(days=days, ids=ids)
    if as_json:
        print(json_text(figures if cycle else figures["hunt"]))
        return
    if cycle:
        console().print(cell(f"matched {figures['events']} new events: {figures['alerts']} alerts"))
    h = figures["hunt"]
    console().print(cell(f"retro-hunt: {h.get('indicators', 0)} indicators, {h.get('events', 0)} events found, "
                         f"{h.get('alerts', 0)} new alerts"))
