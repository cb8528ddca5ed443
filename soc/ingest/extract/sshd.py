"""OpenSSH ``sshd`` and ``dropbear`` messages -> authentication / session / network fields.

Dispatch is on the first word of the message (one dict lookup), then one anchored regex, so
an sshd line costs one or two regex matches. A trailing ``[preauth]`` is removed first and
recorded as ``sshd.preauth: true``. Action names are listed in :mod:`soc.ingest.extract`.

Custom fields: ``sshd.method`` (password, publickey, keyboard-interactive/pam, none...),
``sshd.signature`` (key type and fingerprint after ``ssh2:``), ``sshd.invalid_user`` (the
name did not exist), ``sshd.preauth``, ``sshd.reason`` (disconnect or error text),
``sshd.disconnect_code``.
"""

from __future__ import annotations

import re
from typing import Any

from soc.ingest.values import set_address, to_port

from . import pam
from .base import mark

_AUTH = ("authentication",)
_AUTH_SESSION = ("authentication", "session")
_SESSION = ("session",)
_NETWORK = ("network",)
_INFO = ("info",)
_START = ("start",)
_END = ("end",)
_CONN_START = ("connection", "start")

_ACCEPTED_FAILED = re.compile(
    r"(Accepted|Failed) (\S+) for (invalid user |illegal user )?(.*?) from (\S+)(?: port (\d+))?(?: (ssh\d?))?(?:: (.*))?$"
)
_POSTPONED = re.compile(r"Postponed (\S+) for (invalid user )?(.*?) from (\S+)(?: port (\d+))?")
_INVALID = re.compile(r"[Ii]nvalid user (.*?) from (\S+?)(?: port (\d+))?$")
_USERAUTH_INVALID = re.compile(r"input_userauth_request: invalid user (.*)$")
_DISCONNECTED = re.compile(r"Disconnected from (?:(invalid |authenticating )?user (.*?) )?(\S+) port (\d+)$")
_DISCONNECTING = re.compile(r"Disconnecting (?:(invalid |authenticating )?user (.*?) )?(\S+) port (\d+):? ?(.*)$")
_CLOSED = re.compile(r"Connection (closed|reset) by (?:(invalid |authenticating )?user (.*?) )?(\S+?)(?: port (\d+))?$")
_CONNECTION_FROM = re.compile(r"Connection from (\S+) port (\d+)(?: on (\S+) port (\d+))?")
_RECEIVED = re.compile(r"Received disconnect from (\S+?)(?: port (\d+))?:\s*(\d+):\s*(.*)$")
_MAXAUTH = re.compile(r"maximum authentication attempts exceeded for (invalid user )?(.*?) from (\S+) port (\d+)")
_PAM_ERROR = re.compile(r"PAM: (.*?) for (?:(illegal|invalid) user )?(\S+) from (\S+)$")
_REVERSE = re.compile(r"reverse mapping checking getaddrinfo for (\S+) \[(\S+)\] failed")
_ADDRESS_MAPS = re.compile(r"Address (\S+) maps to (\S+), but this does not map back")
_NO_IDENT = re.compile(r"Did not receive identification string from (\S+?)(?: port (\d+))?$")
_BAD_PROTO = re.compile(r"Bad protocol version identification '(.*)' from (\S+?)(?: port (\d+))?$")
_NOT_ALLOWED = re.compile(r"User (\S+) from (\S+) not allowed because (.*)$")
_NEGOTIATE = re.compile(r"Unable to negotiate with (\S+?)(?: port (\d+))?: (.*)$")
_ANY_FROM = re.compile(r"(?:from|with|by|host) (\d{1,3}(?:\.\d{1,3}){3}|[0-9a-fA-F:]*:[0-9a-fA-F:.]+)(?: port (\d+))?")


def _peer(fields: dict[str, Any], host: str | None, port: str | None = None) -> None:
    set_address(fields, "source", host)
    if port:
        if port.isdecimal() and len(port) <= 5:  # what to_port() gives for the usual digits
            p: int | None = int(port)
            if p > 65535:  # type: ignore[operator]
                p = None
        else:
            p = to_port(port)
        if p is not None:
            fields["source.port"] = p


def _user(fields: dict[str, Any], name: str | None) -> None:
    if name:
        fields["user.name"] = name


def _accepted_failed(msg: str, f: dict[str, Any]) -> bool:
    m = _ACCEPTED_FAILED.match(msg)
    if not m:
        return False
    verdict, method, invalid, user, host, port, _proto, sig = m.groups()
    _user(f, user)
    _peer(f, host, port)
    f["sshd.method"] = method
    if invalid:
        f["sshd.invalid_user"] = True
    if sig:
        f["sshd.signature"] = sig
    if verdict == "Accepted":
        return mark(f, "ssh_login", "success", _AUTH_SESSION, _START)
    return mark(f, "ssh_login", "failure", _AUTH, _INFO)


