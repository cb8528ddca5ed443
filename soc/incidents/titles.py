"""Incident titles that tell incidents apart.

Two open incidents both called "SSH brute force against combo" cannot be told apart in a list.
A title names what happened, the target, the attacker (or how many there are) and the date the
incident was discovered, in the analyst's zone::

    SSH Brute Force From One Source against combo from 5 sources, 2026-12-07
    Dò mật khẩu SSH vào combo / SSH brute force against combo — 203.0.113.7, 2026-12-07

A title is kept as a *template* (``Incident.title_template``) with placeholders that are filled
from the incident -- its entities, rules and discovery time -- when it opens and again whenever
alerts join or leave it, so "5 sources" stays true as the campaign grows:

* ``{target}`` -- the attacked host (``host.name``, else ``destination.ip``): ``combo``, ``3 hosts``;
* ``{source}`` -- the attacker (``source.ip``): ``203.0.113.7``, ``5 sources``; without an address
  the account (``user root``, ``4 users``);
* ``{user}`` -- the account (``user.target.name``, else ``user.name``): ``root``, ``4 users``;
* ``{date}`` -- the discovery date in the analyst's zone: ``2026-12-07``;
* ``{more_rules}`` -- `` and 2 more rules`` when several rules raised its alerts, else nothing.

The default title (no title given) is such a template; playbooks use the placeholders in their
``title:`` (``playbooks/*.yml``). A title an analyst sets (``soc incidents update --title``) is
kept as written.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import tzinfo
from typing import Any

from soc.incidents.model import Incident
from soc.model import parse_iso

__all__ = ["PLACEHOLDERS", "default_template", "has_placeholders", "render_title"]

PLACEHOLDERS = ("target", "source", "user", "date", "more_rules")
_PLACEHOLDER = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")
#: longest entity value put in a title (log data can be long)
MAX_VALUE = 64
#: entity lists are capped (soc.incidents.from_alerts.MAX_ENTITY_VALUES): a full list means "at least"
FULL_LIST = 100
_LEVELS = {"informational": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}


def has_placeholders(text: str | None) -> bool:
    return bool(text and _PLACEHOLDER.search(text))


def _short(value: str) -> str:
    return value if len(value) <= MAX_VALUE else value[:MAX_VALUE - 1] + "…"


def _one_or_count(values: Sequence[str], noun: str, prefix: str = "") -> str | None:
    if not values:
        return None
    if len(values) == 1:
        return prefix + _short(values[0])
    return f"{len(values)}{'+' if len(values) >= FULL_LIST else ''} {noun}"


def _values(entities: Mapping[str, Sequence[str]], *names: str) -> list[str]:
    for name in names:
        if entities.get(name):
            return list(entities[name])
    return []


def _fill(name: str, incident: Incident, zone: tzinfo) -> str:
    entities = incident.entities
    users = _values(entities, "user.target.name", "user.name")
    if name == "target":
        return _one_or_count(_values(entities, "host.name", "destination.ip"), "hosts") or "unknown host"
    if name == "source":
        return (_one_or_count(_values(entities, "source.ip"), "sources")
                or _one_or_count(users, "users", "user ") or "unknown source")
    if name == "user":
        return _one_or_count(users, "users") or "unknown user"
    if name == "date":
        return parse_iso(incident.discovered_at).astimezone(zone).strftime("%Y-%m-%d")
    more = len(incident.rule_ids) - 1
    return f" and {more} more rule{'s' if more > 1 else ''}" if more > 0 else ""


def render_title(template: str, incident: Incident, zone: tzinfo) -> str:
    """``template`` with its placeholders filled from ``incident`` (other text as written)."""
    return _PLACEHOLDER.sub(lambda m: _fill(m.group(1), incident, zone), template)


def default_template(alerts: Sequence[Mapping[str, Any]], entities: Mapping[str, Sequence[str]]) -> str:
    """The title template when none is given: the most severe alert's rule title, the other
    rules, the target and the attacker when the alerts name them (``entities``: theirs), the
    date: ``{rule title}{more_rules} against {target} from {source}, {date}``."""
    lead = max(alerts, key=lambda a: _LEVELS.get(str((a.get("rule") or {}).get("level")), 0)) if alerts else {}
    title = str((lead.get("rule") or {}).get("title") or "Incident")
    title = _PLACEHOLDER.sub(lambda m: f"({m.group(1)})", title)  # a rule title is not a template
    template = title + "{more_rules}"
    if _values(entities, "host.name", "destination.ip"):
        template += " against {target}"
    if _values(entities, "source.ip", "user.target.name", "user.name"):
        template += " from {source}"
    return template + ", {date}"
