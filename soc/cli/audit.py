"""``soc audit ...``: the audit trail -- list, verify, export, checkpoint -- a thin shell over
:mod:`soc.audit` (checkpoints of the signed summaries: :mod:`soc.export.audit_checkpoints`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from soc.access import Principal
from soc.audit import (
    AuditError,
    Checkpoint,
    Verification,
    checkpoint_file,
    checkpoint_now,
    export_trail,
    parse_checkpoint,
    read_checkpoints,
    verify,
)
from soc.cli.common import JsonOption, fail, local_principal, service_layer
from soc.cli.timeargs import SinceOption, UntilOption, cli_now, time_range
from soc.model import iso
from soc.ui import cell, console, json_text, show_time, zone_note

if TYPE_CHECKING:
    from soc.app import App

app = typer.Typer(
    help="The audit trail: who did what, when, to what and from where -- append-only and "
         "hash-chained, checked against checkpoints kept outside the store (the signed periodic "
         "summaries and the checkpoint file).\n\n"
         "Examples:\n\n"
         "  soc audit list --since 7d --actor alice\n\n"
         "  soc audit verify            (exit 0: intact; 1: names the first record edited, deleted or reordered)\n\n"
         "  soc audit checkpoint        (append the chain's head to the checkpoint file; keep the line printed)\n\n"
         "  soc audit export --since 2026-01-01 --out audit-2026.jsonl",
    no_args_is_help=True, rich_markup_mode="rich")

CaOption = Annotated[Path | None, typer.Option(
    "--ca", help="Trust anchor(s) (PEM) to verify the signed summaries' checkpoints with (default: "
                 "reporting.certificate when set; without one the snapshots' checkpoints are used unchecked).",
    show_default=False)]
CheckpointFileOption = Annotated[Path | None, typer.Option(
    "--checkpoint-file", help="The checkpoint file (default: audit.checkpoint_file, else "
                              "<data_dir>/audit-checkpoints.jsonl).", show_default=False)]
CheckpointOption = Annotated[list[str] | None, typer.Option(
    "--checkpoint", help="A checkpoint you kept: SEQ:HASH or the JSON line `soc audit checkpoint` printed "
                         "(repeat for several).", show_default=False)]
ReportsOption = Annotated[bool, typer.Option(
    "--reports/--no-reports", help="Also check against the checkpoints of the periodic summaries.")]


def _me() -> Principal:
    """Who runs the command: the shell user on the server."""
    return local_principal()


def _checkpoints(app: App, *, ca: Path | None, file: Path | None, given: list[str] | None,
                 reports: bool) -> tuple[list[Checkpoint], list[str]]:
    """Every checkpoint the command can read, and problems met reading them."""
    from soc.export.audit_checkpoints import summary_checkpoints
    from soc.export.sign import load_certificates

    found, problems = read_checkpoints(file or checkpoint_file(app.settings))
    for text in given or []:
        try:
            found.append(parse_checkpoint(text))
        except AuditError as error:
            fail(str(error))
    if reports:
        anchor = ca or app.settings.reporting.certificate
        try:
            anchors = load_certificates(anchor) if anchor else []
        except (OSError, ValueError) as error:
            fail(f"cannot read the trust anchor {anchor}: {error}")
        summaries, trouble = summary_checkpoints(app.store, app.reports.out_dir, anchors)
        found += summaries
        problems += trouble
    return found, problems


def _show(result: Verification, *, verbose: bool) -> None:
    out = console()
    if result.ok:
        out.print(cell(result.summary(), "green"))
    else:
        console(stderr=True).print(cell(result.summary(), "bold red"))
        for problem in result.problems[1:] if not verbose else result.problems:
            out.print(Text.assemble("  ", cell(problem.kind, "red"), " ", cell(problem.message)))
    if verbose:
        for check in result.checkpoints:
            out.print(Text.assemble("  ", cell("ok" if check.ok else "FAILED", "green" if check.ok else "red"),
                                    " ", cell(check.message)))


@app.command("list")
def audit_list(
    since: SinceOption = None,
    until: UntilOption = None,
    actor: Annotated[list[str] | None, typer.Option(
        help="Only this actor: a label (alice, 'alice (token ci)', local:root, system:scheduler) or a user "
             "name (alice: also her tokens); repeat for several.", show_default=False)] = None,
    action: Annotated[list[str] | None, typer.Option(
        help="Only this action (login.failed, alert.status, alerts.update, export.events ...); repeat for several.",
        show_default=False)] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """List audit records, newest first: N of TOTAL.

    --since/--until select on the record's time. Examples:

        soc audit list --since 24h --action login.failed

        soc audit list --actor alice --since 2026-12-01 --until 2026-12-08
    """
    app = service_layer()
    window = time_range(since, until, app.settings.zone)
    app.store.refresh()  # also what other processes wrote a moment ago
    page = app.audit.page(since=window.start, until=window.end, actors=actor or (),
                                      actions=action or (), limit=limit)
    if as_json:
        for record in page.records:
            print(json_text({**record.body, "details": record.details}))
        return
    total = f"{page.total:,}{'+' if page.capped else ''}"
    table = Table(title=f"{len(page.records):,} of {total} audit records (newest first)",
                  caption=zone_note(app.settings.zone))
    for column in ("seq", "time", "actor", "action", "target", "details", "source"):
        table.add_column(column, overflow="fold", no_wrap=column in ("seq", "time"))
    for record in page.records:
        table.add_row(str(record.seq), show_time(record.at, app.settings.zone), cell(record.actor.label),
                      cell(record.action), cell(str(record.target) if record.target else "-"),
                      cell(json_text(record.details, sort_keys=True) if record.details else "-"),
                      cell(" ".join(x for x in (record.ip, record.user_agent) if x) or "-"))
    console().print(table)


@app.command("verify")
def audit_verify(
    ca: CaOption = None,
    checkpoint_path: CheckpointFileOption = None,
    checkpoint: CheckpointOption = None,
    reports: ReportsOption = True,
    as_json: JsonOption = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show every problem and checkpoint.")] = False,
) -> None:
    """Verify the whole chain and check it against every checkpoint.

    The checkpoints: the signed periodic summaries (signatures verified with --ca or reporting.certificate), the checkpoint file and the checkpoints given.

    Exits 0 when the chain is intact and agrees with every checkpoint; 1 naming the first record that was edited, deleted or reordered, or the checkpoint showing that the newest records were removed or rewritten.
    """
    app = service_layer()
    checkpoints, problems = _checkpoints(app, ca=ca, file=checkpoint_path, given=checkpoint, reports=reports)
    result = verify(app.store, checkpoints, problems)
    if as_json:
        print(json_text(result.body(), sort_keys=True))
    else:
        _show(result, verbose=verbose)
    if not result.ok:
        raise typer.Exit(1)


@app.command("export")
def audit_export(
    out: Annotated[Path, typer.Option("--out", help="The file to write (JSON lines).", show_default=False)],
    since: SinceOption = None,
    until: UntilOption = None,
    ca: CaOption = None,
    checkpoint_path: CheckpointFileOption = None,
    checkpoint: CheckpointOption = None,
    reports: ReportsOption = True,
) -> None:
    """Export the records as JSON lines, with the verification of the chain.

    One stored record per line (--since/--until: by record time), then one line with the verification of the whole chain. The export is itself recorded in the trail (action export.audit).

    Exits 0 when written and the chain is intact, 1 when written but the verification failed.
    """
    app = service_layer()
    window = time_range(since, until, app.settings.zone)
    checkpoints, problems = _checkpoints(app, ca=ca, file=checkpoint_path, given=checkpoint, reports=reports)
    tmp = out.with_name(out.name + ".tmp")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as handle:
            result = export_trail(app.audit, handle, actor=_me(), since=window.start,
                                  until=window.end, checkpoints=checkpoints, problems=problems, name=str(out))
        os.replace(tmp, out)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        fail(f"cannot write {out}: {error}")
    except AuditError as error:
        tmp.unlink(missing_ok=True)
        fail(str(error))
    console().print(cell(f"wrote {result.records:,} audit records to {out} (recorded as audit record "
                         f"{result.record.seq})"))
    _show(result.verification, verbose=False)
    if not result.verification.ok:
        raise typer.Exit(1)


@app.command("checkpoint")
def audit_checkpoint_command(
    checkpoint_path: CheckpointFileOption = None,
    write: Annotated[bool, typer.Option("--write/--print-only", help="Append to the checkpoint file, or only "
                                        "print the checkpoint.")] = True,
) -> None:
    """Print the chain's head and append it to the checkpoint file.

    Keep the printed line (sequence number, hash, time) somewhere the store's administrators cannot write (a ticket, a notebook, another machine): `soc audit verify --checkpoint LINE` checks the chain against it. Run it on a schedule (cron) between the periodic summaries, which carry their own checkpoint.
    """
    app = service_layer()
    head = app.audit.head()
    if head.seq == 0:
        console().print("the audit trail is empty: nothing to checkpoint yet")
        return
    line: dict[str, Any] | None = {**head.body(), "taken_at": iso(cli_now()), "by": _me().label}
    if write:
        path = checkpoint_path or checkpoint_file(app.settings)
        try:
            line = checkpoint_now(app.audit, path, taken_at=line["taken_at"], by=line["by"])
        except (OSError, AuditError) as error:
            fail(f"cannot write the checkpoint file {path}: {error}")
        console(stderr=True).print(cell(f"appended to {path}; keep this line too:", "dim"))
    print(json_text(line, sort_keys=True))