def _invalid(msg: str, f: dict[str, Any]) -> bool:
    m = _INVALID.match(msg)
    if not m:
        return False
    _user(f, m.group(1))
    _peer(f, m.group(2), m.group(3))
    f["sshd.invalid_user"] = True
    return mark(f, "ssh_invalid_user", "failure", _AUTH, _INFO)


def _disconnect(f: dict[str, Any], invalid: str | None, user: str | None, host: str | None, port: str | None) -> bool:
    _user(f, user)
    if invalid and invalid.startswith("invalid"):
        f["sshd.invalid_user"] = True
    _peer(f, host, port)
    return mark(f, "ssh_disconnect", "unknown", _SESSION, _END)


def _disconnected(msg: str, f: dict[str, Any]) -> bool:
    m = _DISCONNECTED.match(msg)
    return bool(m) and _disconnect(f, m.group(1), m.group(2), m.group(3), m.group(4))


def _disconnecting(msg: str, f: dict[str, Any]) -> bool:
    if msg.startswith("Disconnecting: Too many authentication failures"):
        m = re.search(r"for (?:invalid user )?(\S+)", msg)
        if m:
            _user(f, m.group(1))
        return mark(f, "ssh_max_auth_attempts", "failure", _AUTH, _INFO)
    m = _DISCONNECTING.match(msg)
    if not m:
        return False
    reason = m.group(5)
    if reason:
        f["sshd.reason"] = reason
    if "Too many authentication failures" in reason:
        _user(f, m.group(2))
        _peer(f, m.group(3), m.group(4))
        return mark(f, "ssh_max_auth_attempts", "failure", _AUTH, _INFO)
    return _disconnect(f, m.group(1), m.group(2), m.group(3), m.group(4))


def _connection(msg: str, f: dict[str, Any]) -> bool:
    m = _CLOSED.match(msg)
    if m:
        return _disconnect(f, m.group(2), m.group(3), m.group(4), m.group(5))
    m = _CONNECTION_FROM.match(msg)
    if m:
        _peer(f, m.group(1), m.group(2))
        if m.group(3):
            set_address(f, "destination", m.group(3))
            port = to_port(m.group(4))
            if port is not None:
                f["destination.port"] = port
        return mark(f, "ssh_connection", "unknown", _NETWORK, _CONN_START)
    return False


def _received(msg: str, f: dict[str, Any]) -> bool:
    m = _RECEIVED.match(msg)
    if not m:
        return False
    _peer(f, m.group(1), m.group(2))
    f["sshd.disconnect_code"] = int(m.group(3))
    if m.group(4):
        f["sshd.reason"] = m.group(4).strip()
    return mark(f, "ssh_disconnect", "unknown", _SESSION, _END)


def _error(msg: str, f: dict[str, Any]) -> bool:
    body = msg[7:] if msg.startswith("error: ") else msg
    if body.startswith("maximum"):
        m = _MAXAUTH.match(body)
        if m:
            if m.group(1):
                f["sshd.invalid_user"] = True
            _user(f, m.group(2))
            _peer(f, m.group(3), m.group(4))
            return mark(f, "ssh_max_auth_attempts", "failure", _AUTH, _INFO)
    elif body.startswith("PAM: "):
        m = _PAM_ERROR.match(body)
        if m:
            f["sshd.reason"] = m.group(1)
            if m.group(2):
                f["sshd.invalid_user"] = True
            _user(f, m.group(3))
            _peer(f, m.group(4))
            return mark(f, "authentication_failure", "failure", _AUTH, _INFO)
    elif body.startswith("Received disconnect"):
        return _received(body, f)
    return _fallback_ip(msg, f)


def _reverse(msg: str, f: dict[str, Any]) -> bool:
    m = _REVERSE.match(msg)
    if not m:
        return False
    set_address(f, "source", m.group(2))
    f["source.domain"] = m.group(1)
    return mark(f, "ssh_possible_break_in", "unknown", _NETWORK, _INFO)


def _address(msg: str, f: dict[str, Any]) -> bool:
    m = _ADDRESS_MAPS.match(msg)
    if not m:
        return False
    set_address(f, "source", m.group(1))
    f["source.domain"] = m.group(2)
    return mark(f, "ssh_possible_break_in", "unknown", _NETWORK, _INFO)


def _did_not(msg: str, f: dict[str, Any]) -> bool:
    m = _NO_IDENT.match(msg)
    if not m:
        return False
    _peer(f, m.group(1), m.group(2))
    return mark(f, "ssh_no_identification", "failure", _NETWORK, _INFO)


def _bad(msg: str, f: dict[str, Any]) -> bool:
    m = _BAD_PROTO.match(msg)
    if not m:
        return False
    f["sshd.reason"] = m.group(1)
    _peer(f, m.group(2), m.group(3))
    return mark(f, "ssh_bad_protocol", "failure", _NETWORK, _INFO)


def _user_line(msg: str, f: dict[str, Any]) -> bool:
    m = _NOT_ALLOWED.match(msg)
    if not m:
        return _fallback_ip(msg, f)
    _user(f, m.group(1))
    _peer(f, m.group(2))
    f["sshd.reason"] = m.group(3)
    return mark(f, "ssh_user_not_allowed", "failure", _AUTH, _INFO)


