"""Detection exceptions as data: which alerts not to raise, for whom, why, until when.

Unlike exceptions written into rule files (Wazuh), an exception here is a document in the
store (collection ``exceptions``) with an **owner**, a **reason** and an **expiry**, and every
change to it -- added, edited, disabled, expired -- is appended to ``exceptions_audit``
(create-only documents: an audit entry is never rewritten).

An exception has

* a **scope**: one rule (``rule``: its id), a group of rules (``group``: a Sigma tag glob such as
  ``attack.t1110*``, or a rules folder such as ``linux/ssh`` when the value contains a ``/``), or
  ``all`` rules;
* **conditions**, all of which must hold: ``field`` ``op`` ``value`` with ``op`` one of
  ``equals`` (case-insensitive, as Sigma), ``in`` (a list), ``cidr`` (an IP inside a network or
  a list of networks) and ``wildcard`` (``*`` and ``?``, case-insensitive). Fields are event
  fields (``source.ip``, ``user.name``, ``url.path`` ...) or alert fields (``agency``,
  ``rule.id``, ``rule.level``). A scope other than one rule needs at least one condition.

It is **applied at detection time** (:class:`ActiveExceptions`, passed to
:class:`soc.detect.engine.DetectionEngine` as ``suppress``), to what would become an alert: a
matched event of a single-event rule, or an episode of a correlation rule. For an episode a
condition holds when the correlation's group value satisfies it, or -- for a field the rule does
not group by -- when *every* event of the episode does (so an exception for one address never
hides an episode that also involves others). The events a correlation counts are never filtered
(an exception stops alerts, not evidence). A suppressed alert is not recorded but counted: in
the run result (``suppressed``, ``suppressed_by``) and in the rule's health. Disabled and
expired exceptions stop applying at the next run.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from soc.errors import SocError
from soc.model import iso, parse_iso
from soc.store.base import Conflict, Store

if TYPE_CHECKING:
    from soc.detect.compiler import Detection
    from soc.detect.correlate import Episode
    from soc.store.base import Match

log = logging.getLogger(__name__)
EXCEPTIONS = "exceptions"
AUDIT = "exceptions_audit"
OPS = ("equals", "in", "cidr", "wildcard")
CAS_ATTEMPTS = 20
#: an episode whose events lack a condition field is resolved by reading at most this many events
MAX_EPISODE_LOOKUPS = 10_000


class ExceptionError(SocError, ValueError):
    """An exception cannot be added or changed; the message says what to fix."""


class Scope(BaseModel):
    kind: Literal["rule", "group", "all"]
    value: str | None = Field(None, description="rule id (rule), tag glob or rules folder (group)")

    @model_validator(mode="after")
    def _needs_value(self) -> Scope:
        if self.kind != "all" and not (self.value or "").strip():
            raise ValueError(f"a {self.kind} scope needs a value (a rule id, or a tag glob / rules folder)")
        return self

    def covers(self, detection: Detection) -> bool:
        info = detection.info
        if self.kind == "all":
            return True
        value = (self.value or "").strip()
        if self.kind == "rule":
            return info.id == value
        if "/" in value:
            path = "/" + str(info.path).replace("\\", "/").lstrip("/")
            return f"/{value.strip('/')}/" in path
        pattern = value.lower().replace("_", "-")
        return any(fnmatchcase(tag.lower().replace("_", "-"), pattern) for tag in info.tags)

    def describe(self) -> str:
        return "all rules" if self.kind == "all" else f"{self.kind} {self.value}"


class Condition(BaseModel):
    field: str
    op: Literal["equals", "in", "cidr", "wildcard"] = "equals"
    value: str | list[str]

    @field_validator("value", mode="before")
    @classmethod
    def _strings(cls, value: Any) -> Any:
        if isinstance(value, (list, tuple, set)):
            return [str(v) for v in value]
        return value if value is None else str(value)

    @model_validator(mode="after")
    def _check(self) -> Condition:
        if not self.field.strip():
            raise ValueError("a condition needs a field")
        values = self.values
        if not values:
            raise ValueError(f"condition on {self.field}: no value")
        if self.op == "cidr":
            for value in values:
                try:
                    ipaddress.ip_network(value, strict=False)
                except ValueError as error:
                    raise ValueError(f"condition on {self.field}: {value!r} is not an IP network "
                                     "(write 203.0.113.0/24 or 203.0.113.7)") from error
        return self

    @property
    def values(self) -> list[str]:
        return list(self.value) if isinstance(self.value, list) else [self.value]

    def describe(self) -> str:
        shown = self.value if isinstance(self.value, str) else ", ".join(self.value)
        return f"{self.field} {self.op} {shown}"


class DetectionException(BaseModel):
    """One exception (see the module docstring)."""

    id: str
    scope: Scope
    conditions: list[Condition] = Field(default_factory=list)
    owner: str
    reason: str
    created_at: str
    created_by: str
    updated_at: str
    expires_at: str | None = Field(None, description="ISO UTC; None = until disabled")
    enabled: bool = True
    disabled_at: str | None = None
    disabled_by: str | None = None
    expired_recorded: bool = False

    @model_validator(mode="after")
    def _guard(self) -> DetectionException:
        if not self.owner.strip() or not self.reason.strip():
            raise ValueError("an exception needs an owner and a reason")
        if self.scope.kind != "rule" and not self.conditions:
            raise ValueError(f"an exception for {self.scope.describe()} without conditions would silence "
                             "every alert there: add a condition (e.g. source.ip cidr 10.0.0.0/8)")
        if self.expires_at is not None:
            parse_iso(self.expires_at)
        return self

    def status(self, now: datetime) -> str:
        if not self.enabled:
            return "disabled"
        if self.expires_at is not None and parse_iso(self.expires_at) <= now:
            return "expired"
        return "active"

    def describe(self) -> str:
        conditions = " and ".join(c.describe() for c in self.conditions) or "every alert"
        return f"{self.scope.describe()}: {conditions}"


# -- matching --------------------------------------------------------------------------------------
def _matches_value(condition: Condition, value: Any) -> bool:
    if value is None or value == "":
        return False
    if isinstance(value, (list, tuple)):
        return any(_matches_value(condition, v) for v in value)
    text = str(value)
    if condition.op in ("equals", "in"):
        return text.lower() in {v.lower() for v in condition.values}
    if condition.op == "wildcard":
        return any(fnmatchcase(text.lower(), v.lower()) for v in condition.values)
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(v, strict=False) for v in condition.values)


_MISSING = object()


class _AllOf(list):  # type: ignore[type-arg]
    """Values of an episode's events: a condition holds only when it holds for every one."""


