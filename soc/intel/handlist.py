"""The playbooks' hand-edited list (``threat_intel.yml`` in the playbook data folder) as a feed.

Analysts keep editing the file as before (``ips:``, ``cidrs:``, ``domains:`` -- and now also
``urls:``, ``hashes:``, ``emails:`` -- each entry a value or a mapping with ``value``,
``source``, ``note``); it is loaded into the indicator store as the feed ``hand-list``
(confidence 80, TLP amber), so the live matching and the playbooks' enrichment
(``enrich.threat_intel``) both read the store. An entry removed from the file is revoked for
that feed at the next load.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from soc.intel.book import IndicatorBook, Item
from soc.intel.indicators import IndicatorError, guess_type, indicator_id, normalize

__all__ = ["HAND_LIST", "hand_list_items", "load_hand_list"]

HAND_LIST = "hand-list"
_SECTIONS = {"ips": "ip", "cidrs": "ip", "domains": "domain", "urls": "url", "hashes": None, "emails": "email"}


def hand_list_items(data: dict[str, Any]) -> list[Item]:
    """The items of the list's sections (invalid values are items without a value: counted
    as invalid by the book)."""
    items = []
    for section, kind in _SECTIONS.items():
        for entry in data.get(section) or []:
            entry = entry if isinstance(entry, dict) else {"value": entry}
            value = str(entry.get("value") or "")
            note = " / ".join(str(entry[k]) for k in ("source", "note") if entry.get(k))
            try:
                observable = normalize(kind, value) if kind else guess_type(value)
            except IndicatorError:
                items.append(Item(None, name=value[:200]))
                continue
            items.append(Item(observable, name=note[:200] or None,
                              labels=[f"source:{entry['source']}"] if entry.get("source") else []))
    return items


def load_hand_list(book: IndicatorBook, path: Path) -> dict[str, int]:
    """Load the file into the store as the feed ``hand-list``; entries no longer in the file
    are revoked for that feed. Returns the book's counts (plus ``removed``)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    items = hand_list_items(data if isinstance(data, dict) else {})
    counts = book.take(HAND_LIST, items, confidence=80, tlp="amber")
    keep = {indicator_id(i.observable.type, i.observable.value) for i in items if i.observable}
    removed = 0
    for doc in list(book.search_all(feed=HAND_LIST)):
        if doc.id in keep:
            continue
        entry = next((f for f in doc.body.get("feeds") or [] if f["feed"] == HAND_LIST), None)
        if entry and not entry.get("revoked"):
            observable_type, value = doc.body["type"], doc.body["value"]
            book.take(HAND_LIST, [Item(normalize(observable_type, value), revoked=True)])
            removed += 1
    return dict(counts, removed=removed)
