"""The ``soc`` command line. Each command is a thin shell over one module.

Times are shown in the analyst's zone (``SOC_TIMEZONE``, default Asia/Ho_Chi_Minh) with the zone
named; everything stored is UTC.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from soc import detect_cli, incidents_cli, kafka_cli, playbook_cli, report_cli, rules_test_cli
from soc.config import content_dir, load_settings
from soc.ui import alerts_table, console, show_time, zone_note

app = typer.Typer(
    help="Provincial SOC log analysis: ingest agency logs, run Sigma rules, review alerts.\n\n"
         "Start here: `soc run` (the embedded service: syslog listeners, file inbox, store, "
         "scheduled rules) or `soc hunt FILES --rules detections` (one-shot: read files, run every "
         "rule, print alerts).",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
rules_app = typer.Typer(help="Check and inspect detection rules.", no_args_is_help=True)
alerts_app = typer.Typer(help="List and show recorded alerts.", no_args_is_help=True)
devstack_app = typer.Typer(
    help="Real Kafka and OpenSearch for development and tests (Maven Central jars, no Docker).",
    no_args_is_help=True)
app.add_typer(rules_app, name="rules")
app.add_typer(alerts_app, name="alerts")
app.add_typer(devstack_app, name="devstack")
app.add_typer(kafka_cli.app, name="kafka")
app.add_typer(incidents_cli.incidents_app, name="incidents")
app.add_typer(incidents_cli.exceptions_app, name="exceptions")
app.add_typer(playbook_cli.app, name="playbook")
app.add_typer(report_cli.report_app, name="report")
app.command("detect")(detect_cli.detect)
rules_app.command("test")(rules_test_cli.rules_test)

RulesOption = Annotated[
    list[Path] | None,
    typer.Option("--rules", "-r", help="Sigma rule folder or file; repeat for several "
                 "(default: the project's detections/ plus SOC_RULE_DIRS).", show_default=False),
]


def _rule_dirs(rules: list[Path] | None) -> list[Path]:
    settings = load_settings()
    if rules:
        return list(rules)
    return [content_dir("detections"), *settings.rule_dirs]


def _fail(message: str, code: int = 2) -> None:
    console(stderr=True).print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


# -- hunt ---------------------------------------------------------------------------------------
@app.command()
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
    from soc.exceptions import active_exceptions_for
    from soc.hunt import HuntError, run_hunt
    from soc.ui import LEVEL_ORDER

    settings = load_settings()
    zone_name = timezone or settings.timezone
    if min_level not in LEVEL_ORDER:
        _fail(f"--min-level must be one of {', '.join(LEVEL_ORDER)}")
    try:
        result = run_hunt(paths, _rule_dirs(rules), fmt=fmt, timezone=zone_name, agency=agency,
                          progress=progress and output == "table" or progress and sys.stderr.isatty(),
                          exceptions=active_exceptions_for(settings))
    except HuntError as error:
        _fail(str(error))
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


# -- run ----------------------------------------------------------------------------------------
@app.command()
def run(
    rules: RulesOption = None,
    udp: Annotated[str | None, typer.Option(help="Syslog UDP listen address (default from settings: 0.0.0.0:5514); '' disables.")] = None,
    tcp: Annotated[str | None, typer.Option(help="Syslog TCP listen address (RFC 6587 framing); '' disables.")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Where the store and the inbox live (default: ./soc-data).")] = None,
    once: Annotated[bool, typer.Option(help="Ingest what is in the inbox, run every rule once, then stop.")] = False,
) -> None:
    """Run the embedded service: syslog listeners, file inbox, SQLite store, scheduled rules.

    Drop log files into <data-dir>/inbox to ingest them; point agency devices at the syslog
    port. Ctrl-C stops cleanly (pending batches are stored first). The start-up lines say where
    the store is (password masked) and on which addresses and ports the service listens.
    """
    import logging

    from soc.secrets import SecretError, mask_urls_in
    from soc.service import run_service
    from soc.store import StoreError

    # before the settings are read: their warnings (a password in clear text...) are logged
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    overrides = {}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    settings = load_settings(**overrides)
    if udp is not None:
        settings.syslog.udp = udp or None
    if tcp is not None:
        settings.syslog.tcp = tcp or None
    try:
        run_service(settings, _rule_dirs(rules), once=once)
    except (StoreError, SecretError) as error:  # store unreachable, bad URL, secret file missing
        _fail(mask_urls_in(str(error)))


# -- rules --------------------------------------------------------------------------------------
@rules_app.command("check")
def rules_check(
    rules: RulesOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full per-rule report as JSON.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="List every rule, not only problems.")] = False,
) -> None:
    """Compile every rule and print the conversion report.

    Per rule: the datasets it runs on, unmapped fields, unsupported features, errors. Exits 1 when
    a rule cannot be loaded or converted (rules for log sources we do not collect are listed but
    are not errors).
    """
    from collections import Counter

    from soc.detect.compiler import compile_rules
    from soc.detect.rules import load_rules

    dirs = _rule_dirs(rules)
    err = console(stderr=True)
    with err.status(f"loading and compiling rules from {', '.join(map(str, dirs))}..."):
        try:
            loaded = load_rules(dirs)
        except FileNotFoundError as error:
            _fail(str(error))
            return
        ruleset = compile_rules(loaded)
    reports = ruleset.reports()
    if as_json:
        print(json.dumps({"problems": [p.__dict__ for p in ruleset.problems],
                          "rules": [r.as_dict() for r in reports]}, ensure_ascii=False, indent=1))
    else:
        out = console()
        for problem in ruleset.problems:
            out.print(f"[red]load error[/] {problem.path}: {problem.error}")
        for report in sorted(reports, key=lambda r: (r.status, r.path)):
            if report.status == "ok" and not verbose:
                continue
            if report.status == "no_data_source" and not verbose:
                continue
            style = {"error": "red", "warning": "yellow", "ok": "green"}.get(report.status, "dim")
            out.print(f"[{style}]{report.status:15}[/] {report.title} ({report.rule_id}) {report.path}")
            for line in report.errors + report.warnings + report.notes:
                out.print(f"                {line}")
        counts = Counter(r.status for r in reports)
        out.print(f"{len(reports)} rules: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
                  + f"; {len(ruleset.problems)} files could not be loaded")
        if counts.get("no_data_source"):
            out.print(f"({counts['no_data_source']} rules are for log sources no dataset provides; "
                      "`--verbose` lists them)")
    if ruleset.problems or any(r.status == "error" for r in reports):
        raise typer.Exit(1)


@rules_app.command("health")
def rules_health(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Per-rule run health from the store: last run, duration, hits, covered range, errors."""
    from rich.table import Table

    from soc.detect.scheduler import RULE_STATE
    from soc.store import open_configured_store

    settings = load_settings()
    store = open_configured_store(settings)
    docs = list(store.iter_all(RULE_STATE))
    if as_json:
        print(json.dumps([d.body for d in docs], ensure_ascii=False, indent=1))
        return
    table = Table(title="rule health", caption=zone_note(settings.zone))
    for column in ("rule", "last run", "duration s", "alerts (last/total)", "covered until", "error"):
        table.add_column(column, overflow="fold")
    for doc in sorted(docs, key=lambda d: d.body.get("title", "")):
        s = doc.body
        table.add_row(s.get("title", doc.id), show_time(s.get("last_run"), settings.zone),
                      str(s.get("last_duration", "")), f"{s.get('last_hits', 0)}/{s.get('total_alerts', 0)}",
                      show_time(s.get("covered_until"), settings.zone), s.get("last_error") or "")
    console().print(table)


