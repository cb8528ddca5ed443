"""Syslog: RFC 5424 and RFC 3164 with the variants real senders produce, then the MSG.

Header forms accepted (``<PRI>`` optional everywhere):

- RFC 5424 ``<PRI>1 TIMESTAMP HOST APP PROCID MSGID [SD...] MSG`` (also without ``<PRI>``);
- RFC 3164 ``Mmm dd hh:mm:ss HOST TAG[PID]: MSG`` with: ISO 8601 timestamps (rsyslog
  ``RSYSLOG_FileFormat``), a year (``Mmm dd yyyy hh:mm:ss``, ``yyyy Mmm dd hh:mm:ss``),
  ``yyyy/mm/dd hh:mm:ss``, fractional seconds, no hostname, ``TAG:`` / ``TAG[PID]:`` /
  ``prog(pam_unix)[PID]:``, no tag at all;
- Cisco preludes: ``1234: `` sequence numbers, ``00:00:46: `` uptimes, ``*Mmm dd hh:mm:ss.mmm
  TZ: `` stamps, then ``%FAC-SEV-MNEMONIC: text`` (:mod:`.cisco`);
- relayed messages (a relay's header followed by the original header, rsyslog/syslog-ng/
  Wazuh ``host->ip``): the inner header describes the event, the outer host is kept as
  ``log.syslog.relay.hostname``;
- a message with no header at all: stored with ``message`` only, status ``partial``.

Then the MSG: Solaris ``[ID n facility.level]`` prefixes and ``message repeated N times: [ .. ]``
wrappers are unwrapped (``log.syslog.msgid``, ``log.syslog.repeat_count``); an embedded
payload is parsed by its own parser and merged (CEF/LEEF, JSON, Windows/Sysmon ``<Event>``
XML, audit records, key=value firewall logs, Cisco) with the syslog header fields winning
and the payload's dataset and (zone-aware) timestamp winning; otherwise the program's
extractor (:mod:`soc.ingest.extract`) runs and ``event.dataset`` comes from the program
(``ingest/datasets.yml``, default ``linux.syslog``).

Header fields: ``log.syslog.priority``, ``log.syslog.facility.code/name``,
``log.syslog.severity.code/name``, ``log.syslog.version``, ``log.syslog.appname``,
``log.syslog.procid``, ``log.syslog.msgid``, ``log.syslog.structured_data.<SD-ID>.<param>``
(flattened, as events are flat), ``host.name``, ``host.ip`` (when the hostname is an IP),
``process.name`` (the tag without ``[pid]`` and ``(pam_unix)``), ``process.pid`` (int),
``message``.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from soc.ingest import extract as extractors
from soc.ingest.values import as_ip, clean_key, looks_like_kv
from soc.model import FAILED, PARSED, PARTIAL, Parsed

from . import access, auditd, cef, cisco, kv, windows
from . import json as json_parser
from ._programs import DEFAULT_DATASET, dataset_for_program
from ._time import MONTHS, PROVISIONAL_YEAR, fraction_us, parse_iso, tz_from_text

FACILITY_NAMES = (
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp",
    "ntp", "security", "console", "solaris-cron", "local0", "local1", "local2", "local3", "local4",
    "local5", "local6", "local7",
)
SEVERITY_NAMES = cisco.SEVERITY_NAMES

_PRI = re.compile(r"<(\d{1,3})>")
_RFC5424_START = re.compile(r"\d{1,2} (?:\d{4}-\d\d-\d\d[T ]|- )")
_RFC5424 = re.compile(r"(\d{1,2}) (\S+) (\S+) (\S+) (\S+) (\S+)(?: |$)")
_BSD_TS = re.compile(
    r"\*?([A-Z][a-z]{2}|[A-Z]{3}) {1,2}(\d{1,2}) (?:(\d{4}) )?(\d{1,2}):(\d\d):(\d\d)(?:\.(\d{1,9}))?"
    r"(?: ([A-Za-z]{2,5}|[+-]\d\d:?\d\d)(?=:))?(:)?(?:\s+|$)"
)
_ISO_TS = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:[.,](\d{1,9}))?(Z|[+-]\d\d:?\d\d)?(:)?(?:\s+|$)"
)
_BRACKET_TS = re.compile(
    r"\[(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:[.,](\d{1,9}))?(?: ?(Z|[+-]\d\d:?\d\d|UTC|GMT))?\](?:\s+|$)"
)
_YEAR_BSD_TS = re.compile(r"(\d{4}) ([A-Z][a-z]{2}) +(\d{1,2}) (\d\d):(\d\d):(\d\d)(?:\s+|$)")
_SLASH_TS = re.compile(r"(\d{4})/(\d\d)/(\d\d) (\d\d):(\d\d):(\d\d)(?:\s+|$)")
_CISCO_SEQ = re.compile(r"(\d+): (?=[*A-Z%]|\d+:\d\d:\d\d)")
_CISCO_UPTIME = re.compile(r"(\d+:\d\d:\d\d(?:\.\d+)?): ")
_HOST_TAG = re.compile(
    r"(?:([^\s\[\]=]*[^\s:\[\]=]) +)?([A-Za-z_/.\-][^\s:\[\]=]*)(?:\[(\d*)\]: *|:(?: +|$))"
)
_HOST_ONLY = re.compile(r"([^\s\[\]=]*[^\s:\[\]=])(?: +|$)")
_SOLARIS_ID = re.compile(r"\[ID (\d+) ([\w.]+)\] ")
_REPEATED = re.compile(r"message repeated (\d+) times: \[\s*(.*?)\]?$", re.S)
_SD_ELEMENT = re.compile(r'\[([^\s=\]"]+)((?:\s+[^\s=\]"]+="[^"\\]*(?:\\.[^"\\]*)*")*)\s*\]')
_SD_PARAM = re.compile(r'([^\s=\]"]+)="([^"\\]*(?:\\.[^"\\]*)*)"')
_SD_UNESCAPE = re.compile(r'\\([\\"\]])')
_WEB_PROGRAMS = frozenset({"nginx", "apache", "apache2", "httpd", "apache-access", "nginx-access", "apache-error", "nginx-error"})
_EMBED_FIRST = frozenset("{L<:")  # first characters some payload test below looks at
_CISCO_IN_MSG = re.compile(r"(?:^|[\s:])(%[A-Z][A-Z0-9_]*(?:-[A-Z0-9_]+)?-[0-7]-[A-Z0-9_]+(?::|\s|$))")


def _priority(fields: dict[str, Any], pri: int) -> None:
    facility, severity = pri >> 3, pri & 7
    fields["log.syslog.priority"] = pri
    fields["log.syslog.facility.code"] = facility
    if facility < len(FACILITY_NAMES):
        fields["log.syslog.facility.name"] = FACILITY_NAMES[facility]
    fields["log.syslog.severity.code"] = severity
    fields["log.syslog.severity.name"] = SEVERITY_NAMES[severity]


_BSD_CACHE: dict[str, datetime] = {}
_LEVEL_WORDS = frozenset({"INFO", "WARN", "WARNING", "ERROR", "DEBUG", "NOTICE", "CRITICAL", "FATAL", "TRACE", "ALERT", "EMERG"})


class _Header:
    """Mutable scratch state of one parse (a plain class with slots: cheap to create)."""

    __slots__ = ("ts", "raw_time", "year_missing", "found", "bad_time")

    def __init__(self) -> None:
        self.ts: datetime | None = None
        self.raw_time: str | None = None
        self.year_missing = False
        self.found = False
        self.bad_time = False


def _timestamp(line: str, pos: int, h: _Header) -> tuple[int, bool]:
    """Read a timestamp at ``pos``; returns (new position, followed-by-colon)."""
    ch = line[pos : pos + 1]
    if ch.isalpha() or ch == "*":
        seg = line[pos : pos + 17]
        if len(seg) == 17 and seg[15] == " " and seg[16] != " " and seg[3] == " " and seg[9] == ":" and seg[12] == ":":
            hit = _BSD_CACHE.get(seg[:15])  # the classic "Mmm dd hh:mm:ss ": seen many times a second
            if hit is not None:
                h.found, h.ts, h.year_missing, h.raw_time = True, hit, True, seg[:15]
                return pos + 16, False
        m = _BSD_TS.match(line, pos)
        if m:
            mon, day, year, hh, mm, ss, frac, tz, colon = m.groups()
            month = MONTHS.get(mon)
            h.found = True
            h.raw_time = line[pos : m.end()].rstrip(": \t")
            try:
                ts = datetime(int(year) if year else PROVISIONAL_YEAR, month or 0, int(day), int(hh), int(mm), int(ss), fraction_us(frac))
                if tz:
                    zone = tz_from_text(tz)
                    if zone is not None:
                        ts = ts.replace(tzinfo=zone)
                h.ts, h.year_missing = ts, year is None
                if not (year or frac or tz or colon) and m.end() - pos == 16:
                    if len(_BSD_CACHE) >= 4096:
                        _BSD_CACHE.clear()
                    _BSD_CACHE[h.raw_time] = ts
            except ValueError:
                h.bad_time = True
            return m.end(), bool(colon)
    elif ch.isdigit() or ch == "[":
        m = _ISO_TS.match(line, pos) if ch != "[" else _BRACKET_TS.match(line, pos)
        if m:
            y, mo, d, hh, mm, ss, frac, tz, *rest = m.groups()
            colon = ch == "[" or bool(rest and rest[0])  # "[stamp] text" has no host/tag
            h.found = True
            h.raw_time = line[pos : m.end()].rstrip(": \t")
            try:
                ts = datetime(int(y), int(mo), int(d), int(hh), int(mm), int(ss), fraction_us(frac))
                if tz:
                    zone = tz_from_text(tz)
                    if zone is not None:
                        ts = ts.replace(tzinfo=zone)
                h.ts = ts
            except ValueError:
                h.bad_time = True
            return m.end(), colon
        if ch == "[":
            return pos, False
        for pattern, year_first in ((_YEAR_BSD_TS, True), (_SLASH_TS, False)):
            m = pattern.match(line, pos)
            if m:
                h.found = True
                h.raw_time = line[pos : m.end()].rstrip()
                g = m.groups()
                try:
                    month = MONTHS.get(g[1], 0) if year_first else int(g[1])
                    h.ts = datetime(int(g[0]), month, int(g[2]), int(g[3]), int(g[4]), int(g[5]))
                except ValueError:
                    h.bad_time = True
                return m.end(), False
    return pos, False


def _structured_data(text: str, fields: dict[str, Any]) -> str | None:
    """Parse RFC 5424 SD at the start of ``text``; returns the MSG after it, or None."""
    pos = 0
    while pos < len(text) and text[pos] == "[":
        m = _SD_ELEMENT.match(text, pos)
        if not m:
            return None
        sd_id = clean_key(m.group(1))
        for name, value in _SD_PARAM.findall(m.group(2)):
            fields[f"log.syslog.structured_data.{sd_id}.{clean_key(name)}"] = _SD_UNESCAPE.sub(r"\1", value) if "\\" in value else value
        pos = m.end()
    return text[pos + 1 :] if text[pos : pos + 1] == " " else text[pos:]


def _rfc5424(line: str, m: re.Match[str], fields: dict[str, Any], h: _Header) -> str:
    version, ts_text, host, app, procid, msgid = m.groups()
    fields["log.syslog.version"] = version
    h.found = True
    if ts_text != "-":
        h.raw_time = ts_text
        h.ts = parse_iso(ts_text)
        h.bad_time = h.ts is None
    if host != "-":
        _set_host(fields, host)
    if app != "-":
        fields["log.syslog.appname"] = app
        fields["process.name"] = app
    if procid != "-":
        fields["log.syslog.procid"] = procid
        if procid.isdigit() and len(procid) < 10:
            fields["process.pid"] = int(procid)
    if msgid != "-":
        fields["log.syslog.msgid"] = msgid
    rest = line[m.end():]
    if rest.startswith("-"):
        msg = rest[2:]
    elif rest.startswith("["):
        after = _structured_data(rest, fields)
        msg = rest if after is None else after
    else:
        msg = rest
    return msg[1:] if msg.startswith("\ufeff") else msg


def _set_host(fields: dict[str, Any], host: str) -> None:
    fields["host.name"] = host
    first = host[:1]
    if first.isdigit() or ":" in host:
        ip = as_ip(host)
        if ip is not None:
            fields["host.ip"] = ip


def _set_tag(fields: dict[str, Any], tag: str, pid: str | None) -> str:
    fields["log.syslog.appname"] = tag
    name = tag.split("(", 1)[0] if "(" in tag else tag
    fields["process.name"] = name or tag
    if pid:
        fields["log.syslog.procid"] = pid
        if len(pid) < 10:
            fields["process.pid"] = int(pid)
    return tag.lower()


_FAST = re.compile(
    r"([A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) ([^\s\[\]=]*[^\s:\[\]=]) ([A-Za-z_/.\-][^\s:\[\]=]*)(?:\[(\d{1,9})\]: *|: +)(.*)",
    re.S,
)


#: (host, tag, pid) -> (the header fields, program, its dataset): a host's daemons write many lines
_HEADER_CACHE: dict[tuple[str, str, str | None], tuple[dict[str, Any], str, str]] = {}


def _fast(line: str) -> Parsed | None:
    """The common case in one regex: ``Mmm dd hh:mm:ss host tag[pid]: msg``. A stamp not seen
    before is read here from its fixed positions (what :data:`_BSD_TS` gives for this form);
    None sends the line down the general path (unknown month, impossible date, ``<``...)."""
    m = _FAST.match(line)
    if m is None:
        return None
    stamp, host, tag, pid, msg = m.groups()
    if msg[:1] == "<":
        return None
    ts = _BSD_CACHE.get(stamp)
    if ts is None:
        month = MONTHS.get(stamp[:3])
        if month is None:
            return None
        try:
            ts = datetime(PROVISIONAL_YEAR, month, int(stamp[4:6]), int(stamp[7:9]), int(stamp[10:12]), int(stamp[13:15]))
        except ValueError:
            return None
        if len(_BSD_CACHE) >= 4096:
            _BSD_CACHE.clear()
        _BSD_CACHE[stamp] = ts
    key = (host, tag, pid)
    header = _HEADER_CACHE.get(key)
    if header is None:
        fields: dict[str, Any] = {"soc.parse.parser": "syslog", "host.name": host}
        if host[:1].isdigit() or ":" in host:
            ip = as_ip(host)
            if ip is not None:
                fields["host.ip"] = ip
        program = _set_tag(fields, tag, pid)
        header = (fields, program, dataset_for_program(program))
        if len(_HEADER_CACHE) >= 4096:
            _HEADER_CACHE.clear()
        _HEADER_CACHE[key] = header
    return _finish(line, msg, header[1], header[0].copy(), ts, stamp, True, True, False, header[2])


def parse(line: str, _depth: int = 0) -> Parsed:  # noqa: C901  (one pass over the header forms)
    """One syslog line (any of the forms in the module docstring). Never raises on text."""
    if _depth == 0 and line[:1].isupper():
        fast = _fast(line)
        if fast is not None:
            return fast
    fields: dict[str, Any] = {"soc.parse.parser": "syslog"}
    h = _Header()
    pos = 0
    program: str | None = None
    msg: str | None = None
    if line.startswith("<"):
        m = _PRI.match(line)
        if m and int(m.group(1)) <= 191:
            _priority(fields, int(m.group(1)))
            h.found = True
            pos = m.end()
    if line[pos : pos + 1].isdigit() and _RFC5424_START.match(line, pos):
        m = _RFC5424.match(line, pos)
        if m:
            msg = _rfc5424(line, m, fields, h)
            program = fields.get("log.syslog.appname", "").lower() or None
    if msg is None:
        if line[pos : pos + 1].isdigit():
            m = _CISCO_SEQ.match(line, pos) or _CISCO_UPTIME.match(line, pos)
            if m:
                fields["cisco.sequence" if m.re is _CISCO_SEQ else "cisco.uptime"] = m.group(1)
                pos = m.end()
        pos, colon = _timestamp(line, pos, h)
        if colon or line[pos : pos + 1] == "%":
            msg = line[pos:]
        else:
            m = _HOST_TAG.match(line, pos)
            host = m.group(1) if m else None
            if m and host is None and m.group(2) in _LEVEL_WORDS:  # "2021/10/05 10:33:18 INFO: text"
                fields["log.level"] = m.group(2).lower()
                msg = line[m.end():]
            elif m and (h.found or host is None):
                if host:
                    _set_host(fields, host)
                program = _set_tag(fields, m.group(2), m.group(3))
                msg = line[m.end():]
            elif h.found:
                m = _HOST_ONLY.match(line, pos)
                if m:
                    _set_host(fields, m.group(1))
                    msg = line[m.end():]
                else:
                    msg = line[pos:]
            else:
                msg = line[pos:]
        if h.found and _depth == 0 and msg and (program is None or msg[:1] == "<") and _looks_like_header(msg):
            return _relayed(msg, fields, h)
    return _finish(line, msg, program, fields, h.ts, h.raw_time, h.year_missing, h.found, h.bad_time)


def _looks_like_header(msg: str) -> bool:
    c = msg[:1]
    if c == "<":
        return msg[1:2].isdigit()
    if c.isupper():
        return msg[:3] in MONTHS and msg[3:4] == " " and bool(_BSD_TS.match(msg))
    if c.isdigit():
        return msg[4:5] == "-" and bool(_ISO_TS.match(msg))
    return False


def _relayed(msg: str, outer: dict[str, Any], h: _Header) -> Parsed:
    """A relay's header followed by the original one: parse the inner line, keep the relay."""
    inner = parse(msg, _depth=1)
    f = inner.fields
    for key, value in outer.items():
        if key.startswith("log.syslog.") and key not in f:
            f[key] = value
    if "host.name" in outer:
        f["log.syslog.relay.hostname"] = outer["host.name"]
    if h.raw_time:
        f["log.syslog.relay.time"] = h.raw_time
    if inner.timestamp is None and h.ts is not None:
        inner.timestamp, inner.raw_time, inner.year_missing = h.ts, h.raw_time, h.year_missing
    return inner


