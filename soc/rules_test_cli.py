"""``soc rules test``: run the regression samples of the project's rules and print a table.

A thin shell over :func:`soc.detect.regression.run_regression`; registered on ``rules_app`` in
:mod:`soc.cli`. Exit code 0 when every test passes and every alerting rule has a positive and a
negative sample, 1 otherwise, 2 when the rule folder does not exist.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from soc.config import content_dir
from soc.detect.regression import RegressionResult, run_regression
from soc.ui import console as _console


def _table(results: list[RegressionResult], failed_only: bool) -> Table:
    table = Table(title="Regression tests of the rules", show_lines=False)
    table.add_column("result")
    table.add_column("rule")
    table.add_column("test")
    table.add_column("expected", justify="right")
    table.add_column("got", justify="right")
    table.add_column("problem", overflow="fold")
    for item in results:
        if failed_only and item.ok:
            continue
        table.add_row(
            "[green]ok[/]" if item.ok else "[bold red]FAIL[/]",
            item.title or item.rule_id or item.info,
            item.test,
            "" if item.expected is None else str(item.expected),
            "" if item.got is None else str(item.got),
            item.message,
        )
    return table


def rules_test(
    detections: Annotated[Path | None, typer.Option(
        "--detections", "-d", help="Rule folder holding regression_data/ (default: the project's detections/).",
        show_default=False)] = None,
    failed_only: Annotated[bool, typer.Option("--failed-only", help="List only failed tests.")] = False,
    coverage: Annotated[bool, typer.Option(
        "--coverage/--no-coverage", help="Fail for alerting rules without a positive and a negative sample.")] = True,
) -> None:
    """Run every rule's regression samples (positive and negative) and print a table.

    Each test ingests one sample file the way `soc hunt` does, runs the rules and compares the number of alerts of the tested rule with the match_count in its info.yml.

    Layout and how to add samples: detections/README.md. Exits 1 when a test fails or an alerting rule has no positive or no negative sample.
    """
    console = _console()
    folder = detections or content_dir("detections")
    if not folder.is_dir():
        console.print(f"[red]rule folder {folder} does not exist[/]: pass --detections DIR")
        raise typer.Exit(2)
    results = run_regression(folder, require_coverage=coverage)
    failed = sum(not r.ok for r in results)
    if failed or not failed_only:
        console.print(_table(results, failed_only))
    console.print(f"{len(results) - failed} passed, {failed} failed")
    raise typer.Exit(1 if failed else 0)
