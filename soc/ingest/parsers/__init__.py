"""Parsers: one line of text -> :class:`soc.model.Parsed`. They never raise.

:data:`PARSERS` maps a format name to its parser:

=========  ===============================================================================
syslog     RFC 5424 / RFC 3164 and their variants, with embedded payloads (:mod:`.syslog`)
cef        ArcSight CEF, also LEEF when the text is LEEF (:mod:`.cef`)
leef       IBM LEEF 1.0/2.0 (:mod:`.cef`)
kv         key=value firewall logs: FortiGate, Sophos, SonicWall, generic (:mod:`.kv`)
access     Apache/Nginx access and error logs (:mod:`.access`)
json       JSON documents: Windows events, Suricata, Zeek, Azure, generic (:mod:`.json`)
auditd     Linux audit records (:mod:`.auditd`)
xml        Windows-schema ``<Event>`` XML (:mod:`.windows`)
text       free text: the line becomes ``message``, dataset ``generic.text``
=========  ===============================================================================

:func:`parse` adds the ``auto`` format, which picks a parser per line from its first
characters (:func:`sniff`; a handful of string tests, no regex in the common cases), and
wraps every parser so an unexpected exception becomes a ``failed`` result instead of
stopping the pipeline. A line the parser leaves unclaimed (no source, destination or action)
then meets the YAML device decoders and the generic extraction (:func:`_fallbacks`).
:func:`detect_format` decides the format of a whole file from its
first lines, so a source can pin it once.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

from soc.ingest import decoders, generic
from soc.ingest.values import looks_like_kv as _looks_like_kv
from soc.model import FAILED, Parsed

from . import access, auditd, cef, kv, syslog, windows
from . import json as json_parser
from ._time import MONTHS as _MONTHS
from .json import iter_json_records

__all__ = ["PARSERS", "detect_format", "iter_json_records", "parse", "sniff"]


def _xml(line: str) -> Parsed:
    parsed = windows.parse_xml_event(line)
    if parsed is None:
        return Parsed(fields={"message": line, "soc.parse.parser": "xml"}, status=FAILED, error="not a Windows-schema <Event> document")
    return parsed


def _text(line: str) -> Parsed:
    return Parsed(fields={"message": line, "event.dataset": "generic.text", "soc.parse.parser": "text"})


PARSERS: dict[str, Callable[[str], Parsed]] = {
    "syslog": syslog.parse,
    "cef": cef.parse,
    "leef": cef.parse_leef,
    "kv": kv.parse,
    "access": access.parse,
    "json": json_parser.parse,
    "auditd": auditd.parse,
    "xml": _xml,
    "text": _text,
}
"""format name -> parser. Every parser takes one decoded line (no trailing newline)."""

_ACCESS_HINT = re.compile(r"(?:\S+ )?\S+ \S+ \S+ \[\d{1,2}/[A-Za-z]{3}/\d{4}:")
_NGINX_ERROR_HINT = re.compile(r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[")
_IIS_HINT = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (?:\S+ ){1,3}(?:GET|POST|HEAD|PUT|DELETE|OPTIONS|PATCH|PROPFIND|CONNECT|TRACE) ")
_APACHE_ERROR_HINT = re.compile(r"\[(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) [A-Z][a-z]{2} |(?:[\w\-]+:)?(?:emerg|alert|crit|error|warn|notice|info|debug|trace\d)\])")


def sniff(line: str) -> str:
    """The format of one line, from its first characters. Unknown text -> ``syslog`` (which
    stores a header-less line as ``message``)."""
    c = line[:1]
    if c == "{":
        return "json"
    if c == "<":
        return "xml" if line.startswith("<Event") else "syslog"
    if c.isdigit():
        if "[" in line[:100] and _ACCESS_HINT.match(line):
            return "access"
        if line[4:5] == "/" and _NGINX_ERROR_HINT.match(line):
            return "access"
        if line[4:5] == "-" and _IIS_HINT.match(line):
            return "access"
        return "syslog"
    if c == "[":
        if _APACHE_ERROR_HINT.match(line):
            return "access"
        return "json" if line[1:2] in ("{", "[", '"', "") else "syslog"
    if c == "C" and line.startswith("CEF:"):
        return "cef"
    if c == "L" and line.startswith("LEEF:"):
        return "leef"
    if (c == "t" and line.startswith("type=")) or (c == "n" and line.startswith("node=")):
        if "audit(" in line[:120]:
            return "auditd"
    if c.isalpha() or c == ":":
        if line[:3] in _MONTHS and line[3:4] == " ":
            return "syslog"
        if "[" in line[:120] and _ACCESS_HINT.match(line):
            return "access"
        if "=" in line[:64] and _looks_like_kv(line):
            return "kv"
    return "syslog"


def parse(line: str, fmt: str = "auto") -> Parsed:
    """Parse one line with ``fmt`` (a :data:`PARSERS` key or ``auto``). Never raises.

    Leading blanks are ignored (the stored ``event.original`` keeps them)."""
    name = fmt
    try:
        if line[:1] in (" ", "\t"):
            line = line.lstrip(" \t")
        if fmt == "auto":
            name = sniff(line)
        parser = PARSERS.get(name)
        if parser is None:
            return Parsed(
                fields={"message": line, "soc.parse.parser": str(name)},
                status=FAILED,
                error=f"unknown format {name!r}: use one of auto, {', '.join(PARSERS)}",
            )
        return _fallbacks(parser(line), line)
    except Exception as exc:  # noqa: BLE001  (a parser bug must not stop ingest; it is reported)
        detail = str(exc)[:300]
        return Parsed(
            fields={"message": line, "soc.parse.parser": str(name)},
            status=FAILED,
            error=f"{name} parser error: {type(exc).__name__}: {detail}",
        )


def _fallbacks(parsed: Parsed, line: str) -> Parsed:
    """A line the parser (and its program's extractor) left unclaimed -- no source, destination
    or action -- goes to the YAML device decoders (:mod:`soc.ingest.decoders`), and when none
    applies to the generic extraction (:mod:`soc.ingest.generic`)."""
    fields = parsed.fields
    if parsed.status != FAILED and not generic.claimed(fields):
        kind = str(fields.get("soc.parse.parser", "")).split("+", 1)[-1]
        if kind in _DOCUMENTS:
            # a document's named fields, not its rendered message; of a known product's record
            # (Windows, Sysmon, Zeek...) only address values and command lines
            texts_too = str(fields.get("event.dataset", "")).startswith("generic.")
            if not texts_too and kind != "auditd" and _holds_no_address(line, fields):
                return parsed
            generic.enrich(fields, None, texts_too=texts_too)
        elif decoders.apply(fields, line) is None:
            generic.enrich(fields, fields.get("message") if isinstance(fields.get("message"), str) else line)
    return parsed


_DOCUMENTS = frozenset({"json", "xml", "windows", "azure", "suricata", "zeek", "auditd"})
"""Parsers of structured records: device decoders read text lines, not these."""

# what every IPv4 and IPv6 address contains: the last three parts of a dotted quad; ``::`` or the
# six inner groups of eight. Each pattern starts with a literal, so the regex engine skips ahead
# to it (one pattern with alternatives would try every position of a 2 kB record: 100x slower)
_V4_TAIL = re.compile(r"\.\d{1,3}\.\d{1,3}\.\d")
_V6_INNER = re.compile(r":[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:")


def _holds_no_address(line: str, fields: dict[str, object]) -> bool:
    """True when the generic reading of a known product's record (``texts_too=False``: address
    values and command lines only) cannot find anything, so it need not walk the record's
    hundred fields: no text of the line looks like an address, and no role whose port it could
    add has an address yet. Values are the line's own text, unescaped, so an address in one is
    in the line -- unless a JSON ``\\u`` escape or an XML/HTML ``&`` entity spelled it, or
    auditd's hex (the caller keeps that parser on the full path)."""
    return ("\\u" not in line and "&" not in line and _V4_TAIL.search(line) is None and "::" not in line
            and _V6_INNER.search(line) is None and "source.nat.ip" not in fields and "destination.nat.ip" not in fields)


def detect_format(lines: list[str]) -> str:
    """The format of a file from its first lines: a :data:`PARSERS` key, or ``auto`` when
    the lines disagree (mixed files are then sniffed line by line).

    A file whose first non-blank line opens a JSON array (``[`` alone, or ``[{...``) is
    ``json`` (read it with :func:`iter_json_records`)."""
    sample = [ln.lstrip("\ufeff").strip() for ln in lines if ln and ln.strip("\ufeff \t\r\n")][:64]
    if not sample:
        return "auto"
    first = sample[0]
    if first.startswith("[") and (len(first) == 1 or first[1:2] in ("{", "[", '"') or first[1:].lstrip()[:1] in ("{", "")):
        if not _APACHE_ERROR_HINT.match(first):
            return "json"
    counts = Counter(sniff(line) for line in sample)
    fmt, hits = counts.most_common(1)[0]
    return fmt if hits >= 0.9 * len(sample) else "auto"
