"""PAM messages from any program: ``pam_unix(sshd:auth): authentication failure; ...``.

Two spellings reach us: the modern ``pam_<module>(<service>:<type>): <body>`` inside any
program's MSG, and the old Red Hat tag style ``sshd(pam_unix)[pid]: <body>`` where the
service is the program and the body is the whole MSG. Both end in :func:`extract_body`.

Who is who: for ``su``/``sudo``-like services the acting user is PAM's ``ruser`` (or the
``by X(uid=N)`` user of session lines) and the account being switched to is
``user.target.name``; for every other service (sshd, login, cron, vsftpd...) ``user.name``
is the account being authenticated or whose session opened. Raw PAM items are kept as
``pam.logname``, ``pam.uid``, ``pam.euid``, ``pam.tty``, ``pam.ruser``, ``pam.rhost``,
``pam.by_uid``; ``pam.module``/``pam.service``/``pam.type`` come from the prefix.
"""

from __future__ import annotations

import re
from typing import Any

from soc.ingest.values import EMPTY_VALUES, set_address

from .base import mark

_PREFIX = re.compile(r"(pam_[\w\-]+)\(([^:)\s]+)(?::(\w+))?\):\s*(.*)$", re.S)
_ITEMS = re.compile(r"(\w+)=(\S*)")
_SESSION = re.compile(r"session (opened|closed) for user (\S+?)(?:\(uid=(\d+)\))?(?: by (\S*?)\s*(?:\(uid=(\d+)\))?)?\s*$")
_PASSWORD_CHANGED = re.compile(r"password changed for (\S+)")
_NO_SUCH_USER = re.compile(r"user \"?([^\"\s]*)\"? does not exist")
_MORE = re.compile(r"(\d+) more authentication failures?;")
_SWITCH_SERVICES = frozenset({"su", "su-l", "sudo", "sudo-i", "doas", "runuser", "runuser-l", "pkexec"})


def extract(message: str, fields: dict[str, Any]) -> bool:
    """``pam_<module>(<service>:<type>): <body>`` -> fields."""
    m = _PREFIX.match(message)
    if not m:
        return False
    module, service, ptype, body = m.groups()
    fields["pam.module"] = module
    fields["pam.service"] = service
    if ptype:
        fields["pam.type"] = ptype
    return extract_body(body, fields, service)


_STANDARD_ITEMS = re.compile(r".*?logname=(\S*) uid=(\S*) euid=(\S*) tty=(\S*) ruser=(\S*) rhost=(\S*)(?:\s+user=(\S*))?")
_STANDARD_KEYS = ("logname", "uid", "euid", "tty", "ruser", "rhost", "user")
_FIELD_NAMES = tuple("pam." + key for key in _STANDARD_KEYS)


def _items(body: str, fields: dict[str, Any]) -> dict[str, str]:
    m = _STANDARD_ITEMS.match(body)  # pam_unix's fixed layout: one match instead of findall
    if m:
        values = m.groups("")
        items = dict(zip(_STANDARD_KEYS, values, strict=True))
        for name, value in zip(_FIELD_NAMES, values, strict=True):
            if value and value not in EMPTY_VALUES:
                fields[name] = value
        return _rhost(items, fields)
    items = dict(_ITEMS.findall(body))
    for key, name in zip(_STANDARD_KEYS, _FIELD_NAMES, strict=True):
        value = items.get(key)
        if value and value not in EMPTY_VALUES:
            fields[name] = value
    return _rhost(items, fields)


def _rhost(items: dict[str, str], fields: dict[str, Any]) -> dict[str, str]:
    rhost = items.get("rhost")
    if rhost:
        set_address(fields, "source", rhost)
    return items


def _who(fields: dict[str, Any], service: str | None, user: str | None, acting: str | None) -> None:
    """Set user.name / user.target.name following the module's rules."""
    if service in _SWITCH_SERVICES and acting:
        fields["user.name"] = acting
        if user:
            fields["user.target.name"] = user
            fields["user.effective.name"] = user
    elif user:
        fields["user.name"] = user


def extract_body(body: str, fields: dict[str, Any], service: str | None) -> bool:
    """The part after the PAM prefix (or the whole MSG of ``prog(pam_unix)`` lines)."""
    service = (service or "").lower() or None
    if "authentication failure" in body:
        items = _items(body, fields)
        _who(fields, service, items.get("user") or None, items.get("ruser") or None)
        m = _MORE.match(body)
        if m:
            fields["pam.more_failures"] = int(m.group(1))
            return mark(fields, "authentication_failures_repeated", "failure", ("authentication",), ("info",))
        return mark(fields, "authentication_failure", "failure", ("authentication",), ("info",))
    if body.startswith("session "):
        m = _SESSION.match(body)
        if not m:
            return False
        verb, user, _uid, by, by_uid = m.groups()
        if by_uid:
            fields["pam.by_uid"] = by_uid
        _who(fields, service, user, by or None)
        if verb == "opened":
            return mark(fields, "session_opened", "success", ("session",), ("start",))
        return mark(fields, "session_closed", "success", ("session",), ("end",))
    if body.startswith("check pass; user unknown"):
        return mark(fields, "user_unknown", "failure", ("authentication",), ("info",))
    m = _PASSWORD_CHANGED.search(body)
    if m:
        fields["user.target.name"] = m.group(1)
        return mark(fields, "password_changed", "success", ("iam",), ("user", "change"))
    m = _NO_SUCH_USER.search(body)
    if m:
        if m.group(1):
            fields["user.name"] = m.group(1)
        return mark(fields, "user_unknown", "failure", ("authentication",), ("info",))
    return False
