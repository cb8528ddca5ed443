"""What an incident takes from its alerts: their time span and entities, its default title,
its id (derived from the first alert's), and the history detail naming them."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from soc.incidents.titles import default_template

MAX_ENTITY_VALUES = 100
MAX_HISTORY_IDS = 200


def incident_id_for(alert_id: str, salt: str = "open") -> str:
    """The id of the incident opened from (or split off with) ``alert_id`` first."""
    digest = hashlib.blake2b(f"{salt}\x1f{alert_id}".encode(), digest_size=8).hexdigest()
    return f"inc-{digest}"


def _alert_times(alert: Mapping[str, Any]) -> tuple[str | None, str | None]:
    first = alert.get("first_seen") or alert.get("@timestamp")
    last = alert.get("last_seen") or first
    return first, last


def _alert_entities(alert: Mapping[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, values in (alert.get("entities") or {}).items():
        items = values if isinstance(values, list) else [values]
        out.setdefault(name, []).extend(str(v) for v in items if v not in (None, ""))
    for name, value in (alert.get("group") or {}).items():
        if value not in (None, "") and not isinstance(value, (list, dict)):
            out.setdefault(name, []).append(str(value))
    return out


def _add_values(target: dict[str, list[str]], name: str, values: Iterable[str]) -> None:
    bucket = target.setdefault(name, [])
    seen = {v.lower() for v in bucket}
    for value in values:
        if value.lower() not in seen and len(bucket) < MAX_ENTITY_VALUES:
            bucket.append(value)
            seen.add(value.lower())


def _default_title(alerts: Sequence[Mapping[str, Any]]) -> str:
    """The default title *template* (:func:`soc.incidents.titles.default_template`): rule,
    target, attacker and date, filled from the incident."""
    entities: dict[str, list[str]] = {}
    for alert in alerts:
        for name, values in _alert_entities(alert).items():
            _add_values(entities, name, values)
    return default_template(alerts, entities)


def _ids_detail(ids: Sequence[str]) -> dict[str, object]:
    return {"alert_ids": list(ids[:MAX_HISTORY_IDS]), "count": len(ids)}
