"""``soc jobs ...``: background jobs (bulk alert changes): list, show, resume.

A bulk change larger than ``alerts.bulk_background_threshold`` runs in a detached
``soc jobs resume ID`` process started by ``soc alerts bulk`` (its output goes to
``<data_dir>/jobs/ID.log``). A job whose process stopped goes on from its last saved page with
``soc jobs resume ID`` (or ``soc jobs resume`` for every such job) once its lease has run out.
"""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from soc.alerts import AlertWorkflowError, BulkAlerts
from soc.cli.common import JsonOption, fail, local_principal, service_layer
from soc.cli.listing import page_of
from soc.ui import cell, console, json_text, show_time, zone_note

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from soc.app import App

app = typer.Typer(help="Background jobs (bulk alert changes): list, show, resume.", no_args_is_help=True)

_DONE = {"ack": "acknowledged", "assign": "assigned", "close": "closed", "reopen": "reopened"}


def _spawner(app_: App):  # type: ignore[no-untyped-def]
    """Start ``soc jobs resume ID`` detached from this terminal, logging to the data dir."""

    def spawn(job_id: str) -> None:
        folder = app_.settings.data_dir / "jobs"
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / f"{job_id}.log", "ab") as log:
            subprocess.Popen([sys.executable, "-m", "soc.cli", "jobs", "resume", job_id], stdin=subprocess.DEVNULL,
                             stdout=log, stderr=log, start_new_session=True, close_fds=True)

    return spawn


def bulk_service(app_: App, *, spawn: bool = True) -> BulkAlerts:
    """Bulk alert changes over the configured store; background jobs in a detached process."""
    return app_.bulk_alerts(background=_spawner(app_) if spawn else None)


def print_job(job: dict[str, Any], zone: ZoneInfo, *, as_json: bool = False) -> None:
    """A job's outcome in one paragraph (or its JSON)."""
    if as_json:
        print(json_text(job))
        return
    out, counts = console(), job["counts"]
    action = job["change"]["action"]
    if job["status"] == "succeeded":
        out.print(cell(f"{_DONE.get(action, action)} {counts['changed']:,} of {job['matched']:,} matching alerts "
                       f"({counts['unchanged']:,} already as asked, {counts['invalid']:,} not applicable, "
                       f"{counts['concurrent']:,} changed by someone else meanwhile, {counts['missing']:,} gone) "
                       f"-- job {job['id']}"))
        return
    if job["status"] == "pending":
        out.print(cell(f"job {job['id']}: more alerts match than are changed at once; it runs in the background "
                       f"({job['describe']}). Follow it with `soc jobs show {job['id']}`."))
        return
    out.print(cell(f"job {job['id']} {job['status']}: {job['describe']}, {job['processed']:,} alerts read, "
                   f"{counts['changed']:,} changed so far (updated {show_time(job.get('updated_at'), zone)})"))
    if job.get("error"):
        out.print(cell(f"error: {job['error']} -- `soc jobs resume {job['id']}` goes on from the last saved page"))


@app.command("list")
def jobs_list(
    status: Annotated[str | None, typer.Option(help="Only pending, running, succeeded or failed jobs.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """Bulk jobs, newest first, with their ids (for `soc jobs show ID`)."""
    app_ = service_layer()
    jobs = bulk_service(app_, spawn=False).jobs(local_principal(), status=status, limit=100_000)
    page = page_of(jobs, limit)
    if as_json:
        for job in page.items:
            print(json_text(job))
        return
    zone = app_.settings.zone
    table = Table(title=page.title("jobs", "newest first"), caption=zone_note(zone))
    for column in ("id", "status", "change", "by", "created", "read", "changed", "query"):
        table.add_column(column, overflow="fold")
    for job in page.items:
        table.add_row(cell(job["id"]), cell(job["status"]), cell(job["describe"]), cell(job["created_by"]),
                      show_time(job["created_at"], zone), f"{job['processed']:,}", f"{job['counts']['changed']:,}",
                      cell(json_text(job["query"])))
    console().print(table)


@app.command("show")
def jobs_show(job_id: Annotated[str, typer.Argument(help="Job id (`soc jobs list`).")], as_json: JsonOption = False,
              ) -> None:
    """One job: status, progress and counts."""
    app_ = service_layer()
    try:
        job = bulk_service(app_, spawn=False).job(local_principal(), job_id)
    except AlertWorkflowError as error:
        fail(str(error))
    if as_json:
        print(json_text(job))
        return
    zone = app_.settings.zone
    out = console()
    out.print(cell(f"job {job['id']}  {job['status']}  {job['describe']}  by {job['created_by']}"))
    out.print(cell(f"query: {json_text(job['query'])}"))
    out.print(cell(f"created {show_time(job['created_at'], zone)}, started {show_time(job.get('started_at'), zone)}, "
                   f"updated {show_time(job.get('updated_at'), zone)}, finished {show_time(job.get('finished_at'), zone)}"
                   f"  ({zone_note(zone)})"))
    out.print(cell(f"read {job['processed']:,} alerts in {job['pages']:,} pages, {job['matched']:,} matching; "
                   + ", ".join(f"{k} {v:,}" for k, v in job["counts"].items())))
    if job.get("attempts", 0) > 1:
        out.print(cell(f"attempts {job['attempts']} (resumed by {', '.join(job.get('resumed_by') or [])})"))
    if job.get("error"):
        out.print(cell(f"error: {job['error']}"))


@app.command("resume")
def jobs_resume(
    job_id: Annotated[str | None, typer.Argument(help="A job to run or go on with; without it, every job "
                                                 "left by a stopped process.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Run a pending job, or go on with one whose process stopped (from its last saved page)."""
    app_ = service_layer()
    principal = local_principal()
    bulk = bulk_service(app_, spawn=False)
    ids = [job_id] if job_id else []
    if not job_id:
        bulk.background = ids.append  # collect them; run each here
        bulk.recover()
    for one in ids:
        try:
            job = bulk.run(one, principal)
        except AlertWorkflowError as error:
            fail(str(error))
        print_job(job, app_.settings.zone, as_json=as_json)
    if not job_id and not as_json:
        console().print(f"{len(ids)} job(s) resumed")
