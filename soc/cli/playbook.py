"""``soc playbook ...``: list, validate, run by hand, inspect runs, approve, resume.

Times are shown in the analyst's zone
with the zone named (:mod:`soc.ui`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from soc.cli.common import fail, local_principal
from soc.cli.listing import find_page
from soc.cli.timeargs import SinceOption, UntilOption, time_range
from soc.config import load_settings
from soc.ui import cell, console, json_text, show_time, zone_note

app = typer.Typer(
    help="Playbooks: what the SOC does when alerts and incidents come in (YAML in playbooks/).\n\n"
         "`soc playbook list` shows them, `soc playbook run ID --dry-run` tries one without side "
         "effects, `soc playbook runs` and `soc playbook show RUN_ID` show what ran, step by step.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)

FolderOption = Annotated[Path | None, typer.Option("--playbooks", "-p", help="Playbook folder or file "
                                                   "(default: the project's playbooks/, setting playbooks.folder).")]
STATUS_STYLE = {"succeeded": "green", "failed": "red", "running": "cyan", "waiting": "yellow",
                "pending": "dim", "skipped": "dim", "retrying": "yellow"}


def _runner(folder: Path | None = None, *, store_url: str | None = None,  # type: ignore[no-untyped-def]
            background: bool = False):
    from soc.access import Principal
    from soc.app import App

    # by hand: the shell user; the worker: the service itself (both audited)
    actor = Principal.system("playbook-worker") if background else local_principal()
    return App(load_settings(), store_url=store_url).acting_as(actor).playbook_runner(folder=folder,
                                                                                       background=background)


def _duration(run: dict[str, Any]) -> str:
    from soc.model import parse_iso

    if not run.get("started_at"):
        return "-"
    end = run.get("finished_at") or run.get("updated_at")
    if not end:
        return "-"
    seconds = (parse_iso(end) - parse_iso(run["started_at"])).total_seconds()
    return f"{seconds:.1f}s" if seconds < 120 else f"{seconds / 60:.1f}m"


@app.command("list")
def list_playbooks(folder: FolderOption = None) -> None:
    """List the playbooks with their triggers, and the files that failed to load."""
    from rich.table import Table

    from soc.playbooks.model import load_playbooks

    path = folder or load_settings().playbooks.folder
    playbooks, errors = load_playbooks(path)
    table = Table(title=cell(f"{len(playbooks)} playbooks in {path}" + (f"; {len(errors)} invalid" if errors else "")))
    for column in ("id", "title", "trigger", "steps", "version"):
        table.add_column(column, overflow="fold")
    for playbook in sorted(playbooks.values(), key=lambda p: p.id):
        t = playbook.trigger
        triggers = []
        if t.alerts:
            triggers.append(f"alerts ({len(t.alerts.rules)} rules{', ' + t.alerts.min_level + '+' if t.alerts.min_level else ''})")
        if t.incident:
            triggers.append(f"incident {'/'.join(t.incident.events)}")
        if t.schedule:
            triggers.append(f"cron {t.schedule.cron} {t.schedule.timezone}")
        if t.manual:
            triggers.append("manual")
        table.add_row(cell(playbook.id + ("" if playbook.enabled else " (disabled)")), cell(playbook.title),
                      cell(", ".join(triggers)), str(len(playbook.steps)), cell(playbook.version))
    out = console()
    out.print(table)
    for error in errors:
        out.print(Text.assemble(("invalid:", "red"), " ", cell(error)))


@app.command()
def validate(paths: Annotated[list[Path] | None, typer.Argument(help="Playbook files or folders (default: playbooks/).")] = None) -> None:
    """Check playbook files: structure, templates, actions and their arguments. Exits 1 on errors."""
    from soc.playbooks.model import load_playbooks

    out = console()
    bad = 0
    for path in paths or [load_settings().playbooks.folder]:
        playbooks, errors = load_playbooks(path)
        for playbook in playbooks.values():
            out.print(Text.assemble(("ok", "green"), cell(f"      {playbook.path}  ({playbook.id}, "
                                                          f"{len(playbook.steps)} steps)")))
        for error in errors:
            out.print(Text.assemble(("invalid", "red"), " ", cell(error)))
        bad += len(errors)
    if bad:
        raise typer.Exit(1)


def _parse_inputs(pairs: list[str]) -> dict[str, str]:
    inputs = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            fail(f"--input {pair!r}: use name=value")
        inputs[name.strip()] = value
    return inputs


@app.command()
def run(
    playbook_id: Annotated[str, typer.Argument(help="Playbook id (`soc playbook list`).")],
    inputs: Annotated[list[str] | None, typer.Option("--input", "-i", help="An input as name=value; repeat. "
                                                     "Lists: a,b or JSON.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Actions say what they would do; nothing is "
                                          "changed or sent.")] = False,
    alert: Annotated[list[str] | None, typer.Option("--alert", help="Run on this recorded alert id (the "
                                                     "trigger's alerts); repeat.")] = None,
    incident: Annotated[str | None, typer.Option("--incident", help="Run on this incident id (trigger.incident).")] = None,
    key: Annotated[str | None, typer.Option(help="Idempotency key: a second run with the same key does "
                                            "nothing (default: a new key each time).")] = None,
    folder: FolderOption = None,
) -> None:
    """Run a playbook by hand and print its steps."""
    import uuid

    from soc.playbooks.model import PlaybookError

    runner = _runner(folder)
    who = local_principal().label
    trigger: dict[str, Any] = {"type": "manual", "by": who}
    if alert:
        alerts = []
        for alert_id in alert:
            doc = runner.store.get("alerts", alert_id)
            if doc is None:
                fail(f"no alert {alert_id!r}; `soc alerts list --json` shows the ids")
                return
            alerts.append(doc.body)
        trigger.update(alerts=alerts, alert=alerts[0], alert_ids=[a["id"] for a in alerts], group={})
    if incident:
        found = runner.incidents.get(incident)
        if found is None:
            fail(f"no incident {incident!r}")
            return
        trigger.update(incident=found.model_dump(mode="json"), event="manual")
    try:
        run_id, created = runner.start(playbook_id, trigger, f"manual:{key or uuid.uuid4().hex}",
                                       inputs=_parse_inputs(inputs or []), actor=who, dry_run=dry_run)
    except PlaybookError as error:
        fail(str(error))
        return
    if not created:
        console().print(cell(f"a run with key {key!r} exists already: {run_id} (not run again)"))
    _show(runner, run_id, verbose=False)
    doc = runner.store.get("playbook_runs", run_id)
    if doc is not None and doc.body["status"] == "failed":
        raise typer.Exit(1)


@app.command()
def runs(
    playbook_id: Annotated[str | None, typer.Option("--playbook", help="Only runs of this playbook.")] = None,
    status: Annotated[str | None, typer.Option(help="Only this status: pending, running, waiting, "
                                               "succeeded, failed.")] = None,
    since: SinceOption = None,
    until: UntilOption = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first.")] = 30,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table.")] = False,
) -> None:
    """Recent playbook runs with their ids (for `soc playbook show RUN`): status, duration, who
    started them, what they wait for. --since/--until select on the time a run was created."""
    from rich.table import Table

    from soc.playbooks.tables import RUNS

    runner = _runner()
    zone = runner.settings.zone
    window = time_range(since, until, zone)
    where = {k: v for k, v in {"playbook_id": playbook_id, "status": status}.items() if v}
    runner.store.refresh()
    page = find_page(runner.store, RUNS, where, time_field="created_at", window=window, sort="created_at",
                     limit=limit)
    found = [d.body for d in page.items]
    if as_json:
        for item in found:
            print(json_text(item))
        return
    table = Table(title=page.title("playbook runs", "newest first"), caption=zone_note(zone))
    for column in ("run", "playbook", "status", "created", "duration", "actor", "trigger", "note"):
        table.add_column(column, overflow="fold", no_wrap=column == "run")
    for item in found:
        style = STATUS_STYLE.get(item["status"], "")
        note = item.get("error") or item.get("wait_reason") or ""
        if item.get("dry_run"):
            note = "dry run " + note
        table.add_row(cell(item["id"]), cell(item["playbook_id"]), cell(item["status"], style),
                      show_time(item.get("created_at"), zone), _duration(item), cell(item.get("actor", "")),
                      cell(item.get("trigger_type", "")), cell(note))
    console().print(table)


def _show(runner: Any, run_id: str, *, verbose: bool) -> None:
    from rich.table import Table

    from soc.playbooks.tables import RUNS

    doc = runner.store.get(RUNS, run_id)
    if doc is None:
        fail(f"no playbook run {run_id!r}; `soc playbook runs` lists them")
        return
    body = doc.body
    zone = runner.settings.zone
    out = console()
    style = STATUS_STYLE.get(body["status"], "")
    out.print(Text.assemble(cell(body["playbook_title"], "bold"),
                            cell(f" ({body['playbook_id']} v{body['playbook_version']})  run {run_id}")))
    out.print(Text.assemble("status ", cell(body["status"], style), cell(
        f"{'  (dry run)' if body.get('dry_run') else ''}  actor {body.get('actor')}  trigger "
        f"{body.get('trigger_type')}  key {body.get('key')}")))
    out.print(f"created {show_time(body.get('created_at'), zone)}  started {show_time(body.get('started_at'), zone)}  "
              f"finished {show_time(body.get('finished_at'), zone)}  duration {_duration(body)}  ({zone_note(zone)})",
              markup=False)
    if body.get("takeovers"):
        out.print(f"[yellow]resumed {body['takeovers']} time(s) after its process stopped[/]")
    if body.get("wait_reason"):
        out.print(Text.assemble(("waiting:", "yellow"), cell(
            f" {body['wait_reason']} (until {show_time(body.get('wait_until'), zone)})"
            f" -- `soc playbook approve {run_id}` or `--reject`")))
    if body.get("error"):
        out.print(Text.assemble(("error:", "red"), " ", cell(body["error"])))
    table = Table(show_lines=verbose)
    for column in ("step", "action", "status", "attempts", "started", "duration s", "output / error"):
        table.add_column(column, overflow="fold")
    for state in body["steps"]:
        output = state.get("error") or ""
        if not output and state.get("output_json"):
            text = state["output_json"]
            output = text if verbose or len(text) <= 160 else text[:157] + "..."
        st = STATUS_STYLE.get(state["status"], "")
        table.add_row(cell(state["id"]), cell(state["action"]), cell(state["status"], st),
                      str(state.get("attempts", 0)), show_time(state.get("started_at"), zone),
                      cell(state.get("duration") or ""), cell(output))
    out.print(table)
    if body.get("outputs_json"):
        out.print(cell(f"outputs: {body['outputs_json']}"))
    if verbose:
        out.print("[bold]record[/] (append-only, playbook_steps):")
        for record in runner.records(run_id):
            what = record.get("event") or f"{record.get('step_id')} #{record.get('attempt')} {record.get('phase')}"
            extra = record.get("error") or record.get("detail_json") or ""
            out.print(cell(f"  {show_time(record.get('at'), zone)} {record.get('kind'):4} {what} "
                           f"{record.get('status') or ''} {extra}"))


@app.command()
def show(run_id: Annotated[str, typer.Argument(help="Run id (`soc playbook runs`).")],
         verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Full outputs and the append-only "
                                               "record of every attempt.")] = False) -> None:
    """One run: every step with its timing, output or error (times in the analyst's zone)."""
    _show(_runner(), run_id, verbose=verbose)


@app.command()
def approve(
    run_id: Annotated[str, typer.Argument(help="The waiting run (`soc playbook runs --status waiting`).")],
    reject: Annotated[bool, typer.Option("--reject", help="Reject instead of approve.")] = False,
    comment: Annotated[str, typer.Option(help="Why (kept in the record).")] = "",
) -> None:
    """Approve (or reject) what a waiting run asks for; the run then continues.

    The decision is recorded under your login (local:LOGIN). When the approval step lists
    `approvers`, your login must be one of their names: a shell user on the server holds every
    right (the admin role) but is not any other role, so role:NAME entries (other than
    role:admin) are for users of the API and console.
    """
    from soc.access import Forbidden
    from soc.cli.common import local_principal
    from soc.playbooks.model import PlaybookError

    runner = _runner()
    try:
        runner.approve(run_id, approved=not reject, by=local_principal(), comment=comment)
    except (PlaybookError, Forbidden) as error:
        fail(str(error))
        return
    _show(runner, run_id, verbose=False)


@app.command()
def resume(
    run_id: Annotated[str | None, typer.Argument(help="A run to continue; without it, every run whose "
                                                 "process stopped and every waiting run that is due.")] = None,
) -> None:
    """Continue runs left by a stopped process (from their unfinished step), or a waiting run."""
    from soc.playbooks.model import PlaybookError

    runner = _runner()
    if run_id:
        try:
            runner.resume(run_id)
        except PlaybookError as error:
            fail(str(error))
            return
        _show(runner, run_id, verbose=False)
        return
    handled = runner.recover()
    console().print(cell(f"{len(handled)} run(s) resumed" + (": " + ", ".join(handled) if handled else
                                                               " (none had a stopped owner or a due wait)")))


@app.command()
def worker(
    store_url: Annotated[str | None, typer.Option(help="Store URL (default: settings; e.g. opensearch://es1:9200).")] = None,
    folder: FolderOption = None,
) -> None:
    """Run playbooks as their own process (the scale-out deployment, next to `soc detect`).

    Every sweep period (playbooks.sweep_seconds) it offers newly detected alerts to the
    playbooks, resumes runs whose process stopped and continues waiting runs that are due;
    scheduled playbooks run on their cron, and so do the periodic national summaries and the
    report outbox (reporting.schedule). Any number of workers may run: run ids, alert claims,
    report numbers and outbox leases make every trigger run and every report go out once.
    `soc run` does all this itself; this command is for deployments where detection runs in
    separate `soc detect` processes.
    """
    import logging
    import signal
    import threading

    from apscheduler.schedulers.background import BackgroundScheduler

    from soc.export.schedule import register_report_jobs
    from soc.playbooks.schedule import attach

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    runner = _runner(folder, store_url=store_url, background=True)
    for error in runner.errors:
        console(stderr=True).print(Text.assemble(("playbook not loaded:", "yellow"), " ", cell(error)))
    scheduler = BackgroundScheduler(timezone="UTC")
    jobs = attach(runner, scheduler, poll_alerts=True)
    jobs += register_report_jobs(scheduler, runner.store, runner.settings)
    scheduler.start()
    console().print(cell(f"playbook worker {runner.owner}: {len(runner.playbooks)} playbooks, jobs "
                         f"{', '.join(jobs)}; Ctrl-C to stop"))
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    scheduler.shutdown(wait=True)
    runner.close()
    runner.store.close()
