"""The named patterns decoders are written with: ``%{IP:source.ip}`` instead of a raw regex.

A decoder author (the province's IT team, not a Python programmer) writes what they see in the
device's documentation -- ``%{WORD:event.action} src %{IP:source.ip}:%{PORT:source.port}`` --
and :func:`compile_pattern` turns it into one Python regex whose groups are named ``g0``,
``g1``... with a table back to the ECS field names (regex group names cannot hold dots).
``%{NAME}`` without a field matches without capturing. Anything else in the pattern is plain
Python regex, so an author who knows regexes loses nothing.

The library is small on purpose (the grok names people know): a pattern not in it is an
error when the decoder is loaded, not a silent non-match.
"""

from __future__ import annotations

import re

from soc.errors import SocError

__all__ = ["PATTERNS", "DecoderPatternError", "compile_pattern"]


class DecoderPatternError(SocError):
    """A decoder pattern names an unknown ``%{PATTERN}`` or is not a valid regex."""


_V4 = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}"
_V6 = r"[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}"

PATTERNS: dict[str, str] = {
    "IPV4": _V4,
    "IPV6": _V6,
    "IP": rf"(?:{_V4}|{_V6})",
    "IPORHOST": rf"(?:{_V4}|{_V6}|[A-Za-z0-9][A-Za-z0-9_.\-]*)",
    "HOSTNAME": r"[A-Za-z0-9][A-Za-z0-9_.\-]*",
    "PORT": r"\d{1,5}",
    "INT": r"[+-]?\d+",
    "NUMBER": r"[+-]?\d+(?:\.\d+)?",
    "WORD": r"\w+",
    "NOTSPACE": r"\S+",
    "DATA": r".*?",
    "GREEDYDATA": r".*",
    "QUOTED": r"[^\"]*",
    "CSV": r"[^,]*",
    "USER": r"[\w.\-@\\$]+",
    "EMAIL": r"[\w.+\-]+@[\w.\-]+",
    "MAC": r"[0-9A-Fa-f]{2}(?:[:\-][0-9A-Fa-f]{2}){5}",
    "URI": r"[A-Za-z][A-Za-z0-9+.\-]*://\S+",
    "URIPATH": r"/[^\s?]*",
    "PROTO": r"[A-Za-z0-9]+",
    "IFACE": r"[\w./\-]+",
}
"""name -> regex (no groups of its own)."""

_REF = re.compile(r"%\{([A-Z0-9_]+)(?::([A-Za-z0-9_.@\-]+))?\}")


def compile_pattern(text: str) -> tuple[re.Pattern[str], dict[str, str]]:
    """``text`` -> (regex, {group name: ECS field}). Raises :class:`DecoderPatternError`."""
    names: dict[str, str] = {}

    def repl(m: re.Match[str]) -> str:
        pattern = PATTERNS.get(m.group(1))
        if pattern is None:
            raise DecoderPatternError(f"unknown pattern %{{{m.group(1)}}} (known: {', '.join(sorted(PATTERNS))})")
        if m.group(2) is None:
            return f"(?:{pattern})"
        group = f"g{len(names)}"
        names[group] = m.group(2)
        return f"(?P<{group}>{pattern})"

    source = _REF.sub(repl, text)
    try:
        return re.compile(source), names
    except re.error as exc:
        raise DecoderPatternError(f"pattern {text!r} is not a valid regex: {exc}") from exc
