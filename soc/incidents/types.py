"""Default severity and national incident type of an incident, from its alerts' rules.

The type mapping is data (``soc/incidents/types.yml``): Sigma tags / rule ids -> one of the
types in :data:`soc.incidents.model.INCIDENT_TYPES`. Severity comes from the rules' levels.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from soc.incidents.model import INCIDENT_TYPES

DEFAULT_TYPES_FILE = Path(__file__).with_name("types.yml")
SEVERITIES = ("low", "medium", "high", "critical")
#: Sigma rule level -> incident severity
LEVEL_SEVERITY = {"informational": "low", "low": "low", "medium": "medium", "high": "high",
                  "critical": "critical"}


def severity_rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else 1


def severity_from_alerts(alerts: Iterable[Mapping[str, Any]]) -> str:
    """The highest severity of the alerts' rule levels (``medium`` when none is known)."""
    best = None
    for alert in alerts:
        level = str((alert.get("rule") or {}).get("level") or "").lower()
        severity = LEVEL_SEVERITY.get(level)
        if severity and (best is None or severity_rank(severity) > severity_rank(best)):
            best = severity
    return best or "medium"


def _norm_tag(tag: str) -> str:
    return tag.strip().lower().replace("_", "-")


@dataclass(frozen=True)
class TypeRule:
    type: str
    tags: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()

    def matches(self, rule_id: str, rule_name: str, tags: Iterable[str]) -> bool:
        if rule_id in self.rules or (rule_name and rule_name in self.rules):
            return True
        return any(fnmatchcase(tag, pattern) for tag in tags for pattern in self.tags)


@dataclass(frozen=True)
class TypeMap:
    """Rule tags -> national incident type, first matching entry wins; see ``types.yml``."""

    mappings: tuple[TypeRule, ...]
    priority: tuple[str, ...] = field(default=tuple(INCIDENT_TYPES))

    @classmethod
    def load(cls, path: Path | str = DEFAULT_TYPES_FILE) -> TypeMap:
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as error:
            raise ValueError(f"{path}: cannot read the incident type mapping: {error}") from error
        rules = []
        for number, entry in enumerate(data.get("mappings") or [], 1):
            kind = entry.get("type") if isinstance(entry, dict) else None
            if kind not in INCIDENT_TYPES:
                raise ValueError(f"{path}: mapping {number}: type {kind!r} is not one of "
                                 f"{', '.join(INCIDENT_TYPES)}")
            rules.append(TypeRule(kind, tuple(_norm_tag(t) for t in entry.get("tags") or ()),
                                  tuple(str(r) for r in entry.get("rules") or ())))
        priority = tuple(data.get("priority") or INCIDENT_TYPES)
        unknown = [p for p in priority if p not in INCIDENT_TYPES]
        if unknown:
            raise ValueError(f"{path}: priority names unknown types {unknown}")
        priority += tuple(t for t in INCIDENT_TYPES if t not in priority)
        return cls(tuple(rules), priority)

    def type_of_rule(self, rule: Mapping[str, Any]) -> str:
        tags = [_norm_tag(str(t)) for t in rule.get("tags") or ()]
        for entry in self.mappings:
            if entry.matches(str(rule.get("id", "")), str(rule.get("name", "")), tags):
                return entry.type
        return "other"

    def rank(self, kind: str) -> int:
        return self.priority.index(kind) if kind in self.priority else len(self.priority)

    def best(self, kinds: Iterable[str]) -> str:
        """The type that comes first in the priority list (``other`` when there is none)."""
        return min(kinds, key=self.rank, default="other")

    def type_from_alerts(self, alerts: Iterable[Mapping[str, Any]]) -> str:
        return self.best(self.type_of_rule(a.get("rule") or {}) for a in alerts)


@lru_cache(maxsize=1)
def default_type_map() -> TypeMap:
    return TypeMap.load()