def _holds(condition: Condition, value: Any) -> bool:
    if isinstance(value, _AllOf):
        return bool(value) and all(_matches_value(condition, v) for v in value)
    return _matches_value(condition, value)


@dataclass
class _Compiled:
    exception: DetectionException

    def holds(self, lookup: Callable[[str], Any]) -> bool:
        return all(_holds(c, lookup(c.field)) for c in self.exception.conditions)


def _alert_field(detection: Detection, agency: str | None, name: str) -> Any:
    if name in ("agency", "organization.id"):
        return agency
    if name.startswith("rule."):
        return detection.info.as_dict().get(name[5:])
    return _MISSING


class ActiveExceptions:
    """The exceptions in force, as the detection engine's ``suppress`` hook.

    ``prepare(engine)`` (called by the engine at the start of every run) reloads the exceptions
    from the store when the last load is older than ``reload_seconds``, so an added, disabled
    or expired exception takes effect at the next run. Calling it returns the id of the
    exception that suppresses the match or episode, else None.
    """

    def __init__(self, store: Store, *, clock: Callable[[], datetime] | None = None,
                 reload_seconds: float = 1.0):
        self.store = store
        self.clock = clock or (lambda: datetime.now(UTC))
        self.reload_seconds = reload_seconds
        self.events_store: Store | None = None
        self._loaded_at: float | None = None
        self._active: list[_Compiled] = []
        self._by_rule: dict[str, list[_Compiled]] = {}

    def __len__(self) -> int:
        return len(self._active)

    @property
    def active(self) -> list[DetectionException]:
        return [c.exception for c in self._active]

    def reload(self) -> None:
        book = Exceptions(self.store, clock=self.clock)
        book.record_expired()
        now = self.clock()
        self._active = [_Compiled(e) for e in book.list() if e.status(now) == "active"]
        self._by_rule = {}
        self._loaded_at = time.monotonic()

    def prepare(self, engine: Any = None) -> None:
        if engine is not None:
            self.events_store = engine.store
        if self._loaded_at is None or time.monotonic() - self._loaded_at >= self.reload_seconds:
            self.reload()

    def _for(self, detection: Detection) -> list[_Compiled]:
        found = self._by_rule.get(detection.info.id)
        if found is None:
            found = self._by_rule[detection.info.id] = [c for c in self._active if c.exception.scope.covers(detection)]
        return found

    def __call__(self, detection: Detection, subject: Match | Episode) -> str | None:
        if self._loaded_at is None:
            self.prepare()
        candidates = self._for(detection)
        if not candidates:
            return None
        if hasattr(subject, "group_values"):
            lookup = self._episode_lookup(detection, subject)  # type: ignore[arg-type]
        else:
            lookup = self._match_lookup(detection, subject)  # type: ignore[arg-type]
        for compiled in candidates:
            if compiled.holds(lookup):
                return compiled.exception.id
        return None

    def _events(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        store = self.events_store or self.store
        return store.get_events(list(ids)) if ids else []

    def _match_lookup(self, detection: Detection, match: Match) -> Callable[[str], Any]:
        event: list[dict[str, Any]] = []

        def lookup(name: str) -> Any:
            value = _alert_field(detection, match.agency, name)
            if value is not _MISSING:
                return value
            if name in match.fields:
                return match.fields[name]
            if not event:  # not among the fields the engine fetched: read the event once
                event.extend(self._events([match.id]) or [{}])
            return event[0].get(name)

        return lookup

    def _episode_lookup(self, detection: Detection, episode: Episode) -> Callable[[str], Any]:
        events: dict[str, dict[str, Any]] = {}

        def lookup(name: str) -> Any:
            value = _alert_field(detection, episode.agency, name)
            if value is not _MISSING:
                return value
            if name in episode.group_values:
                return episode.group_values[name]
            members = [p for p in episode.members if p.events and p.events[0] in episode.events]
            if members and all(name in p.fields for p in members):
                values = [p.fields[name] for p in members]
            else:
                ids = list(episode.events)[:MAX_EPISODE_LOOKUPS]
                missing = [i for i in ids if i not in events]
                for event in self._events(missing):
                    events[str(event.get("_id"))] = event
                values = [events.get(i, {}).get(name) for i in ids]
            return _AllOf(values)

        return lookup


# -- the book of exceptions -------------------------------------------------------------------------
def parse_expiry(text: str | None, now: datetime, zone: tzinfo | None = None) -> str | None:
    """``30d``, ``12h``, ``2w`` (from now), an ISO date/time, or ``never``/None. A time without
    an offset is in ``zone`` (the analyst's; UTC when None); a bare date means the end of that
    day (the exception applies through it)."""
    if text is None or text.strip().lower() in ("", "never", "none"):
        return None
    text = text.strip()
    units = {"h": 3600, "d": 86400, "w": 7 * 86400}
    if text[-1:].lower() in units and text[:-1].isdigit():
        return iso(datetime.fromtimestamp(now.timestamp() + int(text[:-1]) * units[text[-1].lower()], UTC))
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as error:
        raise ExceptionError(f"expiry {text!r}: write 30d, 12h, 2w, an ISO date such as 2027-01-31, "
                             "or never") from error
    if len(text) == 10:  # a date: through the end of that day
        moment += timedelta(days=1)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone or UTC)
    return iso(moment)