def _finish(line: str, msg: str | None, program: str | None, fields: dict[str, Any], ts: datetime | None,
            raw_time: str | None, year_missing: bool, found: bool, bad_time: bool, dataset: str | None = None) -> Parsed:
    msg = msg if msg is not None else line
    fields["message"] = msg
    body = msg
    c = body[:1]
    if c == "[" and body[:4] == "[ID ":
        m = _SOLARIS_ID.match(body)
        if m:
            fields["log.syslog.msgid"] = m.group(1)
            body = body[m.end():]
            c = body[:1]
    elif c == "m" and body[:17] == "message repeated ":
        m = _REPEATED.match(body)
        if m:
            fields["log.syslog.repeat_count"] = int(m.group(1))
            body = m.group(2)
            c = body[:1]
    parsed = Parsed(fields, ts, raw_time, year_missing)
    if c in _EMBED_FIRST or c.isdigit() or program in _WEB_PROGRAMS:
        embedded = _embedded(body, program)
    else:  # _embedded's own pre-filter, inlined: most lines carry no payload
        head = body[:120]
        embedded = _embedded(body, program) if "CEF:" in head or "audit(" in head or "%" in head else None
    if embedded is not None and embedded.status == FAILED:
        parsed.degrade(PARTIAL, f"embedded payload not understood: {embedded.error}")
        embedded = None
    if embedded is not None:
        _merge(parsed, embedded)
    else:
        known = extractors.extract(program, body, fields)
        if not known and program is not None and program.startswith("winevtlog"):
            legacy = windows.parse_winevtlog_legacy(body)
            if legacy is not None:
                _merge(parsed, legacy)
        elif not known and "=" in body and (dataset or dataset_for_program(program)) == DEFAULT_DATASET and looks_like_kv(body):
            payload = kv.parse_text(body, embedded=True)
            if payload is not None:
                _merge(parsed, payload)
        if "event.dataset" not in fields:
            fields["event.dataset"] = dataset or dataset_for_program(program)
    if not found and parsed.status == PARSED and "cisco.mnemonic" not in parsed.fields and "+" not in parsed.fields.get("soc.parse.parser", ""):
        parsed.degrade(PARTIAL, "no syslog header (no <PRI> or timestamp): stored as message only")
    if bad_time:
        parsed.degrade(PARTIAL, f"invalid timestamp {raw_time!r}: receive time used")
    return parsed


