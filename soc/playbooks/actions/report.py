"""National reports: build, sign and send through the export module (:mod:`soc.export`).

``soc.export`` is imported when the step runs, so playbooks load (and other steps run) where it
is missing; then this step fails with "report export not available". The build goes through
:class:`soc.export.reports.Reports` (required fields checked first, snapshot stored, files
written and signed, the report recorded on the incident), delivery through the outbox
(:func:`soc.export.outbox.enqueue`: one entry per recipient, retried with receipts by the
outbox itself; ``deliver_now`` also attempts the due entries at once).

Idempotent on resume: a summary's report number is its period's (a second build re-renders
the stored snapshot), outbox entries are create-only per (report, recipient), and an incident
report already built by this step is not built again (effects ledger).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from soc.playbooks.actions._util import as_list
from soc.playbooks.registry import ActionContext, ActionError, action

INCIDENT_KINDS = ("initial", "update", "closing")


@action("report.build_and_send")
def build_and_send(ctx: ActionContext, kind: str, incident_id: str | None = None, period: str | None = None,
                   send: bool = True, recipients: Any = None, profile: str | None = None,
                   deliver_now: bool = False, out_dir: str | None = None) -> dict[str, Any]:
    """Build a national report -- ``initial``/``update``/``closing`` for an incident, or a
    ``daily``/``weekly``/``monthly``/``quarterly``/``semiannual``/``annual`` summary -- sign it
    and hand it to the outbox."""
    try:
        from soc.export import outbox
        from soc.export.reports import Reports
    except ImportError as error:
        raise ActionError(f"report export not available: {error}", retryable=False) from None
    if incident_id and kind not in INCIDENT_KINDS:
        raise ActionError(f"report.build_and_send: an incident report is {', '.join(INCIDENT_KINDS)}, not {kind!r}",
                          retryable=False)
    if ctx.dry_run:
        what = f"the {kind} report of incident {incident_id}" if incident_id else \
            f"the {kind} summary for {period or 'the last complete period'}"
        return {"dry_run": True, "would": f"build, sign and {'send' if send else 'store'} {what}"}
    reports = Reports(ctx.store, ctx.runner.settings)
    folder = Path(out_dir) if out_dir else None

    def build() -> dict[str, Any]:
        try:
            if incident_id:
                built = reports.build_incident(incident_id, kind, profile, out_dir=folder)
            else:
                built = reports.build_summary(kind, period or None, profile, out_dir=folder)
        except ValueError as error:  # missing required fields, unknown period...: a retry cannot fix it
            raise ActionError(f"{type(error).__name__}: {error}", retryable=False) from None
        return {"report_no": built.report_no, "files": [str(f) for f in built.files],
                "signatures": [str(s) for s in built.signatures], "directory": str(built.directory)}

    result = ctx.once(f"build {kind} report", build) if incident_id else build()
    result = {k: v for k, v in result.items() if k not in ("repeated", "recorded")}
    result.update(kind=kind, incident_id=incident_id, entries=[], delivered=[])
    if send:
        names = [str(r) for r in as_list(recipients)] or None
        try:
            result["entries"] = outbox.enqueue(ctx.store, ctx.runner.settings, result["report_no"], names)
        except outbox.OutboxError as error:
            raise ActionError(f"report {result['report_no']} built but not sent: {error}", retryable=False) from None
        if deliver_now:
            receipts = outbox.deliver_due(ctx.store, ctx.runner.settings)
            result["delivered"] = [r.get("id") for r in receipts if isinstance(r, dict)]
    return result
