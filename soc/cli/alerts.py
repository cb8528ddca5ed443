"""``soc alerts ...``: list and show recorded alerts."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from soc.cli.common import fail, service_layer
from soc.ui import alerts_table, console, show_time, zone_note

app = typer.Typer(help="List and show recorded alerts.", no_args_is_help=True)


@app.command("list")
def alerts_list(
    rule: Annotated[str | None, typer.Option(help="Only this rule id.")] = None,
    agency: Annotated[str | None, typer.Option(help="Only this agency id.")] = None,
    status: Annotated[str | None, typer.Option(help="Only this status (new, acknowledged, closed...).")] = None,
    since: Annotated[str | None, typer.Option(help="Only alerts first seen at/after this ISO time.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table.")] = False,
) -> None:
    """List recorded alerts, newest first."""

    app = service_layer()
    settings, store = app.settings, app.store
    where = {k: v for k, v in {"rule.id": rule, "agency": agency, "status": status}.items() if v}
    docs = store.find("alerts", where, time_field="first_seen" if since else None, start=since,
                      sort="first_seen", descending=True, limit=limit)
    alerts = [d.body for d in docs]
    if as_json:
        for alert in alerts:
            print(json.dumps(alert, ensure_ascii=False))
    else:
        console().print(alerts_table(alerts, settings.zone, title=f"{len(alerts)} alerts (newest first)"))


@app.command("show")
def alerts_show(alert_id: Annotated[str, typer.Argument(help="Alert id (from `soc alerts list --json`).")],
                events: Annotated[int, typer.Option(help="How many matched events to print.")] = 10) -> None:
    """Show one alert with its rule (title, author, references) and matched events."""

    app = service_layer()
    settings, store = app.settings, app.store
    doc = store.get("alerts", alert_id)
    if doc is None:
        fail(f"no alert {alert_id!r}; `soc alerts list --json` shows the ids")
        return
    alert = doc.body
    out = console()
    rule = alert["rule"]
    out.print(f"[bold]{rule['title']}[/]  level {rule['level']}  rule {rule['id']} v{rule.get('version')}")
    out.print(f"author: {rule.get('author')}")
    out.print(f"agency: {alert.get('agency')}  status: {alert.get('status')}  events: {alert.get('event_count')}")
    out.print(f"first seen {show_time(alert['first_seen'], settings.zone)}, last seen "
              f"{show_time(alert['last_seen'], settings.zone)}  ({zone_note(settings.zone)})")
    if alert.get("group"):
        out.print("group: " + ", ".join(f"{k}={v}" for k, v in alert["group"].items()))
    if rule.get("description"):
        out.print(rule["description"])
    for ref in rule.get("references", [])[:5]:
        out.print(f"  ref: {ref}")
    for event in store.get_events(alert.get("event_ids", [])[:events]):
        out.print(f"  {show_time(event.get('@timestamp'), settings.zone)} {event.get('host.name', '')} "
                  f"{event.get('message') or event.get('event.original', '')}")


