"""ArcSight CEF (and its IBM sibling LEEF) -> ECS, dataset ``network.cef``.

CEF: ``CEF:Version|Vendor|Product|Version|SignatureID|Name|Severity|k=v k2=v with spaces``.
Header fields escape ``|`` and ``\\`` with a backslash; extension values escape ``=``,
``\\``, and carry ``\\n``/``\\r`` for newlines. A value runs until the next `` key=`` (keys are
``[A-Za-z0-9_.-]``), so values may contain spaces and unescaped ``=`` inside tokens (URLs).

Every extension key is kept as ``cef.extensions.<key>``; ``csN``/``cnN``/``cfpN``... values
with a ``<key>Label`` are also kept as ``cef.custom.<label>``. The ECS mapping follows
Elastic's CEF module: ``src``/``dst``/``spt``/``dpt``, ``suser`` -> ``source.user.name`` and
``user.name``, ``duser`` -> ``destination.user.name`` (and ``user.name`` when there is no
``suser``), ``act`` -> ``event.action``, ``request`` -> ``url.original``, ``in``/``out`` ->
``source.bytes``/``destination.bytes``, ``rt`` -> the timestamp. Header: vendor/product/
version -> ``observer.*``, SignatureID -> ``event.code``, Name -> ``rule.name`` (and
``message`` unless ``msg`` is present), Severity -> ``event.severity`` (0-10; Low/Medium/
High/Very-High -> 3/6/8/10).

LEEF (``LEEF:1.0|Vendor|Product|Version|EventID|<tab-separated k=v>``, LEEF 2.0 with its own
delimiter) is parsed here too and kept as ``leef.<key>``; it shares the ``network.cef``
dataset because the catalogue has no separate LEEF dataset (the ECS fields are the same).
"""

from __future__ import annotations

import re
from typing import Any

from soc.ingest.values import (
    EMPTY_VALUES,
    clean_key,
    prefixed,
    set_address,
    to_int,
    to_port,
    transport,
)
from soc.model import FAILED, PARTIAL, Parsed

from ._time import parse_any

_EXT_KEY = re.compile(r"(?:^|(?<=\s))([A-Za-z0-9_.\-\[\]]+)=")
_ESCAPE = re.compile(r"\\(.)")
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t"}
_SEVERITY_WORDS = {"low": 3, "medium": 6, "high": 8, "very-high": 10, "very high": 10, "critical": 10}

_ADDRESS_KEYS = {"src": "source", "dst": "destination", "dvc": "observer", "sourceTranslatedAddress": "source.nat", "destinationTranslatedAddress": "destination.nat"}
_PORT_KEYS = {"spt": "source.port", "dpt": "destination.port", "sourceTranslatedPort": "source.nat.port", "destinationTranslatedPort": "destination.nat.port"}
_INT_KEYS = {"in": "source.bytes", "out": "destination.bytes", "spid": "process.pid", "dpid": "process.pid"}
_TEXT_KEYS = {
    "act": "event.action",
    "request": "url.original",
    "requestMethod": "http.request.method",
    "requestClientApplication": "user_agent.original",
    "app": "network.protocol",
    "msg": "message",
    "reason": "event.reason",
    "shost": "source.domain",
    "dhost": "destination.domain",
    "smac": "source.mac",
    "dmac": "destination.mac",
    "dvchost": "observer.hostname",
    "deviceExternalId": "observer.serial_number",
    "fname": "file.name",
    "filePath": "file.path",
    "sproc": "process.name",
    "externalId": "event.id",
    "suser": "source.user.name",
    "duser": "destination.user.name",
    "sntdom": "source.user.domain",
    "dntdom": "destination.user.domain",
}


_LEEF_ALIASES = {"srcPort": "spt", "dstPort": "dpt", "usrName": "suser", "srcMAC": "smac", "dstMAC": "dmac", "identHostName": "shost"}


def _unescape_value(value: str) -> str:
    if "\\" not in value:
        return value
    return _ESCAPE.sub(lambda m: _ESCAPES.get(m.group(1), m.group(1)), value)


def _split_header(text: str, count: int) -> tuple[list[str], str] | None:
    """Split ``count`` unescaped-pipe-terminated fields off ``text``; None when fewer."""
    parts: list[str] = []
    start = search = 0
    while len(parts) < count:
        bar = text.find("|", search)
        if bar < 0:
            return None
        k = bar - 1
        slashes = 0
        while k >= start and text[k] == "\\":
            slashes += 1
            k -= 1
        if slashes % 2:
            search = bar + 1
            continue
        field = text[start:bar]
        parts.append(field.replace("\\|", "|").replace("\\\\", "\\") if "\\" in field else field)
        start = search = bar + 1
    return parts, text[start:]


def parse_extension(ext: str) -> dict[str, str]:
    """CEF extension ``k=v k2=v w`` -> dict (first occurrence of a key wins)."""
    out: dict[str, str] = {}
    matches = list(_EXT_KEY.finditer(ext))
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(ext)
        key = m.group(1)
        if key not in out:
            out[key] = _unescape_value(ext[m.end():end].rstrip())
        if len(out) >= 1024:
            break
    return out


