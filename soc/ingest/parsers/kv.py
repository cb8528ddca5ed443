"""key=value logs: FortiGate (and other Fortinet boxes), Sophos, SonicWall, Juniper-style kv,
and anything else written as ``k=v k="v w"``.

Every pair is kept: under ``fortigate.<key>`` when the line looks like FortiGate (a
``devid``/``device_id`` starting ``FG``, or FortiOS's ``logid`` + ``type`` + ``subtype``/``vd``),
else under ``kv.<key>``. The ECS mapping takes the first present key of each row of
:data:`_ECS`, so a new vendor usually needs one more alias, not new code.

Time: ``date`` + ``time`` (+ ``tz=`` when present) in the device's zone; when there is no
``tz`` but an epoch ``eventtime``/``logtime`` (FortiOS 6+ writes nanoseconds), the epoch wins
because it is absolute; otherwise ``date`` + ``time`` stay naive and the source's zone
applies. SonicWall-style ``time="2019-02-27 12:55:40 UTC"`` is read too.

Dataset: ``firewall.fortigate`` for FortiGate, else ``firewall.kv``. When kv text is found
inside a syslog MSG (``embedded=True``) a non-FortiGate line only claims ``firewall.kv`` if
it has both a source and a destination address; otherwise the syslog program decides.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from soc.ingest.values import (
    EMPTY_VALUES,
    as_ip,
    prefixed,
    set_address,
    split_kv,
    to_int,
    to_port,
    transport,
)
from soc.model import FAILED, Parsed

from ._time import from_epoch, parse_any, parse_iso, tz_from_text

_ECS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("source", ("srcip", "src", "src_ip", "source_ip", "sourceip", "src_addr", "srcaddr", "SRC", "client_ip")),
    ("destination", ("dstip", "dst", "dst_ip", "destination_ip", "dest_ip", "dstaddr", "dst_addr", "DST")),
    ("source.port", ("srcport", "src_port", "spt", "sport", "source_port", "SPT")),
    ("destination.port", ("dstport", "dst_port", "dpt", "dport", "destination_port", "dest_port", "DPT")),
    ("network.transport", ("proto", "protocol", "PROTO")),
    ("event.action", ("action", "act", "fw_action")),
    ("user.name", ("user", "srcuser", "usrName", "username", "user_name", "login", "dstuser")),
    ("observer.name", ("devname", "device_name", "devName", "fw_name")),
    ("observer.serial_number", ("devid", "device_id", "serial")),
    ("message", ("msg", "message", "logdesc", "description", "note")),
    ("log.level", ("level", "pri", "severity", "priority")),
    ("observer.ingress.interface.name", ("srcintf", "src_int", "initf", "inintf", "in_if")),
    ("observer.egress.interface.name", ("dstintf", "dst_int", "outintf", "out_if")),
    ("source.bytes", ("sentbyte", "sent_bytes", "sent")),
    ("destination.bytes", ("rcvdbyte", "rcvd_bytes", "rcvd")),
    ("url.domain", ("hostname",)),
    ("url.original", ("url",)),
    ("source.geo.country_name", ("srccountry",)),
    ("destination.geo.country_name", ("dstcountry",)),
)
_INT_FIELDS = frozenset({"source.port", "destination.port", "source.bytes", "destination.bytes"})
_DENY = frozenset({"deny", "denied", "drop", "dropped", "block", "blocked", "reject", "rejected", "close", "client-rst", "server-rst", "timeout", "clear_session"})
_ALLOW = frozenset({"accept", "accepted", "allow", "allowed", "pass", "passthrough", "permit", "permitted", "start"})
_SUCCESS = frozenset({"success", "succeeded", "successful", "ok"})
_FAILURE = frozenset({"failed", "failure", "fail", "error"})


def _is_fortigate(pairs: dict[str, str]) -> bool:
    dev = pairs.get("devid") or pairs.get("device_id") or ""
    if dev.startswith("FG"):
        return True
    return "logid" in pairs and "type" in pairs and ("subtype" in pairs or "vd" in pairs) and not dev


def _split_endpoint(value: str) -> tuple[str, str | None, str | None]:
    """``1.2.3.4``, ``1.2.3.4:80`` or SonicWall ``1.2.3.4:80:X1`` (``:X1:host``) -> (address, port, interface)."""
    if as_ip(value) is not None or (value.count(":") > 2 and as_ip(value.split(":", 1)[0]) is None):
        return value, None, None
    parts = value.split(":")
    if len(parts) >= 2 and as_ip(parts[0]) is not None:
        return parts[0], parts[1] or None, parts[2] if len(parts) > 2 and parts[2] else None
    return value, None, None


def _time(pairs: dict[str, str]) -> tuple[datetime | None, str | None]:
    date = pairs.get("date")
    clock = pairs.get("time")
    tz = pairs.get("tz")
    if date and clock and tz:
        zone = tz_from_text(tz.strip('"'))
        ts = parse_iso(f"{date.replace('/', '-')}T{clock.replace(' ', '')}")
        if ts is not None and zone is not None:
            return ts.replace(tzinfo=zone), f"{date} {clock} {tz}"
    for key in ("eventtime", "logtime", "itime"):
        value = pairs.get(key)
        if value and value.isdigit():
            ts = from_epoch(value)
            if ts is not None:
                return ts, value
    if date and clock:
        ts = parse_iso(f"{date.replace('/', '-')}T{clock.replace(' ', '')}")
        if ts is not None:
            return ts, f"{date} {clock}"
    for key in ("time", "timestamp", "devTime", "start_time", "rt"):
        value = pairs.get(key)
        if value and len(value) >= 8:
            ts, _year_missing = parse_any(value)
            if ts is not None and not _year_missing:
                return ts, value
    return None, None


def _outcome(fields: dict[str, Any], pairs: dict[str, str]) -> None:
    status = (pairs.get("status") or pairs.get("result") or "").lower()
    action = str(fields.get("event.action", "")).lower()
    if status in _SUCCESS:
        fields["event.outcome"] = "success"
    elif status in _FAILURE or "fail" in action or "fail" in str(pairs.get("logdesc", "")).lower():
        fields["event.outcome"] = "failure"
    verdict = action or status
    if not action and status in (_DENY | _ALLOW):
        fields["event.action"] = status
    if verdict in _DENY:
        fields["event.type"] = ["connection", "denied"]
        fields["event.category"] = ["network"]
    elif verdict in _ALLOW:
        fields["event.type"] = ["connection", "allowed"]
        fields["event.category"] = ["network"]


def parse_text(text: str, embedded: bool = False) -> Parsed | None:
    """kv ``text`` -> Parsed, or ``None`` when it holds fewer than two pairs."""
    pairs = split_kv(text)
    if len(pairs) < 2:
        return None
    forti = _is_fortigate(pairs)
    prefix = "fortigate." if forti else "kv."
    fields: dict[str, Any] = {prefixed(prefix, k): v for k, v in pairs.items()}
    for target, keys in _ECS:
        for key in keys:
            value = pairs.get(key)
            if value is None or value in EMPTY_VALUES:
                continue
            if target in ("source", "destination"):
                address, port, iface = _split_endpoint(value)
                set_address(fields, target, address)
                if port and to_port(port) is not None:
                    fields.setdefault(target + ".port", to_port(port))
                if iface:
                    side = "ingress" if target == "source" else "egress"
                    fields.setdefault(f"observer.{side}.interface.name", iface)
            elif target in _INT_FIELDS:
                number = to_port(value) if target.endswith("port") else to_int(value)
                if number is None:
                    continue
                fields.setdefault(target, number)
            elif target == "network.transport":
                proto = transport(value)
                if not proto:
                    continue
                fields[target] = proto
            elif target.endswith("country_name") and value == "Reserved":
                continue
            else:
                fields[target] = value
            break
    if "source.ip" not in fields:
        remote = pairs.get("remip") or _paren_ip(pairs.get("ui"))
        if remote:
            set_address(fields, "source", remote)
    if pairs.get("attack"):
        fields["rule.name"] = pairs["attack"]
        if pairs.get("attackid"):
            fields["rule.id"] = pairs["attackid"]
    else:
        rule = pairs.get("policyid") or pairs.get("rule") or pairs.get("fwrule") or pairs.get("policy_id")
        if rule and rule not in EMPTY_VALUES:
            fields["rule.id"] = rule
        if pairs.get("policyname"):
            fields["rule.name"] = pairs["policyname"]
    _outcome(fields, pairs)
    if forti:
        fields["observer.vendor"] = "Fortinet"
        fields["observer.product"] = "FortiGate"
        fields["observer.type"] = "firewall"
        if pairs.get("logid"):
            fields["event.code"] = pairs["logid"]
        fields["event.dataset"] = "firewall.fortigate"
    elif not embedded or (
        ("source.ip" in fields or "source.address" in fields) and ("destination.ip" in fields or "destination.address" in fields)
    ):
        fields["event.dataset"] = "firewall.kv"
    ts, raw = _time(pairs)
    fields["soc.parse.parser"] = "kv"
    return Parsed(fields=fields, timestamp=ts, raw_time=raw)


def _paren_ip(value: str | None) -> str | None:
    """FortiGate ``ui=https(10.1.2.3)`` -> ``10.1.2.3``."""
    if value and value.endswith(")") and "(" in value:
        inner = value[value.rfind("(") + 1 : -1]
        return inner if as_ip(inner) else None
    return None


def parse(line: str) -> Parsed:
    """A whole line of key=value text."""
    parsed = parse_text(line)
    if parsed is None:
        return Parsed(fields={"message": line, "soc.parse.parser": "kv"}, status=FAILED, error="no key=value pairs found")
    return parsed
