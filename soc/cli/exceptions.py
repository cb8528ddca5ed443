"""``soc exceptions ...``: detection exceptions (alerts not to raise), a thin shell over
:mod:`soc.detect.suppressions`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

import typer
from rich.table import Table
from rich.text import Text

from soc.cli.common import JsonOption, fail, local_principal, service_layer
from soc.cli.listing import page_of
from soc.cli.timeargs import SinceOption, UntilOption, cli_now, time_range
from soc.detect.suppressions import parse_where
from soc.ui import cell, console, json_text, markup_safe, show_time, zone_note

app = typer.Typer(
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


# -- exceptions ------------------------------------------------------------------------------------
def _exception_row(exception: Any, now: datetime, zone: Any) -> list[Text | str]:
    status = exception.status(now)
    style = {"active": "green", "expired": "yellow", "disabled": "dim"}[status]
    return [cell(exception.id), Text(status, style), cell(exception.scope.describe()),
            cell(" and ".join(c.describe() for c in exception.conditions) or "(every alert of the rule)"),
            cell(exception.owner), cell(exception.reason),
            show_time(exception.expires_at, zone) if exception.expires_at else "never",
            show_time(exception.created_at, zone)]


@app.command("list")
def exceptions_list(
    show_all: Annotated[bool, typer.Option("--all", help="Also expired and disabled ones.")] = False,
    since: SinceOption = None,
    until: UntilOption = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, oldest first.")] = 100,
    as_json: JsonOption = False,
) -> None:
    """List the exceptions in force (with --all: every one ever added), with their ids.

    --since/--until select on the time an exception was added.
    """
    app = service_layer()
    settings = app.settings
    window = time_range(since, until, settings.zone)
    now = cli_now()
    items = [e for e in app.exceptions.list() if window.contains(e.created_at)]
    if not show_all:
        items = [e for e in items if e.status(now) == "active"]
    page = page_of(items, limit)
    if as_json:
        for exception in page.items:
            print(json_text({**exception.model_dump(mode="json"), "status": exception.status(now)}))
        return
    table = Table(title=page.title("exceptions" + ("" if show_all else " in force"), "oldest first"),
                  caption=zone_note(settings.zone))
    for column in ("id", "status", "scope", "condition", "owner", "reason", "expires", "created"):
        table.add_column(column, overflow="fold", no_wrap=column == "id")
    for exception in page.items:
        table.add_row(*_exception_row(exception, now, settings.zone))
    console().print(table)


@app.command("add")
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
) -> None:
    """Add an exception.

    Example: soc exceptions add --rule 0b8e3f4c-2a6d-4e71-8c1f-5d9b7a3e6c21 --where source.ip=10.0.5.20
    --owner 'Phòng CNTT Sở Y tế' --reason 'nightly backup job logs in with a stale key' --expires 30d
    """
    from soc.detect.suppressions import parse_expiry

    scopes = [s for s in (("rule", rule), ("group", group), ("all", "all" if all_rules else None)) if s[1]]
    if len(scopes) != 1:
        fail("give exactly one scope: --rule ID, --group TAG_OR_FOLDER or --all-rules")
    kind, value = scopes[0]
    try:
        conditions = [parse_where(w) for w in where or []]
    except ValueError as error:
        fail(str(error))
    if not owner.strip() or not reason.strip():
        fail("--owner and --reason are required: an exception nobody answers for is not reviewed")
    app = service_layer()
    settings, book = app.settings, app.exceptions
    expires_at = _call(lambda: parse_expiry(expires, cli_now(), settings.zone))
    exception = _call(lambda: book.add(scope={"kind": kind, "value": None if kind == "all" else value},
                                       conditions=conditions, owner=owner, reason=reason,
                                       actor=_actor(), expires_at=expires_at))
    console().print(cell(f"exception {exception.id}: {exception.describe()}; expires "
                         f"{show_time(exception.expires_at, settings.zone) if exception.expires_at else 'never'}"
                         f" ({zone_note(settings.zone)}); applies from the next rule run"))
    if check:
        _warn_scope(exception, settings)


def _warn_scope(exception: Any, settings: Any) -> None:
    """Compile the configured rules and say when the new exception can never apply."""
    from soc.config import content_dir
    from soc.detect.compiler import compile_rules
    from soc.detect.rules import load_rules
    from soc.detect.suppressions import scope_warnings

    try:
        ruleset = compile_rules(load_rules([content_dir("detections"), *settings.rule_dirs]))
    except Exception as error:  # the check is advice: never fail the command for it
        console(stderr=True).print(f"[yellow]warning:[/] could not check the scope against the rules: "
                                   f"{markup_safe(error)}")
        return
    for warning in scope_warnings(exception, ruleset):
        console(stderr=True).print(f"[yellow]warning:[/] {markup_safe(warning)}")


@app.command("disable")
def exceptions_disable(
    exception_id: Annotated[str, typer.Argument(help="Exception id (from `soc exceptions list`).")],
    note: Annotated[str, typer.Option(help="Why it is disabled (kept in the audit).")] = "",
) -> None:
    """Stop an exception from applying (it stays listed with --all, and in the audit)."""

    book = service_layer().exceptions
    exception = _call(lambda: book.disable(exception_id, actor=_actor(), note=note))
    console().print(cell(f"exception {exception.id} disabled"))


@app.command("show")
def exceptions_show(
    exception_id: Annotated[str, typer.Argument(help="Exception id.")],
    as_json: JsonOption = False,
) -> None:
    """Show an exception, its audit trail and the alerts it held back in the rules' last runs."""
    from soc.detect.scheduler import RULE_STATE

    app = service_layer()
    settings, book = app.settings, app.exceptions
    exception = book.get(exception_id)
    if exception is None:
        fail(f"no exception {exception_id!r}; `soc exceptions list --all` shows the ids")
    audit = book.audit(exception_id)
    held = []
    for doc in app.store.iter_all(RULE_STATE):
        for entry in doc.body.get("last_suppressed_by") or []:
            if entry.get("exception") == exception_id:
                held.append((doc.body.get("title", doc.id), entry.get("count", 0), doc.body.get("last_run")))
    now = cli_now()
    if as_json:
        print(json_text({**exception.model_dump(mode="json"), "status": exception.status(now), "audit": audit,
                         "last_runs": [{"rule": r, "suppressed": n, "last_run": t} for r, n, t in held]}, indent=1))
        return
    zone = settings.zone
    out = console()
    row = _exception_row(exception, now, zone)
    out.print(Text.assemble(cell(exception.id, "bold"), " ", row[1], f"   {zone_note(zone)}"))
    for label, value in (("scope", row[2]), ("condition", row[3]), ("owner", row[4]), ("reason", row[5])):
        out.print(Text.assemble(f"{label}: ", value))
    out.print(cell(f"created {show_time(exception.created_at, zone)} by {exception.created_by}; expires {row[6]}"))
    if exception.disabled_at:
        out.print(cell(f"disabled {show_time(exception.disabled_at, zone)} by {exception.disabled_by}"))
    for rule_title, count, last_run in held:
        out.print(cell(f"held back {count} alerts of '{rule_title}' in its last run ({show_time(last_run, zone)})"))
    out.print("[bold]audit[/]:")
    for entry in audit:
        out.print(cell(f"  {show_time(entry['at'], zone)}  {entry['actor']}  {entry['action']}"
                       + (f"  {entry['note']}" if entry.get("note") else "")))
