"""The ``soc`` command line: the root command and where each command group is mounted.

Each group lives in its own module of this package and is thin: it parses options, calls the
service layer (:mod:`soc.app` and the engine packages) and renders. Times are shown in the
analyst's zone (``SOC_TIMEZONE``, default Asia/Ho_Chi_Minh) with the zone named; everything
stored is UTC.

A configuration error (:class:`soc.config_errors.ConfigError`, raised by
:func:`soc.config.load_settings` in any command) is caught once, by the root command
(:class:`SocGroup`): it prints one line per problem with its file and line, no traceback, and
exits 2; ``soc --debug`` (or ``SOC_DEBUG=1``) shows the traceback too.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from soc.cli import (
    alerts,
    audit,
    config,
    detect,
    devstack,
    events,
    exceptions,
    hunt,
    incidents,
    intel,
    jobs,
    kafka,
    parse,
    playbook,
    report,
    rules,
    run,
    serve,
    store,
    tasks,
    taxii,
    tokens,
    users,
)
from soc.cli.common import config_error_exit
from soc.config_errors import ConfigError


class SocGroup(TyperGroup):
    """The root command: runs the command asked for and turns a configuration error into its
    message and exit code 2 (the traceback too with ``--debug``)."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigError as error:
            config_error_exit(error, debug=bool(ctx.params.get("debug")) or _debug_env())


def _debug_env() -> bool:
    return os.environ.get("SOC_DEBUG", "").strip().lower() in ("1", "true", "yes", "on")


app = typer.Typer(
    cls=SocGroup,
    help="Provincial SOC log analysis: ingest agency logs, run Sigma rules, review alerts.\n\n"
         "Start here: `soc run` (the embedded service: syslog listeners, file inbox, store, "
         "scheduled rules) or `soc hunt FILES --rules detections` (one-shot: read files, run every "
         "rule, print alerts).",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)


@app.callback()
def root(debug: Annotated[bool, typer.Option(
        "--debug", envvar="SOC_DEBUG", help="Show the traceback of a configuration error.")] = False) -> None:
    """The options every command takes (the help is the app's)."""


app.command("hunt")(hunt.hunt)
app.command("run")(run.run)
app.command("serve")(serve.serve)
app.command("detect", help=detect.HELP)(detect.detect)
app.command("parse")(parse.parse)
app.add_typer(rules.app, name="rules")
app.add_typer(alerts.app, name="alerts")
app.add_typer(incidents.app, name="incidents")
app.add_typer(exceptions.app, name="exceptions")
app.add_typer(playbook.app, name="playbook")
app.add_typer(report.app, name="report")
app.add_typer(kafka.app, name="kafka")
app.add_typer(devstack.app, name="devstack")
app.add_typer(config.app, name="config")
app.add_typer(events.app, name="events")
app.add_typer(store.app, name="store")
app.add_typer(tasks.app, name="tasks")
app.add_typer(jobs.app, name="jobs")
app.add_typer(audit.app, name="audit")
app.add_typer(users.app, name="users")
app.add_typer(tokens.app, name="tokens")
app.add_typer(taxii.app, name="taxii")
app.add_typer(intel.app, name="intel")


def main() -> None:
    """The ``soc`` command. Configuration errors inside commands are handled by :class:`SocGroup`;
    one raised before a command runs ends here the same way."""
    try:
        app()
    except ConfigError as error:
        try:
            config_error_exit(error, debug="--debug" in sys.argv[1:] or _debug_env())
        except typer.Exit as done:
            sys.exit(done.exit_code)
