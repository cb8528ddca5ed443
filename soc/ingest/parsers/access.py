"""Web server logs: Apache/Nginx access (common, combined, vhost_combined, with trailing extra
fields), IIS W3C extended (default field order) -> dataset ``web.access``; Apache 2.2/2.4 and Nginx error logs -> ``web.error``.

Access fields: ``source.ip`` (or ``source.address`` for a host name), ``user.name`` (when not
``-``), ``http.request.method``, ``url.original`` (the request target as sent), ``url.path``,
``url.query``, ``http.version``, ``http.response.status_code`` (int),
``http.response.body.bytes`` (int), ``http.request.referrer``, ``user_agent.original``,
``url.domain``/``destination.port`` from a vhost_combined ``host:port`` prefix,
``access.extra`` (anything after the user agent, e.g. ``%D`` request time), ``event.outcome``
(``failure`` for status >= 400). A request line that is not ``METHOD TARGET [HTTP/x]`` (binary
junk from scanners) is kept in ``http.request.line`` and the event is ``partial``.

Error fields: ``log.level``, ``message``, ``source.ip``/``source.port`` (``[client ...]`` or
Nginx ``client:``), ``process.pid``, ``process.thread.id``, ``apache.error.module``,
``error.code`` (``AH01232``), Nginx ``url.original``/``url.domain`` from ``request:``/``host:``.
Lines without a timestamp (``[error] [client 1.2.3.4] ...``) are accepted; the receive time
applies.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from soc.ingest.values import as_ip, set_address, to_int, to_port
from soc.model import FAILED, PARTIAL, Parsed

from ._time import MONTHS, fraction_us, tz_from_text

_ACCESS_TAIL = (
    r'(\S+) (\S+) (\S+) \[([^\]]+)\] "([^"\\]*(?:\\.[^"\\]*)*)" (\d{3}|-) (\d+|-)'
    r'(?: "([^"\\]*(?:\\.[^"\\]*)*)" "([^"\\]*(?:\\.[^"\\]*)*)")?(.*)$'
)
_ACCESS = re.compile("()" + _ACCESS_TAIL)  # the common layout, tried first (no backtracking over a prefix)
_ACCESS_PREFIXED = re.compile(r"(\S+) " + _ACCESS_TAIL)  # vhost_combined and other one-field prefixes
_CLF_TIME = re.compile(r"(\d{1,2})/([A-Za-z]{3})/(\d{4}):(\d\d):(\d\d):(\d\d)(?:\.(\d+))?(?: ([+-]\d{4}))?")
_APACHE_ERROR = re.compile(
    r"(?:\[([A-Za-z]{3} [A-Za-z]{3} +\d{1,2} \d\d:\d\d:\d\d(?:\.\d+)? \d{4})\] )?"
    r"\[(?:([\w\-]*):)?(\w+)\](?: \[pid (\d+)(?::tid (\d+))?\])?(?: \[client ([^\]]+)\])? ?(.*)$",
    re.S,
)
_NGINX_ERROR = re.compile(r"(\d{4})/(\d\d)/(\d\d) (\d\d):(\d\d):(\d\d) \[(\w+)\] (?:(\d+)#(\d+): )?(?:\*\d+ )?(.*)$", re.S)
_NGINX_ITEMS = re.compile(r', (client|server|request|upstream|host|referrer): ("[^"]*"|[^,]*)')
_AH_CODE = re.compile(r"(AH\d{5}): ")


def _clf_time(text: str) -> datetime | None:
    m = _CLF_TIME.match(text)
    if not m:
        return None
    day, mon, year, hh, mm, ss, frac, tz = m.groups()
    month = MONTHS.get(mon)
    if month is None:
        return None
    try:
        ts = datetime(int(year), month, int(day), int(hh), int(mm), int(ss), fraction_us(frac))
    except ValueError:
        return None
    if tz:
        zone = tz_from_text(tz)
        if zone is not None:
            ts = ts.replace(tzinfo=zone)
    return ts


def _request(line: str, fields: dict[str, Any]) -> bool:
    parts = line.split(" ")
    if len(parts) in (2, 3) and parts[0].isalpha() and parts[0].isupper() and (len(parts) == 2 or parts[2].startswith("HTTP/")):
        fields["http.request.method"] = parts[0]
        target = parts[1]
        fields["url.original"] = target
        path, sep, query = target.partition("?")
        fields["url.path"] = path
        if sep:
            fields["url.query"] = query
        if len(parts) == 3:
            fields["http.version"] = parts[2][5:]
        return True
    if line and line != "-":
        fields["http.request.line"] = line
        return False
    return True


def parse_access(line: str) -> Parsed | None:
    """A common/combined/vhost_combined access line, or None when it is not one."""
    m = _ACCESS.match(line) or _ACCESS_PREFIXED.match(line)
    if not m:
        return None
    prefix, client, _ident, user, when, request, status, size, referrer, agent, extra = m.groups()
    fields: dict[str, Any] = {
        "event.dataset": "web.access",
        "event.category": ["web"],
        "event.type": ["access"],
        "soc.parse.parser": "access",
    }
    if prefix:
        host, sep, port = prefix.rpartition(":")
        if sep and port.isdigit() and as_ip(prefix) is None:  # vhost_combined "%v:%p"
            fields["url.domain"] = host
            p = to_port(port)
            if p is not None:
                fields["destination.port"] = p
        elif client == "-":  # "%h - - -": the client was the first field
            client = prefix
        else:
            fields["access.prefix"] = prefix
    set_address(fields, "source", client)
    if user != "-":
        fields["user.name"] = user
    request_ok = _request(request.replace('\\"', '"') if "\\" in request else request, fields)
    if status != "-":
        code = int(status)
        fields["http.response.status_code"] = code
        fields["event.outcome"] = "failure" if code >= 400 else "success"
    if size != "-":
        fields["http.response.body.bytes"] = int(size)
    if referrer is not None and referrer != "-":
        fields["http.request.referrer"] = referrer
    if agent is not None and agent != "-":
        fields["user_agent.original"] = agent
    extra = extra.strip()
    if extra:
        fields["access.extra"] = extra
    parsed = Parsed(fields=fields, timestamp=_clf_time(when), raw_time=when)
    if not request_ok:
        parsed.degrade(PARTIAL, "request line is not 'METHOD TARGET HTTP/x'")
    return parsed


def _client(fields: dict[str, Any], value: str) -> None:
    value = value.strip()
    if set_address(fields, "source", value):
        return
    host, sep, port = value.rpartition(":")
    if sep and set_address(fields, "source", host.strip("[]")):
        fields.pop("source.address", None)
        fields.pop("source.domain", None)
        p = to_port(port)
        if p is not None:
            fields["source.port"] = p


def parse_apache_error(line: str) -> Parsed | None:
    """``[Sun Dec 04 04:47:44 2005] [error] [client 1.2.3.4] text`` (2.2) and
    ``[Wed Jul 31 16:44:52.906254 2019] [mod:level] [pid N:tid T] [client ip:port] AHnnnnn: text``."""
    m = _APACHE_ERROR.match(line)
    if not m:
        return None
    when, module, level, pid, tid, client, message = m.groups()
    fields: dict[str, Any] = {
        "event.dataset": "web.error",
        "event.category": ["web"],
        "event.type": ["error"] if level in ("error", "crit", "alert", "emerg") else ["info"],
        "log.level": level,
        "message": message,
        "soc.parse.parser": "access",
    }
    if module:
        fields["apache.error.module"] = module
    if pid:
        fields["process.pid"] = int(pid)
    if tid:
        fields["process.thread.id"] = to_int(tid)
    if client:
        _client(fields, client)
    code = _AH_CODE.match(message)
    if code:
        fields["error.code"] = code.group(1)
    ts = None
    if when:
        parts = when.split()
        month = MONTHS.get(parts[1])
        if month is not None:
            hh, mm, rest = parts[3].split(":")
            sec, _, frac = rest.partition(".")
            try:
                ts = datetime(int(parts[4]), month, int(parts[2]), int(hh), int(mm), int(sec), fraction_us(frac))
            except ValueError:
                ts = None
    return Parsed(fields=fields, timestamp=ts, raw_time=when)


def parse_nginx_error(line: str) -> Parsed | None:
    """``2014/12/30 06:07:37 [error] 1234#0: *5 text, client: 1.2.3.4, server: x, request: "GET / HTTP/1.1"``."""
    m = _NGINX_ERROR.match(line)
    if not m:
        return None
    y, mo, d, hh, mm, ss, level, pid, tid, message = m.groups()
    fields: dict[str, Any] = {
        "event.dataset": "web.error",
        "event.category": ["web"],
        "event.type": ["error"] if level in ("error", "crit", "alert", "emerg") else ["info"],
        "log.level": level,
        "message": message,
        "soc.parse.parser": "access",
    }
    if pid:
        fields["process.pid"] = int(pid)
        fields["process.thread.id"] = int(tid)
    for key, value in _NGINX_ITEMS.findall(message):
        value = value.strip('"')
        if key == "client":
            _client(fields, value)
        elif key == "request":
            _request(value, fields)
        elif key == "host":
            fields["url.domain"] = value
        elif key == "server":
            fields["nginx.error.server"] = value
        elif key == "upstream":
            fields["nginx.error.upstream"] = value
        elif key == "referrer":
            fields["http.request.referrer"] = value
    try:
        ts = datetime(int(y), int(mo), int(d), int(hh), int(mm), int(ss))
    except ValueError:
        ts = None
    return Parsed(fields=fields, timestamp=ts, raw_time=line[:19])


