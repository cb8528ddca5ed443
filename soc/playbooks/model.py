"""Playbook definitions: the YAML format, validated with pydantic.

A playbook is one YAML file in ``playbooks/`` (see ``docs/playbooks.md`` for the reference)::

    id: ssh-brute-force
    title: "Dò mật khẩu SSH / SSH brute force"
    version: 1
    trigger:
      alerts: {rules: [0b8e3f4c-...], min_level: high}
    inputs:
      notify_url: {type: string, default: ""}
    steps:
      - id: incident
        action: incident.open_or_attach
        args: {alerts: "{{ trigger.alerts }}", group_by: [source.ip]}
      - id: notify
        action: notify.webhook
        if: "steps.incident.output.created and inputs.notify_url"
        args: {url: "{{ inputs.notify_url }}", json: {incident: "{{ steps.incident.output.id }}"}}
        retry: {attempts: 5, backoff: 2}
        timeout: 30
        on_error: continue
    outputs:
      incident: "{{ steps.incident.output.id }}"

Loading checks the structure (unknown keys are errors, so a typo never silently disables a
step), the template syntax of every argument and condition, that every action exists in the
registry and knows its arguments, that step ids are unique and ``goto`` targets exist. Every
error names the file and the step.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from soc.errors import SocError
from soc.playbooks.actions import load_actions
from soc.playbooks.template import TemplateError, check_template
from soc.retry import Backoff

LEVELS = ("informational", "low", "medium", "high", "critical")
SEVERITIES = ("low", "medium", "high", "critical")
INCIDENT_EVENTS = ("opened", "attached", "status_changed", "assigned", "verdict", "updated", "note")
STEP_ID = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
PLAYBOOK_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")


class PlaybookError(SocError):
    """A playbook file is invalid; the message names the file and the step."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class AlertTrigger(_Strict):
    """Run on newly recorded alerts that match every given filter (an empty filter matches all)."""

    rules: list[str] = Field(default_factory=list, description="rule ids (any of)")
    tags: list[str] = Field(default_factory=list, description="rule tags (any of), e.g. attack.t1110")
    min_level: Literal["informational", "low", "medium", "high", "critical"] | None = None
    agencies: list[str] = Field(default_factory=list, description="agency ids (any of)")
    group_by: list[str] = Field(
        default_factory=list,
        description="batch the alerts of one detection run by these entity fields "
                    "(e.g. source.ip): one run per group instead of one per alert")


class IncidentTrigger(_Strict):
    """Run on incident events emitted by the incident actions."""

    events: list[Literal["opened", "attached", "status_changed", "assigned", "verdict", "updated", "note"]] = \
        Field(default_factory=lambda: ["opened"])
    statuses: list[str] = Field(default_factory=list, description="for status_changed: the new status (any of)")
    min_severity: Literal["low", "medium", "high", "critical"] | None = None
    types: list[str] = Field(default_factory=list, description="incident types (any of)")
    serious_only: bool = Field(False, description="only incidents that pass the Decision 05/2017 test")
    once_per_incident: bool = Field(False, description="at most one run per incident, whichever event comes first")


class ScheduleTrigger(_Strict):
    """Run on a cron schedule (APScheduler, in ``soc run``)."""

    cron: str = Field(description="five fields: minute hour day month weekday")
    timezone: str = "Asia/Ho_Chi_Minh"

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(value)
        except ValueError as error:
            raise ValueError(f"invalid cron expression {value!r}: {error}") from error
        return value


class Trigger(_Strict):
    alerts: AlertTrigger | None = None
    incident: IncidentTrigger | None = None
    schedule: ScheduleTrigger | None = None
    manual: bool = Field(True, description="may be run by hand (`soc playbook run`)")


class InputSpec(_Strict):
    type: Literal["string", "integer", "number", "boolean", "list", "object"] = "string"
    required: bool = False
    default: Any = None
    description: str = ""


class Retry(_Strict):
    attempts: int = Field(1, ge=1, le=20, description="total attempts, the first included")
    backoff: float = Field(1.0, ge=0, description="seconds before the second attempt")
    factor: float = Field(2.0, ge=1, description="each further wait is multiplied by this")
    max_backoff: float = Field(300.0, ge=0)

    @property
    def policy(self) -> Backoff:
        """These settings as the shared retry policy (:class:`soc.retry.Backoff`, no jitter)."""
        return Backoff(base=self.backoff, factor=self.factor, max=self.max_backoff)

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return self.policy.delay(attempt)


class Step(_Strict):
    id: str
    action: str
    title: str = ""
    args: dict[str, Any] = Field(default_factory=dict)
    if_: str | None = Field(None, alias="if", description="a Jinja2 expression; the step is skipped when false")
    timeout: float = Field(300.0, gt=0, description="seconds for one attempt")
    retry: Retry = Retry()
    on_error: str = Field("fail", description="fail | continue | goto:<step id>")

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not STEP_ID.match(value):
            raise ValueError(f"step id {value!r}: use lowercase letters, digits and _ (starting with a letter)")
        return value

    @field_validator("on_error")
    @classmethod
    def _on_error(cls, value: str) -> str:
        if value in ("fail", "continue") or (value.startswith("goto:") and STEP_ID.match(value[5:])):
            return value
        raise ValueError(f"on_error {value!r}: use fail, continue or goto:<step id>")

    @property
    def goto(self) -> str | None:
        return self.on_error[5:] if self.on_error.startswith("goto:") else None


