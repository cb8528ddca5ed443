"""How things look to people: times in the analyst's zone with the zone named, alert rows.

Inside, every time is UTC. Here, and only here, times are converted for display.
"""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table

from soc.model import parse_iso

LEVEL_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan",
               "informational": "dim"}
LEVEL_ORDER = {"informational": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}


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


def alerts_table(alerts: list[dict[str, Any]], zone: ZoneInfo, *, title: str = "Alerts") -> Table:
    table = Table(title=title, caption=zone_note(zone), show_lines=False, expand=False)
    table.add_column("first seen")
    table.add_column("level")
    table.add_column("rule")
    table.add_column("agency")
    table.add_column("events", justify="right")
    table.add_column("group / entities", overflow="fold")
    table.add_column("author", overflow="fold")
    for alert in alerts:
        rule = alert["rule"]
        level = rule.get("level", "")
        group = ", ".join(f"{k}={v}" for k, v in alert.get("group", {}).items())
        if not group:
            entities = alert.get("entities", {})
            group = ", ".join(f"{k}={v[0]}" for k, v in list(entities.items())[:3])
        table.add_row(show_time(alert.get("first_seen"), zone), f"[{LEVEL_STYLE.get(level, '')}]{level}[/]",
                      rule.get("title", ""), alert.get("agency") or "-", str(alert.get("event_count", "")),
                      group, rule.get("author", ""))
    return table


def listen_address(host: str, port: int) -> str:
    """``host:port`` of a listening socket and who can reach it: ``0.0.0.0:5514 (all interfaces)``,
    ``127.0.0.1:9108 (this machine only)``, ``[::1]:9108 (this machine only)``."""
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return f"{host}:{port}"
    shown = f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"
    if ip.is_unspecified:
        return f"{shown} (all interfaces)"
    if ip.is_loopback:
        return f"{shown} (this machine only)"
    return shown


def console(stderr: bool = False) -> Console:
    return Console(stderr=stderr, highlight=False)
