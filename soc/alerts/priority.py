"""How much an alert matters: the rule's severity weighted by the security level of the system it
is about.

The province's asset inventory (``assets.yml`` in the playbook data folder, the file the
``enrich.assets`` playbook action reads: ``systems:`` each with ``name``, ``agency``, ``level``
-- the security level 1-5 of the information system, Decree 85/2016/NĐ-CP -- ``hosts`` and
``ips``, addresses or CIDR ranges) says which system a host or an address belongs to. When an
alert is raised, :class:`AlertPriority` records on it

* ``asset``: ``{"level": N, "system": NAME}`` -- the most critical system among the alert's hosts
  (``host.name``) and target addresses (``destination.ip``, ``host.ip``), in its entities and its
  correlation group; absent when none is in the inventory;
* ``risk``: the severity rank of the rule's level (informational 1, low 2, medium 3, high 4,
  critical 5) times the system's level (1 when unknown): 1 to 25. The queue sorts on it.

Both are what the inventory said when the alert was raised (or last extended); a level changed
later applies to the alerts raised after it. The file is re-read when it changes.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = ["RISK_FIELD", "SEVERITY_RANK", "AlertPriority", "AssetInventory", "System", "risk_of", "severity_rank"]

log = logging.getLogger(__name__)

RISK_FIELD = "risk"
#: the rank of each Sigma level (an unknown level ranks as informational)
SEVERITY_RANK = {"informational": 1, "low": 2, "medium": 3, "high": 4, "critical": 5}
#: the entity fields naming the system an alert is about (not the attacker's address)
HOST_FIELDS = ("host.name",)
ADDRESS_FIELDS = ("destination.ip", "host.ip")
#: seconds between two looks at the inventory file's modification time
RECHECK_SECONDS = 5.0

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def severity_rank(level: Any) -> int:
    """1 (informational) to 5 (critical)."""
    return SEVERITY_RANK.get(str(level or "").lower(), 1)


def risk_of(level: Any, criticality: int | None) -> int:
    """The rule level's rank times the system's security level (1 when unknown)."""
    return severity_rank(level) * (criticality or 1)


@dataclass(frozen=True)
class System:
    """One information system of the inventory."""

    name: str
    level: int
    agency: str | None = None


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple, set)) else [value]


class AssetInventory:
    """Host names and addresses -> the systems of ``assets.yml`` (see the module docstring)."""

    def __init__(self, systems: Iterable[Mapping[str, Any]] = ()) -> None:
        self.systems: list[System] = []
        self._hosts: dict[str, System] = {}
        self._networks: list[tuple[Network, System]] = []
        for entry in systems:
            try:
                level = int(entry.get("level") or 0)
            except (TypeError, ValueError):
                level = 0
            if not 1 <= level <= 5 or not entry.get("name"):
                continue  # a system without a usable level says nothing about criticality
            system = System(str(entry["name"]), level, entry.get("agency"))
            self.systems.append(system)
            for host in _as_list(entry.get("hosts")) + _as_list(entry.get("domains")):
                self._keep_host(str(host).strip().lower(), system)
            for address in _as_list(entry.get("ips")):
                try:
                    self._networks.append((ipaddress.ip_network(str(address).strip(), strict=False), system))
                except ValueError:
                    log.warning("assets.yml: %r of %s is not an address or network", address, system.name)

    def _keep_host(self, name: str, system: System) -> None:
        known = self._hosts.get(name)
        if name and (known is None or known.level < system.level):
            self._hosts[name] = system

    @classmethod
    def load(cls, path: Path) -> AssetInventory:
        """The inventory of ``path`` (empty when the file does not exist)."""
        if not path.is_file():
            return cls()
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return cls(data.get("systems") or [] if isinstance(data, dict) else [])

    def host(self, name: Any) -> System | None:
        """The system of a host name (also by its first label: ``dvc-web01.tinh.gov.vn``)."""
        text = str(name or "").strip().lower()
        return self._hosts.get(text) or self._hosts.get(text.split(".")[0]) if text else None

    def address(self, value: Any) -> System | None:
        """The most critical system whose addresses hold ``value``."""
        try:
            address = ipaddress.ip_address(str(value).strip())
        except ValueError:
            return None
        found = [system for network, system in self._networks if address in network]
        return max(found, key=lambda s: s.level) if found else None

    def system_of(self, alert: Mapping[str, Any]) -> System | None:
        """The most critical system an alert is about (its hosts and target addresses)."""
        found: list[System] = []
        for bag in (alert.get("entities") or {}, alert.get("group") or {}):
            for name in HOST_FIELDS:
                found += [s for v in _as_list(bag.get(name)) if (s := self.host(v))]
            for name in ADDRESS_FIELDS:
                found += [s for v in _as_list(bag.get(name)) if (s := self.address(v))]
        return max(found, key=lambda s: s.level) if found else None


class AlertPriority:
    """The detection engine's ``enrich`` hook: records ``asset`` and ``risk`` on an alert from
    the inventory at ``path``, re-read when the file changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._mtime: float | None = None
        self._checked = 0.0
        self._inventory = AssetInventory()

    @property
    def inventory(self) -> AssetInventory:
        now = time.monotonic()
        if now - self._checked >= RECHECK_SECONDS or self._mtime is None:
            with self._lock:
                self._checked = now
                try:
                    mtime = self.path.stat().st_mtime
                except OSError:
                    mtime = -1.0
                if mtime != self._mtime:
                    try:
                        self._inventory = AssetInventory.load(self.path)
                    except (OSError, yaml.YAMLError) as error:
                        log.warning("%s: cannot read the asset inventory (%s); keeping the last one", self.path, error)
                    self._mtime = mtime
        return self._inventory

    def __call__(self, alert: dict[str, Any]) -> None:
        system = self.inventory.system_of(alert)
        if system is None:
            alert.pop("asset", None)
        else:
            alert["asset"] = {"level": system.level, "system": system.name}
        alert[RISK_FIELD] = risk_of((alert.get("rule") or {}).get("level"), system.level if system else None)
