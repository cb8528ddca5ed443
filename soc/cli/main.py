"""The ``soc`` command line: the root command and where each command group is mounted.

Each group lives in its own module of this package and is thin: it parses options, calls the
service layer (:mod:`soc.app` and the engine packages) and renders. Times are shown in the
analyst's zone (``SOC_TIMEZONE``, default Asia/Ho_Chi_Minh) with the zone named; everything
stored is UTC.
"""

from __future__ import annotations

import typer

from soc.cli import (
    alerts,
    detect,
    devstack,
    exceptions,
    hunt,
    incidents,
    kafka,
    playbook,
    report,
    rules,
    run,
)

app = typer.Typer(
    help="Provincial SOC log analysis: ingest agency logs, run Sigma rules, review alerts.\n\n"
         "Start here: `soc run` (the embedded service: syslog listeners, file inbox, store, "
         "scheduled rules) or `soc hunt FILES --rules detections` (one-shot: read files, run every "
         "rule, print alerts).",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
app.command("hunt")(hunt.hunt)
app.command("run")(run.run)
app.command("detect", help=detect.HELP)(detect.detect)
app.add_typer(rules.app, name="rules")
app.add_typer(alerts.app, name="alerts")
app.add_typer(incidents.app, name="incidents")
app.add_typer(exceptions.app, name="exceptions")
app.add_typer(playbook.app, name="playbook")
app.add_typer(report.app, name="report")
app.add_typer(kafka.app, name="kafka")
app.add_typer(devstack.app, name="devstack")


def main() -> None:
    app()