def _severity(text: str) -> int | None:
    number = to_int(text)
    if number is not None:
        return number if 0 <= number <= 10 else None
    return _SEVERITY_WORDS.get(text.strip().lower())


def _map_extension(ext: dict[str, str], fields: dict[str, Any], prefix: str, aliases: dict[str, str] | None = None) -> None:
    for original, value in ext.items():
        fields[prefixed(prefix, original)] = value
        key = aliases.get(original, original) if aliases else original
        if not value or value in EMPTY_VALUES:
            continue
        if key in _ADDRESS_KEYS:
            set_address(fields, _ADDRESS_KEYS[key], value)
        elif key in _PORT_KEYS:
            port = to_port(value)
            if port is not None:
                fields[_PORT_KEYS[key]] = port
        elif key in _INT_KEYS:
            number = to_int(value)
            if number is not None:
                fields.setdefault(_INT_KEYS[key], number)
        elif key in _TEXT_KEYS:
            fields.setdefault(_TEXT_KEYS[key], value)
        elif key == "proto":
            proto = transport(value)
            if proto:
                fields["network.transport"] = proto
        elif key == "outcome":
            lowered = value.lower()
            fields["event.outcome"] = "success" if lowered.startswith("succ") else "failure" if lowered.startswith("fail") else "unknown"
        elif key == "deviceDirection":
            fields["network.direction"] = {"0": "inbound", "1": "outbound"}.get(value, value)
        elif key.endswith("Label") and key[:-5] in ext:
            fields["cef.custom." + clean_key(value.replace(" ", "_"))] = ext[key[:-5]]
    user = fields.get("source.user.name") or fields.get("destination.user.name")
    if user:
        fields.setdefault("user.name", user)


def _time(ext: dict[str, str], parsed: Parsed, keys: tuple[str, ...]) -> None:
    for key in keys:
        value = ext.get(key)
        if value:
            ts, year_missing = parse_any(value)
            if ts is not None:
                parsed.timestamp, parsed.raw_time, parsed.year_missing = ts, value, year_missing
                return


def parse(line: str) -> Parsed:
    """A CEF or LEEF record (optionally with text before ``CEF:``/``LEEF:``)."""
    at = line.find("CEF:")
    if at < 0:
        leef = line.find("LEEF:")
        if leef >= 0:
            return parse_leef(line[leef:])
        return Parsed(fields={"message": line, "soc.parse.parser": "cef"}, status=FAILED, error="no CEF: marker")
    split = _split_header(line[at:], 7)
    if split is None:
        return Parsed(
            fields={"message": line, "soc.parse.parser": "cef", "event.dataset": "network.cef"},
            status=FAILED,
            error="CEF header incomplete: expected 7 '|'-separated fields",
        )
    (version, vendor, product, dev_version, signature, name, severity), ext_text = split
    fields: dict[str, Any] = {
        "cef.version": version[4:],
        "observer.vendor": vendor,
        "observer.product": product,
        "observer.version": dev_version,
        "event.code": signature,
        "rule.name": name,
        "cef.name": name,
        "cef.severity": severity,
        "event.dataset": "network.cef",
        "soc.parse.parser": "cef",
    }
    sev = _severity(severity)
    if sev is not None:
        fields["event.severity"] = sev
    ext = parse_extension(ext_text)
    _map_extension(ext, fields, "cef.extensions.")
    fields.setdefault("message", name)
    parsed = Parsed(fields=fields)
    _time(ext, parsed, ("rt", "deviceReceiptTime", "end", "start"))
    if ext_text.strip() and not ext:
        parsed.degrade(PARTIAL, "CEF extension has no key=value pairs")
    return parsed


def parse_leef(text: str) -> Parsed:
    """``LEEF:1.0|Vendor|Product|Version|EventID|attrs`` (LEEF 2.0: one more header field,
    the attribute delimiter, e.g. ``^`` or ``x09``)."""
    is_v2 = text.startswith("LEEF:2")
    split = _split_header(text, 6 if is_v2 else 5)
    if split is None:
        return Parsed(fields={"message": text, "soc.parse.parser": "leef"}, status=FAILED, error="LEEF header incomplete")
    header, attrs = split
    delimiter = "\t"
    if is_v2:
        spec = header[5]
        delimiter = chr(int(spec[1:], 16)) if spec[:1] in "xX" and len(spec) > 1 else (spec or "\t")
        try:
            delimiter.encode()
        except UnicodeEncodeError:
            delimiter = "\t"
    fields: dict[str, Any] = {
        "leef.version": header[0][5:],
        "observer.vendor": header[1],
        "observer.product": header[2],
        "observer.version": header[3],
        "event.code": header[4],
        "event.dataset": "network.cef",
        "soc.parse.parser": "leef",
    }
    ext: dict[str, str] = {}
    for item in attrs.split(delimiter) if delimiter in attrs else attrs.split("\t"):
        key, eq, value = item.partition("=")
        if eq and key.strip() and key.strip() not in ext:
            ext[key.strip()] = value
    _map_extension(ext, fields, "leef.", _LEEF_ALIASES)
    sev = _severity(ext.get("sev", ""))
    if sev is not None:
        fields["event.severity"] = sev
    parsed = Parsed(fields=fields)
    _time(ext, parsed, ("devTime",))
    return parsed
