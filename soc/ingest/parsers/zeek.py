"""Zeek (Bro) JSON logs -> ``zeek.<stream>.*`` + ECS, datasets ``zeek.conn``, ``zeek.dns``,
``zeek.http``, else ``zeek.other``.

The stream comes from ``@stream`` (Zeek's JSON streaming writers), ``_path`` (Zeek's own
JSON writer, Corelight) or, for a bare record, from the keys it has (``query`` -> dns,
``conn_state`` -> conn, ``method``+``uri`` -> http, ``auth_attempts`` -> ssh...).

Keys are kept under ``zeek.<stream>.<key>``. Exports that rename ``id.orig_h`` to
``id_orig_h`` (Logstash-style) are brought back to Zeek's own dotted names, so a rule needs
one field name whichever exporter an agency runs. ``@system`` (the sensor) becomes
``observer.hostname``. ECS: ``source.ip``/``source.port`` (``id.orig_*``),
``destination.ip``/``destination.port`` (``id.resp_*``), ``network.transport`` (``proto``),
``network.protocol`` (conn ``service``), ``source.bytes``/``destination.bytes``,
``event.duration`` (ns), ``dns.question.name``/``dns.question.type``/``dns.response_code``,
``url.original``/``url.domain``/``http.request.method``/``http.response.status_code``/
``user_agent.original``, ``zeek.session_id`` (``uid``).
"""

from __future__ import annotations

from typing import Any

from soc.ingest.values import set_address, to_int, to_port, transport
from soc.model import PARTIAL, Parsed

from ._time import from_epoch, parse_iso
from .flatten import flatten

_DATASETS = {"conn": "zeek.conn", "dns": "zeek.dns", "http": "zeek.http"}
_ID_KEYS = {"id_orig_h": "id.orig_h", "id_orig_p": "id.orig_p", "id_resp_h": "id.resp_h", "id_resp_p": "id.resp_p"}
_META = frozenset({"@stream", "@system", "@proc", "_path", "_write_ts", "_system_name"})


def _guess_stream(obj: dict[str, Any]) -> str:
    if "query" in obj and ("qtype_name" in obj or "rcode" in obj or "trans_id" in obj):
        return "dns"
    if "conn_state" in obj or "history" in obj or "orig_bytes" in obj:
        return "conn"
    if "method" in obj and ("uri" in obj or "host" in obj):
        return "http"
    if "auth_attempts" in obj or "auth_success" in obj:
        return "ssh"
    if "established" in obj or "server_name" in obj or "cipher" in obj:
        return "ssl"
    if "fuid" in obj and "mime_type" in obj:
        return "files"
    if "request_type" in obj and "client" in obj:
        return "kerberos"
    return "unknown"


def recognise(obj: dict[str, Any]) -> Parsed | None:
    """Zeek record, or ``None``."""
    stream = obj.get("@stream") or obj.get("_path")
    if not stream:
        if not (("id.orig_h" in obj or "id_orig_h" in obj) and ("uid" in obj or "ts" in obj)):
            return None
        stream = _guess_stream(obj)
    stream = str(stream)
    record = {_ID_KEYS.get(k, k): v for k, v in obj.items() if k not in _META}
    fields: dict[str, Any] = {"event.dataset": _DATASETS.get(stream, "zeek.other"), "zeek.stream": stream, "soc.parse.parser": "json"}
    prefix = f"zeek.{stream}."
    truncated = flatten(record, prefix, fields)
    if obj.get("@system"):
        fields["observer.hostname"] = str(obj["@system"])
    _ecs(record, fields)
    ts_value = obj.get("ts")
    ts = from_epoch(ts_value) if isinstance(ts_value, int | float) else parse_iso(str(ts_value)) if ts_value else None
    parsed = Parsed(fields=fields, timestamp=ts, raw_time=None if ts_value is None else str(ts_value))
    if truncated:
        parsed.degrade(PARTIAL, "Zeek record larger than the field budget")
    return parsed


def _s(value: Any) -> str | None:
    return None if value is None or isinstance(value, dict | list) else str(value)


def _ecs(r: dict[str, Any], f: dict[str, Any]) -> None:
    set_address(f, "source", _s(r.get("id.orig_h")))
    set_address(f, "destination", _s(r.get("id.resp_h")))
    for key, target in (("id.orig_p", "source.port"), ("id.resp_p", "destination.port")):
        port = to_port(r.get(key))
        if port is not None:
            f[target] = port
    proto = transport(_s(r.get("proto")))
    if proto:
        f["network.transport"] = proto
    if r.get("uid"):
        f["zeek.session_id"] = str(r["uid"])
    service = _s(r.get("service"))
    if service and "conn_state" in r:
        f["network.protocol"] = service
    for key, target in (("orig_bytes", "source.bytes"), ("resp_bytes", "destination.bytes")):
        number = to_int(r.get(key))
        if number is not None:
            f[target] = number
    duration = r.get("duration")
    if isinstance(duration, int | float) and duration >= 0:
        f["event.duration"] = int(duration * 1e9)
    if r.get("query"):
        f["dns.question.name"] = str(r["query"])
        if r.get("qtype_name"):
            f["dns.question.type"] = str(r["qtype_name"])
        if r.get("rcode_name"):
            f["dns.response_code"] = str(r["rcode_name"])
    if r.get("method") and ("uri" in r or "host" in r):
        f["http.request.method"] = str(r["method"])
        for key, target in (("uri", "url.original"), ("host", "url.domain"), ("user_agent", "user_agent.original"), ("referrer", "http.request.referrer")):
            value = _s(r.get(key))
            if value and value != "-":
                f[target] = value
        status = to_int(r.get("status_code"))
        if status is not None:
            f["http.response.status_code"] = status
