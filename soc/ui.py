"""How things look to people: times in the analyst's zone with the zone named, alert rows,
and text from logs printed literally.

Inside, every time is UTC. Here, and only here, times are converted for display.

**Text from logs is data, never markup or terminal control.** A user name ``[/]`` must not be
read as a rich closing tag (it crashed ``soc alerts list``), and an ESC sequence or a bidi
override in a log line must not reach the analyst's terminal. :func:`literal` is the one
function that makes such text printable: every control character (C0 including newline and tab,
DEL, C1) and every bidi control (U+061C, U+200E/F, U+202A-U+202E, U+2066-U+2069, and the line
separators U+2028/9) is shown escaped -- ``\\x1b``, ``\\n``, ``\\u202e``. Renderers use it through
:func:`cell` (a :class:`rich.text.Text`, never parsed for markup), :func:`markup_safe` (inside
a markup string) and :func:`json_text` (JSON lines: valid JSON, non-ASCII kept, but DEL, C1 and
bidi controls escaped as ``\\u....`` like :func:`json.dumps` escapes C0).

**Output to a file or a pipe is not wrapped.** :func:`console` gives a console that wraps at
the terminal's width on a terminal; otherwise (``soc run > log``) a message is one line and
tables are as wide as their content (``COLUMNS`` still sets a width when given).
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from soc.model import parse_iso

LEVEL_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan",
               "informational": "dim"}
LEVEL_ORDER = {"informational": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}
#: width of a console whose output is not a terminal (and COLUMNS is not set): wide enough
#: that nothing is folded in practice
PIPE_WIDTH = 10_000

_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def literal(value: object, *, newlines: bool = False) -> str:
    """``value`` as text safe for a terminal: control and bidi characters escaped
    (``\\x1b``, ``\\n``, ``\\x85``, ``\\u202e``), everything else -- ``[/]``, Vietnamese,
    backslashes -- unchanged. ``None`` is ``""``. ``newlines=True`` keeps line breaks (text that
    is meant to have several lines: a rule's description, an error message; never a log line).
    Markup is not touched here: print the result with :func:`cell` or :func:`markup_safe`."""
    text = "" if value is None else str(value)
    if newlines:
        return "\n".join(_UNSAFE.sub(_escaped, line) for line in text.split("\n"))
    return _UNSAFE.sub(_escaped, text)


def cell(value: object, style: str = "", *, newlines: bool = False) -> Text:
    """A table cell or printable piece showing ``value`` literally (:func:`literal`; a
    :class:`~rich.text.Text` is never parsed for markup)."""
    return Text(literal(value, newlines=newlines), style=style)


def markup_safe(value: object, *, newlines: bool = False) -> str:
    """``value`` to put inside a rich markup string: :func:`literal`, then markup escaped
    (``[/]`` prints as ``[/]``)."""
    return escape(literal(value, newlines=newlines))


def json_text(value: Any, **options: Any) -> str:
    """:func:`json.dumps` with ``ensure_ascii=False`` (Vietnamese stays readable) that still
    escapes every terminal control: C0 as JSON does anyway, DEL, C1 and bidi controls as
    ``\\u....``. The text is valid JSON and decodes to the same value."""
    text = json.dumps(value, ensure_ascii=False, **options)
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def show_time(value: str | float | datetime | None, zone: ZoneInfo, *, with_zone: bool = True) -> str:
    """``2026-11-25 17:03:12 +07`` in the analyst's zone (the zone's name can be added once
    per screen by the caller)."""
    if value is None or value == "":
        return "-"
    if isinstance(value, str):
        moment = parse_iso(value)
    elif isinstance(value, (int, float)):
        moment = datetime.fromtimestamp(value, UTC)
    else:
        moment = value
    local = moment.astimezone(zone)
    text = local.strftime("%Y-%m-%d %H:%M:%S")
    if with_zone:
        offset = local.strftime("%z")
        text += f" {offset[:3]}" + (f":{offset[3:]}" if offset[3:] != "00" else "")
    return text


def zone_note(zone: ZoneInfo) -> str:
    offset = datetime.now(zone).strftime("%z")
    return f"times in {zone.key} (UTC{offset[:3]}:{offset[3:]})"


def alert_who(alert: dict[str, Any]) -> str:
    """The alert's group (``source.ip=203.0.113.7``) or its first entities, as raw text."""
    group = ", ".join(f"{k}={v}" for k, v in (alert.get("group") or {}).items())
    if group:
        return group
    entities = alert.get("entities") or {}
    return ", ".join(f"{k}={v[0] if isinstance(v, list) and v else v}" for k, v in list(entities.items())[:3])


