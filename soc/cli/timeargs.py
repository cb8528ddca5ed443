"""``--since`` and ``--until``: the one way every command reads a time from the analyst.

The forms and their meaning are :mod:`soc.timeexpr`'s (shared with the HTTP API): an ISO 8601
date or time (no zone: the analyst's zone; a date alone: its midnight), a time back from now
(``30s``, ``15m``, ``2h``, ``7d``, ``2w``), ``now``, ``today`` or ``yesterday``. Anything else
exits 2 listing these forms.

Typer parses the option text into a :class:`TimeArg` (the form is checked there, so a typo is
a usage error, exit 2); the command then resolves it with the analyst's zone and the CLI clock
(:data:`cli_clock`, which tests replace with :func:`soc.clock.fixed_clock`) into a
:class:`TimeRange` -- half-open ``[since, until)`` in UTC, compared with stored ISO text by
:meth:`TimeRange.bounds` or :meth:`TimeRange.contains`.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Annotated

import typer

from soc.clock import Clock, system_clock
from soc.timeexpr import FORMS, TimeArg, TimeRange, parse_time, resolve_range

__all__ = ["FORMS", "SinceOption", "TimeArg", "TimeRange", "UntilOption", "cli_clock", "cli_now", "parse_time_arg",
           "time_range"]

#: the clock relative times are counted from; tests set ``soc.cli.timeargs.cli_clock``
cli_clock: Clock = system_clock


def parse_time_arg(value: str | TimeArg) -> TimeArg:
    """Check the form of a ``--since``/``--until`` text (typer's ``parser``); raises
    :class:`typer.BadParameter` (exit 2) with the accepted forms."""
    try:
        return parse_time(value)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None


SinceOption = Annotated[TimeArg | None, typer.Option(
    "--since", parser=parse_time_arg, metavar="TIME", show_default=False,
    help="From this time on: 2026-12-07, 2026-12-07T08:30, 2026-12-07T08:30+07:00, 2h, 7d, today, "
         "yesterday (no zone: the analyst's; a date: its midnight).")]
UntilOption = Annotated[TimeArg | None, typer.Option(
    "--until", parser=parse_time_arg, metavar="TIME", show_default=False,
    help="Before this time (same forms as --since).")]


def time_range(since: TimeArg | None, until: TimeArg | None, zone: tzinfo, *,
               clock: Clock | None = None) -> TimeRange:
    """Resolve ``--since``/``--until`` in the analyst's ``zone`` at the CLI clock's now;
    exits 2 when ``--since`` is not before ``--until``."""
    try:
        return resolve_range(since, until, zone, (clock or cli_clock)(), names=("--since", "--until"))
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None


def cli_now() -> datetime:
    """Now, by the CLI clock (:data:`cli_clock`): deadlines and lateness shown by commands."""
    return cli_clock()
