"""Alerts Kibana can read: a mapped copy of the ``alerts`` collection, ``<prefix>-docs-alerts.kibana``.

The ``alerts`` collection (``<prefix>-docs-alerts``, :mod:`soc.store.search_docs`) maps every
string as an exact keyword, ``@timestamp`` included, because the store's document API (filters,
sorts, cursors, compare-and-set) reads and compares bodies the same way on SQLite. A Kibana data
view needs a *date* time field, and Elastic's alert tooling reads the ``kibana.alert.*`` fields.
So every write of an alert is copied, with those fields added (:func:`kibana_alert`), into its own
index mapped by :func:`alerts_template`: ``@timestamp``, ``first_seen``, ``last_seen``,
``detected_at`` and ``kibana.alert.original_time`` are dates, ``kibana.alert.risk_score`` a
number, the rest keywords; the project's own fields are next to them as the alert has them.
Nothing else in the service reads this index: the document API is unchanged.

**Order.** The copy is written after the alert (whose write may be a compare-and-set) with
``version_type=external`` and the alert's own version (``(primary_term << 40) | seq_no``, which
only grows): two processes updating one alert cannot leave the older body in the copy, the
engine refuses it with 409. A copy that fails is logged and the alert stays written; ``soc store
reindex`` (:mod:`soc.store.search_reindex`) rebuilds the copies from the collection, counted.

The index name is under the document pattern (``<prefix>-docs-*``), so the store roles that
read and write the collections (:mod:`soc.store.search_roles`) cover it, and its template has a
higher priority than the documents' template. The ``.`` keeps it apart from every collection
index (a collection name with a ``.`` gets a digest suffix).

**The subset of the alert fields** (Elastic Security's alert schema, ``kibana.alert.*``):
``uuid`` (the alert id), ``rule.name``/``rule.uuid``/``rule.rule_id`` (the Sigma title and id),
``rule.description``, ``rule.tags``, ``rule.severity``, ``rule.risk_score``, ``severity``
(Sigma's level; ``informational`` is ``low``), ``risk_score`` (Elastic's defaults per severity:
21, 47, 73, 99; informational 0), ``workflow_status`` (``open``, ``acknowledged``, ``closed``;
this project's ``new`` is ``open``), ``status`` (``active``), ``reason``, ``original_time``
(the first event's time), ``start`` (detection time), ``ancestors`` (one ``{id, index, type,
depth}`` per source event: the pivot to the events, which are ``_id`` of ``<prefix>-events-*``),
``kibana.space_ids`` (``default``) and ``event.kind: signal``.
"""

from __future__ import annotations

from typing import Any

from soc.store.ecs_schema import ecs_schema

__all__ = ["ALERTS_COLLECTION", "alerts_index", "alerts_template", "kibana_alert"]

#: the collection that is copied
ALERTS_COLLECTION = "alerts"
_SEVERITY = {"informational": "low", "low": "low", "medium": "medium", "high": "high", "critical": "critical"}
_RISK = {"informational": 0, "low": 21, "medium": 47, "high": 73, "critical": 99}
_WORKFLOW = {"new": "open", "open": "open", "acknowledged": "acknowledged", "closed": "closed"}
_DATE = {"type": "date", "format": "strict_date_optional_time||epoch_millis"}
_KEYWORD = {"type": "keyword", "ignore_above": 8191}
_DATES = ("@timestamp", "first_seen", "last_seen", "detected_at")


def alerts_index(prefix: str) -> str:
    return f"{prefix}-docs-alerts.kibana"


def kibana_alert(id_: str, body: dict[str, Any], prefix: str) -> dict[str, Any]:
    """The copy of one alert: its body and the ``kibana.alert.*`` subset (see the docstring)."""
    rule = body.get("rule") if isinstance(body.get("rule"), dict) else {}
    level = str(rule.get("level") or "").lower()
    severity = _SEVERITY.get(level, "low")
    risk = _RISK.get(level, 21)
    title = str(rule.get("title") or rule.get("id") or "")
    count = body.get("event_count")
    where = f" at {body['agency']}" if body.get("agency") else ""
    reason = body.get("message") or f"{title}: {count if count is not None else '?'} event(s){where}"
    events_index = f"{prefix}-events-*"
    ancestors = [{"id": str(e), "index": events_index, "type": "event", "depth": 0}
                 for e in body.get("event_ids") or ()]
    copy = {k: v for k, v in body.items() if k not in ("kibana", "event", "ecs")}
    copy.update({
        "@timestamp": body.get("@timestamp") or body.get("first_seen") or body.get("detected_at"),
        "event": {"kind": "signal"},
        "ecs": {"version": ecs_schema().version},
        "kibana": {"space_ids": ["default"], "alert": {
            "uuid": id_,
            "status": "active",
            "workflow_status": _WORKFLOW.get(str(body.get("status") or "new"), str(body.get("status"))),
            "severity": severity,
            "risk_score": risk,
            "reason": str(reason),
            "original_time": body.get("first_seen") or body.get("@timestamp"),
            "start": body.get("detected_at"),
            "ancestors": ancestors,
            "rule": {"name": title, "uuid": str(rule.get("id") or ""), "rule_id": str(rule.get("id") or ""),
                     "description": str(rule.get("description") or ""), "tags": list(rule.get("tags") or ()),
                     "severity": severity, "risk_score": risk, "producer": "soc", "rule_type_id": "sigma"},
        }},
    })
    return copy


def alerts_template(prefix: str, *, shards: int = 1, replicas: int | None = None) -> dict[str, Any]:
    """The template of the alerts copy (priority above the document template)."""
    settings: dict[str, Any] = {"number_of_shards": shards, "mapping.total_fields.limit": 5000,
                                "mapping.ignore_malformed": True}
    if replicas is not None:
        settings["number_of_replicas"] = replicas
    alert = {
        "uuid": _KEYWORD, "status": _KEYWORD, "workflow_status": _KEYWORD, "severity": _KEYWORD,
        "risk_score": {"type": "float"}, "reason": _KEYWORD, "original_time": _DATE, "start": _DATE,
        "ancestors": {"properties": {"id": _KEYWORD, "index": _KEYWORD, "type": _KEYWORD, "depth": {"type": "long"}}},
        "rule": {"properties": {"name": _KEYWORD, "uuid": _KEYWORD, "rule_id": _KEYWORD, "description": _KEYWORD,
                                "tags": _KEYWORD, "severity": _KEYWORD, "risk_score": {"type": "float"},
                                "producer": _KEYWORD, "rule_type_id": _KEYWORD}},
    }
    properties: dict[str, Any] = {name: dict(_DATE) for name in _DATES}
    properties.update({
        "event": {"properties": {"kind": _KEYWORD}},
        "ecs": {"properties": {"version": _KEYWORD}},
        "kibana": {"properties": {"space_ids": _KEYWORD, "alert": {"properties": alert}}},
    })
    return {
        "index_patterns": [alerts_index(prefix)],
        "priority": 210,
        "template": {
            "settings": {"index": settings},
            "mappings": {
                "dynamic": True, "date_detection": False, "numeric_detection": False,
                "dynamic_templates": [
                    {"strings": {"match_mapping_type": "string", "mapping": dict(_KEYWORD)}},
                    {"integers": {"match_mapping_type": "long", "mapping": {"type": "double"}}},
                ],
                "properties": properties,
            },
        },
        "_meta": {"managed_by": "soc", "description": "SOC alerts for Kibana: a mapped copy of the alerts collection"},
    }
