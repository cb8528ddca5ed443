"""``soc hunt``: read log files, run every rule over their whole time range, print the alerts."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from soc.cli.common import RulesOption, fail
from soc.config import load_settings
from soc.ui import alerts_table, console, json_text, literal

#: rule problems printed on stderr (the rest are counted)
SHOWN_PROBLEMS = 20


def hunt(
    paths: Annotated[list[Path], typer.Argument(help="Log files or folders to read (.log, .json, .evtx, .gz...).")],
    rules: RulesOption = None,
    fmt: Annotated[str, typer.Option("--input-format", "-f", help="Input format, or 'auto' to detect per file: "
                                     "auto, syslog, cef, kv, access, json, evtx.")] = "auto",
    output: Annotated[str, typer.Option("--format", help="Output: table, or jsonl (one JSON alert per line on "
                                        "stdout; the summary goes to stderr).")] = "table",
    timezone: Annotated[str | None, typer.Option(help="Zone of timestamps without one (default: SOC_TIMEZONE).")] = None,
    agency: Annotated[str, typer.Option(help="Agency id to attribute these logs to.")] = "unknown",
    min_level: Annotated[str, typer.Option(help="Only show alerts at or above: informational, low, medium, "
                                           "high, critical.")] = "informational",
    progress: Annotated[bool, typer.Option(help="Show progress on stderr.")] = True,
    allow_rule_errors: Annotated[bool, typer.Option(
        "--allow-rule-errors", help="Exit 0 even when rules could not be loaded, converted or run "
        "(they are still listed on stderr).")] = False,
    allow_no_rules: Annotated[bool, typer.Option(
        "--allow-no-rules", help="Exit 0 even when no rule applies to these logs.")] = False,
) -> None:
    """Read log files, evaluate every rule over their whole time range, print the alerts.

    Like Chainsaw or Zircolite: nothing is kept afterwards. Example:

        soc hunt /var/log/auth.log --rules detections --rules ../sigma/rules

    Exits 0 when the hunt ran (with or without alerts); 1 when a rule could not be loaded,
    converted or run (--allow-rule-errors relaxes this) or when no rule applies to the logs read
    (--allow-no-rules); 2 on bad input. Rules for log sources these files do not contain are not
    errors.
    """
    from soc.app import App
    from soc.detect.suppressions import active_exceptions_for
    from soc.hunt import HuntError, run_hunt
    from soc.ui import LEVEL_ORDER

    settings = load_settings()
    zone_name = timezone or settings.timezone
    if min_level not in LEVEL_ORDER:
        fail(f"--min-level must be one of {', '.join(LEVEL_ORDER)}")
    if output not in ("table", "jsonl"):
        fail(f"--format must be table or jsonl, not {output!r}")
    try:
        ruleset = App(settings, rule_dirs=rules).rules_for("sqlite")  # the scratch store is SQLite
        result = run_hunt(paths, ruleset, fmt=fmt, timezone=zone_name, agency=agency,
                          progress=progress and (output == "table" or sys.stderr.isatty()),
                          exceptions=active_exceptions_for(settings))
    except FileNotFoundError as error:
        fail(str(error))
    except HuntError as error:
        fail(str(error))
        return
    alerts = [a for a in result.alerts if LEVEL_ORDER.get(a["rule"]["level"], 0) >= LEVEL_ORDER[min_level]]
    err = console(stderr=True)
    if output == "jsonl":
        for alert in alerts:
            sys.stdout.write(json_text(alert) + "\n")
        sys.stdout.flush()
        err.print(literal(result.summary()), markup=False)
    else:
        out = console()
        out.print(alerts_table(alerts, settings.zone if not timezone else _zone(zone_name),
                               title=f"{len(alerts)} of {len(result.alerts)} alerts"
                               + (f" (at or above {min_level})" if min_level != "informational" else "")))
        out.print(literal(result.summary()), markup=False)
    for reason in result.refused:
        err.print(Text.assemble(("refused:", "yellow"), " ", literal(reason)))
    for problem in result.rule_errors[:SHOWN_PROBLEMS]:
        err.print(Text.assemble(("rule problem:", "yellow"), " ", literal(problem)))
    if len(result.rule_errors) > SHOWN_PROBLEMS:
        err.print(f"... and {len(result.rule_errors) - SHOWN_PROBLEMS} more rule problems "
                  "(`soc rules check` lists them all)", markup=False)
    failed = False
    if result.rule_errors and not allow_rule_errors:
        err.print(Text.assemble(("error:", "bold red"), f" {len(result.rule_errors)} rule problems (see above); "
                                "exit 1 (--allow-rule-errors to accept them)"))
        failed = True
    if result.rules_run == 0 and not allow_no_rules:
        err.print(Text.assemble(("error:", "bold red"), f" none of the {result.rules_total} rules applies to "
                                "these logs (no rule's log source is in them); exit 1 (--allow-no-rules to "
                                "accept this)"))
        failed = True
    if failed:
        raise typer.Exit(1)


def _zone(name: str):  # type: ignore[no-untyped-def]
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)
