"""National reports: build, sign and send through the export module (``soc.export``).

The export module is imported when the step runs, so playbooks load (and other steps run)
where it is not installed; then this step fails with "report export not available".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from soc.playbooks.registry import ActionContext, ActionError, action


@action("report.build_and_send")
def build_and_send(ctx: ActionContext, kind: str, incident_id: str | None = None, period: str | None = None,
                   send: bool = True, out_dir: str | None = None) -> dict[str, Any]:
    """Build a national report (``initial``/``closing`` for an incident, or a periodic summary),
    sign it and hand it to the outbox for delivery."""
    try:
        import soc.export as export
    except ImportError as error:
        raise ActionError(f"report export not available: {error}", retryable=False) from None
    if ctx.dry_run:
        return {"dry_run": True, "would": f"build the {kind} report" + (f" for incident {incident_id}" if incident_id
                                                                         else f" for {period or 'the last period'}")}
    folder = Path(out_dir) if out_dir else ctx.runner.settings.data_dir / "reports" / ctx.run_id
    folder.mkdir(parents=True, exist_ok=True)
    if incident_id:
        builder = getattr(export, "build_incident_report", None)
        if builder is None:
            raise ActionError("report export not available: soc.export has no build_incident_report",
                              retryable=False)
        files = builder(ctx.store, ctx.runner.settings, incident_id, kind, folder)
    else:
        builder = getattr(export, "build_summary_report", None)
        if builder is None:
            raise ActionError("report export not available: soc.export has no build_summary_report",
                              retryable=False)
        files = builder(ctx.store, ctx.runner.settings, kind, period, folder)
    result: dict[str, Any] = {"files": [str(f) for f in files], "kind": kind, "incident_id": incident_id}
    if send:
        sender = getattr(export, "send", None)
        if sender is None:
            raise ActionError("report export not available: soc.export has no send", retryable=False)
        receipt = sender(ctx.store, ctx.runner.settings, files, key=ctx.key)
        result["delivery"] = receipt if isinstance(receipt, dict) else str(receipt)
    return result
