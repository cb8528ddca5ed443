"""Core actions: compute values, wait, fail on purpose."""

from __future__ import annotations

from typing import Any

from soc.playbooks.registry import ActionContext, ActionError, action


@action("core.echo", side_effects=False)
def echo(ctx: ActionContext, **values: Any) -> dict[str, Any]:
    """Return the (rendered) arguments as the step output: name intermediate values."""
    return dict(values)


@action("core.sleep", side_effects=False)
def sleep(ctx: ActionContext, seconds: float) -> dict[str, Any]:
    """Wait this many seconds (cancelled by the step timeout)."""
    ctx.sleep(float(seconds))
    return {"slept": float(seconds)}


@action("core.fail", side_effects=False)
def fail(ctx: ActionContext, message: str = "failed on purpose", retryable: bool = False) -> dict[str, Any]:
    """Fail the step with ``message`` (to end a branch; ``on_error`` decides what follows)."""
    raise ActionError(message, retryable=retryable)
