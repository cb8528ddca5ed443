"""Enrichment from local lists: the province's asset inventory and threat-intel lists.

Both are YAML files in the playbook data folder (``playbooks/data/`` by default, setting
``playbooks.data_dir``), re-read when they change, so analysts edit them like the rules:

* ``assets.yml`` -- ``systems:`` each with ``name``, ``agency``, ``level`` (security level
  1-5, Decree 85/2016), ``owner``, ``operator``, ``hosts``, ``ips`` (addresses or CIDR
  ranges), ``domains``, ``services``, ``national_critical``;
* ``threat_intel.yml`` -- ``ips:``, ``cidrs:``, ``domains:`` (also ``urls:``, ``hashes:``,
  ``emails:``), each entry a value or a mapping with ``value``, ``source``, ``note``: the hand
  list, loaded into the indicator store as the feed ``hand-list`` (:mod:`soc.intel.handlist`);
  ``enrich.threat_intel`` looks values up in the store, so it sees every feed's indicators.
"""

from __future__ import annotations

import ipaddress
import threading
from pathlib import Path
from typing import Any

import yaml

from soc.intel import IndicatorBook, indicator_id, is_live, load_hand_list
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


_hand_lists: dict[tuple[int, Path], float] = {}


def _sync_hand_list(ctx: ActionContext, path: Path, book: IndicatorBook) -> None:
    """Load the hand list into the store (feed ``hand-list``) when the file changed since this
    process last loaded it into this store."""
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return  # no hand list: the store alone answers
    key = (id(ctx.store), path)
    with _lock:
        if _hand_lists.get(key) == mtime:
            return
    try:
        load_hand_list(book, path)
    except yaml.YAMLError as error:
        raise ActionError(f"{path}: not valid YAML: {error}", retryable=False) from None
    with _lock:
        _hand_lists[key] = mtime


def _hit(value: str, type_: str, body: dict[str, Any]) -> dict[str, Any]:
    feeds = body.get("feeds") or []
    notes = [str(f["name"]) for f in feeds if f.get("name")]
    standing = sorted({f["feed"] for f in feeds if not f.get("revoked")}) or body.get("sources") or []
    return {"value": value, "type": type_, "matched": body["value"], "source": ", ".join(standing),
            "note": "; ".join(dict.fromkeys(notes)) or None, "confidence": body.get("confidence"),
            "tlp": body.get("tlp"), "indicator_id": indicator_id(body["type"], body["value"])}


@action("enrich.threat_intel", side_effects=False)
def threat_intel(ctx: ActionContext, ips: Any = None, domains: Any = None, alerts: Any = None,
                 file: str | None = None) -> dict[str, Any]:
    """Check addresses and domains against the live indicators of the store (:mod:`soc.intel`:
    every feed, and the hand list ``threat_intel.yml`` -- or ``file`` -- loaded into it first
    as the feed ``hand-list`` when it changed). A domain also hits an indicator of a parent
    domain; an address one of a network.

    Output: ``hits`` (value, type, matched, source, note, confidence, tlp, indicator_id),
    ``malicious`` (any hit), ``checked``."""
    book = IndicatorBook(ctx.store)
    _sync_hand_list(ctx, _data_file(ctx, file, "threat_intel.yml"), book)
    now = book.clock()
    ip_values = list(dict.fromkeys(as_list(ips) + alert_values(alerts, "source.ip", "destination.ip")))
    domain_values = [str(d).lower().rstrip(".") for d in as_list(domains) + alert_values(alerts, "url.domain")]
    hits: list[dict[str, Any]] = []
    networks = [d.body for d in book.search_all(cidr=True) if is_live(d.body, now)]
    for value in ip_values:
        address = _ip(value)
        if address is None:
            continue
        doc = book.get(indicator_id(f"ipv{address.version}", str(address)))
        if doc is not None and is_live(doc.body, now):
            hits.append(_hit(str(value), "ip", doc.body))
            continue
        network = next((n for n in networks if _in(address, [n["value"]])), None)
        if network is not None:
            hits.append(_hit(str(value), "ip", network))
    for value in domain_values:
        labels = value.split(".")
        for i in range(len(labels) - 1):
            doc = book.get(indicator_id("domain", ".".join(labels[i:])))
            if doc is not None and is_live(doc.body, now):
                hits.append(_hit(value, "domain", doc.body))
                break
    return {"hits": hits, "malicious": bool(hits), "checked": len(ip_values) + len(domain_values)}
