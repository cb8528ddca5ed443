"""Generic extraction: ECS fields from a line that no parser, extractor or decoder claims.

A province has device models no one will write a parser for in advance. Their lines still
carry what an analyst needs most -- the addresses, and which side of the conversation each one
is -- in a handful of shapes every vendor reuses: ``key=value`` and ``key:"value"`` pairs, JSON
fragments, and prose ("connect from 10.0.0.1", "logged from A to B", "src outside:A/80 dst
inside:B/443", "SRC=A DST=B", "A -> B"). This module reads those shapes without knowing the
product:

- every IPv4/IPv6 address is found with the port written next to it (``A:80``, ``A/80``,
  ``A(80)``, ``[A]:80``, ``A port 80``);
- its **role** comes from the words just before it (the nearest cue wins): ``src``, ``source``,
  ``from``, ``client``, ``remote``, ``rhost``, ``peer``, ``attacker``, ``viewer`` -> ``source``;
  ``dst``, ``dest``, ``to``, ``server``, ``target``, ``local``, ``virtual``, ``computer`` ->
  ``destination``; ``nat``/``xlate``/``translated``/``mapped`` -> ``source.nat``/
  ``destination.nat``; ``fw``/``firewall``/``device``/``gateway``/``sensor``/``origin`` ->
  ``observer`` (only right before the address: ``fw=A``). A key (``ClientIP``, ``remote_ip``,
  ``dest_ip``, ``srcaddr``) is read the same way, including cues glued to either end of a word
  (``test_srcgeoip``). ``user@A`` is a source, except in a command line (``scp f admin@A:``,
  where it and every cue-less address are destinations); the host of a URL is a destination;
- dotted numbers that are not addresses get no role: versions and OIDs (``FileVersion:
  2.2.2.2``), networks (``10.10.10.0/24``), registry path parts (``Foundation 4.0.0.0\\``);
- an address with no cue takes the first free role of ``source`` then ``destination``:
  logs name the initiator first, and a lone address in a security log is most often the
  remote peer (a banned host, a client). Each address keeps the first role it got; later
  addresses for a taken role are not written (one value per ECS field);
- users (``user=``, ``User Name:``, ``for user X``, ``user@host``), URLs, and actions (allow,
  accept, permit, deny, drop, reject, block -> ``event.action``, ``event.type``
  allowed/denied; failed/success words -> ``event.outcome``).

The result is marked so rules and analysts can tell an inferred role from a parsed one:
``soc.parse.generic: true`` on every event whose fields came (partly) from here, while
``soc.parse.parser`` keeps naming the parser that read the line's format. Nothing here
raises on any input (a hypothesis test feeds it arbitrary text).

:func:`extract_text` works on free text, :func:`extract_mapping` on flattened JSON fields,
:func:`enrich` is the fallback stage the parsers run on unclaimed lines, and :func:`parse` is
the whole generic reading of a raw line (syslog header included) used to measure the generic
extraction alone.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from soc.ingest.values import EMPTY_VALUES, as_ip, to_port
from soc.model import PARSED, PARTIAL, Parsed

__all__ = ["ROLE_FIELDS", "claimed", "enrich", "extract_mapping", "extract_text", "parse", "role_of_key"]

ROLE_FIELDS = ("source.ip", "destination.ip", "client.ip", "server.ip", "host.ip", "observer.ip")
"""The ECS fields that say which side an address is (``related.ip`` alone does not)."""

_V4 = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}"
_V6 = r"[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:%\w+)?"
# IPv4: a plain candidate regex (lookbehinds cost more than the whole scan), boundaries
# checked by hand; IPv6 only when the text has two colons with hex digits around them
_V4_CANDIDATE = re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}")
_PORT_AFTER = re.compile(r"(?::|/|\()(\d{1,5})(?!\d)|\s+port\s+(\d{1,5})(?!\d)")
_V6_HINT = re.compile(r":[0-9A-Fa-f]{0,4}:")
_V6_ADDRESS = re.compile(
    r"(?:(?<![0-9A-Za-z.:])\[(?P<b6>" + _V6 + r")\](?::(?P<bport>\d{1,5}))?"
    r"|(?<![0-9A-Za-z.:])(?P<v6>" + _V6 + r")(?![\w:]))"
)
_HEXDIGIT = re.compile(r"[0-9A-Fa-f]")
_IPISH = re.compile(r"\[?[0-9A-Fa-f:.%]{2,45}\]?")  # may be an address (or a port number): worth as_ip


# cue words -> role; compound words are split on case changes, digits and punctuation first
_SOURCE = frozenset({
    "src", "source", "from", "client", "clientip", "remote", "rhost", "peer", "attacker", "viewer", "caller",
    "srcip", "sip", "saddr", "shost", "sender", "requester", "remip", "initiator", "login", "logged", "connecting",
    "workstation", "cip", "laddr_remote", "user", "by", "ipaddress", "ip_address",
})
_DESTINATION = frozenset({
    "dst", "dest", "destination", "to", "server", "target", "local", "dhost", "daddr", "dstip", "dip",
    "virtual", "vip", "computer", "computername", "listening", "listen", "on", "at", "backend", "upstream",
    "responder", "resolved", "answer", "originip", "origin_ip",
})
_NAT = frozenset({"nat", "xlate", "translated", "mapped", "natsrc", "natdst", "xlatesrc", "xlatedst"})
_OBSERVER = frozenset({"fw", "firewall", "device", "gateway", "sensor", "origin", "observer", "reporter", "dvc",
                       "appliance", "firewallip"})
_NOT_ADDRESS = frozenset({"version", "fileversion", "productversion", "ver", "oid", "build", "release"})
_COMMAND_KEYS = ("commandline", "command_line", "cmdline", "scriptblocktext", "proctitle", "command", "execve")
_STOP = frozenset({"ip", "ipv4", "ipv6", "addr", "address", "port", "v4", "v6", "geoip", "host", "inside", "outside",
                   "interface", "the", "of", "a", "an", "is", "was"})
_NON_WORD = re.compile(r"[^A-Za-z0-9]+")
_GLUED = ("src", "dst", "source", "dest", "client", "remote", "server", "nat", "xlate")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
_USER = re.compile(
    r"(?:\buser[ _]name|\buser(?:name)?|\blogin|\baccount|\bsuser|\bduser)\s*(?:=|:|\s)\s*['\"]?(?P<u>[\w.\-\\@$]{1,64})['\"]?"
    r"|\bfor (?:invalid |illegal )?user ['\"]?(?P<f>[\w.\-\\@$]{1,64})",
    re.I,
)
_AT_ADDRESS = re.compile(r"@(?=" + _V4 + r")")
_NAME_BEFORE_AT = re.compile(r"[A-Za-z_][\w.\-]{0,63}$")
_MAX_WORDS_TEXT = 4096  # user/URL/action words are looked for near the start of long texts
_USER_NOISE = frozenset({"name", "id", "is", "user", "unknown", "from", "for", "to", "the", "authentication", "ip", "logged"})
_URL = re.compile(r"\b(?:https?|ftp)://[^\s\"'<>\\]{1,2000}", re.I)
# the word tests below run on the lower-cased text (no re.I: several times faster)
_ACTION = re.compile(r"\b(allow(?:ed)?|accept(?:ed)?|permit(?:ted)?|pass(?:ed)?|deny|denied|drop(?:ped)?|reject(?:ed)?|block(?:ed)?)\b")
_OUTCOME_FAIL = re.compile(r"\b(?:fail(?:ed|ure)?|invalid|incorrect|bad password|denied|refused|unauthori[sz]ed)\b")
_OUTCOME_OK = re.compile(r"\b(?:succe(?:ss|eded|ssful)|accepted|logged in)\b")
_USER_KEYS = frozenset({"user", "username", "user_name", "usrname", "login", "account", "accountname", "account_name",
                        "suser", "src_user", "srcuser", "remote_user"})
_ALLOW = {"allow": "allow", "allowed": "allow", "accept": "accept", "accepted": "accept", "permit": "permit",
          "permitted": "permit", "pass": "pass", "passed": "pass"}
_DENY = {"deny": "deny", "denied": "deny", "drop": "drop", "dropped": "drop", "reject": "reject", "rejected": "reject",
         "block": "block", "blocked": "block"}
_KV_PAIR = re.compile(r"(?<![\w.\-])([A-Za-z_][\w.\-]{0,63})\s*(?:=|:)\s*(?:\"([^\"]{0,2000})\"|'([^']{0,2000})'|([^\s,;\"'\]\)}]{1,2000}))")
_HEADER = re.compile(
    r"\s*(?:<\d{1,3}>)?(?:\d\s)?"
    r"(?:(?:[A-Z][a-z]{2}\s+)?[A-Z][a-z]{2}\s+\d{1,2}\s+(?:\d{4}\s+)?\d\d:\d\d:\d\d(?:\.\d+)?(?:\s+[A-Z]{2,4}\s+\d{4})?"
    r"|\d{4}[-/]\d\d[-/]\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?)\s+"
    r"(?:(?P<host>[\w.\-:]+)\s+(?=[\w\-/.]+(?:\[\d+\])?:))?(?:(?P<tag>[\w\-/.]+)(?:\[(?P<pid>\d+)\])?:\s*)?"
)
_MAX_TEXT = 16384


def _words(text: str) -> list[str]:
    """``remoteAddr`` -> [remote, addr]; ``test_srcgeoip`` -> [test, src, geoip, srcgeoip...]."""
    out: list[str] = []
    for token in _NON_WORD.split(text):
        if not token:
            continue
        low = token.lower()
        parts = _CAMEL.findall(token)
        if len(parts) > 1:
            out.extend(p.lower() for p in parts)
        out.append(low)  # last, so a known compound ("OriginIP") is read before its parts
        # cues glued into lower-case compounds: srcip, dstgeoip, clientaddress, natsrc (at either
        # end only: "destination" holds "nat", "resource" holds "source")
        if len(low) > 3:
            for cue in _GLUED:
                if low != cue and (low.startswith(cue) or low.endswith(cue)):
                    out.append(cue)
    return out


def _role_of_words(words: list[str]) -> str | None:
    """The role the last cue word of ``words`` names (nearest to the address), or None. An
    observer cue counts only right before the address (``fw=A``, ``firewall A``): further away
    it is usually part of a name (``firewall-drop.sh add - A``)."""
    nat = False
    for distance, word in enumerate(reversed(words)):
        if word in _STOP:
            continue
        if word in _NAT:
            nat = True
            continue
        if word in _OBSERVER:
            if distance == 0:
                return "observer"
            continue
        if word in _SOURCE:
            return "source.nat" if nat else "source"
        if word in _DESTINATION:
            return "destination.nat" if nat else "destination"
    return "source.nat" if nat else None


def role_of_key(key: str) -> str | None:
    """The role a key names: ``ClientIP`` -> source, ``dest_ip`` -> destination, ``fw`` -> observer."""
    words = _words(key)
    # keys read as a whole: the last meaningful word decides ("remote_ip" -> remote)
    return _role_of_words(words)


def _put(fields: dict[str, Any], role: str, ip: str, port: int | None) -> bool:
    key = role + ".ip"
    if key in fields:
        return False
    fields[key] = ip
    if port is not None and role != "observer":
        fields.setdefault(role + ".port", port)
    return True


def _assign(fields: dict[str, Any], found: list[tuple[str, str | None, int | None]]) -> int:
    """Write (ip, role or None, port) in order; cue-less addresses fill source then destination."""
    seen: set[str] = set()
    written = 0
    pending: list[tuple[str, int | None]] = []
    for ip, role, port in found:
        if role is None:
            pending.append((ip, port))
            continue
        if _put(fields, role, ip, port):
            seen.add(ip)
            written += 1
        elif fields.get(role + ".ip") == ip:
            seen.add(ip)
    taken = {fields.get("source.ip"), fields.get("destination.ip"), fields.get("observer.ip"), fields.get("host.ip")}
    for ip, port in pending:
        if ip in seen or ip in taken:
            continue
        for role in ("source", "destination"):
            if _put(fields, role, ip, port):
                written += 1
                seen.add(ip)
                break
    return written


def _maybe_address(value: str) -> bool:
    """Whether a JSON/kv value is worth reading as text: a dotted quad, or hex around two colons."""
    if "." in value and _V4_CANDIDATE.search(value):
        return True
    return _may_hold_ipv6(value)


def _may_hold_ipv6(text: str) -> bool:
    """An IPv6 address either compresses zeros (``::``) or writes eight groups (seven colons);
    a time of day (``10:12:01``) is neither, so the IPv6 regex does not run on most lines."""
    return ("::" in text or text.count(":") >= 7) and _V6_HINT.search(text) is not None


def _addresses(text: str) -> list[tuple[int, int, str, int | None]]:
    """(start, end, address, port) of every IPv4/IPv6 address in ``text``, in order."""
    out = []
    size = len(text)
    for m in _V4_CANDIDATE.finditer(text):
        start, end = m.span()
        if start and (text[start - 1].isalnum() or text[start - 1] == "."):
            continue
        if end < size and (text[end].isdigit() or (text[end] == "." and end + 1 < size and text[end + 1].isdigit())):
            continue
        ip = as_ip(m.group(0))
        if ip is None:
            continue
        port = None
        pm = _PORT_AFTER.match(text, end)
        if pm is not None and not (pm.end() < size and text[pm.end()].isalnum()):
            port = to_port(pm.group(1) or pm.group(2))
            end = pm.end()
        elif end < size and text[end].isalnum():
            continue
        out.append((start, end, ip, port))
    if _may_hold_ipv6(text):
        for m in _V6_ADDRESS.finditer(text):
            raw = m.group("b6") or m.group("v6")
            if not raw or (m.group("v6") and (raw.count(":") < 2 or not _HEXDIGIT.search(raw))):
                continue  # "::" between words, or a time
            ip = as_ip(raw.split("%", 1)[0])
            if ip is None:
                continue
            port_text = m.group("bport")
            out.append((m.start(), m.end(), ip, to_port(port_text) if port_text else None))
        out.sort()
    return out


def _arrow_role(text: str, start: int, end: int) -> str | None:
    before = text[max(0, start - 4):start]
    after = text[end:end + 4]
    if "->" in after or "=>" in after or after.startswith(" > "):
        return "source"
    if "->" in before or "=>" in before or before.endswith(" > "):
        return "destination"
    return None


_WINDOW_CACHE: dict[str, tuple[str | None, bool]] = {}


def _window(window: str) -> tuple[str | None, bool]:
    """(the role the words before an address name, whether they say it is no address). Log
    lines repeat their wording, so the answer is kept per window text (bounded)."""
    hit = _WINDOW_CACHE.get(window)
    if hit is None:
        words = _words(window)
        hit = (_role_of_words(words), bool(words) and words[-1] in _NOT_ADDRESS)
        if len(_WINDOW_CACHE) >= 8192:
            _WINDOW_CACHE.clear()
        _WINDOW_CACHE[window] = hit
    return hit


def _not_an_address(text: str, start: int, end: int, ip: str, versionish: bool) -> bool:
    """Dotted numbers that are not addresses: versions and OIDs (``FileVersion: 2.2.2.2``) and
    networks (``10.10.10.0/24``)."""
    if versionish:
        return True
    if text[end:end + 1] == "\\" and text[start - 1:start] != "\\":
        return True  # a path component (registry key "Foundation 4.0.0.0\\Linkage"), not a UNC host
    return ip.endswith(".0") and ("/" in text[start:end] or text[end:end + 1] == "/")


def extract_text(text: str, fields: dict[str, Any], command: bool = False, others: bool = True) -> bool:
    """Addresses with their roles, users, URLs and actions from free text. True when an
    address landed in a role field or another field was set.

    ``command``: the text is a command line or script, where an address is what the command
    reaches (``scp f admin@10.0.0.5:``, ``Invoke-Command -ComputerName 10.0.0.5``), so
    ``user@address`` and cue-less addresses are destinations. ``others=False``: addresses only
    (no user, URL, action or outcome words)."""
    text = text[:_MAX_TEXT]
    found: list[tuple[str, str | None, int | None]] = []
    previous = 0
    for start, end, ip, port in _addresses(text):
        window = text[max(previous, start - 48):start]
        cue, versionish = _window(window)
        previous = end
        if _not_an_address(text, start, end, ip, versionish):
            continue
        role: str | None
        if window.endswith("://"):
            role = "destination"
        elif window.endswith("@"):
            role = "destination" if command or "/" in window.rsplit(" ", 1)[-1] else "source"
        else:
            role = _arrow_role(text, start, end) or cue
        if role is None and command:
            role = "destination"
        found.append((ip, role, port))
    changed = _assign(fields, found) > 0
    if others:
        changed = _others(text, fields) or changed
    return changed


def _others(text: str, fields: dict[str, Any]) -> bool:
    changed = False
    text = text[:_MAX_WORDS_TEXT]
    low = text.lower()
    if "user.name" not in fields and ("user" in low or "login" in low or "account" in low or "@" in low):
        names = [m.group("u") or m.group("f") for m in _USER.finditer(text)]
        if "@" in text:  # user@10.0.0.1
            for at in _AT_ADDRESS.finditer(text):
                before = _NAME_BEFORE_AT.search(text, max(0, at.start() - 64), at.start())
                if before and (before.start() == 0 or text[before.start() - 1] not in "@.-"):
                    names.append(before.group(0))
        for name in names:
            if name and name.lower() not in _USER_NOISE and name not in EMPTY_VALUES and as_ip(name) is None:
                fields["user.name"] = name
                changed = True
                break
    if "url.original" not in fields and "://" in text:
        m = _URL.search(text)
        if m:
            url = m.group(0).rstrip(".,;)")
            fields["url.original"] = url
            host = url.split("://", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1]
            host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
            ip = as_ip(host)
            if ip is not None:
                if "destination.ip" not in fields and ip not in (fields.get("source.ip"),):
                    fields["destination.ip"] = ip
            elif host:
                fields.setdefault("url.domain", host)
            changed = True
    if "event.action" not in fields and ("allow" in low or "accept" in low or "permit" in low or "pass" in low
                                         or "den" in low or "drop" in low or "reject" in low or "block" in low):
        m = _ACTION.search(low)
        if m:
            word = m.group(1).lower()
            if word in _DENY:
                fields["event.action"] = _DENY[word]
                fields["event.type"] = ["connection", "denied"]
            else:
                fields["event.action"] = _ALLOW[word]
                fields["event.type"] = ["connection", "allowed"]
            fields["event.category"] = ["network"]
            changed = True
    if "event.outcome" not in fields and ("fail" in low or "invalid" in low or "incorrect" in low or "bad pass" in low
                                          or "denied" in low or "refused" in low or "unauthori" in low
                                          or "succe" in low or "accepted" in low or "logged in" in low):
        if _OUTCOME_FAIL.search(low):
            fields["event.outcome"] = "failure"
            changed = True
        elif _OUTCOME_OK.search(low):
            fields["event.outcome"] = "success"
            changed = True
    return changed


_HEADER_KEYS = ("soc.", "log.", "event.", "host.", "process.", "organization.", "observer.")
"""Fields of a syslog header and of the pipeline: no address role to find in them."""
_KeyInfo = tuple[str | None, bool, bool, bool, bool, bool]
_KEY_CACHE: dict[str, _KeyInfo] = {}


def _key(key: str) -> _KeyInfo:
    """What a key says, kept per key (records of one product repeat their keys): (role, a port
    key, a user key, a command-line key, a version/OID key, a structured key -- dotted and not a
    header field, see :func:`enrich`)."""
    hit = _KEY_CACHE.get(key)
    if hit is None:
        words = _words(key)
        last = key.rsplit(".", 1)[-1].lower()
        hit = (_role_of_words(words), "port" in last, last in _USER_KEYS,
               last.endswith(_COMMAND_KEYS) or (last[:1] == "a" and last[1:].isdigit()),
               any(word in _NOT_ADDRESS for word in words),
               "." in key and not key.startswith(_HEADER_KEYS))
        if len(_KEY_CACHE) >= 16384:
            _KEY_CACHE.clear()
        _KEY_CACHE[key] = hit
    return hit


def extract_mapping(pairs: dict[str, Any], fields: dict[str, Any], texts_too: bool = True) -> bool:
    """Roles from flattened ``key -> value`` pairs (JSON documents, key=value text): an address
    value takes the role its key names; values holding addresses among other text are read as
    text (command lines as commands; other text only with ``texts_too``). One cheap pass: a
    Windows event has a hundred fields."""
    return _mapping(list(pairs.items()), fields, texts_too, structured_only=False)


def _mapping(items: list[tuple[str, Any]], fields: dict[str, Any], texts_too: bool, structured_only: bool) -> bool:
    """:func:`extract_mapping` over ``items`` (a snapshot: ``fields`` may be ``items``' own dict);
    ``structured_only``: skip the keys :func:`enrich` does not read (header and pipeline fields),
    so it needs no filtered copy of the event. At most 1024 pairs are read."""
    found: list[tuple[str, str | None, int | None]] = []
    ports: dict[str, int] = {}
    texts: list[str] = []
    commands: list[str] = []
    want_user = texts_too and "user.name" not in fields  # a known product's parser mapped its user
    known = _KEY_CACHE.get
    budget = 1024
    for key, value in items:
        info = known(key)
        if info is None:
            info = _key(key)
        if structured_only and not info[5]:
            continue
        budget -= 1
        if budget < 0:
            break
        cls = value.__class__
        if cls is int:
            if info[1] and info[0] and 0 <= value <= 65535:
                ports.setdefault(info[0], value)  # type: ignore[arg-type]
            continue
        if cls is not str:
            continue
        size = len(value)
        if size <= 47 and (value[:1].isdigit() or value[:1] in "[:" or ":" in value) and _IPISH.fullmatch(value):
            role = info[0]
            ip = as_ip(value.strip("[]"))
            if ip is not None:
                if not info[4]:
                    found.append((ip, role, None))
                continue
            if info[1] and role and value.isdigit():
                port = to_port(value)
                if port is not None:
                    ports.setdefault(role, port)
                continue
        if size < 7 and not want_user:
            continue
        is_command = info[3]
        if info[2] and want_user and size <= 64 and " " not in value and value not in EMPTY_VALUES:
            fields["user.name"] = value
            want_user = False
        elif size >= 7 and (is_command or texts_too) and _maybe_address(value):
            (commands if is_command else texts).append(value)
    changed = _assign(fields, found) > 0
    for role, port in ports.items():
        if role + ".ip" in fields and role != "observer":
            fields.setdefault(role + ".port", port)
    if commands:
        changed = extract_text("\n".join(commands)[:_MAX_TEXT], fields, command=True, others=False) or changed
    if texts:
        changed = extract_text("\n".join(texts)[:_MAX_TEXT], fields, others=False) or changed
    return changed


_CLAIMS = ("source.ip", "destination.ip", "client.ip", "server.ip", "event.action")


def claimed(fields: dict[str, Any]) -> bool:
    """True when a parser already said who talked to whom (or what happened)."""
    return any(key in fields for key in _CLAIMS)


def _mark(fields: dict[str, Any]) -> None:
    fields["soc.parse.generic"] = True


def enrich(fields: dict[str, Any], text: str | None, texts_too: bool = True) -> bool:
    """The fallback stage: read ``text`` (the message) and the flat fields of an unclaimed
    event. Marks the event generic when anything was found. Never raises. ``texts_too=False``
    (a record of a known product, e.g. a Windows event): only values that are addresses and
    command lines are read, not every text field (the product's parser mapped those)."""
    try:
        # named fields first (a JSON document's keys say more than its message's prose)
        found = _mapping(list(fields.items()), fields, texts_too, structured_only=True)
        if text and not ("source.ip" in fields and "destination.ip" in fields):
            found = extract_text(text, fields) or found
        if found:
            _mark(fields)
        return found
    except Exception:  # noqa: BLE001  (a fallback must never cost the event)
        return False


def _flatten(value: Any, prefix: str, out: dict[str, Any], depth: int = 0) -> None:
    if len(out) > 2048 or depth > 12:
        return
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(v, f"{prefix}.{k}" if prefix else str(k), out, depth + 1)
    elif isinstance(value, list):
        for i, v in enumerate(value[:64]):
            _flatten(v, f"{prefix}.{i}", out, depth + 1)
    elif isinstance(value, str | int | float):
        out[prefix] = value


def parse(line: str) -> Parsed:
    """The whole line read by the generic extraction alone: no product is known. A JSON
    document is flattened and read by key; other text loses a syslog-like header (its host
    becomes ``host.name``/``host.ip``) and the rest is read as text. Never raises."""
    fields: dict[str, Any] = {"soc.parse.parser": "generic"}
    try:
        text = line.strip()
        found = False
        if text[:1] == "{":
            try:
                doc = orjson.loads(text)
            except orjson.JSONDecodeError:
                doc = None
            if isinstance(doc, dict):
                flat: dict[str, Any] = {}
                _flatten(doc, "", flat)
                found = extract_mapping(flat, fields)
                fields["message"] = text
                fields["soc.parse.generic"] = True
                return Parsed(fields=fields, status=PARSED if found else PARTIAL,
                              error=None if found else "generic: nothing recognised")
        m = _HEADER.match(text)
        if m:
            host = m.group("host")
            if host:
                fields["host.name"] = host
                ip = as_ip(host.split("->")[-1])
                if ip is not None:
                    fields["host.ip"] = ip
            if m.group("tag"):
                fields["process.name"] = m.group("tag").lower()
            text = text[m.end():]
        fields["message"] = text
        found = extract_text(text, fields)
        if not found or not any(k in fields for k in ("source.ip", "destination.ip")):
            pairs = {mm.group(1): mm.group(2) or mm.group(3) or mm.group(4) for mm in _KV_PAIR.finditer(text[:_MAX_TEXT])}
            if pairs:
                found = extract_mapping(pairs, fields) or found
        fields["soc.parse.generic"] = True
        return Parsed(fields=fields, status=PARSED if found else PARTIAL, error=None if found else "generic: nothing recognised")
    except Exception as exc:  # noqa: BLE001  (never raises: reported as partial)
        fields.setdefault("message", line)
        return Parsed(fields=fields, status=PARTIAL, error=f"generic: {type(exc).__name__}")
