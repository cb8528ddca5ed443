"""``soc alerts ...``: list and show recorded alerts."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text

from soc.cli.common import fail, service_layer
from soc.cli.listing import find_page
from soc.cli.timeargs import SinceOption, UntilOption, time_range
from soc.ui import (
    LEVEL_STYLE,
    alerts_table,
    cell,
    console,
    json_text,
    literal,
    show_time,
    zone_note,
)

app = typer.Typer(help="List and show recorded alerts.", no_args_is_help=True)


@app.command("list")
def alerts_list(
    rule: Annotated[str | None, typer.Option(help="Only this rule id.")] = None,
    agency: Annotated[str | None, typer.Option(help="Only this agency id.")] = None,
    status: Annotated[str | None, typer.Option(help="Only this status (new, acknowledged, closed...).")] = None,
    since: SinceOption = None,
    until: UntilOption = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table.")] = False,
) -> None:
    """List recorded alerts, newest first, with their ids (for `soc alerts show ID`).

    --since/--until select on the alert's first-seen time. Examples:

        soc alerts list --since 2h

        soc alerts list --since yesterday --until today --rule 0b8e3f4c-2a6d-4e71-8c1f-5d9b7a3e6c21
    """
    app = service_layer()
    settings, store = app.settings, app.store
    window = time_range(since, until, settings.zone)
    where = {k: v for k, v in {"rule.id": rule, "agency": agency, "status": status}.items() if v}
    page = find_page(store, "alerts", where, time_field="first_seen", window=window, sort="first_seen",
                     limit=limit)
    alerts = [d.body for d in page.items]
    if as_json:
        for alert in alerts:
            print(json_text(alert))
        return
    console().print(alerts_table(alerts, settings.zone, title=page.title("alerts", "newest first")))


@app.command("show")
def alerts_show(alert_id: Annotated[str, typer.Argument(help="Alert id (from `soc alerts list`).")],
                events: Annotated[int, typer.Option(min=0, help="How many matched events to print.")] = 10) -> None:
    """Show one alert with its rule (title, author, references) and matched events."""

    app = service_layer()
    settings, store = app.settings, app.store
    doc = store.get("alerts", alert_id)
    if doc is None:
        fail(f"no alert {literal(alert_id)!r}; `soc alerts list` shows the ids")
        return
    alert = doc.body
    zone = settings.zone
    out = console()
    rule = alert.get("rule") or {}
    level = str(rule.get("level", ""))
    out.print(Text.assemble(cell(rule.get("title"), "bold"), "  level ", cell(level, LEVEL_STYLE.get(level, "")),
                            f"  rule {literal(rule.get('id'))} v{literal(rule.get('version'))}  ({literal(alert_id)})"))
    out.print(cell(f"author: {rule.get('author')}"))
    out.print(cell(f"agency: {alert.get('agency')}  status: {alert.get('status')}  events: {alert.get('event_count')}"))
    out.print(f"first seen {show_time(alert.get('first_seen'), zone)}, last seen "
              f"{show_time(alert.get('last_seen'), zone)}  ({zone_note(zone)})", markup=False)
    if alert.get("group"):
        out.print(cell("group: " + ", ".join(f"{k}={v}" for k, v in alert["group"].items())))
    if rule.get("description"):
        out.print(cell(rule["description"], newlines=True))
    for ref in rule.get("references", [])[:5]:
        out.print(cell(f"  ref: {ref}"))
    for event in store.get_events(alert.get("event_ids", [])[:events]):
        out.print(cell(f"  {show_time(event.get('@timestamp'), zone)} {event.get('host.name', '')} "
                       f"{event.get('message') or event.get('event.original', '')}"))