class Exceptions:
    """Add, edit, disable and list exceptions; every change is audited."""

    EDITABLE = ("scope", "conditions", "owner", "reason", "expires_at")

    def __init__(self, store: Store, *, clock: Callable[[], datetime] | None = None):
        self.store = store
        self.clock = clock or (lambda: datetime.now(UTC))

    def _now(self) -> str:
        return iso(self.clock())

    def _audit(self, action: str, actor: str, exception: DetectionException,
               before: DetectionException | None, *, entry_id: str | None = None, note: str = "") -> None:
        at = self._now()
        body = {"at": at, "seq": time.time_ns() // 1000,  # write order, also under a test clock
                "actor": actor, "action": action, "exception_id": exception.id, "note": note,
                "before": before.model_dump(mode="json") if before else None,
                "after": exception.model_dump(mode="json")}
        self.store.create(AUDIT, entry_id or f"{exception.id}-{at}-{uuid.uuid4().hex[:8]}", body)

    def add(self, *, scope: Scope | dict[str, Any], conditions: Iterable[Condition | dict[str, Any]],
            owner: str, reason: str, actor: str, expires_at: str | None = None) -> DetectionException:
        now = self._now()
        try:
            exception = DetectionException(
                id=f"exc-{uuid.uuid4().hex[:10]}", scope=scope,  # type: ignore[arg-type]
                conditions=list(conditions), owner=owner, reason=reason,  # type: ignore[arg-type]
                created_at=now, created_by=actor, updated_at=now, expires_at=expires_at)
        except ValidationError as error:
            raise ExceptionError(_explain(error)) from error
        if not self.store.create(EXCEPTIONS, exception.id, exception.model_dump(mode="json")):
            raise ExceptionError(f"exception id {exception.id} exists; try again")
        self._audit("add", actor, exception, None)
        return exception

    def get(self, exception_id: str) -> DetectionException | None:
        doc = self.store.get(EXCEPTIONS, exception_id)
        return DetectionException.model_validate(doc.body) if doc else None

    def list(self, *, status: str | None = None) -> list[DetectionException]:
        items = [DetectionException.model_validate(d.body) for d in self.store.iter_all(EXCEPTIONS)]
        items.sort(key=lambda e: (e.created_at, e.id))
        if status:
            now = self.clock()
            items = [e for e in items if e.status(now) == status]
        return items

    def audit(self, exception_id: str | None = None) -> list[dict[str, Any]]:
        where = {"exception_id": exception_id} if exception_id else None
        return [d.body for d in self.store.find(AUDIT, where, sort="seq", limit=100_000)]

    def _change(self, exception_id: str, action: str, actor: str,
                apply: Callable[[DetectionException, str], DetectionException | None], note: str = "",
                entry_id: Callable[[DetectionException], str] | None = None) -> DetectionException:
        for _attempt in range(CAS_ATTEMPTS):
            doc = self.store.get(EXCEPTIONS, exception_id)
            if doc is None:
                raise ExceptionError(f"no exception {exception_id!r}; `soc exceptions list` shows the ids")
            before = DetectionException.model_validate(doc.body)
            now = self._now()
            after = apply(before.model_copy(deep=True), now)
            if after is None:
                return before
            after.updated_at = now
            try:
                after = DetectionException.model_validate(after.model_dump())
            except ValidationError as error:
                raise ExceptionError(_explain(error)) from error
            try:
                self.store.put(EXCEPTIONS, exception_id, after.model_dump(mode="json"), expected_version=doc.version)
            except Conflict:
                continue
            self._audit(action, actor, after, before, note=note,
                        entry_id=entry_id(after) if entry_id else None)
            return after
        raise ExceptionError(f"exception {exception_id} kept changing; try again")

    def edit(self, exception_id: str, *, actor: str, note: str = "", **fields: Any) -> DetectionException:
        unknown = sorted(set(fields) - set(self.EDITABLE))
        if unknown:
            raise ExceptionError(f"cannot edit {', '.join(unknown)}: the fields are {', '.join(self.EDITABLE)}")

        def apply(exception: DetectionException, _now: str) -> DetectionException | None:
            data = exception.model_dump()
            data.update(fields)
            if "expires_at" in fields:
                data["expired_recorded"] = False
            try:
                return DetectionException.model_validate(data)
            except ValidationError as error:
                raise ExceptionError(_explain(error)) from error

        return self._change(exception_id, "edit", actor, apply, note=note)

    def disable(self, exception_id: str, *, actor: str, note: str = "") -> DetectionException:
        def apply(exception: DetectionException, now: str) -> DetectionException | None:
            if not exception.enabled:
                return None
            exception.enabled, exception.disabled_at, exception.disabled_by = False, now, actor
            return exception

        return self._change(exception_id, "disable", actor, apply, note=note)

    def enable(self, exception_id: str, *, actor: str, note: str = "") -> DetectionException:
        def apply(exception: DetectionException, _now: str) -> DetectionException | None:
            if exception.enabled:
                return None
            exception.enabled, exception.disabled_at, exception.disabled_by = True, None, None
            return exception

        return self._change(exception_id, "enable", actor, apply, note=note)

    def record_expired(self, actor: str = "system") -> list[DetectionException]:
        """Audit the exceptions that passed their expiry since the last look (once each, also
        with several processes: the audit entry's id is derived from the expiry)."""
        now = self.clock()
        done = []
        for exception in self.list():
            if exception.expired_recorded or exception.status(now) != "expired":
                continue

            def apply(current: DetectionException, _now: str) -> DetectionException | None:
                if current.expired_recorded or current.status(now) != "expired":
                    return None
                current.expired_recorded = True
                return current

            key = hashlib.blake2b(f"{exception.id}\x1f{exception.expires_at}".encode(), digest_size=8).hexdigest()
            done.append(self._change(exception.id, "expire", actor, apply,
                                     note=f"expired at {exception.expires_at}",
                                     entry_id=lambda e, key=key: f"{e.id}-expired-{key}"))
        return done


