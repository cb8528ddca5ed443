"""Helpers shared by the actions."""

from __future__ import annotations

import hashlib
from typing import Any


def digest(*parts: object) -> str:
    return hashlib.sha256("\x00".join(str(p) for p in parts).encode()).hexdigest()[:32]


def as_list(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    if isinstance(value, (list, tuple, set)):
        return [v for v in value if v not in (None, "")]
    return [value]


def alert_values(alerts: Any, *fields: str) -> list[str]:
    """Distinct values of entity ``fields`` across alerts (entities, then the group)."""
    seen: dict[str, None] = {}
    for alert in as_list(alerts):
        if not isinstance(alert, dict):
            continue
        for name in fields:
            for value in as_list((alert.get("entities") or {}).get(name)):
                seen[str(value)] = None
            value = (alert.get("group") or {}).get(name)
            if value not in (None, ""):
                seen[str(value)] = None
    return list(seen)
