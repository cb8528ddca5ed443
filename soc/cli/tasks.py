"""``soc tasks ...``: remediation tasks the SOC sends to an agency's IT staff
(:mod:`soc.incidents.remediation`): create, list, ack, done, show.

The agency's contacts (``contact_email`` in ``ingest/agencies.yml``) are e-mailed through the
configured SMTP server when a task is sent and when it is done (and the SOC,
``tasks.soc_email``, when it is done); a mail that cannot be sent is shown, never fatal. The
shell user acts as ``local:LOGIN`` with every right; agency users answer in the console.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from soc.cli.common import JsonOption, fail, local_principal, service_layer
from soc.cli.listing import page_of
from soc.cli.timeargs import cli_now, parse_time_arg
from soc.incidents.remediation import RemediationTasks, TaskError
from soc.ui import cell, console, json_text, show_time, zone_note

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from soc.app import App

app = typer.Typer(help="Remediation tasks sent to agencies: create, list, ack, done, show.", no_args_is_help=True)

_AHEAD = re.compile(r"^(\d{1,5})\s*([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
DUE_FORMS = "a time ahead from now (12h, 3d, 2w) or a date or time (2026-12-10, 2026-12-10T17:00; the analyst's zone)"


def due_time(text: str, zone: ZoneInfo) -> datetime:
    """``--due``: ``3d`` from now, or a date (its end of day is not implied: its midnight) or time."""
    ahead = _AHEAD.match(text.strip().lower())
    if ahead:
        return cli_now() + timedelta(**{_UNITS[ahead.group(2)]: int(ahead.group(1))})
    try:
        arg = parse_time_arg(text)
    except typer.BadParameter:
        fail(f"--due {text!r} is not a time: use {DUE_FORMS}")
    if arg.kind == "relative":
        fail(f"--due {text!r} would be in the past: use {DUE_FORMS}")
    return arg.resolve(zone, cli_now())


def service(app_: App) -> RemediationTasks:
    """Remediation tasks over the configured store, with the agencies and mail of the settings."""
    return app_.tasks


def _print(task: dict[str, Any], zone: ZoneInfo) -> None:
    out = console()
    late = "  OVERDUE" if task["overdue"] else ""
    out.print(cell(f"task {task['id']}  {task['status']}{late}  {task['agency_name']} ({task['agency']})"))
    out.print(cell(f"title: {task['title']}"))
    if task.get("description"):
        out.print(cell(task["description"], newlines=True))
    out.print(cell(f"due {show_time(task.get('due_at'), zone) if task.get('due_at') else '-'}"
                   f"{'  incident ' + task['incident_id'] if task.get('incident_id') else ''}  ({zone_note(zone)})"))
    for event in task.get("events", []):
        note = f": {event['note']}" if event.get("note") else ""
        out.print(cell(f"  {show_time(event['at'], zone)}  {event['actor']}  {event['action']}{note}"))
    for sent in task.get("notifications", []):
        outcome = "sent" if sent["sent"] else f"NOT sent ({sent.get('error')})"
        out.print(cell(f"  e-mail on {sent['event']} to {', '.join(sent['to']) or 'nobody'}: {outcome}"))


def _fail_on(call: Any) -> Any:
    try:
        return call()
    except TaskError as error:
        fail(str(error))


@app.command("create")
def tasks_create(
    agency: Annotated[str, typer.Option(help="The agency id (ingest/agencies.yml).", show_default=False)],
    title: Annotated[str, typer.Option(help="What to do, in one line.", show_default=False)],
    description: Annotated[str, typer.Option(help="Details: what was seen, what to do, how to check.")] = "",
    incident: Annotated[str | None, typer.Option(help="The incident it belongs to.", show_default=False)] = None,
    due: Annotated[str | None, typer.Option(help=f"Due: {DUE_FORMS}.", show_default=False)] = None,
    as_json: JsonOption = False,
) -> None:
    """Send a remediation task to an agency; its contacts are e-mailed.

        soc tasks create --agency so-tttt --title "Vá OpenSSH trên web01" --due 3d --incident inc-...
    """
    app_ = service_layer()
    zone = app_.settings.zone
    when = due_time(due, zone) if due else None
    task = _fail_on(lambda: service(app_).create(local_principal(), agency=agency, title=title,
                                                 description=description, incident_id=incident, due=when))
    if as_json:
        print(json_text(task))
        return
    _print(task, zone)


@app.command("list")
def tasks_list(
    agency: Annotated[str | None, typer.Option(help="Only this agency's tasks.")] = None,
    status: Annotated[str | None, typer.Option(help="Only open, acknowledged or done tasks.")] = None,
    incident: Annotated[str | None, typer.Option(help="Only this incident's tasks.")] = None,
    overdue: Annotated[bool, typer.Option("--overdue", help="Only tasks past their due time.")] = False,
    limit: Annotated[int, typer.Option(min=1, help="At most this many.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """Remediation tasks, newest first (--overdue: earliest due first), with their ids."""
    app_ = service_layer()
    zone = app_.settings.zone
    tasks = _fail_on(lambda: service(app_).list(local_principal(), agency=agency, status=status,
                                                incident_id=incident, overdue=overdue, limit=100_000))
    page = page_of(tasks, limit)
    if as_json:
        for task in page.items:
            print(json_text(task))
        return
    table = Table(title=page.title("tasks", "earliest due first" if overdue else "newest first"),
                  caption=zone_note(zone))
    for column in ("id", "status", "agency", "title", "due", "created by"):
        table.add_column(column, overflow="fold")
    for task in page.items:
        status_text = task["status"] + (" OVERDUE" if task["overdue"] else "")
        table.add_row(cell(task["id"]), cell(status_text, "bold red" if task["overdue"] else ""), cell(task["agency"]),
                      cell(task["title"]), show_time(task["due_at"], zone) if task.get("due_at") else "-",
                      cell(task["created_by"]))
    console().print(table)


@app.command("show")
def tasks_show(task_id: Annotated[str, typer.Argument(help="Task id (`soc tasks list`).")],
               as_json: JsonOption = False) -> None:
    """One task with what happened to it and the e-mails sent."""
    app_ = service_layer()
    task = _fail_on(lambda: service(app_).get(local_principal(), task_id))
    if as_json:
        print(json_text(task))
        return
    _print(task, app_.settings.zone)


@app.command("ack")
def tasks_ack(task_id: Annotated[str, typer.Argument(help="Task id.")],
              note: Annotated[str, typer.Option(help="A word to the SOC.")] = "") -> None:
    """Acknowledge a task (the agency has seen it)."""
    app_ = service_layer()
    _print(_fail_on(lambda: service(app_).acknowledge(local_principal(), task_id, note=note)), app_.settings.zone)


@app.command("done")
def tasks_done(task_id: Annotated[str, typer.Argument(help="Task id.")],
               note: Annotated[str, typer.Option(help="What was done (required).", show_default=False)] = "") -> None:
    """Mark a task done, saying what was done; the SOC is e-mailed."""
    app_ = service_layer()
    _print(_fail_on(lambda: service(app_).done(local_principal(), task_id, note=note)), app_.settings.zone)
