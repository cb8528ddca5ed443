"""``soc incidents ...``: a thin shell over :mod:`soc.incidents.service`. The store is the
configured one (``SOC_STORE_URL`` / ``SOC_DATA_DIR``); times are shown in the analyst's zone."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
import yaml
from rich.table import Table

from soc.cli.common import JsonOption, fail, local_principal, service_layer
from soc.cli.listing import COUNT_LIMIT, page_of
from soc.cli.timeargs import SinceOption, UntilOption, cli_now, time_range
from soc.ui import LEVEL_STYLE, cell, console, json_text, markup_safe, show_time, zone_note

app = typer.Typer(
    help="Incidents: open them from alerts, group, merge, split, move alerts, walk the lifecycle "
         "(new -> triage -> contained -> resolved -> closed), and see the national reporting "
         "deadlines (initial report 5 days after discovery, closing report 5 days after the "
         "response ended; Circular 20/2017) and the Decision 05/2017 'serious' test.\n\n"
         "Examples:\n\n"
         "  soc incidents list --status new --status triage\n\n"
         "  soc incidents open ALERT_ID ALERT_ID --severity high\n\n"
         "  soc incidents status inc-1a2b3c4d5e6f7a8b contained --note 'IP blocked at the firewall'",
    no_args_is_help=True, rich_markup_mode="rich")
T = TypeVar("T")



def _actor() -> str:
    """Who acts: the shell user, as the histories and the audit trail name it (``local:LOGIN``)."""
    return local_principal().label


def _call(action: Callable[[], T]) -> T:
    """Run a service call; its errors (which name the input) become a clean message."""
    from soc.detect.suppressions import ExceptionError
    from soc.incidents.service import IncidentError

    try:
        return action()
    except (IncidentError, ExceptionError) as error:
        fail(str(error))


def _service():  # type: ignore[no-untyped-def]
    app = service_layer()
    return app.settings, app.incidents


# -- incidents -------------------------------------------------------------------------------------
def _serious_text(incident: Any) -> str:
    """The Decision 05/2017 test as markup (system names escaped)."""
    if incident.serious:
        systems = [f"{markup_safe(s.name)} (level {s.level}{', national-critical' if s.national_critical else ''})"
                   for s in incident.affected_systems if (s.level or 0) >= 4 or s.national_critical]
        return (f"[bold red]YES[/] -- {', '.join(systems)} with {markup_safe(', '.join(incident.impacts))}; "
                "escalate at once")
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


@app.command("list")
def incidents_list(
    status: Annotated[list[str] | None, typer.Option(help="Only these statuses (repeat): new, triage, "
                                                     "contained, resolved, closed.", show_default=False)] = None,
    agency: Annotated[str | None, typer.Option(help="Only this agency id.")] = None,
    overdue: Annotated[bool, typer.Option("--overdue", help="Only incidents with an overdue report.")] = False,
    since: SinceOption = None,
    until: UntilOption = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, most recently updated first.")] = 100,
    as_json: JsonOption = False,
) -> None:
    """List incidents with their ids and deadlines; overdue reports are flagged.

    --since/--until select on the discovery time (the first alert's detection).

    Example: soc incidents list --status new --status triage --overdue --since 7d
    """
    from soc.incidents.service import Incidents

    settings, service = _service()
    window = time_range(since, until, settings.zone)
    items = _call(lambda: service.list(status=status or None, agency=agency, limit=COUNT_LIMIT))
    now = cli_now()
    items = [i for i in items if window.contains(i.discovered_at) and (not overdue or i.overdue(now))]
    page = page_of(items, limit)
    if as_json:
        for incident in page.items:
            print(json_text({**Incidents.body(incident), "overdue": incident.overdue(now)}))
        return
    table = Table(title=page.title("incidents", "most recently updated first"), caption=zone_note(settings.zone))
    for column in ("id", "status", "severity", "type", "title", "agency", "alerts", "assignee",
                   "discovered", "initial report due", "closing report due", "serious"):
        table.add_column(column, overflow="fold", no_wrap=column == "id")
    for incident in page.items:
        late = incident.overdue(now)
        table.add_row(cell(incident.id), incident.status, cell(incident.severity, LEVEL_STYLE.get(incident.severity, "")),
                      incident.incident_type, cell(incident.title), cell(incident.agency or "-"),
                      str(len(incident.alert_ids)), cell(incident.assignee or "-"),
                      show_time(incident.discovered_at, settings.zone),
                      _due(incident.notify_due, "initial" in late, settings.zone),
                      _due(incident.closing_due, "closing" in late, settings.zone),
                      "[bold red]yes[/]" if incident.serious else "no")
    console().print(table)


@app.command("show")
def incidents_show(
    incident_id: Annotated[str, typer.Argument(help="Incident id (from `soc incidents list`).")],
    alerts: Annotated[int, typer.Option(min=0, help="How many of its alerts to list.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """Show one incident: lifecycle, type (national and RSIT), the 'serious' test, deadlines,
    affected systems, alerts, notes, reports and the full history.

    Example: soc incidents show inc-1a2b3c4d5e6f7a8b
    """
    from soc.incidents.service import ALERTS, Incidents

    settings, service = _service()
    incident = _call(lambda: service.require(incident_id))
    now = cli_now()
    late = incident.overdue(now)
    if as_json:
        print(json_text({**Incidents.body(incident), "overdue": late}, indent=1))
        return
    zone = settings.zone
    out = console()
    s = markup_safe
    out.print(f"[bold]{s(incident.title)}[/]  ({s(incident.id)})  {zone_note(zone)}")
    if incident.merged_into:
        out.print(f"[yellow]merged into {s(incident.merged_into)}[/]")
    out.print(f"status: {incident.status}   severity: [{LEVEL_STYLE.get(incident.severity, '')}]"
              f"{incident.severity}[/]   verdict: {incident.verdict or '-'}   assignee: {s(incident.assignee or '-')}")
    out.print(f"type: {incident.incident_type} -- {s(incident.type_label)}   RSIT: {s(', '.join(incident.rsit))}")
    out.print(f"agency: {s(incident.agency or '-')}" + (f" (also {s(', '.join(a for a in incident.agencies if a != incident.agency))})"
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
        out.print(f"summary: {s(incident.summary, newlines=True)}")
    if incident.outcome:
        out.print(f"outcome: {s(incident.outcome, newlines=True)}")
    for system in incident.affected_systems:
        out.print(f"affected system: {s(system.name)}  level {system.level or '?'}"
                  + (" national-critical" if system.national_critical else "")
                  + (f"  hosts {s(', '.join(system.hosts))}" if system.hosts else ""))
    if incident.impacts:
        out.print(f"impacts: {s(', '.join(incident.impacts))}")
    if incident.entities:
        out.print(cell("entities: " + "; ".join(f"{k}={', '.join(v[:5])}{' ...' if len(v) > 5 else ''}"
                                                 for k, v in incident.entities.items())))
    out.print(f"[bold]alerts[/] ({len(incident.alert_ids)}):")
    for alert_id in incident.alert_ids[:alerts]:
        doc = service.store.get(ALERTS, alert_id)
        if doc is None:
            out.print(cell(f"  {alert_id} (not found)"))
            continue
        alert = doc.body
        out.print(cell(f"  {alert_id}  {show_time(alert.get('first_seen'), zone)}  "
                       f"{alert.get('rule', {}).get('level')}  {alert.get('rule', {}).get('title')}  "
                       f"{alert.get('event_count', '')} events"))
    if len(incident.alert_ids) > alerts:
        out.print(f"  ... {len(incident.alert_ids) - alerts} more (--alerts N)")
    for note in incident.notes:
        out.print(f"[bold]note[/] {show_time(note.at, zone)} {s(note.author)}: {s(note.text, newlines=True)}")
    for report in incident.reports:
        out.print(f"[bold]report[/] {report.kind} {s(report.report_no)} built {show_time(report.built_at, zone)}, "
                  f"delivered {show_time(report.delivered_at, zone)}")
    out.print("[bold]history[/]:")
    for entry in incident.history:
        out.print(cell(f"  {show_time(entry.at, zone)}  {entry.actor}  {entry.action}  {_detail_text(entry)}"))


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


@app.command("open")
def incidents_open(
    alert_ids: Annotated[list[str], typer.Argument(help="Recorded alert ids (`soc alerts list --json`).")],
    title: Annotated[str | None, typer.Option(help="Title (default: from the leading rule and entity).")] = None,
    severity: Annotated[str | None, typer.Option(help="low, medium, high, critical (default: from rule levels).")] = None,
    incident_type: Annotated[str | None, typer.Option("--type", help="National type (dos, spoofing, malware, "
                             "unauthorized_access, defacement, ransomware, sabotage, espionage, combined, "
                             "other, scan, vulnerable); default from the rules' tags.")] = None,
) -> None:
    """Open an incident from alerts -- or return the one they are in or group with (same agency,
    a shared host, user or source IP within 24 hours of an open incident).

    Example: soc incidents open 3f2a... 9b1c... --severity high
    """
    settings, service = _service()
    docs = [service.store.get("alerts", a) for a in alert_ids]
    missing = [a for a, d in zip(alert_ids, docs, strict=True) if d is None]
    if missing:
        fail(f"no alert {', '.join(missing)}; `soc alerts list --json` shows the ids")
    incident = _call(lambda: service.open_from_alerts([d.body for d in docs if d], actor=_actor(),
                                                      title=title, severity=severity,
                                                      incident_type=incident_type))
    console().print(cell(f"incident {incident.id}: {incident.title} ({len(incident.alert_ids)} alerts, "
                         f"{incident.status}); initial report due {show_time(incident.notify_due, settings.zone)}"))


@app.command("status")
def incidents_status(
    incident_id: Annotated[str, typer.Argument(help="Incident id.")],
    status: Annotated[str, typer.Argument(help="new, triage, contained, resolved or closed (forward; "
                                          "back to triage re-opens).")],
    note: Annotated[str | None, typer.Option(help="Why (kept as a note).")] = None,
) -> None:
    """Move an incident along its lifecycle. Reaching 'resolved' starts the 5 days for the
    closing report.

    Example: soc incidents status inc-1a2b3c4d5e6f7a8b resolved --note 'account locked, password reset'
    """
    settings, service = _service()
    incident = _call(lambda: service.transition(incident_id, status, actor=_actor(), note=note))
    line = f"{incident.id} is now {incident.status}"
    if incident.closing_due and incident.status == "resolved":
        line += f"; closing report due {show_time(incident.closing_due, settings.zone)}"
    console().print(line)


@app.command("assign")
def incidents_assign(
    incident_id: Annotated[str, typer.Argument(help="Incident id.")],
    assignee: Annotated[str, typer.Argument(help="Who handles it ('' to unassign).")],
) -> None:
    """Assign an incident. Example: soc incidents assign inc-1a2b3c4d5e6f7a8b nguyen.van.a"""
    _settings, service = _service()
    incident = _call(lambda: service.assign(incident_id, assignee or None, actor=_actor()))
    console().print(cell(f"{incident.id} assigned to {incident.assignee or 'nobody'}"))


@app.command("note")
def incidents_note(
    incident_id: Annotated[str, typer.Argument(help="Incident id.")],
    text: Annotated[str, typer.Argument(help="The note.")],
) -> None:
    """Add a note. Example: soc incidents note inc-1a2b3c4d5e6f7a8b 'called the agency IT: server patched'"""
    _settings, service = _service()
    incident = _call(lambda: service.add_note(incident_id, text, actor=_actor()))
    console().print(f"{incident.id}: {len(incident.notes)} notes")


@app.command("verdict")
def incidents_verdict(
    incident_id: Annotated[str, typer.Argument(help="Incident id.")],
    verdict: Annotated[str, typer.Argument(help="true_positive, false_positive or benign ('' to clear).")],
) -> None:
    """Record the verdict. False positives and benign incidents owe no national report.

    Example: soc incidents verdict inc-1a2b3c4d5e6f7a8b false_positive
    """
    _settings, service = _service()
    incident = _call(lambda: service.set_verdict(incident_id, verdict or None, actor=_actor()))
    console().print(f"{incident.id}: verdict {incident.verdict or '-'}")


@app.command("merge")
def incidents_merge(
    target: Annotated[str, typer.Argument(help="The incident that remains.")],
    sources: Annotated[list[str], typer.Argument(help="Incidents folded into it (closed, marked merged).")],
) -> None:
    """Merge incidents: alerts, notes, affected systems and impacts move to TARGET.

    Example: soc incidents merge inc-aaaa... inc-bbbb... inc-cccc...
    """
    _settings, service = _service()
    incident = _call(lambda: service.merge(target, sources, actor=_actor()))
    console().print(cell(f"{incident.id}: {len(incident.alert_ids)} alerts after merging {', '.join(sources)}"))


@app.command("split")
def incidents_split(
    incident_id: Annotated[str, typer.Argument(help="The incident to split.")],
    alert_ids: Annotated[list[str], typer.Argument(help="Its alerts that form the new incident.")],
    title: Annotated[str | None, typer.Option(help="Title of the new incident.")] = None,
) -> None:
    """Split alerts off into a new incident.

    Example: soc incidents split inc-1a2b3c4d5e6f7a8b ALERT_ID ALERT_ID --title 'Second attacker'
    """
    _settings, service = _service()
    incident = _call(lambda: service.split(incident_id, alert_ids, actor=_actor(), title=title))
    console().print(cell(f"new incident {incident.id}: {incident.title} ({len(incident.alert_ids)} alerts)"))


@app.command("move")
def incidents_move(
    from_id: Annotated[str, typer.Argument(help="The incident the alerts are in.")],
    to_id: Annotated[str, typer.Argument(help="The incident they go to.")],
    alert_ids: Annotated[list[str], typer.Argument(help="Alert ids.")],
) -> None:
    """Move alerts between incidents. Example: soc incidents move inc-aaaa... inc-bbbb... ALERT_ID"""
    _settings, service = _service()
    incident = _call(lambda: service.move_alerts(alert_ids, from_id, to_id, actor=_actor()))
    console().print(f"{incident.id}: now {len(incident.alert_ids)} alerts")


def _parse_system(text: str) -> dict[str, Any]:
    name, _, level = text.rpartition(":")
    if name and level.isdigit():
        return {"name": name, "level": int(level)}
    return {"name": text}


@app.command("update")
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
            fail(f"{systems_file}: {error}")
        if not isinstance(data, list):
            fail(f"{systems_file}: expected a list of systems")
        fields["affected_systems"] = data
    if not fields:
        fail("nothing to update: give at least one option (see --help)")
    settings, service = _service()
    incident = _call(lambda: service.update(incident_id, actor=_actor(), **fields))
    console().print(f"{incident.id} updated; serious: {_serious_text(incident)}")


