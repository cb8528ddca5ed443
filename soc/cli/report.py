"""``soc report ...``: build, verify, send and track national reports (docs/reporting.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from soc.cli.common import fail, service_layer
from soc.cli.listing import find_page, page_of
from soc.cli.timeargs import SinceOption, UntilOption, cli_now, time_range
from soc.config import load_settings
from soc.ui import cell, console, json_text, show_time, zone_note

app = typer.Typer(
    help="National reports: Mẫu 03/04 from an incident, Mẫu 05 and monitoring summaries, as JSON, "
         ".docx, STIX 2.1 and MISP per the recipient's profile; signed (CMS .p7s) and delivered "
         "through an outbox (HTTPS, e-mail \"[TBSC]\", drop folder). See docs/reporting.md.",
    no_args_is_help=True)




def _store():  # type: ignore[no-untyped-def]
    app = service_layer()
    return app.settings, app.store


@app.command("build")
def build(
    incident: Annotated[str | None, typer.Option("--incident", "-i", help="Incident id: build Mẫu 03/04 for it.")] = None,
    kind: Annotated[str, typer.Option(help="With --incident: initial (Mẫu 03), update, or closing (Mẫu 04).")] = "initial",
    summary: Annotated[str | None, typer.Option(help="Build a summary instead: daily, weekly, monthly, quarterly "
                                                "(monitoring summary) or semiannual, annual (Mẫu 05).")] = None,
    period: Annotated[str | None, typer.Option(help="With --summary: 2026-11-30, 2026-W48, 2026-11, 2026-Q4, "
                                               "2026-H2 or 2026 (default: the last complete period).")] = None,
    profile: Annotated[str | None, typer.Option(help="Report profile id (default: reporting.default_profile), "
                                                "e.g. vn.mps.a05-2025, vn.mic.tt20-2017, intl.stix21, intl.misp.")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Folder for the files (default: <data_dir>/reports).")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Form field not held by the incident, FIELD=VALUE; "
                                                   "repeat. E.g. notified=coordinating_authority,isp "
                                                   "support_request=... confidential=yes handled_by=self.")] = None,
    regenerate: Annotated[str | None, typer.Option(help="Re-render a stored report from its snapshot "
                                                   "(byte-identical files).")] = None,
    rebuild: Annotated[bool, typer.Option(help="With --summary: build a new snapshot even if the period "
                                          "has one.")] = False,
    send: Annotated[bool, typer.Option(help="Also enqueue it for the configured recipients.")] = False,
) -> None:
    """Build a report: snapshot the data, check every required field, write the files, sign them.

    Examples:

        soc report build --incident INC-1 --kind initial --set notified=coordinating_authority

        soc report build --summary monthly --period 2026-11

        soc report build --regenerate BC03-NA01-20261201-INC-1-1 --out /tmp/check
    """
    from soc.export.incident_report import MissingFieldsError, parse_overrides
    from soc.export.profiles import ProfileError
    from soc.export.sign import SigningError
    from soc.export.snapshot import SnapshotError

    app = service_layer()
    settings, store, reports = app.settings, app.store, app.reports
    try:
        if regenerate:
            built = reports.render(regenerate, out)
        elif incident:
            built = reports.build_incident(incident, kind, profile, parse_overrides(set_ or []), out_dir=out)
        elif summary:
            built = reports.build_summary(summary, period, profile, out_dir=out, rebuild=rebuild)
        else:
            fail("name what to build: --incident ID, --summary PERIOD_TYPE or --regenerate REPORT_NO")
            return
    except (MissingFieldsError, SnapshotError, ProfileError, SigningError, ValueError) as error:
        fail(str(error))
        return
    out_console = console()
    out_console.print(cell(f"report {built.report_no} ({built.document}, {built.kind}, profile {built.profile_id})"
                           + ("" if built.created else " [already built: re-rendered from its snapshot]")))
    for path in built.all_files:
        out_console.print(cell(f"  {path}"))
    if not built.signatures:
        out_console.print("[yellow]not signed:[/] set reporting.certificate and reporting.private_key "
                          "(`soc report keygen` makes a test pair)")
    if send:
        from soc.export.outbox import OutboxError, enqueue

        try:
            for eid in enqueue(store, settings, built.report_no):
                out_console.print(cell(f"queued {eid}"))
        except OutboxError as error:
            fail(str(error))


@app.command("verify")
def verify(
    file: Annotated[Path, typer.Argument(help="The exported file.")],
    sig: Annotated[Path | None, typer.Option(help="Its detached signature (default: FILE.p7s).")] = None,
    ca: Annotated[Path | None, typer.Option(help="Trust anchor(s) (PEM): the CA certificate the signer's chain "
                                            "must end at, or the signer's own self-signed certificate "
                                            "(default: reporting.certificate when set).")] = None,
    intermediates: Annotated[Path | None, typer.Option(help="Intermediate CA certificates (PEM) not embedded "
                                                       "in the signature.")] = None,
) -> None:
    """Verify a detached CMS signature: file unchanged, signature valid, certificate chain valid at
    the signing time up to a trust anchor, no SHA-1.

    Exits 0 when valid, 1 with the reason otherwise (tampered file, wrong certificate, expired),
    2 when there is no trust anchor (give --ca or set reporting.certificate).
    The same check with OpenSSL: openssl cms -verify -binary -inform DER -in FILE.p7s -content FILE
    -CAfile CA.pem -purpose any -out /dev/null
    """
    from soc.export.sign import NO_ANCHOR, verify_file

    settings = load_settings()
    trust = ca or settings.reporting.certificate
    if trust is None:
        fail(f"cannot verify {file}: {NO_ANCHOR}")
    result = verify_file(file, sig, trust, intermediates_path=intermediates)
    text = result.summary()
    if result.ok:
        console().print(cell(text, "green"))
    else:
        console(stderr=True).print(cell(text, "bold red"))
        raise typer.Exit(1)


@app.command("send")
def send(
    report_no: Annotated[str | None, typer.Argument(help="Report number to enqueue (omit to only run the outbox).")] = None,
    to: Annotated[list[str] | None, typer.Option("--to", help="Recipient name (reporting.recipients); repeat. "
                                                 "Default: every recipient of the report's profile.")] = None,
    retry: Annotated[bool, typer.Option(help="Put failed deliveries (of this report, or all) back in the queue.")] = False,
    wait: Annotated[float, typer.Option(help="Keep retrying due deliveries for up to this many seconds.")] = 0.0,
) -> None:
    """Enqueue a report for its recipients and deliver what is due now (retries follow the backoff)."""
    from soc.export.outbox import OutboxError, deliver_due, enqueue, retry_failed, run_until_settled
    from soc.export.snapshot import SnapshotError

    settings, store = _store()
    out = console()
    try:
        if retry:
            out.print(f"{retry_failed(store, report_no)} failed deliveries back in the queue")
        if report_no and not retry:
            for eid in enqueue(store, settings, report_no, to):
                out.print(cell(f"queued {eid}"))
    except (OutboxError, SnapshotError) as error:
        fail(str(error))
    handled = run_until_settled(store, settings, timeout=wait) if wait else deliver_due(store, settings)
    for entry in handled:
        style = {"delivered": "green", "failed": "red"}.get(entry["status"], "yellow")
        extra = entry.get("last_error") or ""
        out.print(Text.assemble(cell(entry["status"], style), cell(f" {entry['id']} via {entry['channel']} "
                                                                   f"(attempt {entry['attempts']}) {extra}")))
    if not handled:
        out.print("nothing due in the outbox")


@app.command("outbox")
def outbox(
    status: Annotated[str | None, typer.Option(help="Only pending, sending, delivered or failed.")] = None,
    since: SinceOption = None,
    until: UntilOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines.")] = False,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first.")] = 100,
) -> None:
    """List deliveries with their ids: report, recipient, channel, status, attempts, next try,
    receipt or error. --since/--until select on the time a delivery was queued."""
    from rich.table import Table

    from soc.export.outbox import OUTBOX

    settings, store = _store()
    window = time_range(since, until, settings.zone)
    page = find_page(store, OUTBOX, {"status": status} if status else None, time_field="created_at",
                     window=window, sort="created_at", limit=limit)
    entries = [d.body for d in page.items]
    if as_json:
        for entry in entries:
            print(json_text(entry))
        return
    table = Table(title=page.title("outbox entries", "newest first"), caption=zone_note(settings.zone))
    for col in ("id", "report", "recipient", "channel", "status", "attempts", "next try / delivered",
                "receipt / error"):
        table.add_column(col, overflow="fold", no_wrap=col == "id")
    for e in entries:
        receipt = e.get("receipt") or {}
        detail = (f"{receipt.get('status', '')} {receipt.get('message_id', '') or receipt.get('folder', '')}".strip()
                  if e["status"] == "delivered" else e.get("last_error") or "")
        when = e.get("delivered_at") if e["status"] == "delivered" else e.get("next_attempt_at")
        table.add_row(cell(e.get("id", "")), cell(e["report_no"]), cell(e["recipient"]), cell(e["channel"]),
                      cell(e["status"]), str(e["attempts"]), show_time(when, settings.zone) if when else "",
                      cell(detail))
    console().print(table)


@app.command("due")
def due(
    all_: Annotated[bool, typer.Option("--all", help="Also list reports already delivered.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines.")] = False,
) -> None:
    """List reports due or overdue (Mẫu 03 / Mẫu 04 deadlines) with their incident ids; exits 1
    when any is overdue.

    Circular 20/2017: the initial report within 5 days of discovery, the closing report within
    5 days after the response ended.
    """
    from rich.table import Table

    from soc.export.due import due_reports

    settings, store = _store()
    rows = due_reports(store, cli_now(), include_delivered=all_)
    if as_json:
        for row in rows:
            print(json_text(row.as_dict()))
    else:
        page = page_of(rows, len(rows))
        table = Table(title=page.title("reports", "overdue first" + ("" if all_ else "; not yet delivered")),
                      caption=zone_note(settings.zone))
        for col in ("incident", "title", "report", "due", "state", "report no", ""):
            table.add_column(col, overflow="fold", no_wrap=col == "incident")
        for r in rows:
            flag = "[bold red]OVERDUE[/]" if r.overdue else ""
            if r.serious:
                flag += " [red]serious (Decision 05)[/]"
            table.add_row(cell(r.incident_id), cell(r.title), "Mẫu 03" if r.kind == "initial" else "Mẫu 04",
                          show_time(r.due_at, settings.zone), r.state, cell(r.report_no or ""), flag)
        console().print(table)
    if any(r.overdue for r in rows):
        raise typer.Exit(1)


@app.command("keygen")
def keygen(
    cert: Annotated[Path, typer.Option(help="Where to write the certificate (PEM).")] = Path("soc-data/signing/cert.pem"),
    key: Annotated[Path, typer.Option(help="Where to write the private key (PEM, mode 600).")] = Path("soc-data/signing/key.pem"),
    name: Annotated[str, typer.Option(help="Certificate common name.")] = "SOC tỉnh (TEST)",
    organization: Annotated[str | None, typer.Option(help="Organisation name.")] = None,
    days: Annotated[int, typer.Option(help="Validity in days.")] = 365,
) -> None:
    """Make a self-signed signing certificate and key, FOR TESTING ONLY.

    Real reports use the province's certificate from its certification authority. Then set
    reporting.certificate and reporting.private_key to these paths.
    """
    from soc.export.sign import keygen as make

    certificate = make(cert, key, name, organization, days)
    console().print(cell(f"wrote {cert} and {key} (self-signed, valid until "
                         f"{certificate.not_valid_after_utc:%Y-%m-%d}; for testing only)"))
