"""Small helpers every parser and extractor shares: addresses, numbers, key=value tokens.

Everything here is on the hot path, so the helpers are plain functions over precompiled
regexes and small bounded caches, and none of them raises on odd input.

Address fields matter beyond cosmetics: ``source.ip`` / ``destination.ip`` / ``host.ip`` are
``ip``-typed in the search stores, and a document with ``"source.ip": "xxx.xxx.x.x"`` is
rejected by Elasticsearch as a whole. :func:`set_address` therefore puts a value in ``*.ip``
only when it *is* an IP address; anything else (a host name, a masked address) goes to
``*.address`` (and ``*.domain`` when it looks like a DNS name), which are keywords.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

_IPV4 = re.compile(r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}")
_DOMAIN = re.compile(r"(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_\-]{0,62})(?:\.[A-Za-z0-9_\-]{1,63})+\.?")
_IP_CACHE: dict[str, str | None] = {}
_IP_CACHE_MAX = 8192

EMPTY_VALUES = frozenset({"", "-", "N/A", "n/a", "(null)", "null", "none", "None", "?", "unknown"})
"""Values that mean 'not set' in the logs we read; never copied into ECS fields."""


def as_ip(value: str | None) -> str | None:
    """``value`` as a canonical IP text when it is an IPv4/IPv6 address, else ``None``.

    IPv4 keeps its text (already canonical when it matches); IPv6 is compressed by
    :mod:`ipaddress` so the same address always indexes the same way. Results are cached
    because the same addresses repeat constantly in security logs.
    """
    if not value:
        return None
    hit = _IP_CACHE.get(value, False)
    if hit is not False:
        return hit  # type: ignore[return-value]
    result: str | None
    if _IPV4.fullmatch(value):
        result = value
    elif ":" in value and len(value) <= 64:
        text = value[1:-1] if value.startswith("[") and value.endswith("]") else value
        try:
            addr = ipaddress.IPv6Address(text)
            result = str(addr.ipv4_mapped) if addr.ipv4_mapped else str(addr)
        except ValueError:
            result = None
    else:
        result = None
    if len(_IP_CACHE) >= _IP_CACHE_MAX:
        _IP_CACHE.clear()
    _IP_CACHE[value] = result
    return result


def set_address(fields: dict[str, Any], prefix: str, value: str | None) -> bool:
    """Put an address under ``prefix`` (``source``, ``destination``, ``host``...).

    Sets ``<prefix>.ip`` for a real IP, otherwise ``<prefix>.address`` and, for DNS-looking
    names, ``<prefix>.domain``. Returns True when an IP was set. Empty markers are ignored.
    """
    if not value or value in EMPTY_VALUES:
        return False
    ip = as_ip(value)
    if ip is not None:
        key = _IP_KEYS.get(prefix)
        if key is None:
            key = _IP_KEYS[prefix] = prefix + ".ip"
        fields[key] = ip
        return True
    fields[prefix + ".address"] = value
    if prefix != "host" and _DOMAIN.fullmatch(value):
        fields[prefix + ".domain"] = value.rstrip(".")
    return False


_IP_KEYS: dict[str, str] = {}  # prefix -> "<prefix>.ip" (a handful of prefixes)


def to_int(value: Any) -> int | None:
    """Decimal (or ``0x`` hex) text to int; ``None`` for anything else. Never raises."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    try:
        if text[:2] in ("0x", "0X"):
            return int(text, 16)
        if len(text) > 20:
            return None
        return int(text)
    except ValueError:
        return None


def to_port(value: Any) -> int | None:
    """A TCP/UDP port (0-65535) or ``None``."""
    port = to_int(value)
    if port is None or not 0 <= port <= 65535:
        return None
    return port


def put(fields: dict[str, Any], key: str, value: Any) -> None:
    """Set ``key`` unless ``value`` is empty or one of the 'not set' markers."""
    if value is None:
        return
    if isinstance(value, str) and value in EMPTY_VALUES:
        return
    fields[key] = value


