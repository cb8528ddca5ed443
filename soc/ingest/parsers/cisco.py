"""Cisco IOS / ASA / FTD / PIX messages: ``%FACILITY-SEVERITY-MNEMONIC: text``.

Cisco devices send these over syslog with many prelude variants (a sequence number
``1234: ``, an uptime ``00:00:46: ``, a timestamp with ``*`` for unsynchronised clocks and an
optional zone ``*Oct  6 03:32:04.114 gmt: ``); :mod:`.syslog` strips the prelude and hands
the text starting at ``%`` to :func:`parse_message`.

Fields: ``cisco.facility``, ``cisco.severity`` (0-7, the syslog scale), ``cisco.mnemonic``,
``event.code`` (``FAC-SEV-MNEMONIC``), ``log.level`` (severity name); best effort for the
common security messages: ACL hits (``IPACCESSLOGP``, ASA/FTD/PIX ``Deny ... from/src
A/port to/dst B/port``) -> ``source.*``/``destination.*``/``network.transport``/``rule.name``,
``event.type`` allowed/denied; IPS signatures -> ``rule.id``/``rule.name``; login messages ->
``user.name``, ``event.outcome``. Dataset ``network.cisco``.
"""

from __future__ import annotations

import re
from typing import Any

from soc.ingest.values import set_address, to_port, transport

SEVERITY_NAMES = ("emergency", "alert", "critical", "error", "warning", "notice", "informational", "debug")

MNEMONIC = re.compile(r"%([A-Z][A-Z0-9_]*(?:-[A-Z0-9_]+)?)-([0-7])-([A-Z0-9_]+)(?::\s*|\s+|$)")
_ACL = re.compile(
    r"list (\S+) (permitted|denied) (\w+) ([\w.:]+?)(?:\((\d+)\))?(?: \([^)]*\))? -> ([\w.:]+?)(?:\((\d+)\))?(?: \(|,|$)"
)
_IPS = re.compile(r"Sig:(\d+) Subsig:(\d+) Sev:(\d+) (.*?) \[([\w.:]+?):(\d+) -> ([\w.:]+?):(\d+)\]")
_FROM_TO = re.compile(
    r"\b(?:from|src) (?:[\w\-]+:\s?)?(\d{1,3}(?:\.\d{1,3}){3})(?:/(\w+))?.*? (?:to|dst) (?:[\w\-]+:\s?)?(\d{1,3}(?:\.\d{1,3}){3})(?:/(\w+))?"
)
_PROTO = re.compile(r"\b(?:Deny|deny|Built \w+|Teardown|permitted|denied) (tcp|udp|icmp|TCP|UDP|ICMP|IP|ip|gre|esp)\b")
_USER = re.compile(r"(?:\[user: ([^\]]+)\]|[Uu]ser(?:name)?\s?(?:=|:)?\s?['\"]?([^'\",\s\]]+))")
_SOURCE = re.compile(r"\[Source: ([^\]]+)\]")
_FAIL_WORDS = ("FAIL", "DENIED", "REJECT")


def parse_message(text: str, fields: dict[str, Any]) -> bool:
    """``text`` starts at ``%FAC-SEV-MNEMONIC:``; fills ``fields``. False when it does not."""
    m = MNEMONIC.match(text)
    if not m:
        return False
    facility, severity, mnemonic = m.group(1), int(m.group(2)), m.group(3)
    body = text[m.end():]
    fields["cisco.facility"] = facility
    fields["cisco.severity"] = severity
    fields["cisco.mnemonic"] = mnemonic
    fields["event.code"] = f"{facility}-{severity}-{mnemonic}"
    fields["log.level"] = SEVERITY_NAMES[severity]
    fields["event.dataset"] = "network.cisco"
    if facility in ("ASA", "FTD", "PIX", "FWSM"):
        fields["observer.product"] = facility
    fields["observer.vendor"] = "Cisco"
    _details(mnemonic, body, fields)
    return True


def _details(mnemonic: str, body: str, fields: dict[str, Any]) -> None:
    if mnemonic.startswith("IPACCESSLOG"):
        m = _ACL.search(body)
        if m:
            acl, verdict, proto, src, sport, dst, dport = m.groups()
            fields["rule.name"] = acl
            _endpoints(fields, src, sport, dst, dport)
            proto_name = transport(proto)
            if proto_name:
                fields["network.transport"] = proto_name
            fields["event.action"] = verdict
            fields["event.category"] = ["network"]
            fields["event.type"] = ["connection", "denied" if verdict == "denied" else "allowed"]
        return
    if mnemonic == "SIGNATURE":
        m = _IPS.search(body)
        if m:
            fields["rule.id"] = m.group(1)
            fields["rule.name"] = m.group(4)
            fields["event.severity"] = int(m.group(3))
            _endpoints(fields, m.group(5), m.group(6), m.group(7), m.group(8))
        return
    m = _FROM_TO.search(body)
    if m:
        _endpoints(fields, m.group(1), m.group(2), m.group(3), m.group(4))
        p = _PROTO.search(body)
        if p:
            proto_name = transport(p.group(1))
            if proto_name:
                fields["network.transport"] = proto_name
        lowered = body[:40].lower()
        if lowered.startswith("deny") or " denied " in body:
            fields["event.category"] = ["network"]
            fields["event.type"] = ["connection", "denied"]
    if "LOGIN" in mnemonic or "AUTH" in mnemonic or "user" in body.lower()[:80]:
        u = _USER.search(body)
        if u:
            name = (u.group(1) or u.group(2) or "").strip()
            if name and name not in ("authentication", "priv", "aaa_type", "locked"):
                fields["user.name"] = name
        s = _SOURCE.search(body)
        if s:
            set_address(fields, "source", s.group(1).strip())
        upper = mnemonic.upper() + " " + body.upper()
        if "SUCCE" in upper or "PERMITTED" in upper:
            fields["event.outcome"] = "success"
        elif any(word in upper for word in _FAIL_WORDS):
            fields["event.outcome"] = "failure"


def _endpoints(fields: dict[str, Any], src: str | None, sport: str | None, dst: str | None, dport: str | None) -> None:
    set_address(fields, "source", src)
    set_address(fields, "destination", dst)
    port = to_port(sport)
    if port is not None:
        fields["source.port"] = port
    port = to_port(dport)
    if port is not None:
        fields["destination.port"] = port
