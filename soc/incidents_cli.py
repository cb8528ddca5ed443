"""``soc incidents ...`` and ``soc exceptions ...``: thin shells over :mod:`soc.incidents.service`
and :mod:`soc.exceptions`. The store is the configured one (``SOC_STORE_URL`` / ``SOC_DATA_DIR``),
as for ``soc alerts``. Times are shown in the analyst's zone with the zone named."""

from __future__ import annotations

import getpass
import json
import os
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
import yaml
from rich.markup import escape
from rich.table import Table

from soc.config import load_settings
from soc.ui import LEVEL_STYLE, console, show_time, zone_note

incidents_app = typer.Typer(
    help="Incidents: open them from alerts, group, merge, split, move alerts, walk the lifecycle "
         "(new -> triage -> contained -> resolved -> closed), and see the national reporting "
         "deadlines (initial report 5 days after discovery, closing report 5 days after the "
         "response ended; Circular 20/2017) and the Decision 05/2017 'serious' test.\n\n"
         "Examples:\n\n"
         "  soc incidents list --status new --status triage\n\n"
         "  soc incidents open ALERT_ID ALERT_ID --severity high\n\n"
         "  soc incidents status inc-1a2b3c4d5e6f7a8b contained --note 'IP blocked at the firewall'",
    no_args_is_help=True, rich_markup_mode="rich")
exceptions_app = typer.Typer(
    help="Detection exceptions: alerts not to raise, with an owner, a reason and an expiry. "
         "They apply at detection time (soc run, soc hunt); suppressed alerts are counted in rule "
         "health, never dropped silently; every change is audited.\n\n"
         "Examples:\n\n"
         "  soc exceptions add --rule 0b8e3f4c-2a6d-4e71-8c1f-5d9b7a3e6c21 --where source.ip=10.0.5.20 "
         "--owner 'Sở TT&TT' --reason 'backup job with a stale password' --expires 30d\n\n"
         "  soc exceptions add --group attack.discovery --where 'source.ip cidr 10.10.0.0/24' "
         "--owner soc --reason 'SOC vulnerability scanner'\n\n"
         "  soc exceptions list --all",
    no_args_is_help=True, rich_markup_mode="rich")

ActorOption = Annotated[str | None, typer.Option(
    "--actor", help="Who does this (recorded in the history; default: $SOC_ACTOR or your login).",
    show_default=False)]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
T = TypeVar("T")


def _actor(actor: str | None) -> str:
    if actor:
        return actor
    try:
        return os.environ.get("SOC_ACTOR") or getpass.getuser()
    except Exception:  # no login name in a container
        return "analyst"


def _fail(message: str) -> NoReturn:
    console(stderr=True).print(f"[bold red]error:[/] {message}")
    raise typer.Exit(2)


def _store():  # type: ignore[no-untyped-def]
    from soc.store import open_configured_store

    settings = load_settings()
    return settings, open_configured_store(settings)


def _service():  # type: ignore[no-untyped-def]
    from soc.incidents.service import Incidents

    settings, store = _store()
    return settings, Incidents(store)


def _call(action: Callable[[], T]) -> T:
    """Run a service call; its errors (which name the input) become a clean message."""
    from soc.exceptions import ExceptionError
    from soc.incidents.service import IncidentError

    try:
        return action()
    except (IncidentError, ExceptionError) as error:
        _fail(str(error))


# -- incidents -------------------------------------------------------------------------------------
def _serious_text(incident: Any) -> str:
    if incident.serious:
        systems = [f"{s.name} (level {s.level}{', national-critical' if s.national_critical else ''})"
                   for s in incident.affected_systems if (s.level or 0) >= 4 or s.national_critical]
        return f"[bold red]YES[/] -- {', '.join(systems)} with {', '.join(incident.impacts)}; escalate at once"
    why = []
    if not any((s.level or 0) >= 4 or s.national_critical for s in incident.affected_systems):
        why.append("no affected system of level 4-5 or national-critical")
    if not incident.impacts:
        why.append("no Decision 05 impact recorded")
    return "no (" + "; ".join(why) + ")"


def _due(value: str | None, late: bool, zone: Any) -> str:
    if not value:
        return "-"
    text = show_time(value, zone)
    return f"[bold red]{text} OVERDUE[/]" if late else text


