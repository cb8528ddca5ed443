"""``soc config ...``: check the configuration and show what would run with it."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.markup import escape

from soc.cli.common import JsonOption
from soc.config_errors import ConfigError
from soc.ui import console

app = typer.Typer(help="Check the configuration: soc.yml, SOC_ variables, ingest/, detections/, playbooks/.",
                  no_args_is_help=True)


@app.command("check")
def config_check(as_json: JsonOption = False) -> None:
    """Validate soc.yml (or $SOC_CONFIG) and the SOC_ environment variables, the source
    definitions and agencies (ingest/), the rule folders (detections/ plus rule_dirs: loaded and
    compiled) and the playbooks; then print what would run: the store, the sources, the rules per
    dataset, the playbooks and their triggers, the report recipients.

    Every problem is listed, each with its file and line (or variable). Exits 0 when all is
    valid, 1 when something is invalid, 2 when the settings file cannot be read.
    """
    from soc.config_check import check_configuration

    try:
        report = check_configuration()
    except ConfigError as error:  # the file cannot be read: the root command says so and exits 2
        if as_json:
            print(json.dumps({"ok": False, "problems": [p.as_dict() for p in error.problems]}, ensure_ascii=False,
                             indent=1))
        raise
    if as_json:
        print(json.dumps(report.as_dict(), ensure_ascii=False, indent=1))
    else:
        _print(report.as_dict())
    if not report.ok:
        raise typer.Exit(1)


def _print(data: dict[str, Any]) -> None:
    out = console()

    def line(text: str = "", style: str | None = None) -> None:
        out.print(escape(text), style=style, soft_wrap=True, highlight=False)

    line(f"settings: {data['settings_file'] or 'no soc.yml (defaults and SOC_ variables)'}")
    line(f"store: {data['store']}")
    line(f"sources ({len(data['sources'])}; {data['agencies']} agencies):")
    for s in data["sources"]:
        agency = s["agency"] + (f" ({s['agency_name']})" if s["agency_name"] else "")
        reads = f", {s['reads']}" if s["reads"] else ""
        line(f"  {s['name']}: {s['type']}{reads}, format {s['format']}, agency {agency}, zone {s['timezone']}")
    rules = data["rules"]
    if rules:
        statuses = ", ".join(f"{n} {status}" for status, n in rules["statuses"].items())
        helpers = f", {rules['correlation_only']} only feed correlations" if rules["correlation_only"] else ""
        line(f"rules: {rules['loaded']} loaded ({statuses or 'none'}): {rules['runnable']} raise alerts{helpers}; "
             f"compiled for the {rules['dialect']} store")
        for folder in rules["folders"]:
            line(f"  {folder['folder']}: {folder['rules']} rules")
        if rules["per_dataset"]:
            line("  per dataset: " + ", ".join(f"{d} {n}" for d, n in rules["per_dataset"].items()))
    line(f"playbooks ({len(data['playbooks'])}):")
    for p in data["playbooks"]:
        disabled = " (disabled)" if not p["enabled"] else ""
        line(f"  {p['id']}{disabled}: {'; '.join(p['triggers']) or 'no trigger'}")
    line(f"report recipients ({len(data['recipients'])}):")
    for r in data["recipients"]:
        line(f"  {r['name']}: {r['channel']} {r['endpoint']} ({', '.join(r['kinds'])}; profile {r['profile']})")
    for warning in data["warnings"]:
        line(f"warning: {_text(warning)}", style="yellow")
    if data["problems"]:
        line(f"{len(data['problems'])} problem(s):", style="bold red")
        for problem in data["problems"]:
            line(f"  {_text(problem)}", style="red")
    else:
        line("configuration OK", style="green")


def _text(problem: dict[str, str]) -> str:
    return f"{problem['where']}: {problem['message']}" if problem["where"] else problem["message"]
