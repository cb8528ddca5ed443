"""``sudo`` and ``doas`` messages -> the command run, who ran it and as whom.

sudo logs ``<user> : [<problem> ; ]TTY=<tty> ; PWD=<dir> ; USER=<runas> ; [GROUP=..; ]
COMMAND=<command line>``. The optional problem part says why it was refused
(``3 incorrect password attempts``, ``user NOT in sudoers``, ``command not allowed``).
PAM lines of sudo (``pam_unix(sudo:session): ...``) are handled by :mod:`.pam`.

Fields: ``user.name`` (who invoked sudo), ``user.effective.name`` and ``user.target.name``
(the ``USER=`` run-as account; both, because rules are written either way),
``process.command_line`` (``COMMAND=``), ``process.executable`` (its first word when it is
an absolute path), ``process.working_directory`` (``PWD=``), ``sudo.tty``,
``sudo.problem``, ``user.effective.group.name`` (``GROUP=``).
"""

from __future__ import annotations

import re
from typing import Any

from .base import mark

_SUDO = re.compile(
    r"\s*(\S+) : (?:(.*?) ; )?TTY=(\S*) ; PWD=(.*?) ; USER=(\S+) ; (?:GROUP=(\S+) ; )?(?:(?:TSID|ENV|CHROOT)=.*? ; )*COMMAND=(.*)$"
)


def _command(fields: dict[str, Any], command: str) -> None:
    command = command.strip()
    if not command:
        return
    fields["process.command_line"] = command
    exe = command.split(" ", 1)[0]
    if exe.startswith("/"):
        fields["process.executable"] = exe


def extract(message: str, fields: dict[str, Any]) -> bool:
    """sudo MSG -> fields (see :mod:`soc.ingest.extract` for the action names)."""
    m = _SUDO.match(message)
    if not m:
        return False
    user, problem, tty, pwd, runas, group, command = m.groups()
    fields["user.name"] = user
    fields["user.effective.name"] = runas
    fields["user.target.name"] = runas
    if group:
        fields["user.effective.group.name"] = group
    fields["sudo.tty"] = tty
    fields["process.working_directory"] = pwd
    _command(fields, command)
    if not problem:
        return mark(fields, "sudo_command", "success", ("process",), ("start",))
    fields["sudo.problem"] = problem
    lowered = problem.lower()
    if "incorrect password" in lowered or "password is required" in lowered:
        return mark(fields, "sudo_auth_failure", "failure", ("authentication",), ("info",))
    if "not in sudoers" in lowered or "not authorized" in lowered or "not allowed to run sudo" in lowered:
        return mark(fields, "sudo_not_in_sudoers", "failure", ("authentication",), ("info",))
    return mark(fields, "sudo_command_denied", "failure", ("process",), ("denied",))


_DOAS_RAN = re.compile(r"(\S+) ran command (?:(.+?) as (\S+) from (.*)|as (\S+): (.*))$")
_DOAS_FAILED_CMD = re.compile(r"failed command for (\S+?): (.*)$")
_DOAS_FAILED_AUTH = re.compile(r"failed auth for (\S+)")


def extract_doas(message: str, fields: dict[str, Any]) -> bool:
    """OpenBSD ``doas`` MSG -> the same actions as sudo."""
    m = _DOAS_RAN.match(message)
    if m:
        user, cmd1, runas1, pwd, runas2, cmd2 = m.groups()
        fields["user.name"] = user
        runas = runas1 or runas2
        fields["user.effective.name"] = runas
        fields["user.target.name"] = runas
        if pwd:
            fields["process.working_directory"] = pwd
        _command(fields, cmd1 or cmd2 or "")
        return mark(fields, "sudo_command", "success", ("process",), ("start",))
    m = _DOAS_FAILED_CMD.match(message)
    if m:
        fields["user.name"] = m.group(1)
        _command(fields, m.group(2))
        return mark(fields, "sudo_command_denied", "failure", ("process",), ("denied",))
    m = _DOAS_FAILED_AUTH.match(message)
    if m:
        fields["user.name"] = m.group(1)
        return mark(fields, "sudo_auth_failure", "failure", ("authentication",), ("info",))
    return False