# -- alerts -------------------------------------------------------------------------------------
@alerts_app.command("list")
def alerts_list(
    rule: Annotated[str | None, typer.Option(help="Only this rule id.")] = None,
    agency: Annotated[str | None, typer.Option(help="Only this agency id.")] = None,
    status: Annotated[str | None, typer.Option(help="Only this status (new, acknowledged, closed...).")] = None,
    since: Annotated[str | None, typer.Option(help="Only alerts first seen at/after this ISO time.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table.")] = False,
) -> None:
    """List recorded alerts, newest first."""
    from soc.store import open_configured_store

    settings = load_settings()
    store = open_configured_store(settings)
    where = {k: v for k, v in {"rule.id": rule, "agency": agency, "status": status}.items() if v}
    docs = store.find("alerts", where, time_field="first_seen" if since else None, start=since,
                      sort="first_seen", descending=True, limit=limit)
    alerts = [d.body for d in docs]
    if as_json:
        for alert in alerts:
            print(json.dumps(alert, ensure_ascii=False))
    else:
        console().print(alerts_table(alerts, settings.zone, title=f"{len(alerts)} alerts (newest first)"))


@alerts_app.command("show")
def alerts_show(alert_id: Annotated[str, typer.Argument(help="Alert id (from `soc alerts list --json`).")],
                events: Annotated[int, typer.Option(help="How many matched events to print.")] = 10) -> None:
    """Show one alert with its rule (title, author, references) and matched events."""
    from soc.store import open_configured_store

    settings = load_settings()
    store = open_configured_store(settings)
    doc = store.get("alerts", alert_id)
    if doc is None:
        _fail(f"no alert {alert_id!r}; `soc alerts list --json` shows the ids")
        return
    alert = doc.body
    out = console()
    rule = alert["rule"]
    out.print(f"[bold]{rule['title']}[/]  level {rule['level']}  rule {rule['id']} v{rule.get('version')}")
    out.print(f"author: {rule.get('author')}")
    out.print(f"agency: {alert.get('agency')}  status: {alert.get('status')}  events: {alert.get('event_count')}")
    out.print(f"first seen {show_time(alert['first_seen'], settings.zone)}, last seen "
              f"{show_time(alert['last_seen'], settings.zone)}  ({zone_note(settings.zone)})")
    if alert.get("group"):
        out.print("group: " + ", ".join(f"{k}={v}" for k, v in alert["group"].items()))
    if rule.get("description"):
        out.print(rule["description"])
    for ref in rule.get("references", [])[:5]:
        out.print(f"  ref: {ref}")
    for event in store.get_events(alert.get("event_ids", [])[:events]):
        out.print(f"  {show_time(event.get('@timestamp'), settings.zone)} {event.get('host.name', '')} "
                  f"{event.get('message') or event.get('event.original', '')}")


# -- devstack -----------------------------------------------------------------------------------
@devstack_app.command("up")
def devstack_up(kafka: bool = True, search: bool = True) -> None:
    """Fetch the jars (first time) and start Kafka and OpenSearch on free loopback ports."""
    from soc import devstack

    info = devstack.up(kafka=kafka, search=search)
    print(json.dumps({k: info.get(k) for k in ("kafka_bootstrap", "opensearch_url")}, indent=1))
    print("export SOC_TEST_KAFKA_BOOTSTRAP={kafka_bootstrap} SOC_TEST_OPENSEARCH_URL={opensearch_url}".format(**info))


@devstack_app.command("down")
def devstack_down() -> None:
    """Stop the servers `soc devstack up` started (SIGTERM, then SIGKILL)."""
    from soc import devstack

    print(json.dumps(devstack.down(), indent=1))


@devstack_app.command("status")
def devstack_status() -> None:
    """Show whether the dev servers run, their addresses and memory."""
    from soc import devstack

    print(json.dumps(devstack.status(), indent=1, default=str))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
