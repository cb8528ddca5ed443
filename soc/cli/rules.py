"""``soc rules ...``: the conversion report of a rule pack, per-rule run health, the
regression samples of the project's rules, and the ATT&CK coverage map (per agency)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from soc.cli.common import RulesOption, fail, rule_dirs, service_layer
from soc.cli.timeargs import SinceOption
from soc.config import content_dir
from soc.regression import RegressionResult, run_regression
from soc.ui import CountProgress, cell, console, json_text, literal, show_time, zone_note

app = typer.Typer(help="Check and inspect detection rules.", no_args_is_help=True)


@app.command("check")
def rules_check(
    rules: RulesOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full per-rule report as JSON.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="List every rule, not only problems.")] = False,
    progress: Annotated[bool, typer.Option(help="Show progress on stderr: files loaded, rules compiled (a bar "
                                           "on a terminal, a line per tenth otherwise).")] = True,
) -> None:
    """Compile every rule and print the conversion report.

    Per rule: the datasets it runs on, unmapped fields, unsupported features, errors. Exits 1 when
    a rule cannot be loaded or converted (rules for log sources we do not collect are listed but
    are not errors).
    """
    from collections import Counter

    from soc.config import load_settings
    from soc.detect.rulecache import load_compiled, rule_cache_dir

    dirs = rule_dirs(rules)
    err = console(stderr=True)
    if progress:
        err.print(f"checking rules in {', '.join(map(str, dirs))}", markup=False)
    with CountProgress(err, enabled=progress) as shown:
        try:
            ruleset = load_compiled(dirs, cache_dir=rule_cache_dir(load_settings()),
                                    progress=shown.phase("loading rule files"),
                                    compile_progress=shown.phase("compiling rules"))
        except FileNotFoundError as error:
            fail(str(error))
            return
    reports = ruleset.reports()
    if as_json:
        print(json_text({"problems": [p.__dict__ for p in ruleset.problems],
                         "rules": [r.as_dict() for r in reports]}, indent=1))
    else:
        out = console()
        for problem in ruleset.problems:
            out.print(Text.assemble(("load error", "red"), " ", literal(f"{problem.path}: {problem.error}")))
        for report in sorted(reports, key=lambda r: (r.status, r.path)):
            if report.status == "ok" and not verbose:
                continue
            if report.status == "no_data_source" and not verbose:
                continue
            style = {"error": "red", "warning": "yellow", "ok": "green"}.get(report.status, "dim")
            out.print(Text.assemble((f"{report.status:15}", style), " ",
                                    literal(f"{report.title} ({report.rule_id}) {report.path}")))
            for line in report.errors + report.warnings + report.notes:
                out.print(cell(f"                {line}"))
        counts = Counter(r.status for r in reports)
        out.print(f"{len(reports)} rules: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
                  + f"; {len(ruleset.problems)} files could not be loaded"
                  + (f" ({ruleset.cache})" if ruleset.cache is not None else ""))
        if counts.get("no_data_source"):
            out.print(f"({counts['no_data_source']} rules are for log sources no dataset provides; "
                      "`--verbose` lists them)")
    if ruleset.problems or any(r.status == "error" for r in reports):
        raise typer.Exit(1)


@app.command("health")
def rules_health(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Per-rule run health from the store: last run, duration, hits, covered range, errors."""
    from rich.table import Table

    from soc.detect.scheduler import RULE_STATE

    app = service_layer()
    settings, store = app.settings, app.store
    docs = list(store.iter_all(RULE_STATE))
    if as_json:
        print(json_text([d.body for d in docs], indent=1))
        return
    table = Table(title=f"rule health of {len(docs)} rules", caption=zone_note(settings.zone))
    for column in ("rule", "last run", "duration s", "alerts (last/total)", "covered until", "error"):
        table.add_column(column, overflow="fold")
    for doc in sorted(docs, key=lambda d: d.body.get("title", "")):
        s = doc.body
        table.add_row(cell(s.get("title", doc.id)), show_time(s.get("last_run"), settings.zone),
                      cell(s.get("last_duration", "")), f"{s.get('last_hits', 0)}/{s.get('total_alerts', 0)}",
                      show_time(s.get("covered_until"), settings.zone), cell(s.get("last_error") or ""))
    console().print(table)



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
            Text("ok", "green") if item.ok else Text("FAIL", "bold red"),
            cell(item.title or item.rule_id or item.info),
            cell(item.test),
            "" if item.expected is None else str(item.expected),
            "" if item.got is None else str(item.got),
            cell(item.message),
        )
    return table


