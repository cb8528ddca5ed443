"""``su`` messages (shadow-utils, util-linux, old BSD-style) -> action ``su``.

Spellings seen in real logs: ``Successful su for root by alice``, ``FAILED su for root by
alice``, ``(to root) alice on pts/0``, ``FAILED SU (to root) alice on pts/0``,
``BAD SU alice to root on /dev/ttyp0``, ``alice to root on /dev/ttyp1``,
``+ /dev/pts/0 alice:root`` / ``- /dev/pts/0 alice:root`` (sulog style) and
``failed: ttyq4 changing from alice to root``.

Fields: ``user.name`` (who ran su), ``user.target.name`` and ``user.effective.name``
(the account switched to), ``su.tty``; ``event.outcome`` success or failure.
"""

from __future__ import annotations

import re
from typing import Any

from .base import mark

_PATTERNS: tuple[tuple[re.Pattern[str], str, tuple[str, str, str | None]], ...] = (
    # (pattern, outcome, (group of user, group of target, group of tty))
    (re.compile(r"Successful su for (?P<t>\S+) by (?P<u>\S+)"), "success", ("u", "t", None)),
    (re.compile(r"FAILED su for (?P<t>\S+) by (?P<u>\S+)", re.I), "failure", ("u", "t", None)),
    (re.compile(r"FAILED SU \(to (?P<t>\S+)\) (?P<u>\S+) on (?P<tty>\S+)"), "failure", ("u", "t", "tty")),
    (re.compile(r"\(to (?P<t>\S+)\) (?P<u>\S+) on (?P<tty>\S+)"), "success", ("u", "t", "tty")),
    (re.compile(r"BAD SU (?P<u>\S+) to (?P<t>\S+)(?: on (?P<tty>\S+))?"), "failure", ("u", "t", "tty")),
    (re.compile(r"failed: (?P<tty>\S+) changing from (?P<u>\S+) to (?P<t>\S+)"), "failure", ("u", "t", "tty")),
    (re.compile(r"(?P<sign>[+-]) (?P<tty>\S+) (?P<u>[^\s:]+):(?P<t>\S+)$"), "sign", ("u", "t", "tty")),
    (re.compile(r"(?P<u>\S+) to (?P<t>\S+) on (?P<tty>\S+)$"), "success", ("u", "t", "tty")),
)


def extract(message: str, fields: dict[str, Any]) -> bool:
    """su MSG -> fields (PAM lines of su go through :mod:`.pam`)."""
    for pattern, outcome, (ug, tg, ttyg) in _PATTERNS:
        m = pattern.match(message)
        if not m:
            continue
        fields["user.name"] = m.group(ug)
        target = m.group(tg)
        fields["user.target.name"] = target
        fields["user.effective.name"] = target
        if ttyg and m.group(ttyg):
            fields["su.tty"] = m.group(ttyg)
        if outcome == "sign":
            outcome = "success" if m.group("sign") == "+" else "failure"
        if outcome == "success":
            return mark(fields, "su", "success", ("authentication", "session"), ("start",))
        return mark(fields, "su", "failure", ("authentication",), ("info",))
    return False