def scope_warnings(exception: DetectionException, ruleset: Any) -> list[str]:
    """Why an exception would never apply to the rules of ``ruleset`` (a compiled
    :class:`~soc.detect.compiler.RuleSet`): an unknown rule id, a rule that raises no alerts
    itself (it only feeds correlations), a group no rule belongs to."""
    detections = ruleset.detections
    raising = ruleset.runnable()
    if exception.scope.kind == "rule":
        rule = detections.get(exception.scope.value)
        if rule is None:
            return [f"no rule has the id {exception.scope.value!r}: the exception will never apply "
                    "(`soc rules check --verbose` lists the ids)"]
        if not rule.output:
            users = [d.info.title for d in detections.values()
                     if d.correlation is not None and rule.info.id in d.correlation.rules]
            return [f"rule '{rule.info.title}' raises no alerts itself (it feeds "
                    f"{', '.join(repr(u) for u in users) or 'correlations'}): scope the exception to the "
                    "rule that raises the alert"]
        if rule.info.id not in {d.info.id for d in raising}:
            return [f"rule '{rule.info.title}' does not run here (no data source or a conversion error)"]
        return []
    if not any(exception.scope.covers(d) for d in raising):
        return [f"no rule that raises alerts is in {exception.scope.describe()}: the exception will never apply"]
    return []


def _explain(error: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'exception'}: {e['msg']}" for e in error.errors())


def active_exceptions_for(settings: Any) -> ActiveExceptions | None:
    """The exceptions of the configured store, for a command that runs rules elsewhere
    (``soc hunt``); None when there is no store yet (nothing is created)."""
    from soc.secrets import SecretError, mask_urls_in
    from soc.store import open_configured_store
    from soc.store.base import StoreError, StoreMissing

    try:
        exceptions = ActiveExceptions(open_configured_store(settings, create=False))
        exceptions.prepare()
    except StoreMissing:
        return None
    except (StoreError, OSError, SecretError) as error:
        log.warning("exceptions NOT applied: cannot read them from %s: %s", settings.store_display_url(),
                    mask_urls_in(str(error)))
        return None
    return exceptions


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
