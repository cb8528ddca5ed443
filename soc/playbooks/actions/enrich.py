"""Enrichment from local lists: the province's asset inventory and threat-intel lists.

Both are YAML files in the playbook data folder (``playbooks/data/`` by default, setting
``playbooks.data_dir``), re-read when they change, so analysts edit them like the rules:

* ``assets.yml`` -- ``systems:`` each with ``name``, ``agency``, ``level`` (security level
  1-5, Decree 85/2016), ``owner``, ``operator``, ``hosts``, ``ips`` (addresses or CIDR
  ranges), ``domains``, ``services``, ``national_critical``;
* ``threat_intel.yml`` -- ``ips:``, ``cidrs:``, ``domains:``, each entry a value or a mapping
  with ``value``, ``source``, ``note``.
"""

from __future__ import annotations

import ipaddress
import threading
from pathlib import Path
from typing import Any

import yaml

from soc.playbooks.actions._util import alert_values, as_list
from soc.playbooks.registry import ActionContext, ActionError, action

_cache: dict[Path, tuple[float, Any]] = {}
_lock = threading.Lock()


def load_data(path: Path) -> Any:
    """A YAML data file, cached until its modification time changes."""
    try:
        mtime = path.stat().st_mtime
    except OSError as error:
        raise ActionError(f"{path}: cannot read ({error}); create it or set playbooks.data_dir",
                          retryable=False) from None
    with _lock:
        cached = _cache.get(path)
        if cached and cached[0] == mtime:
            return cached[1]
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise ActionError(f"{path}: not valid YAML: {error}", retryable=False) from None
    with _lock:
        _cache[path] = (mtime, data)
    return data


def _data_file(ctx: ActionContext, file: str | None, default: str) -> Path:
    path = Path(file) if file else ctx.runner.config.data_folder / default
    if not path.is_absolute() and file:
        path = ctx.runner.config.data_folder / path
    return path


def _ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(str(value).strip())
    except ValueError:
        return None


def _in(address: Any, entries: list[str]) -> bool:
    if address is None:
        return False
    for entry in entries:
        try:
            if "/" in str(entry):
                if address in ipaddress.ip_network(str(entry), strict=False):
                    return True
            elif address == ipaddress.ip_address(str(entry)):
                return True
        except ValueError:
            continue
    return False


@action("enrich.assets", side_effects=False)
def assets(ctx: ActionContext, hosts: Any = None, ips: Any = None, alerts: Any = None,
           file: str | None = None) -> dict[str, Any]:
    """Look hosts and addresses up in the asset list: system, agency, security level, owner.

    Output: ``systems`` (matched entries), ``affected_systems`` (in the incident model's shape,
    ready for ``incident.open_or_attach``), ``max_level``, ``agencies``, ``unknown`` (values
    not in the list)."""
    data = load_data(_data_file(ctx, file, "assets.yml"))
    systems = data.get("systems") or []
    host_values = [str(h).lower() for h in as_list(hosts) + alert_values(alerts, "host.name")]
    ip_values = as_list(ips) + alert_values(alerts, "destination.ip")
    matched: list[dict[str, Any]] = []
    found: set[str] = set()
    for system in systems:
        names = {str(h).lower() for h in as_list(system.get("hosts")) + as_list(system.get("domains"))}
        hits = [h for h in host_values if h in names or h.split(".")[0] in names]
        hits += [str(i) for i in ip_values if _in(_ip(i), [str(x) for x in as_list(system.get("ips"))])]
        if hits:
            matched.append({**system, "matched": sorted(set(hits))})
            found.update(hits)
    unknown = [v for v in dict.fromkeys(host_values + [str(i) for i in ip_values]) if v not in found]
    affected = [{
        "name": s["name"], "level": s.get("level"), "national_critical": bool(s.get("national_critical")),
        "operator": s.get("operator"), "owner": s.get("owner"),
        "hosts": [str(h) for h in as_list(s.get("hosts"))],
        "public_ips": [str(i) for i in as_list(s.get("ips")) if "/" not in str(i) and (a := _ip(i)) and a.is_global],
        "domains": [str(d) for d in as_list(s.get("domains"))], "services": as_list(s.get("services")),
        "os": s.get("os"),
    } for s in matched]
    levels = [int(s["level"]) for s in matched if s.get("level")]
    return {"systems": matched, "affected_systems": affected, "max_level": max(levels) if levels else None,
            "agencies": sorted({s["agency"] for s in matched if s.get("agency")}), "unknown": unknown,
            "count": len(matched)}


def _entries(data: dict[str, Any], name: str) -> list[dict[str, Any]]:
    out = []
    for item in data.get(name) or []:
        out.append(item if isinstance(item, dict) else {"value": item})
    return out


@action("enrich.threat_intel", side_effects=False)
def threat_intel(ctx: ActionContext, ips: Any = None, domains: Any = None, alerts: Any = None,
                 file: str | None = None) -> dict[str, Any]:
    """Check addresses and domains against the local threat-intel lists.

    Output: ``hits`` (value, type, source, note), ``malicious`` (any hit), ``checked``."""
    data = load_data(_data_file(ctx, file, "threat_intel.yml"))
    ip_values = list(dict.fromkeys(as_list(ips) + alert_values(alerts, "source.ip", "destination.ip")))
    domain_values = [str(d).lower().rstrip(".") for d in as_list(domains) + alert_values(alerts, "url.domain")]
    hits: list[dict[str, Any]] = []
    bad_ips = _entries(data, "ips") + _entries(data, "cidrs")
    for value in ip_values:
        address = _ip(value)
        for entry in bad_ips:
            if _in(address, [str(entry["value"])]):
                hits.append({"value": str(value), "type": "ip", "matched": str(entry["value"]),
                             "source": entry.get("source"), "note": entry.get("note")})
                break
    for value in domain_values:
        for entry in _entries(data, "domains"):
            bad = str(entry["value"]).lower().rstrip(".")
            if value == bad or value.endswith("." + bad):
                hits.append({"value": value, "type": "domain", "matched": bad,
                             "source": entry.get("source"), "note": entry.get("note")})
                break
    return {"hits": hits, "malicious": bool(hits), "checked": len(ip_values) + len(domain_values)}