@incidents_app.command("list")
def incidents_list(
    status: Annotated[list[str] | None, typer.Option(help="Only these statuses (repeat): new, triage, "
                                                     "contained, resolved, closed.", show_default=False)] = None,
    agency: Annotated[str | None, typer.Option(help="Only this agency id.")] = None,
    overdue: Annotated[bool, typer.Option("--overdue", help="Only incidents with an overdue report.")] = False,
    limit: Annotated[int, typer.Option(help="At most this many, most recently updated first.")] = 100,
    as_json: JsonOption = False,
) -> None:
    """List incidents with their deadlines; overdue reports are flagged.

    Example: soc incidents list --status new --status triage --overdue
    """
    from soc.incidents.service import Incidents

    settings, service = _service()
    items = _call(lambda: service.list(status=status or None, agency=agency, limit=limit))
    now = datetime.now(UTC)
    if overdue:
        items = [i for i in items if i.overdue(now)]
    if as_json:
        for incident in items:
            print(json.dumps({**Incidents.body(incident), "overdue": incident.overdue(now)}, ensure_ascii=False))
        return
    table = Table(title=f"{len(items)} incidents", caption=zone_note(settings.zone))
    for column in ("id", "status", "severity", "type", "title", "agency", "alerts", "assignee",
                   "discovered", "initial report due", "closing report due", "serious"):
        table.add_column(column, overflow="fold")
    for incident in items:
        late = incident.overdue(now)
        table.add_row(incident.id, incident.status,
                      f"[{LEVEL_STYLE.get(incident.severity, '')}]{incident.severity}[/]",
                      incident.incident_type, escape(incident.title), incident.agency or "-", str(len(incident.alert_ids)),
                      incident.assignee or "-", show_time(incident.discovered_at, settings.zone),
                      _due(incident.notify_due, "initial" in late, settings.zone),
                      _due(incident.closing_due, "closing" in late, settings.zone),
                      "[bold red]yes[/]" if incident.serious else "no")
    console().print(table)