class Playbook(_Strict):
    id: str
    title: str
    description: str = ""
    version: int | str = 1
    enabled: bool = True
    trigger: Trigger = Trigger()
    inputs: dict[str, InputSpec] = Field(default_factory=dict)
    steps: list[Step] = Field(min_length=1)
    outputs: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    path: str | None = Field(None, exclude=True)

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not PLAYBOOK_ID.match(value):
            raise ValueError(f"playbook id {value!r}: use lowercase letters, digits, '.', '_' and '-'")
        return value

    @model_validator(mode="after")
    def _steps(self) -> Playbook:
        seen: set[str] = set()
        for step in self.steps:
            if step.id in seen:
                raise ValueError(f"step {step.id!r} is defined twice")
            seen.add(step.id)
        order = [s.id for s in self.steps]
        for step in self.steps:
            if step.goto and step.goto not in seen:
                raise ValueError(f"step {step.id!r}: on_error goes to {step.goto!r}, which is not a step "
                                 f"of this playbook (steps: {', '.join(order)})")
            if step.goto and order.index(step.goto) <= order.index(step.id):
                raise ValueError(f"step {step.id!r}: on_error may only go forward (to a later step), "
                                 f"not to {step.goto!r}: a run must not loop")
        return self

    def step(self, step_id: str) -> Step:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)

    def index(self, step_id: str) -> int:
        return [s.id for s in self.steps].index(step_id)

    @property
    def kinds(self) -> list[str]:
        t = self.trigger
        return [k for k, v in (("alerts", t.alerts), ("incident", t.incident), ("schedule", t.schedule),
                               ("manual", t.manual)) if v]


def _where(loc: tuple[Any, ...], raw: dict[str, Any]) -> str:
    """``step 'notify' (steps[2]).retry.attempts`` from a pydantic error location."""
    if len(loc) >= 2 and loc[0] == "steps" and isinstance(loc[1], int):
        steps = raw.get("steps") or []
        sid = steps[loc[1]].get("id") if loc[1] < len(steps) and isinstance(steps[loc[1]], dict) else None
        rest = ".".join(str(p) for p in loc[2:])
        return f"step {sid!r} (steps[{loc[1]}])" + (f": {rest}" if rest else "")
    return ".".join(str(p) for p in loc) or "playbook"


def parse_playbook(raw: Any, source: str = "<playbook>", *, check_actions: bool = True) -> Playbook:
    """Validate one playbook document; :class:`PlaybookError` names ``source`` and the step."""
    if not isinstance(raw, dict):
        raise PlaybookError(f"{source}: a playbook is a mapping with id, title, trigger and steps")
    try:
        playbook = Playbook.model_validate(raw)
    except ValidationError as error:
        lines = [f"{_where(tuple(e['loc']), raw)}: {e['msg']}" for e in error.errors()]
        raise PlaybookError(f"{source}: " + "; ".join(lines)) from None
    playbook.path = source
    problems = []
    for step in playbook.steps:
        where = f"step {step.id!r}"
        try:
            if step.if_ is not None:
                check_template(step.if_, expression=True)
            check_template(step.args)
        except TemplateError as error:
            problems.append(f"{where}: {error}")
        if check_actions:
            REGISTRY = load_actions()  # noqa: N806
            action = REGISTRY.get(step.action)
            if action is None:
                problems.append(f"{where}: unknown action {step.action!r} (known: {', '.join(sorted(REGISTRY))})")
            else:
                problems.extend(f"{where}: {p}" for p in action.check_args(step.args))
    try:
        check_template(playbook.outputs)
    except TemplateError as error:
        problems.append(f"outputs: {error}")
    if problems:
        raise PlaybookError(f"{source}: " + "; ".join(problems))
    return playbook


def load_playbook(path: Path) -> Playbook:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise PlaybookError(f"{path}: not valid YAML: {error}") from None
    except OSError as error:
        raise PlaybookError(f"{path}: cannot read: {error}") from None
    return parse_playbook(raw, str(path))


def playbook_files(folder: Path) -> list[Path]:
    """The playbook files of a folder (``*.yml``/``*.yaml``, not under ``data/``)."""
    if folder.is_file():
        return [folder]
    return sorted(p for p in folder.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file()
                  and "data" not in p.relative_to(folder).parts[:-1])


def load_playbooks(folder: Path) -> tuple[dict[str, Playbook], list[str]]:
    """Every valid playbook of ``folder`` by id, and the errors of the invalid ones. One broken
    playbook never stops the others."""
    playbooks: dict[str, Playbook] = {}
    errors: list[str] = []
    if not folder.exists():
        return playbooks, [f"{folder}: no such folder"]
    for path in playbook_files(folder):
        try:
            playbook = load_playbook(path)
        except PlaybookError as error:
            errors.append(str(error))
            continue
        if playbook.id in playbooks:
            errors.append(f"{path}: playbook id {playbook.id!r} is also used by {playbooks[playbook.id].path}")
            continue
        playbooks[playbook.id] = playbook
    return playbooks, errors
