"""Kernel messages: netfilter/iptables/ufw packet logs -> network fields, dataset
``firewall.iptables``.

A netfilter log line is ``[uptime] <prefix>IN=<if> OUT=<if> [MAC=..] SRC=<ip> DST=<ip> LEN=..
... PROTO=<p> [SPT=<port> DPT=<port>] <FLAGS>`` where the prefix is whatever the rule's
``--log-prefix`` said (``[UFW BLOCK] ``, ``DROP``, ``FIREWALL_OUT``, ``DROP(src wan)``).

Fields: ``iptables.<key>`` (lower-case keys: ``in``, ``out``, ``mac``, ``len``, ``ttl``, ``id``,
``window``...), ``iptables.flags`` (bare words: ``DF``, ``SYN``, ``ACK``...),
``iptables.prefix``, ECS ``source.ip``/``source.port``, ``destination.ip``/``destination.port``,
``network.transport``, ``observer.ingress.interface.name`` (IN), ``observer.egress.interface.name``
(OUT), ``event.action: firewall_packet`` and ``event.type`` ``denied``/``allowed`` when the
prefix says drop/block/reject or accept/allow. Other kernel lines only get the uptime stamp
removed into ``kernel.uptime``.
"""

from __future__ import annotations

import re
from typing import Any

from soc.ingest.values import set_address, to_port, transport

_UPTIME = re.compile(r"\[\s*(\d+\.\d+)\]\s*")
_DENY_WORDS = ("DROP", "BLOCK", "REJECT", "DENY", "DENIED")
_ALLOW_WORDS = ("ACCEPT", "ALLOW", "PASS", "PERMIT")


def extract(message: str, fields: dict[str, Any]) -> bool:
    """kernel MSG -> netfilter fields when it is a packet log line."""
    msg = message
    if msg.startswith("["):
        m = _UPTIME.match(msg)
        if m:
            fields["kernel.uptime"] = float(m.group(1))
            msg = msg[m.end():]
    at = msg.find("IN=")
    if at < 0 or " SRC=" not in msg or " DST=" not in msg:
        return False
    prefix = msg[:at].strip()
    items: dict[str, str] = {}
    flags: list[str] = []
    for token in msg[at:].split():
        key, eq, value = token.partition("=")
        if eq:
            items.setdefault(key, value)
        elif token.isupper() and len(flags) < 32:
            flags.append(token)
    for key, value in items.items():
        if value:
            fields["iptables." + key.lower()] = value
    if flags:
        fields["iptables.flags"] = flags
    if prefix:
        fields["iptables.prefix"] = prefix
    set_address(fields, "source", items.get("SRC"))
    set_address(fields, "destination", items.get("DST"))
    for key, target in (("SPT", "source.port"), ("DPT", "destination.port")):
        port = to_port(items.get(key))
        if port is not None:
            fields[target] = port
    proto = transport(items.get("PROTO"))
    if proto:
        fields["network.transport"] = proto
    if items.get("IN"):
        fields["observer.ingress.interface.name"] = items["IN"]
    if items.get("OUT"):
        fields["observer.egress.interface.name"] = items["OUT"]
    fields["event.action"] = "firewall_packet"
    fields["event.category"] = ["network"]
    upper = prefix.upper()
    if any(word in upper for word in _DENY_WORDS):
        fields["event.type"] = ["connection", "denied"]
        fields["event.outcome"] = "failure"
    elif any(word in upper for word in _ALLOW_WORDS):
        fields["event.type"] = ["connection", "allowed"]
        fields["event.outcome"] = "success"
    else:
        fields["event.type"] = ["connection"]
    fields["event.dataset"] = "firewall.iptables"
    return True