@app.command("test")
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
    out = console()
    folder = detections or content_dir("detections")
    if not folder.is_dir():
        out.print(Text.assemble((f"rule folder {literal(folder)} does not exist", "red"), ": pass --detections DIR"))
        raise typer.Exit(2)
    results = run_regression(folder, require_coverage=coverage)
    failed = sum(not r.ok for r in results)
    if failed or not failed_only:
        out.print(_table(results, failed_only))
    out.print(f"{len(results) - failed} passed, {failed} failed")
    raise typer.Exit(1 if failed else 0)


@app.command("coverage")
def rules_coverage(
    rules: RulesOption = None,
    since: SinceOption = None,
    agency: Annotated[list[str] | None, typer.Option(
        "--agency", "-a", help="Show these agencies only (repeat); default all.")] = None,
    offline: Annotated[bool, typer.Option(
        "--offline", help="Do not open the store: techniques, rules and log sources only.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole map as JSON.")] = False,
) -> None:
    """ATT&CK techniques the loaded rules detect, the log sources each needs, and per agency
    whether those sources are connected (sent events, by ingest time, since --since; default 7d).

    Rules: the project's detections/ plus the configured packs (rule_dirs), or --rules. Only alerting
    rules that can run count. Techniques are shown as ids (no ATT&CK name table ships with the
    project). A technique is blind at an agency when none of its rules' log sources sent events there.
    """
    from soc.cli.timeargs import cli_now, parse_time_arg, time_range
    from soc.config import load_settings
    from soc.detect.coverage import build_coverage, connected_datasets
    from soc.detect.rulecache import load_compiled, rule_cache_dir
    from soc.store.base import Window

    settings = load_settings()
    try:
        ruleset = load_compiled(rule_dirs(rules), cache_dir=rule_cache_dir(settings))
    except FileNotFoundError as error:
        fail(str(error))
        return
    connected = None
    period: dict[str, object] = {}
    if not offline:
        service = service_layer()
        now = cli_now()
        start = time_range(since or parse_time_arg("7d"), None, settings.zone).start or now
        window = Window(start.timestamp(), now.timestamp(), "event.ingested")
        wanted = list(agency or [a.id for a in service.agencies if not a.merged_into])
        connected = connected_datasets(service.store, window, wanted)
        if agency:
            connected = {a: found for a, found in connected.items() if a in agency}
        period = {"since": start.isoformat(), "until": now.isoformat(), "field": "event.ingested"}
    cov = build_coverage(ruleset, connected, project_dir=content_dir("detections"), period=period)
    if as_json:
        print(json_text(cov.as_dict(), indent=1))
        return
    title = (f"{len(cov.techniques)} ATT&CK techniques and sub-techniques ({len(cov.parent_techniques)} distinct "
             f"techniques) covered by {cov.rules_tagged} of {cov.rules_total} alerting rules")
    table = Table(title=title, caption="" if connected is None else
                  f"connected: the agency sent events of a needed log source since {period['since']}")
    for column in ("technique", "tactics", "rules", "log sources needed"):
        table.add_column(column, overflow="fold")
    if connected is not None:
        table.add_column("agencies with data", justify="right")
        table.add_column("blind in", overflow="fold")
    for entry in cov.techniques:
        rules_text = Text("\n").join(cell(f"{r.title} ({r.level}{', pack' if r.origin == 'pack' else ''})")
                                      for r in entry.rules)
        row = [cell(entry.id), cell(", ".join(entry.tactics)), rules_text, cell(", ".join(entry.datasets))]
        if connected is not None:
            blind = entry.blind_in()
            row += [f"{len(entry.seen_in())}/{len(cov.agencies)}",
                    cell(", ".join(blind[:6]) + (f" (+{len(blind) - 6})" if len(blind) > 6 else ""))]
        table.add_row(*row)
    console().print(table)