@incidents_app.command("show")
def incidents_show(
    incident_id: Annotated[str, typer.Argument(help="Incident id (from `soc incidents list`).")],
    alerts: Annotated[int, typer.Option(help="How many of its alerts to list.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """Show one incident: lifecycle, type (national and RSIT), the 'serious' test, deadlines,
    affected systems, alerts, notes, reports and the full history.

    Example: soc incidents show inc-1a2b3c4d5e6f7a8b
    """
    from soc.incidents.service import ALERTS, Incidents

    settings, service = _service()
    incident = _call(lambda: service.require(incident_id))
    now = datetime.now(UTC)
    late = incident.overdue(now)
    if as_json:
        print(json.dumps({**Incidents.body(incident), "overdue": late}, ensure_ascii=False, indent=1))
        return
    zone = settings.zone
    out = console()
    out.print(f"[bold]{escape(incident.title)}[/]  ({incident.id})  {zone_note(zone)}")
    if incident.merged_into:
        out.print(f"[yellow]merged into {incident.merged_into}[/]")
    out.print(f"status: {incident.status}   severity: [{LEVEL_STYLE.get(incident.severity, '')}]"
              f"{incident.severity}[/]   verdict: {incident.verdict or '-'}   assignee: {incident.assignee or '-'}")
    out.print(f"type: {incident.incident_type} -- {incident.type_label}   RSIT: {', '.join(incident.rsit)}")
    out.print(f"agency: {incident.agency or '-'}" + (f" (also {', '.join(a for a in incident.agencies if a != incident.agency)})"
                                                     if len(incident.agencies) > 1 else ""))
    out.print(f"serious (Decision 05/2017): {_serious_text(incident)}")
    out.print(f"discovered: {show_time(incident.discovered_at, zone)}   activity: "
              f"{show_time(incident.first_seen, zone)} .. {show_time(incident.last_seen, zone)}")
    out.print(f"initial report (Mẫu 03) due: {_due(incident.notify_due, 'initial' in late, zone)}")
    closing = _due(incident.closing_due, "closing" in late, zone) if incident.closing_due else \
        "5 days after the response ends (status resolved)"
    out.print(f"closing report (Mẫu 04) due: {closing}")
    if incident.response_ended_at:
        out.print(f"response ended: {show_time(incident.response_ended_at, zone)}"
                  + (f"   closed: {show_time(incident.closed_at, zone)}" if incident.closed_at else ""))
    if incident.summary:
        out.print(f"summary: {escape(incident.summary)}")
    if incident.outcome:
        out.print(f"outcome: {escape(incident.outcome)}")
    for system in incident.affected_systems:
        out.print(f"affected system: {system.name}  level {system.level or '?'}"
                  + (" national-critical" if system.national_critical else "")
                  + (f"  hosts {', '.join(system.hosts)}" if system.hosts else ""))
    if incident.impacts:
        out.print(f"impacts: {', '.join(incident.impacts)}")
    if incident.entities:
        out.print("entities: " + "; ".join(f"{k}={', '.join(v[:5])}{' ...' if len(v) > 5 else ''}"
                                            for k, v in incident.entities.items()))
    out.print(f"[bold]alerts[/] ({len(incident.alert_ids)}):")
    for alert_id in incident.alert_ids[:alerts]:
        doc = service.store.get(ALERTS, alert_id)
        if doc is None:
            out.print(f"  {alert_id} (not found)")
            continue
        alert = doc.body
        out.print(f"  {alert_id}  {show_time(alert.get('first_seen'), zone)}  {alert.get('rule', {}).get('level')}  "
                  f"{alert.get('rule', {}).get('title')}  {alert.get('event_count', '')} events")
    if len(incident.alert_ids) > alerts:
        out.print(f"  ... {len(incident.alert_ids) - alerts} more (--alerts N)")
    for note in incident.notes:
        out.print(f"[bold]note[/] {show_time(note.at, zone)} {note.author}: {escape(note.text)}")
    for report in incident.reports:
        out.print(f"[bold]report[/] {report.kind} {report.report_no} built {show_time(report.built_at, zone)}, "
                  f"delivered {show_time(report.delivered_at, zone)}")
    out.print("[bold]history[/]:")
    for entry in incident.history:
        out.print(f"  {show_time(entry.at, zone)}  {entry.actor}  {entry.action}  {escape(_detail_text(entry))}")


def _compact(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(str(v.get("name", v)) if isinstance(v, dict) else str(v) for v in value) + "]"
    return "-" if value in (None, "") else str(value)


def _detail_text(entry: Any) -> str:
    """One line per history entry: ``severity: medium -> high``, ``count=3``, ``from=new``..."""
    parts = []
    for key, value in entry.detail.items():
        if key == "alert_ids" or value in ("", None):
            continue
        if isinstance(value, dict) and set(value) == {"from", "to"}:
            parts.append(f"{key}: {_compact(value['from'])} -> {_compact(value['to'])}")
        else:
            parts.append(f"{key}={_compact(value)}")
    return ", ".join(parts)


@incidents_app.command("open")
def incidents_open(
    alert_ids: Annotated[list[str], typer.Argument(help="Recorded alert ids (`soc alerts list --json`).")],
    title: Annotated[str | None, typer.Option(help="Title (default: from the leading rule and entity).")] = None,
    severity: Annotated[str | None, typer.Option(help="low, medium, high, critical (default: from rule levels).")] = None,
    incident_type: Annotated[str | None, typer.Option("--type", help="National type (dos, spoofing, malware, "
                             "unauthorized_access, defacement, ransomware, sabotage, espionage, combined, "
                             "other, scan, vulnerable); default from the rules' tags.")] = None,
    actor: ActorOption = None,
) -> None:
    """Open an incident from alerts -- or return the one they are in or group with (same agency,
    a shared host, user or source IP within 24 hours of an open incident).

    Example: soc incidents open 3f2a... 9b1c... --severity high
    """
    settings, service = _service()
    docs = [service.store.get("alerts", a) for a in alert_ids]
    missing = [a for a, d in zip(alert_ids, docs, strict=True) if d is None]
    if missing:
        _fail(f"no alert {', '.join(missing)}; `soc alerts list --json` shows the ids")
    incident = _call(lambda: service.open_from_alerts([d.body for d in docs if d], actor=_actor(actor),
                                                      title=title, severity=severity,
                                                      incident_type=incident_type))
    console().print(f"incident {incident.id}: {incident.title} ({len(incident.alert_ids)} alerts, "
                    f"{incident.status}); initial report due {show_time(incident.notify_due, settings.zone)}")


@incidents_app.command("status")
def incidents_status(
    incident_id: Annotated[str, typer.Argument(help="Incident id.")],
    status: Annotated[str, typer.Argument(help="new, triage, contained, resolved or closed (forward; "
                                          "back to triage re-opens).")],
    note: Annotated[str | None, typer.Option(help="Why (kept as a note).")] = None,
    actor: ActorOption = None,
) -> None:
    """Move an incident along its lifecycle. Reaching 'resolved' starts the 5 days for the
    closing report.

    Example: soc incidents status inc-1a2b3c4d5e6f7a8b resolved --note 'account locked, password reset'
    """
    settings, service = _service()
    incident = _call(lambda: service.transition(incident_id, status, actor=_actor(actor), note=note))
    line = f"{incident.id} is now {incident.status}"
    if incident.closing_due and incident.status == "resolved":
        line += f"; closing report due {show_time(incident.closing_due, settings.zone)}"
    console().print(line)


@incidents_app.command("assign")
def incidents_assign(
    incident_id: Annotated[str, typer.Argument(help="Incident id.")],
    assignee: Annotated[str, typer.Argument(help="Who handles it ('' to unassign).")],
    actor: ActorOption = None,
) -> None:
    """Assign an incident. Example: soc incidents assign inc-1a2b3c4d5e6f7a8b nguyen.van.a"""
    _settings, service = _service()
    incident = _call(lambda: service.assign(incident_id, assignee or None, actor=_actor(actor)))
    console().print(f"{incident.id} assigned to {incident.assignee or 'nobody'}")


@incidents_app.command("note")
def incidents_note(
    incident_id: Annotated[str, typer.Argument(help="Incident id.")],
    text: Annotated[str, typer.Argument(help="The note.")],
    actor: ActorOption = None,
) -> None:
    """Add a note. Example: soc incidents note inc-1a2b3c4d5e6f7a8b 'called the agency IT: server patched'"""
    _settings, service = _service()
    incident = _call(lambda: service.add_note(incident_id, text, actor=_actor(actor)))
    console().print(f"{incident.id}: {len(incident.notes)} notes")


@incidents_app.command("verdict")
def incidents_verdict(
    incident_id: Annotated[str, typer.Argument(help="Incident id.")],
    verdict: Annotated[str, typer.Argument(help="true_positive, false_positive or benign ('' to clear).")],
    actor: ActorOption = None,
) -> None:
    """Record the verdict. False positives and benign incidents owe no national report.

    Example: soc incidents verdict inc-1a2b3c4d5e6f7a8b false_positive
    """
    _settings, service = _service()
    incident = _call(lambda: service.set_verdict(incident_id, verdict or None, actor=_actor(actor)))
    console().print(f"{incident.id}: verdict {incident.verdict or '-'}")


@incidents_app.command("merge")
def incidents_merge(
    target: Annotated[str, typer.Argument(help="The incident that remains.")],
    sources: Annotated[list[str], typer.Argument(help="Incidents folded into it (closed, marked merged).")],
    actor: ActorOption = None,
) -> None:
    """Merge incidents: alerts, notes, affected systems and impacts move to TARGET.

    Example: soc incidents merge inc-aaaa... inc-bbbb... inc-cccc...
    """
    _settings, service = _service()
    incident = _call(lambda: service.merge(target, sources, actor=_actor(actor)))
    console().print(f"{incident.id}: {len(incident.alert_ids)} alerts after merging {', '.join(sources)}")


@incidents_app.command("split")
def incidents_split(
    incident_id: Annotated[str, typer.Argument(help="The incident to split.")],
    alert_ids: Annotated[list[str], typer.Argument(help="Its alerts that form the new incident.")],
    title: Annotated[str | None, typer.Option(help="Title of the new incident.")] = None,
    actor: ActorOption = None,
) -> None:
    """Split alerts off into a new incident.

    Example: soc incidents split inc-1a2b3c4d5e6f7a8b ALERT_ID ALERT_ID --title 'Second attacker'
    """
    _settings, service = _service()
    incident = _call(lambda: service.split(incident_id, alert_ids, actor=_actor(actor), title=title))
    console().print(f"new incident {incident.id}: {incident.title} ({len(incident.alert_ids)} alerts)")


@incidents_app.command("move")
def incidents_move(
    from_id: Annotated[str, typer.Argument(help="The incident the alerts are in.")],
    to_id: Annotated[str, typer.Argument(help="The incident they go to.")],
    alert_ids: Annotated[list[str], typer.Argument(help="Alert ids.")],
    actor: ActorOption = None,
) -> None:
    """Move alerts between incidents. Example: soc incidents move inc-aaaa... inc-bbbb... ALERT_ID"""
    _settings, service = _service()
    incident = _call(lambda: service.move_alerts(alert_ids, from_id, to_id, actor=_actor(actor)))
    console().print(f"{incident.id}: now {len(incident.alert_ids)} alerts")


def _parse_system(text: str) -> dict[str, Any]:
    name, _, level = text.rpartition(":")
    if name and level.isdigit():
        return {"name": name, "level": int(level)}
    return {"name": text}


@incidents_app.command("update")
def incidents_update(
    incident_id: Annotated[str, typer.Argument(help="Incident id.")],
    title: Annotated[str | None, typer.Option(help="New title.")] = None,
    severity: Annotated[str | None, typer.Option(help="low, medium, high, critical.")] = None,
    incident_type: Annotated[str | None, typer.Option("--type", help="National type code (see `open --help`).")] = None,
    summary: Annotated[str | None, typer.Option(help="Short description (Mẫu 03 'Mô tả sơ bộ').")] = None,
    outcome: Annotated[str | None, typer.Option(help="What happened and how it was resolved (Mẫu 04).")] = None,
    impact: Annotated[list[str] | None, typer.Option(help="Decision 05 impact (repeat; replaces the list): "
                      "service_interrupted, secret_data_exposure, irrecoverable_integrity_loss, "
                      "loss_of_control, wide_spread_risk.", show_default=False)] = None,
    system: Annotated[list[str] | None, typer.Option(help="Affected system as NAME:LEVEL (repeat; replaces the "
                      "list), e.g. 'Cổng thông tin điện tử tỉnh:3'.", show_default=False)] = None,
    systems_file: Annotated[Path | None, typer.Option(help="YAML/JSON list of affected systems with all "
                            "fields (name, level, national_critical, operator, owner, hosts, public_ips, "
                            "domains, services, controls, os); replaces the list.")] = None,
    actor: ActorOption = None,
) -> None:
    """Change fields of an incident. Title, severity and type set here are kept when more alerts
    are attached later.

    Example: soc incidents update inc-1a2b... --severity critical --system 'Cổng dịch vụ công:4' --impact service_interrupted
    """
    fields: dict[str, Any] = {k: v for k, v in {"title": title, "severity": severity, "incident_type": incident_type,
                                                "summary": summary, "outcome": outcome}.items() if v is not None}
    if impact is not None:
        fields["impacts"] = impact
    if system:
        fields["affected_systems"] = [_parse_system(s) for s in system]
    if systems_file is not None:
        try:
            data = yaml.safe_load(systems_file.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as error:
            _fail(f"{systems_file}: {error}")
        if not isinstance(data, list):
            _fail(f"{systems_file}: expected a list of systems")
        fields["affected_systems"] = data
    if not fields:
        _fail("nothing to update: give at least one option (see --help)")
    settings, service = _service()
    incident = _call(lambda: service.update(incident_id, actor=_actor(actor), **fields))
    console().print(f"{incident.id} updated; serious: {_serious_text(incident)}")


# -- exceptions ------------------------------------------------------------------------------------
_WHERE = re.compile(r"^\s*(?P<field>[^\s=]+)\s+(?P<op>equals|in|cidr|wildcard)\s+(?P<value>.+?)\s*$")


def parse_where(text: str) -> dict[str, Any]:
    """``source.ip=1.2.3.4`` | ``user.name=svc_*`` (wildcard) | ``source.ip in a,b`` |
    ``source.ip cidr 10.0.0.0/8,192.168.0.0/16`` | ``field equals v`` | ``field wildcard v``."""
    match = _WHERE.match(text)
    if match:
        op, value = match["op"], match["value"]
        values = [v.strip() for v in value.split(",") if v.strip()] if op in ("in", "cidr") else value
        return {"field": match["field"], "op": op, "value": values}
    field, sep, value = text.partition("=")
    if not sep or not field.strip():
        raise ValueError(f"--where {text!r}: write FIELD=VALUE, 'FIELD in A,B', 'FIELD cidr NET' "
                         "or 'FIELD wildcard PATTERN'")
    op = "wildcard" if any(c in value for c in "*?") else "equals"
    return {"field": field.strip(), "op": op, "value": value.strip()}


def _exception_row(exception: Any, now: datetime, zone: Any) -> list[str]:
    status = exception.status(now)
    style = {"active": "green", "expired": "yellow", "disabled": "dim"}[status]
    return [exception.id, f"[{style}]{status}[/]", exception.scope.describe(),
            " and ".join(c.describe() for c in exception.conditions) or "(every alert of the rule)",
            escape(exception.owner), escape(exception.reason), show_time(exception.expires_at, zone) if exception.expires_at else "never",
            show_time(exception.created_at, zone)]


@exceptions_app.command("list")
def exceptions_list(
    show_all: Annotated[bool, typer.Option("--all", help="Also expired and disabled ones.")] = False,
    as_json: JsonOption = False,
) -> None:
    """List the exceptions in force (with --all: every one ever added)."""
    from soc.exceptions import Exceptions

    settings, store = _store()
    now = datetime.now(UTC)
    items = Exceptions(store).list(status=None if show_all else "active")
    if as_json:
        for exception in items:
            print(json.dumps({**exception.model_dump(mode="json"), "status": exception.status(now)}, ensure_ascii=False))
        return
    table = Table(title=f"{len(items)} exceptions" + ("" if show_all else " in force"), caption=zone_note(settings.zone))
    for column in ("id", "status", "scope", "condition", "owner", "reason", "expires", "created"):
        table.add_column(column, overflow="fold")
    for exception in items:
        table.add_row(*_exception_row(exception, now, settings.zone))
    console().print(table)


@exceptions_app.command("add")
def exceptions_add(
    rule: Annotated[str | None, typer.Option(help="Scope: one rule, by id (the rule that raises the alert).")] = None,
    group: Annotated[str | None, typer.Option(help="Scope: rules with a tag (glob, e.g. 'attack.t1110*') or "
                                              "in a rules folder (contains '/', e.g. 'linux/ssh').")] = None,
    all_rules: Annotated[bool, typer.Option("--all-rules", help="Scope: every rule.")] = False,
    where: Annotated[list[str] | None, typer.Option(help="Condition (repeat; all must hold): FIELD=VALUE "
                     "(a * or ? makes it a wildcard), 'FIELD in A,B,C', 'FIELD cidr 10.0.0.0/8,...'. "
                     "Fields are event or alert fields: source.ip, user.name, host.name, url.path, agency, "
                     "rule.level ...", show_default=False)] = None,
    owner: Annotated[str, typer.Option(help="Who answers for this exception (person or unit).")] = "",
    reason: Annotated[str, typer.Option(help="Why these alerts are expected.")] = "",
    expires: Annotated[str, typer.Option(help="When it stops applying: 30d, 12h, 2w, an ISO date "
                                         "(in your zone unless it names one; a date counts through its end), or 'never'.")] = "90d",
    check: Annotated[bool, typer.Option(help="Check the scope against the configured rules and warn when "
                                        "the exception could never apply (unknown rule id, a rule that "
                                        "raises no alerts itself, an empty group).")] = True,
    actor: ActorOption = None,
) -> None:
    """Add an exception.

    Example: soc exceptions add --rule 0b8e3f4c-2a6d-4e71-8c1f-5d9b7a3e6c21 --where source.ip=10.0.5.20
    --owner 'Phòng CNTT Sở Y tế' --reason 'nightly backup job logs in with a stale key' --expires 30d
    """
    from soc.exceptions import Exceptions, parse_expiry

    scopes = [s for s in (("rule", rule), ("group", group), ("all", "all" if all_rules else None)) if s[1]]
    if len(scopes) != 1:
        _fail("give exactly one scope: --rule ID, --group TAG_OR_FOLDER or --all-rules")
    kind, value = scopes[0]
    try:
        conditions = [parse_where(w) for w in where or []]
    except ValueError as error:
        _fail(str(error))
    if not owner.strip() or not reason.strip():
        _fail("--owner and --reason are required: an exception nobody answers for is not reviewed")
    settings, store = _store()
    book = Exceptions(store)
    expires_at = _call(lambda: parse_expiry(expires, datetime.now(UTC), settings.zone))
    exception = _call(lambda: book.add(scope={"kind": kind, "value": None if kind == "all" else value},
                                       conditions=conditions, owner=owner, reason=reason,
                                       actor=_actor(actor), expires_at=expires_at))
    console().print(f"exception {exception.id}: {escape(exception.describe())}; expires "
                    f"{show_time(exception.expires_at, settings.zone) if exception.expires_at else 'never'}"
                    f" ({zone_note(settings.zone)}); applies from the next rule run")
    if check:
        _warn_scope(exception, settings)


def _warn_scope(exception: Any, settings: Any) -> None:
    """Compile the configured rules and say when the new exception can never apply."""
    from soc.config import content_dir
    from soc.detect.compiler import compile_rules
    from soc.detect.rules import load_rules
    from soc.exceptions import scope_warnings

    try:
        ruleset = compile_rules(load_rules([content_dir("detections"), *settings.rule_dirs]))
    except Exception as error:  # the check is advice: never fail the command for it
        console(stderr=True).print(f"[yellow]warning:[/] could not check the scope against the rules: {error}")
        return
    for warning in scope_warnings(exception, ruleset):
        console(stderr=True).print(f"[yellow]warning:[/] {escape(warning)}")


@exceptions_app.command("disable")
def exceptions_disable(
    exception_id: Annotated[str, typer.Argument(help="Exception id (from `soc exceptions list`).")],
    note: Annotated[str, typer.Option(help="Why it is disabled (kept in the audit).")] = "",
    actor: ActorOption = None,
) -> None:
    """Stop an exception from applying (it stays listed with --all, and in the audit)."""
    from soc.exceptions import Exceptions

    _settings, store = _store()
    exception = _call(lambda: Exceptions(store).disable(exception_id, actor=_actor(actor), note=note))
    console().print(f"exception {exception.id} disabled")


@exceptions_app.command("show")
def exceptions_show(
    exception_id: Annotated[str, typer.Argument(help="Exception id.")],
    as_json: JsonOption = False,
) -> None:
    """Show an exception, its audit trail and the alerts it held back in the rules' last runs."""
    from soc.detect.scheduler import RULE_STATE
    from soc.exceptions import Exceptions

    settings, store = _store()
    book = Exceptions(store)
    exception = book.get(exception_id)
    if exception is None:
        _fail(f"no exception {exception_id!r}; `soc exceptions list --all` shows the ids")
    audit = book.audit(exception_id)
    held = []
    for doc in store.iter_all(RULE_STATE):
        for entry in doc.body.get("last_suppressed_by") or []:
            if entry.get("exception") == exception_id:
                held.append((doc.body.get("title", doc.id), entry.get("count", 0), doc.body.get("last_run")))
    now = datetime.now(UTC)
    if as_json:
        print(json.dumps({**exception.model_dump(mode="json"), "status": exception.status(now), "audit": audit,
                          "last_runs": [{"rule": r, "suppressed": n, "last_run": t} for r, n, t in held]},
                         ensure_ascii=False, indent=1))
        return
    zone = settings.zone
    out = console()
    row = _exception_row(exception, now, zone)
    out.print(f"[bold]{exception.id}[/] {row[1]}   {zone_note(zone)}")
    out.print(escape(f"scope: {row[2]}\ncondition: {row[3]}\nowner: {exception.owner}\nreason: {exception.reason}"))
    out.print(f"created {show_time(exception.created_at, zone)} by {exception.created_by}; expires {row[6]}")
    if exception.disabled_at:
        out.print(f"disabled {show_time(exception.disabled_at, zone)} by {exception.disabled_by}")
    for rule_title, count, last_run in held:
        out.print(f"held back {count} alerts of '{rule_title}' in its last run ({show_time(last_run, zone)})")
    out.print("[bold]audit[/]:")
    for entry in audit:
        out.print(f"  {show_time(entry['at'], zone)}  {entry['actor']}  {entry['action']}"
                  + (f"  {entry['note']}" if entry.get("note") else ""))


if __name__ == "__main__":  # pragma: no cover
    incidents_app(sys.argv[1:])
