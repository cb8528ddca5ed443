"""``soc alerts ...``: list and show recorded alerts; acknowledge, assign, close and reopen them,
one by one or every alert a query matches (``soc alerts bulk``; large sets run as a background
job: ``soc jobs show ID``).

Changes are made as the shell user (``local:LOGIN``, :func:`soc.cli.common.local_principal`)
and recorded in each alert's history (``soc alerts show ID``)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.text import Text

from soc.alerts import CLOSE_REASONS, AlertChange, AlertQuery, AlertWorkflowError
from soc.cli.common import JsonOption, fail, local_principal, service_layer
from soc.cli.jobs import bulk_service, print_job
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

app = typer.Typer(help="List, show, acknowledge, assign, close and reopen alerts (also in bulk by query).",
                  no_args_is_help=True)


@app.command("list")
def alerts_list(
    rule: Annotated[str | None, typer.Option(help="Only this rule id.")] = None,
    agency: Annotated[str | None, typer.Option(help="Only this agency id.")] = None,
    status: Annotated[str | None, typer.Option(help="Only this status: open, acknowledged or closed.")] = None,
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
    where: dict[str, Any] = {k: v for k, v in {"rule.id": rule, "agency": agency, "status": status}.items() if v}
    if status in ("open", "new"):
        where["status"] = ["open", "new"]  # alerts recorded before the workflow say "new"
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
    status = "open" if alert.get("status") in (None, "new") else alert.get("status")
    out.print(cell(f"agency: {alert.get('agency')}  status: {status}  assignee: {alert.get('assignee') or '-'}  "
                   f"events: {alert.get('event_count')}"))
    if alert.get("close_reason"):
        out.print(cell(f"closed as {alert['close_reason']}: {alert.get('close_note') or ''}", newlines=True))
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
    entries = app.alerts.history(local_principal(), alert_id)
    if entries:
        out.print(f"history ({len(entries)}):")
    for entry in entries:
        out.print(history_line(entry, zone))



# -- changing alerts ---------------------------------------------------------------------------------
IdsArgument = Annotated[list[str], typer.Argument(help="Alert ids (from `soc alerts list`).", show_default=False)]
NoteOption = Annotated[str, typer.Option("--note", help="Why, or what was done (kept in the history).")]
ReasonOption = Annotated[str | None, typer.Option(
    "--reason", help=f"Why it is closed: {', '.join(CLOSE_REASONS)} (other needs --note).", show_default=False)]


def history_line(entry: dict[str, Any], zone: Any) -> Text:
    """One history entry: ``2026-03-02 08:00:01 +07 an  close  acknowledged -> closed  false_positive: note``."""
    what = f"{entry['from']} -> {entry['to']}" if entry["from"] != entry["to"] else entry["to"]
    if entry["action"] == "assign":
        what = f"assignee {entry.get('assignee_from') or '-'} -> {entry.get('assignee_to') or '-'}"
    detail = ": ".join(p for p in (entry.get("reason") or "", entry.get("note") or "") if p)
    job = f"  (job {entry['job']})" if entry.get("job") else ""
    return cell(f"  {show_time(entry['at'], zone)}  {entry['actor']}  {entry['action']}  {what}"
                f"{'  ' + detail if detail else ''}{job}")


def _change(ids: list[str], change: AlertChange) -> None:
    """Apply ``change`` to each alert, one line each; exit 1 when any could not be changed."""
    try:
        change.check()
    except AlertWorkflowError as error:
        fail(str(error))
    app_ = service_layer()
    flow = app_.alerts
    principal, out, failed = local_principal(), console(), 0
    for alert_id in ids:
        try:
            update = flow.change(principal, alert_id, change)
        except AlertWorkflowError as error:
            console(stderr=True).print(Text.assemble(("error:", "bold red"), " ", literal(str(error))))
            failed += 1
            continue
        status = update.alert["status"]
        if update.changed and update.history:
            out.print(cell(f"{alert_id}: {update.history['from']} -> {status}"
                           + (f" (assignee {update.alert.get('assignee') or '-'})" if change.action == "assign" else "")))
        else:
            out.print(cell(f"{alert_id}: unchanged ({status}"
                           + (f", assignee {update.alert.get('assignee') or '-'}" if change.action == "assign" else "")
                           + ")"))
    if failed:
        raise typer.Exit(1)


@app.command("ack")
def alerts_ack(ids: IdsArgument, note: NoteOption = "") -> None:
    """Acknowledge open alerts (someone is on it; the first acknowledgement time is kept)."""
    _change(ids, AlertChange("ack", note=note))


@app.command("assign")
def alerts_assign(
    ids: IdsArgument,
    to: Annotated[str | None, typer.Option("--to", help="The user who handles them.", show_default=False)] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Remove the assignee.")] = False,
    note: NoteOption = "",
) -> None:
    """Set (--to NAME) or remove (--clear) the assignee of alerts."""
    if (to is None) == (not clear):
        fail("give --to NAME or --clear")
    _change(ids, AlertChange("assign", assignee=None if clear else to, note=note))


@app.command("close")
def alerts_close(ids: IdsArgument, reason: ReasonOption = None, note: NoteOption = "") -> None:
    """Close alerts with a reason (true_positive, benign, false_positive, duplicate, other).

        soc alerts close 3f2a... --reason false_positive --note "the SOC's own scanner"
    """
    _change(ids, AlertChange("close", reason=reason, note=note))


@app.command("reopen")
def alerts_reopen(ids: IdsArgument, note: NoteOption = "") -> None:
    """Reopen closed alerts (the close reason and note stay in the history)."""
    _change(ids, AlertChange("reopen", note=note))


@app.command("bulk")
def alerts_bulk(
    action: Annotated[str, typer.Argument(help="ack, assign, close or reopen.", show_default=False)],
    status: Annotated[list[str] | None, typer.Option(help="Only alerts in this status (repeat for several).")] = None,
    rule: Annotated[list[str] | None, typer.Option(help="Only this rule id (repeat for several).")] = None,
    agency: Annotated[list[str] | None, typer.Option(help="Only this agency id (repeat for several).")] = None,
    level: Annotated[list[str] | None, typer.Option(help="Only this rule level (repeat for several).")] = None,
    host: Annotated[str | None, typer.Option(help="Only alerts about this host name.")] = None,
    user: Annotated[str | None, typer.Option(help="Only alerts about this user name.")] = None,
    source_ip: Annotated[str | None, typer.Option("--source-ip", help="Only alerts about this source address.")] = None,
    text: Annotated[str | None, typer.Option(help="Only alerts containing this text (any case).")] = None,
    field: Annotated[list[str] | None, typer.Option(
        help="FIELD=VALUE of a grouped view, e.g. group.source.ip=203.0.113.9 (repeat for several).")] = None,
    since: SinceOption = None,
    until: UntilOption = None,
    every: Annotated[bool, typer.Option("--all", help="No filter: every alert (say so explicitly).")] = False,
    reason: ReasonOption = None,
    note: NoteOption = "",
    to: Annotated[str | None, typer.Option("--to", help="assign: the user.", show_default=False)] = None,
    clear: Annotated[bool, typer.Option("--clear", help="assign: remove the assignee.")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for a background job to finish.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Change every alert a query matches (not a page): prints how many were changed, already
    as asked, not applicable or changed by someone else meanwhile. More alerts than
    alerts.bulk_background_threshold (500) run as a background job: `soc jobs show ID`, or --wait.
    --since/--until select on first-seen time. Examples:

        soc alerts bulk close --rule 0b8e3f4c-2a6d-4e71-8c1f-5d9b7a3e6c21 --host web01 --reason benign --note "patch test"

        soc alerts bulk ack --status open --field group.source.ip=203.0.113.9 --since 2h
    """
    if action not in ("ack", "assign", "close", "reopen"):
        fail(f"unknown action {action!r}: use ack, assign, close or reopen")
    if action == "assign" and (to is None) == (not clear):
        fail("assign needs --to NAME or --clear")
    change = AlertChange(action, reason=reason, note=note,  # type: ignore[arg-type]
                         assignee=None if clear else to)
    fields = {}
    for item in field or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            fail(f"--field {item!r}: write FIELD=VALUE")
        fields[name.strip()] = value.strip()
    app_ = service_layer()
    start, end = time_range(since, until, app_.settings.zone).bounds()
    query = AlertQuery(status=status or None, rule=rule or None, agency=agency or None, level=level or None,
                       host=host, user=user, source_ip=source_ip, text=text, fields=fields, since=start, until=end)
    if query.empty and not every:
        fail("no filter given: a bulk change applies to every alert its query matches; give filters, "
             "or --all for every alert")
    try:
        job = bulk_service(app_).apply(local_principal(), query.check(), change.check(), wait=wait)
    except AlertWorkflowError as error:
        fail(str(error))
    print_job(job, app_.settings.zone, as_json=as_json)