def add_list(fields: dict[str, Any], key: str, value: str) -> None:
    """Append ``value`` to the list at ``key`` (ECS ``event.category``/``event.type`` style)."""
    current = fields.get(key)
    if current is None:
        fields[key] = [value]
    elif value not in current:
        fields[key] = [*current, value]


TRANSPORTS = {"1": "icmp", "6": "tcp", "17": "udp", "47": "gre", "50": "esp", "58": "ipv6-icmp", "132": "sctp"}


def transport(value: str | int | None) -> str | None:
    """``network.transport`` from a protocol name or IANA number (``6`` -> ``tcp``)."""
    if value is None:
        return None
    text = str(value).strip().lower()
    if not text or text in EMPTY_VALUES:
        return None
    if text.isdigit():
        return TRANSPORTS.get(text)
    if text == "icmpv6":
        return "ipv6-icmp"
    return text if len(text) <= 16 else None


# ---- key=value tokens ----------------------------------------------------------------------

_KV_SIMPLE = re.compile(r"""(?<![^\s(,;])([A-Za-z_][\w.\-]*)=(?:"([^"\\]*(?:\\.[^"\\]*)*)"|'([^']*)'|([^\s]*))""")
_KV_SPACED = re.compile(
    r"""(?<![^\s(,;])([A-Za-z_][\w.\-]*)=(?:"([^"\\]*(?:\\.[^"\\]*)*)"|'([^']*)'|(\[[^\]]*\]|(?:[^\s]+(?:\s+(?![A-Za-z_][\w.\-]*=)[^\s]+)*)?))"""
)


def split_kv(text: str, spaced: bool = False, limit: int = 512) -> dict[str, str]:
    """Parse ``k=v k2="v 2"`` pairs. The first occurrence of a key wins.

    ``spaced=True`` lets unquoted values contain spaces up to the next ``key=`` (AUOMS
    ``proctitle=/bin/java -Dx=y``, CEF-like producers); the default stops at whitespace,
    which keeps bare flag words (iptables ``DF``/``SYN``) out of the values. Keys must start
    a token, so ``-Dfoo=bar`` inside a value is not taken for a key. Double-quoted values
    have ``\\"`` and ``\\\\`` unescaped. At most ``limit`` pairs.
    """
    pattern = _KV_SPACED if spaced else _KV_SIMPLE
    out: dict[str, str] = {}
    for key, dq, sq, bare in pattern.findall(text):
        if key in out:
            continue
        if dq:
            out[key] = dq.replace('\\"', '"').replace("\\\\", "\\") if "\\" in dq else dq
        else:
            out[key] = sq or bare
        if len(out) >= limit:
            break
    return out


def looks_like_kv(text: str, minimum: int = 3) -> bool:
    """Cheap test: does ``text`` start with ``key=`` and hold at least ``minimum`` pairs?"""
    head = text.lstrip()[:64]
    eq = head.find("=")
    if eq <= 0 or " " in head[:eq] or not (head[0].isalpha() or head[0] == "_"):
        return False
    return len(_KV_SIMPLE.findall(text, 0, 2048)) >= minimum


def clean_key(key: str) -> str:
    """A field-name-safe key: no empty names, no leading/trailing or doubled dots."""
    key = key.strip().strip(".")
    if ".." in key:
        key = re.sub(r"\.{2,}", ".", key)
    return key or "_"


_PREFIXED: dict[str, dict[str, str]] = {}


def prefixed(prefix: str, key: str) -> str:
    """``prefix + clean_key(key)``, cached: vendors repeat the same few hundred keys."""
    table = _PREFIXED.get(prefix)
    if table is None:
        table = _PREFIXED.setdefault(prefix, {})
    name = table.get(key)
    if name is None:
        name = prefix + clean_key(key[:128])
        if len(table) < 4096:
            table[key] = name
    return name
