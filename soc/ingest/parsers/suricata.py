"""Suricata EVE JSON (alerts, flows, dns, http, tls...) -> ECS, dataset ``ids.suricata``.

All original keys are kept, flattened, under ``suricata.eve.*`` (``suricata.eve.alert.signature``,
``suricata.eve.flow.bytes_toserver``...). ECS: ``source.ip``/``source.port``,
``destination.ip``/``destination.port`` (``dest_*``), ``network.transport`` (``proto``, lower
case), ``network.protocol`` (``app_proto``), ``event.action`` (``event_type``: alert, flow,
dns, http...), ``rule.name``/``rule.id``/``rule.category`` and ``event.severity`` (from
``alert``), ``event.type`` allowed/denied (``alert.action``), ``host.name`` (``host``), and for
dns/http records ``dns.question.name``, ``url.original``, ``url.domain``,
``http.request.method``, ``http.response.status_code``, ``user_agent.original``.
"""

from __future__ import annotations

from typing import Any

from soc.ingest.values import set_address, to_int, to_port, transport
from soc.model import PARTIAL, Parsed

from ._time import parse_iso
from .flatten import flatten


def recognise(obj: dict[str, Any]) -> Parsed | None:
    """Suricata EVE record, or ``None``."""
    if "event_type" not in obj or not ("flow_id" in obj or "src_ip" in obj or "dest_ip" in obj or "in_iface" in obj):
        return None
    fields: dict[str, Any] = {"event.dataset": "ids.suricata", "soc.parse.parser": "json"}
    truncated = flatten(obj, "suricata.eve.", fields)
    set_address(fields, "source", _str(obj.get("src_ip")))
    set_address(fields, "destination", _str(obj.get("dest_ip")))
    for key, target in (("src_port", "source.port"), ("dest_port", "destination.port")):
        port = to_port(obj.get(key))
        if port is not None:
            fields[target] = port
    proto = transport(_str(obj.get("proto")))
    if proto:
        fields["network.transport"] = proto
    if obj.get("app_proto"):
        fields["network.protocol"] = str(obj["app_proto"]).lower()
    event_type = _str(obj.get("event_type"))
    if event_type:
        fields["event.action"] = event_type
    if obj.get("host"):
        fields["host.name"] = str(obj["host"])
    alert = obj.get("alert")
    if isinstance(alert, dict):
        _alert(alert, fields)
    _app(obj, fields)
    ts = parse_iso(_str(obj.get("timestamp")) or "")
    parsed = Parsed(fields=fields, timestamp=ts, raw_time=_str(obj.get("timestamp")))
    if truncated:
        parsed.degrade(PARTIAL, "EVE record larger than the field budget; the rest is in event.original")
    return parsed


def _str(value: Any) -> str | None:
    return None if value is None or isinstance(value, dict | list) else str(value)


def _alert(alert: dict[str, Any], fields: dict[str, Any]) -> None:
    if alert.get("signature"):
        fields["rule.name"] = str(alert["signature"])
    if alert.get("signature_id") is not None:
        fields["rule.id"] = str(alert["signature_id"])
    if alert.get("category"):
        fields["rule.category"] = str(alert["category"])
    severity = to_int(alert.get("severity"))
    if severity is not None:
        fields["event.severity"] = severity
    fields["event.category"] = ["intrusion_detection", "network"]
    action = str(alert.get("action", "")).lower()
    fields["event.type"] = ["denied"] if action in ("blocked", "drop", "dropped", "reject") else ["allowed"] if action == "allowed" else ["info"]


def _app(obj: dict[str, Any], fields: dict[str, Any]) -> None:
    dns = obj.get("dns")
    if isinstance(dns, dict) and dns.get("rrname"):
        fields["dns.question.name"] = str(dns["rrname"])
        if dns.get("rrtype"):
            fields["dns.question.type"] = str(dns["rrtype"])
    http = obj.get("http")
    if isinstance(http, dict):
        for key, target in (
            ("url", "url.original"),
            ("hostname", "url.domain"),
            ("http_method", "http.request.method"),
            ("http_user_agent", "user_agent.original"),
            ("http_refer", "http.request.referrer"),
        ):
            if http.get(key):
                fields[target] = str(http[key])
        status = to_int(http.get("status"))
        if status is not None:
            fields["http.response.status_code"] = status