def _embedded(body: str, program: str | None) -> Parsed | None:
    """Parse a payload format inside the MSG, or None when the MSG is plain text."""
    c = body[:1]
    if c not in _EMBED_FIRST and not c.isdigit() and program not in _WEB_PROGRAMS:
        head = body[:120]  # every test below looks within the first 120 characters
        if "CEF:" not in head and "audit(" not in head and "%" not in head:
            return None
    if c == "{":
        return json_parser.parse(body.rstrip())
    if "CEF:" in body[:80]:
        return cef.parse(body)
    if c == "L" and body.startswith("LEEF:"):
        return cef.parse_leef(body)
    if c == "<" and body.startswith("<Event"):
        return windows.parse_xml_event(body, parser="xml")
    if "audit(" in body[:100] and "type=" in body[:60]:
        m = auditd.HEAD.match(body)
        if m:
            return auditd.parse(body[m.start():])
        at = body.find("type=")
        if auditd.HEAD.match(body, at):
            return auditd.parse(body[at:])
    if program in _WEB_PROGRAMS or (c.isdigit() or c == ":") and " [" in body[:120]:
        web = access.parse_web(body)
        if web is not None:
            return web
    if "%" in body[:120]:
        m = _CISCO_IN_MSG.search(body, 0, 160)
        if m:
            f: dict[str, Any] = {"soc.parse.parser": "cisco"}
            prelude = body[: m.start(1)].strip(" :")
            if prelude:
                f["cisco.prelude"] = prelude
            if cisco.parse_message(body[m.start(1):], f):
                return Parsed(fields=f)
    return None


def _merge(parsed: Parsed, payload: Parsed) -> None:
    """Fold a payload parse into the syslog parse: header fields win, payload dataset wins."""
    fields = parsed.fields
    header_parser = fields.get("soc.parse.parser", "syslog")
    for key, value in payload.fields.items():
        if key == "message" or key == "event.dataset" or key not in fields:
            fields[key] = value
    fields["soc.parse.parser"] = f"{header_parser}+{payload.fields.get('soc.parse.parser', 'payload')}"
    if payload.timestamp is not None and (payload.timestamp.tzinfo is not None or parsed.timestamp is None):
        parsed.timestamp, parsed.raw_time, parsed.year_missing = payload.timestamp, payload.raw_time, payload.year_missing
    if payload.status != PARSED:
        parsed.degrade(payload.status, payload.error or "embedded payload partially parsed")