def _alert_status(alert: dict[str, Any]) -> str:
    """``open`` (also for the detection engine's ``new``), ``acknowledged`` or ``closed``, with
    the assignee: ``acknowledged (chi)``."""
    status = alert.get("status") or "open"
    status = "open" if status == "new" else str(status)
    return f"{status} ({alert['assignee']})" if alert.get("assignee") else status


def alerts_table(alerts: list[dict[str, Any]], zone: ZoneInfo, *, title: str = "Alerts") -> Table:
    """One row per alert with its id (for ``soc alerts show ID``); every cell from the alert is
    shown literally (:func:`cell`)."""
    table = Table(title=title, caption=zone_note(zone), show_lines=False, expand=False)
    table.add_column("id", no_wrap=True)
    table.add_column("first seen", no_wrap=True)
    table.add_column("level")
    table.add_column("status")
    table.add_column("rule")
    table.add_column("agency")
    table.add_column("events", justify="right")
    table.add_column("group / entities", overflow="fold")
    table.add_column("author", overflow="fold")
    for alert in alerts:
        rule = alert.get("rule") or {}
        level = str(rule.get("level", ""))
        table.add_row(cell(alert.get("id", "")), show_time(alert.get("first_seen"), zone),
                      cell(level, LEVEL_STYLE.get(level, "")), cell(_alert_status(alert)), cell(rule.get("title", "")),
                      cell(alert.get("agency") or "-"), cell(alert.get("event_count", "")),
                      cell(alert_who(alert)), cell(rule.get("author", "")))
    return table


def alert_line(alert: dict[str, Any], zone: ZoneInfo) -> Text:
    """The service's announcement of a new alert, one line, data shown literally:
    ``ALERT high 2026-12-07 08:30:00 +07 SSH Brute Force ... | agency so-tttt | source.ip=... |
    12 events | rule by ... | id ...``."""
    rule = alert.get("rule") or {}
    level = str(rule.get("level", ""))
    line = Text(literal(f"ALERT {level}"), style=LEVEL_STYLE.get(level, ""))
    line.append(literal(f" {show_time(alert.get('first_seen'), zone)} {rule.get('title', '')} | agency "
                        f"{alert.get('agency')} | {alert_who(alert)} | {alert.get('event_count', '')} events | "
                        f"rule by {rule.get('author', '')} | id {alert.get('id', '')}"))
    return line


def console(stderr: bool = False) -> Console:
    """The console for stdout (or stderr): no highlighting; on a terminal it wraps at the
    terminal's width, otherwise it does not wrap (one line per message, tables as wide as their
    content) unless ``COLUMNS`` sets a width."""
    probe = Console(stderr=stderr)
    if probe.is_terminal or os.environ.get("COLUMNS", "").strip().isdigit():
        return Console(stderr=stderr, highlight=False)
    return Console(stderr=stderr, highlight=False, soft_wrap=True, width=PIPE_WIDTH)


class CountProgress:
    """Progress of counted phases (``loading rule files``, ``compiling rules``) on ``out``
    (stderr): a bar on a terminal; otherwise a line at the start of each phase, at every tenth
    of it and at its end, so a log or CI output shows it too. :meth:`phase` gives the
    ``progress(done, total)`` callback of one phase."""

    STEPS = 10

    def __init__(self, out: Console, *, enabled: bool = True) -> None:
        self.out, self.enabled = out, enabled
        self._bar: Any = None

    def __enter__(self) -> CountProgress:
        if self.enabled and self.out.is_terminal:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=self.out, transient=True)
            self._bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)
            self._bar = None

    def phase(self, what: str) -> Any:
        """The callback ``progress(done, total)`` for one phase called ``what``."""
        if not self.enabled:
            return lambda done, total: None
        if self._bar is not None:
            task = self._bar.add_task(what, total=None)
            return lambda done, total: self._bar.update(task, completed=done, total=total)
        printed: set[int] = set()

        def line(done: int, total: int) -> None:
            step = self.STEPS if total == 0 else done * self.STEPS // total
            if step in printed:
                return
            printed.add(step)
            self.out.print(f"{what}: {done:,}/{total:,}", markup=False, highlight=False)

        return line
