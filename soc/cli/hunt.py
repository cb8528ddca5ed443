"""``soc hunt``: read log files, run every rule over their whole time range, print the alerts."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from soc.cli.common import RulesOption, fail
from soc.config import load_settings
from soc.ui import alerts_table, console


def hunt(
    paths: Annotated[list[Path], typer.Argument(help="Log files or folders to read (.log, .json, .evtx, .gz...).")],
    rules: RulesOption = None,
    fmt: Annotated[str, typer.Option("--input-format", "-f", help="Input format, or 'auto' to detect per file: "
                                     "auto, syslog, cef, kv, access, json, evtx.")] = "auto",
    output: Annotated[str, typer.Option("--format", help="Output: table, or jsonl (one JSON alert per line).")] = "table",
    timezone: Annotated[str | None, typer.Option(help="Zone of timestamps without one (default: SOC_TIMEZONE).")] = None,
    agency: Annotated[str, typer.Option(help="Agency id to attribute these logs to.")] = "unknown",
    min_level: Annotated[str, typer.Option(help="Only show alerts at or above: informational, low, medium, "
                                           "high, critical.")] = "informational",
    progress: Annotated[bool, typer.Option(help="Show progress on stderr.")] = True,
) -> None:
    """Read log files, evaluate every rule over their whole time range, print the alerts.

    Like Chainsaw or Zircolite: nothing is kept afterwards. Example:

        soc hunt /var/log/auth.log --rules detections --rules ../sigma/rules
    """
    from soc.app import App
    from soc.detect.suppressions import active_exceptions_for
    from soc.hunt import HuntError, run_hunt
    from soc.ui import LEVEL_ORDER

    settings = load_settings()
    zone_name = timezone or settings.timezone
    if min_level not in LEVEL_ORDER:
        fail(f"--min-level must be one of {', '.join(LEVEL_ORDER)}")
    try:
        ruleset = App(settings, rule_dirs=rules).rules_for("sqlite")  # the scratch store is SQLite
        result = run_hunt(paths, ruleset, fmt=fmt, timezone=zone_name, agency=agency,
                          progress=progress and output == "table" or progress and sys.stderr.isatty(),
                          exceptions=active_exceptions_for(settings))
    except FileNotFoundError as error:
        fail(str(error))
    except HuntError as error:
        fail(str(error))
        return
    alerts = [a for a in result.alerts if LEVEL_ORDER.get(a["rule"]["level"], 0) >= LEVEL_ORDER[min_level]]
    if output == "jsonl":
        for alert in alerts:
            sys.stdout.write(json.dumps(alert, ensure_ascii=False) + "\n")
    else:
        out = console()
        out.print(alerts_table(alerts, settings.zone if not timezone else _zone(zone_name),
                               title=f"{len(alerts)} alerts"))
        out.print(result.summary())
    err = console(stderr=True)
    for problem in result.rule_errors[:20]:
        err.print(f"[yellow]rule problem:[/] {problem}")


def _zone(name: str):  # type: ignore[no-untyped-def]
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


