"""The action registry: what a playbook step may do.

An action is a function ``fn(ctx: ActionContext, **args) -> dict`` registered under a dotted
name with :func:`action`. Its keyword parameters are its arguments (checked when a playbook is
loaded: unknown names and missing required ones are errors). The returned dict is the step's
``output``.

Contract for actions:

* **Idempotent on resume.** ``ctx.key`` is the step's deterministic key (run id + step id),
  the same on every attempt and after a crash. Actions that write use it for their document
  ids (create-only) or pass it on (``Idempotency-Key`` header); :meth:`ActionContext.once`
  records external effects (a webhook, a mail) so a completed one is not repeated.
* **Dry run.** When ``ctx.dry_run`` is true an action with side effects must not perform them;
  it returns what it would have done (``{"dry_run": True, "would": ...}``). Read-only actions
  (enrichment) run normally.
* **Errors.** Raise :class:`ActionError` (``retryable=False`` for errors a retry cannot fix,
  such as HTTP 4xx or bad arguments); any other exception is retried per the step's policy.
* **Waiting.** Raise :class:`Wait` to park the run (status ``waiting``) until it is resumed
  (an approval, a sub-playbook); the action is called again on resume with the same key.
* **Cancellation.** Long actions poll ``ctx.cancelled`` (set when the step's timeout expires
  or the lease is lost) or sleep with :meth:`ActionContext.sleep`.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from soc.config import PlaybookSettings
from soc.errors import SocError
from soc.model import iso, now_utc
from soc.store.base import Store

EFFECTS = "playbook_effects"


class Runner(Protocol):
    """What actions may use of the runner that calls them
    (:class:`~soc.playbooks.runner.PlaybookRunner`)."""

    @property
    def settings(self) -> Any: ...

    @property
    def config(self) -> PlaybookSettings: ...

    @property
    def incidents(self) -> Any: ...

    def incidents_for(self, group_fields: tuple[str, ...] | None, window_hours: float | None) -> Any: ...

    def start(self, playbook: str, trigger: dict[str, Any], key: str, *,
              inputs: dict[str, Any] | None = None, actor: str = "system", dry_run: bool = False,
              parent: tuple[str, str] | None = None, depth: int = 0, execute: bool = True) -> tuple[str, bool]: ...

    def execute(self, run_id: str) -> dict[str, Any]: ...

    def on_incident_event(self, incident: dict[str, Any], event: str, *, detail: str = "",
                          depth: int = 0, actor: str = "system") -> list[str]: ...


class ActionError(SocError):
    """An action failed; ``retryable`` says whether another attempt may succeed."""

    def __init__(self, message: str, *, retryable: bool = True):
        super().__init__(message)
        self.retryable = retryable


class Cancelled(Exception):
    """The step was cancelled (timeout or lost lease) while the action waited."""


class Wait(Exception):  # noqa: N818 -- a signal, not an error
    """Park the run until ``until`` (ISO UTC) or until it is resumed by hand."""

    def __init__(self, reason: str, *, until: str | None = None, detail: dict[str, Any] | None = None):
        super().__init__(reason)
        self.reason = reason
        self.until = until
        self.detail = detail or {}


@dataclass
class ActionContext:
    store: Store
    runner: Runner
    run_id: str
    playbook_id: str
    step_id: str
    key: str
    attempt: int
    actor: str
    dry_run: bool = False
    depth: int = 0
    cancelled: threading.Event = field(default_factory=threading.Event)

    def sleep(self, seconds: float) -> None:
        """Sleep, but wake up and raise :class:`Cancelled` when the step is cancelled."""
        if self.cancelled.wait(max(0.0, seconds)):
            raise Cancelled(f"step {self.step_id} cancelled")

    @property
    def settings(self) -> Any:
        return self.runner.settings

    def once(self, what: str, perform: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """Perform an external effect at most once per step key (a webhook, an e-mail).

        An effect document ``playbook_effects/<key>`` is created (create-only) *before* the
        effect and marked ``done`` with the result after it. When a later attempt or a resumed
        run finds it ``done``, the recorded result is returned and nothing is sent again. When
        it finds it ``started`` (the process died during the effect, or the attempt failed),
        the outcome is unknown: the effect is performed again with the same key (receivers
        that honour ``Idempotency-Key`` drop the duplicate)."""
        doc = self.store.get(EFFECTS, self.key)
        if doc is not None and doc.body.get("status") == "done":
            return dict(doc.body.get("result") or {}, repeated=False, recorded=True)
        body = {"key": self.key, "run_id": self.run_id, "step_id": self.step_id, "what": what,
                "status": "started", "attempt": self.attempt, "started_at": iso(now_utc())}
        if doc is None:
            if not self.store.create(EFFECTS, self.key, body):
                doc = self.store.get(EFFECTS, self.key)
        result = perform()
        body.update(status="done", finished_at=iso(now_utc()), result=_jsonable(result))
        self.store.put(EFFECTS, self.key, body)
        return result


def _jsonable(value: Any) -> Any:
    import json

    return json.loads(json.dumps(value, default=str))


@dataclass
class Action:
    name: str
    fn: Callable[..., dict[str, Any]]
    description: str
    side_effects: bool
    params: dict[str, bool]  # name -> required
    accepts_any: bool

    def check_args(self, args: dict[str, Any]) -> list[str]:
        problems = []
        if not self.accepts_any:
            unknown = sorted(set(args) - set(self.params))
            if unknown:
                problems.append(f"action {self.name}: unknown argument(s) {', '.join(unknown)} "
                                f"(it takes: {', '.join(self.params) or 'none'})")
        missing = sorted(p for p, required in self.params.items() if required and p not in args)
        if missing:
            problems.append(f"action {self.name}: missing required argument(s) {', '.join(missing)}")
        return problems

    def __call__(self, ctx: ActionContext, args: dict[str, Any]) -> dict[str, Any]:
        result = self.fn(ctx, **args)
        if result is None:
            return {}
        if not isinstance(result, dict):
            return {"result": result}
        return result


REGISTRY: dict[str, Action] = {}


def action(name: str, *, side_effects: bool = True) -> Callable[[Callable[..., dict[str, Any]]], Callable[..., dict[str, Any]]]:
    """Register ``fn`` as the action ``name`` (see the module docstring)."""

    def register(fn: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
        signature = inspect.signature(fn)
        params: dict[str, bool] = {}
        accepts_any = False
        for index, (pname, param) in enumerate(signature.parameters.items()):
            if index == 0:
                continue  # the context
            if param.kind is inspect.Parameter.VAR_KEYWORD:
                accepts_any = True
                continue
            params[pname] = param.default is inspect.Parameter.empty
        doc = inspect.getdoc(fn) or ""
        REGISTRY[name] = Action(name, fn, doc.split("\n\n")[0].replace("\n", " "), side_effects, params, accepts_any)
        return fn

    return register