def _fatal(msg: str, f: dict[str, Any]) -> bool:
    body = msg[7:]
    m = _NEGOTIATE.match(body)
    if m:
        _peer(f, m.group(1), m.group(2))
        f["sshd.reason"] = m.group(3)
        return mark(f, "ssh_negotiation_failed", "failure", _NETWORK, _INFO)
    _fallback_ip(body, f)
    f["sshd.reason"] = body
    return mark(f, "ssh_fatal", "failure", _NETWORK, _INFO)


def _pam_summary(msg: str, f: dict[str, Any]) -> bool:
    return pam.extract_body(msg[4:] if msg.startswith("PAM ") else msg, f, "sshd")


def _postponed(msg: str, f: dict[str, Any]) -> bool:
    m = _POSTPONED.match(msg)
    if m:
        f["sshd.method"] = m.group(1)
        if m.group(2):
            f["sshd.invalid_user"] = True
        _user(f, m.group(3))
        _peer(f, m.group(4), m.group(5))
    return False


def _userauth(msg: str, f: dict[str, Any]) -> bool:
    m = _USERAUTH_INVALID.match(msg)
    if m:
        _user(f, m.group(1).strip())
        f["sshd.invalid_user"] = True
    return False  # the same attempt is reported by "Invalid user"; no second action


def _fallback_ip(msg: str, f: dict[str, Any]) -> bool:
    if "source.ip" not in f:
        m = _ANY_FROM.search(msg)
        if m:
            _peer(f, m.group(1), m.group(2))
    return False


_BY_WORD = {
    "Accepted": _accepted_failed,
    "Failed": _accepted_failed,
    "Invalid": _invalid,
    "invalid": _invalid,
    "Disconnected": _disconnected,
    "Disconnecting": _disconnecting,
    "Disconnecting:": _disconnecting,
    "Connection": _connection,
    "Received": _received,
    "error:": _error,
    "maximum": _error,
    "reverse": _reverse,
    "Address": _address,
    "Did": _did_not,
    "Bad": _bad,
    "User": _user_line,
    "fatal:": _fatal,
    "PAM": _pam_summary,
    "Postponed": _postponed,
    "input_userauth_request:": _userauth,
}


def extract(message: str, fields: dict[str, Any]) -> bool:
    """sshd MSG -> fields; see the module docstring of :mod:`soc.ingest.extract`."""
    msg = message
    if msg.endswith("[preauth]"):
        fields["sshd.preauth"] = True
        msg = msg[:-9].rstrip()
    space = msg.find(" ")
    fn = _BY_WORD.get(msg[:space] if space > 0 else msg)
    if fn is None:
        return _fallback_ip(msg, fields)
    return fn(msg, fields)


# ---- dropbear -------------------------------------------------------------------------------

_DB_BAD_PW = re.compile(r"Bad password attempt for '(.*)' from (\S+):(\d+)$")
_DB_NOUSER = re.compile(r"Login attempt for nonexistent user(?: '(.*)')? from (\S+):(\d+)$")
_DB_OK = re.compile(r"(Pubkey|Password) auth succeeded for '(.*?)'(?: with key (.*?))? from (\S+):(\d+)$")
_DB_EXIT = re.compile(r"Exit \((.*?)\)(?: from <(\S+):(\d+)>)?: (.*)$")
_DB_CHILD = re.compile(r"Child connection from (\S+):(\d+)$")


def extract_dropbear(message: str, fields: dict[str, Any]) -> bool:
    """dropbear MSG -> the same actions as sshd."""
    m = _DB_BAD_PW.match(message)
    if m:
        _user(fields, m.group(1))
        _peer(fields, m.group(2), m.group(3))
        fields["sshd.method"] = "password"
        return mark(fields, "ssh_login", "failure", _AUTH, _INFO)
    m = _DB_OK.match(message)
    if m:
        _user(fields, m.group(2))
        _peer(fields, m.group(4), m.group(5))
        fields["sshd.method"] = "publickey" if m.group(1) == "Pubkey" else "password"
        if m.group(3):
            fields["sshd.signature"] = m.group(3)
        return mark(fields, "ssh_login", "success", _AUTH_SESSION, _START)
    m = _DB_NOUSER.match(message)
    if m:
        _user(fields, m.group(1))
        _peer(fields, m.group(2), m.group(3))
        fields["sshd.invalid_user"] = True
        return mark(fields, "ssh_invalid_user", "failure", _AUTH, _INFO)
    m = _DB_EXIT.match(message)
    if m:
        _user(fields, m.group(1))
        _peer(fields, m.group(2), m.group(3))
        fields["sshd.reason"] = m.group(4)
        return mark(fields, "ssh_disconnect", "unknown", _SESSION, _END)
    m = _DB_CHILD.match(message)
    if m:
        _peer(fields, m.group(1), m.group(2))
        return mark(fields, "ssh_connection", "unknown", _NETWORK, _CONN_START)
    return False
