"""Account-management tools (shadow-utils and friends): useradd, userdel, usermod, groupadd,
groupdel, groupmod, passwd, chpasswd, gpasswd, chage.

One real change often produces several lines (``useradd -G sudo bob`` logs ``add 'bob' to
group 'sudo'`` *and* ``add 'bob' to shadow group 'sudo'``; ``groupadd`` logs the
``/etc/group``, ``/etc/gshadow`` and ``new group:`` lines). Only one line of each set carries
``event.action``, so rules that count account changes count each change once; the others
still get ``user.target.name``/``group.name``.

Fields: ``user.target.name``/``user.target.id`` (the account acted upon), ``user.name``
(the acting user when the line names one: ``changed by``, gpasswd ``by``), ``group.name``/
``group.id``, ``user.changes.name``/``user.changes.id`` (new values on rename / UID change),
``account.home``, ``account.shell``, ``account.change`` (what usermod/chage changed).
"""

from __future__ import annotations

import re
from typing import Any

from .base import mark

_IAM = ("iam",)
_USER_CREATION = ("user", "creation")
_USER_DELETION = ("user", "deletion")
_USER_CHANGE = ("user", "change")
_GROUP_CREATION = ("group", "creation")
_GROUP_DELETION = ("group", "deletion")
_GROUP_CHANGE = ("group", "change")

_NEW_USER = re.compile(r"new user: name=([^,\s]+), UID=(\d+), GID=(\d+)(?:, home=([^,]*))?(?:, shell=([^,\s]*))?")
_NEW_GROUP = re.compile(r"new group: name=([^,\s]+)(?:, GID=(\d+))?")
_FAILED_ADD = re.compile(r"failed adding user '([^']*)'")
_ADD_TO_GROUP = re.compile(r"add '([^']+)' to (shadow )?group '([^']+)'")
_DEL_FROM_GROUP = re.compile(r"delete '([^']+)' from (shadow )?group '([^']+)'")
_GROUP_FILE = re.compile(r"group added to /etc/g?(?:shadow|group): name=([^,\s]+)(?:, GID=(\d+))?")
_DELETE_USER = re.compile(r"delete user '([^']+)'")
_REMOVED_GROUP = re.compile(r"removed (shadow )?group '([^']+)'(?: owned by '([^']+)')?")
_GROUP_REMOVED = re.compile(r"group '([^']+)' removed( from /etc/\S+)?")
_RENAME = re.compile(r"change user name '([^']+)' to '([^']+)'")
_UID = re.compile(r"change user '([^']+)' UID from '([^']*)' to '([^']*)'")
_PW_CHANGE_USERMOD = re.compile(r"change user '([^']+)' password")
_CHANGE = re.compile(r"(change|lock|unlock) user '([^']+)' ?(.*)$")
_PASSWD_BY = re.compile(r"password for '([^']+)' changed by '([^']+)'")
_GPASSWD_ADD = re.compile(r"user (\S+) added by (\S+) to group (\S+)")
_GPASSWD_DEL = re.compile(r"user (\S+) removed by (\S+) from group (\S+)")
_GPASSWD_SET = re.compile(r"(?:members of group (\S+) set by (\S+)|group (\S+) password (?:set|removed) by (\S+))")
_GROUPMOD = re.compile(r"group changed in /etc/group \(group ([^/\s]+)/(\d+)(?:, new name: ([^,)]+))?")
_CHAGE = re.compile(r"changed password expiry for (\S+)")


def _target(f: dict[str, Any], name: str, uid: str | None = None) -> None:
    f["user.target.name"] = name
    if uid:
        f["user.target.id"] = uid


def _group(f: dict[str, Any], name: str, gid: str | None = None) -> None:
    f["group.name"] = name
    if gid:
        f["group.id"] = gid