_HTTP_METHODS = frozenset({"GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "PROPFIND", "CONNECT", "TRACE", "MKCOL", "MOVE", "COPY", "LOCK", "UNLOCK", "RPC_IN_DATA", "RPC_OUT_DATA"})


def parse_iis(line: str) -> Parsed | None:
    """IIS W3C extended log in the default field order (``date time [s-sitename
    s-computername] s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip
    [cs-version] cs(User-Agent) [cs(Referer)] sc-status sc-substatus sc-win32-status
    [time-taken]``). Read by position from the method token, so the optional fields do not
    confuse it; a line cut before the status codes is ``partial``. IIS writes UTC."""
    tokens = line.split(" ")
    if len(tokens) < 9:
        return None
    k = next((i for i in range(2, 6) if tokens[i] in _HTTP_METHODS), 0)
    if not k or len(tokens) < k + 6:
        return None
    server, method, stem, query, port, user, client = tokens[k - 1 : k + 6]
    if not port.isdigit() or (client != "-" and as_ip(client) is None):
        return None
    fields: dict[str, Any] = {
        "event.dataset": "web.access",
        "event.category": ["web"],
        "event.type": ["access"],
        "soc.parse.parser": "access",
        "http.request.method": method,
        "url.path": stem,
        "url.original": stem if query == "-" else f"{stem}?{query}",
    }
    if query != "-":
        fields["url.query"] = query
    if k == 5:
        fields["iis.site_name"], fields["iis.computer_name"] = tokens[2], tokens[3]
    set_address(fields, "source", client)
    set_address(fields, "destination", server)
    p = to_port(port)
    if p is not None:
        fields["destination.port"] = p
    if user != "-":
        fields["user.name"] = user
    rest = tokens[k + 6 :]
    if rest and rest[0].startswith("HTTP/"):
        fields["http.version"] = rest.pop(0)[5:]
    numbers: list[str] = []
    while rest and rest[-1].isdigit() and len(numbers) < 4:
        numbers.insert(0, rest.pop())
    if rest and rest[0] != "-":
        fields["user_agent.original"] = rest[0].replace("+", " ")
    if len(rest) > 1 and rest[-1] != "-":
        fields["http.request.referrer"] = rest[-1]
    complete = len(numbers) >= 3 and 100 <= int(numbers[0]) <= 599
    if complete:
        code = int(numbers[0])
        fields["http.response.status_code"] = code
        fields["event.outcome"] = "failure" if code >= 400 else "success"
        fields["iis.substatus"] = int(numbers[1])
        fields["iis.win32_status"] = int(numbers[2])
        if len(numbers) > 3:
            fields["event.duration"] = int(numbers[3]) * 1_000_000
    raw = f"{tokens[0]} {tokens[1]}"
    try:
        ts = datetime.fromisoformat(f"{tokens[0]}T{tokens[1]}+00:00")
    except ValueError:
        ts = None
    parsed = Parsed(fields=fields, timestamp=ts, raw_time=raw)
    if not complete:
        parsed.degrade(PARTIAL, "IIS line without the status fields (cut short?)")
    return parsed


def parse_web(line: str) -> Parsed | None:
    """Any web server line this module knows, or None (no failure result)."""
    first = line[:1]
    if first == "[":
        return parse_apache_error(line)
    if first.isdigit():
        if line[4:5] == "/":
            parsed = parse_nginx_error(line)
            if parsed is not None:
                return parsed
        elif line[4:5] == "-" and line[10:11] == " ":
            parsed = parse_iis(line)
            if parsed is not None:
                return parsed
    return parse_access(line)


def parse(line: str) -> Parsed:
    """Any web server access or error log line."""
    parsed = parse_web(line)
    if parsed is None:
        return Parsed(
            fields={"message": line, "soc.parse.parser": "access", "event.dataset": "web.access"},
            status=FAILED,
            error="not a web access or error log line (common/combined/IIS W3C/error format expected)",
        )
    return parsed