def extract(message: str, fields: dict[str, Any]) -> bool:  # noqa: C901  (a flat table of cases)
    """Account-management MSG -> fields; see the module docstring for the one-action rule."""
    msg = message
    if msg.startswith("new user:"):
        m = _NEW_USER.match(msg)
        if m:
            _target(fields, m.group(1), m.group(2))
            fields["group.id"] = m.group(3)
            if m.group(4):
                fields["account.home"] = m.group(4)
            if m.group(5):
                fields["account.shell"] = m.group(5)
            return mark(fields, "user_created", "success", _IAM, _USER_CREATION)
    elif msg.startswith("new group:"):
        m = _NEW_GROUP.match(msg)
        if m:
            _group(fields, m.group(1), m.group(2))
            return mark(fields, "group_created", "success", _IAM, _GROUP_CREATION)
    elif msg.startswith("failed adding user"):
        m = _FAILED_ADD.match(msg)
        if m:
            _target(fields, m.group(1))
            return mark(fields, "user_created", "failure", _IAM, _USER_CREATION)
    elif msg.startswith("add '"):
        m = _ADD_TO_GROUP.match(msg)
        if m:
            _target(fields, m.group(1))
            _group(fields, m.group(3))
            return not m.group(2) and mark(fields, "user_added_to_group", "success", _IAM, _GROUP_CHANGE)
    elif msg.startswith("delete '"):
        m = _DEL_FROM_GROUP.match(msg)
        if m:
            _target(fields, m.group(1))
            _group(fields, m.group(3))
            return not m.group(2) and mark(fields, "user_removed_from_group", "success", _IAM, _GROUP_CHANGE)
    elif msg.startswith("group added to"):
        m = _GROUP_FILE.match(msg)
        if m:
            _group(fields, m.group(1), m.group(2))
        return False
    elif msg.startswith("delete user"):
        m = _DELETE_USER.match(msg)
        if m:
            _target(fields, m.group(1))
            return mark(fields, "user_deleted", "success", _IAM, _USER_DELETION)
    elif msg.startswith("removed "):
        m = _REMOVED_GROUP.match(msg)
        if m:
            _group(fields, m.group(2))
            return not m.group(1) and mark(fields, "group_deleted", "success", _IAM, _GROUP_DELETION)
    elif msg.startswith("group '"):
        m = _GROUP_REMOVED.match(msg)
        if m:
            _group(fields, m.group(1))
            return not m.group(2) and mark(fields, "group_deleted", "success", _IAM, _GROUP_DELETION)
    elif msg.startswith("group changed"):
        m = _GROUPMOD.match(msg)
        if m:
            _group(fields, m.group(1), m.group(2))
            if m.group(3):
                fields["group.changes.name"] = m.group(3).strip()
            return mark(fields, "group_modified", "success", _IAM, _GROUP_CHANGE)
    elif msg.startswith("password for"):
        m = _PASSWD_BY.match(msg)
        if m:
            _target(fields, m.group(1))
            fields["user.name"] = m.group(2)
            return mark(fields, "password_changed", "success", _IAM, _USER_CHANGE)
    elif msg.startswith("user "):
        return _gpasswd_user(msg, fields)
    elif msg.startswith(("members of group", "group ")):
        return _gpasswd_group(msg, fields)
    elif msg.startswith("changed password expiry"):
        m = _CHAGE.match(msg)
        if m:
            _target(fields, m.group(1))
            fields["account.change"] = "password expiry"
            return mark(fields, "user_modified", "success", _IAM, _USER_CHANGE)
    elif msg.startswith(("change ", "lock ", "unlock ")):
        return _usermod(msg, fields)
    return False


def _usermod(msg: str, fields: dict[str, Any]) -> bool:
    m = _RENAME.match(msg)
    if m:
        _target(fields, m.group(1))
        fields["user.changes.name"] = m.group(2)
        return mark(fields, "user_renamed", "success", _IAM, _USER_CHANGE)
    m = _PW_CHANGE_USERMOD.match(msg)
    if m:
        _target(fields, m.group(1))
        return mark(fields, "password_changed", "success", _IAM, _USER_CHANGE)
    m = _UID.match(msg)
    if m:
        _target(fields, m.group(1), m.group(2))
        fields["user.changes.id"] = m.group(3)
        fields["account.change"] = "uid"
        return mark(fields, "user_modified", "success", _IAM, _USER_CHANGE)
    m = _CHANGE.match(msg)
    if m:
        verb, name, rest = m.groups()
        _target(fields, name)
        fields["account.change"] = f"{verb} {rest}".strip() if verb != "change" else rest.strip()
        return mark(fields, "user_modified", "success", _IAM, _USER_CHANGE)
    return False


def _gpasswd_user(msg: str, fields: dict[str, Any]) -> bool:
    for pattern, action in ((_GPASSWD_ADD, "user_added_to_group"), (_GPASSWD_DEL, "user_removed_from_group")):
        m = pattern.match(msg)
        if m:
            _target(fields, m.group(1))
            fields["user.name"] = m.group(2)
            _group(fields, m.group(3))
            return mark(fields, action, "success", _IAM, _GROUP_CHANGE)
    return False


def _gpasswd_group(msg: str, fields: dict[str, Any]) -> bool:
    m = _GPASSWD_SET.match(msg)
    if m:
        _group(fields, m.group(1) or m.group(3))
        fields["user.name"] = m.group(2) or m.group(4)
        return mark(fields, "group_modified", "success", _IAM, _GROUP_CHANGE)
    m = _GROUP_REMOVED.match(msg)
    if m:
        _group(fields, m.group(1))
        return not m.group(2) and mark(fields, "group_deleted", "success", _IAM, _GROUP_DELETION)
    return False
