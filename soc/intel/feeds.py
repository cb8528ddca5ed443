"""Feed formats: what a feed's text says, as :class:`~soc.intel.book.Item` values.

* **plain lists** -- one value per line (``#`` comments and blank lines skipped), the type
  guessed from the value (:func:`soc.intel.indicators.guess_type`): what agencies send by e-mail;
* **CSV** -- a header row, the value in one column (``value`` by default), optionally a type
  column; other columns ignored;
* **MISP feeds** -- the format ``misp-feed`` servers publish: ``manifest.json`` (event uuid ->
  info, tags, ``timestamp``) and one ``<uuid>.json`` per event (``{"Event": {"Attribute": [...],
  "Object": [{"Attribute": [...]}], "Tag": [...]}}``); attributes flagged ``to_ids`` of the
  types below are taken, ``deleted`` ones revoke; the event's ``tlp:`` tag is the TLP; events
  are read when their manifest ``timestamp`` is newer than the feed's cursor;
* **STIX 2.1** -- ``indicator`` objects (a bundle file, or the objects a TAXII collection
  returns): pattern, ``valid_from``/``valid_until``, ``revoked``, ``confidence``, TLP from
  ``object_marking_refs`` (TLP 2.0 and 1.0 marking definitions), labels and name.

Text from feeds is data: nothing here evaluates it, and every value goes through the
indicator normalizer before it is stored.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from soc.intel.book import Item
from soc.intel.indicators import IndicatorError, guess_type, normalize
from soc.model import iso

__all__ = ["MISP_TYPES", "TLP_MARKINGS", "misp_items", "read_csv", "read_list", "stix_items"]

#: STIX marking-definition ids of TLP 2.0 (and TLP 1.0, mapped onto 2.0)
TLP_MARKINGS = {
    "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487": "clear",
    "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb": "green",
    "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421": "amber",
    "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003": "amber+strict",
    "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1": "red",
    "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9": "clear",
    "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da": "green",
    "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82": "amber",
    "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed": "red",
}
#: MISP attribute type -> indicator type (composite types: the part that is one)
MISP_TYPES = {
    "ip-src": "ip", "ip-dst": "ip", "ip-src|port": "ip", "ip-dst|port": "ip", "domain": "domain",
    "hostname": "domain", "domain|ip": "domain", "hostname|port": "domain", "url": "url", "uri": "url",
    "link": "url", "md5": "md5", "sha1": "sha1", "sha256": "sha256", "filename|md5": "md5",
    "filename|sha1": "sha1", "filename|sha256": "sha256", "email-src": "email", "email": "email",
}


def read_list(text: str) -> Iterator[Item]:
    """A plain list: one value per line."""
    for line in text.splitlines():
        value = line.split("#", 1)[0].strip()
        if not value:
            continue
        try:
            yield Item(guess_type(value))
        except IndicatorError:
            yield Item(None, pattern=None, name=value[:200])  # counted as invalid


def read_csv(text: str, *, column: str = "value", type_column: str | None = None) -> Iterator[Item]:
    """CSV with a header row; the value in ``column``, the type in ``type_column`` (else guessed)."""
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or column not in reader.fieldnames:
        raise IndicatorError(f"CSV: no column {column!r} (columns: {', '.join(reader.fieldnames or [])})")
    for row in reader:
        value = (row.get(column) or "").strip()
        if not value or value.startswith("#"):
            continue
        kind = (row.get(type_column) or "").strip() if type_column else ""
        try:
            yield Item(normalize(kind, value) if kind else guess_type(value))
        except IndicatorError:
            yield Item(None, name=value[:200])


def _tlp_from_tags(tags: Iterable[Any]) -> str | None:
    for tag in tags or ():
        name = str(tag.get("name") if isinstance(tag, dict) else tag).strip().lower()
        if name.startswith("tlp:"):
            level = name[4:].strip('" ')
            return {"white": "clear"}.get(level, level)
    return None


def _epoch_iso(value: Any) -> str | None:
    try:
        return iso(datetime.fromtimestamp(int(value), UTC))
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def misp_items(read: Callable[[str], str], cursor: int | None) -> tuple[list[Item], int | None, int]:
    """The items of a MISP feed's events newer than ``cursor`` (a manifest timestamp). ``read``
    gives a file of the feed by name (``manifest.json``, ``<uuid>.json``). Returns the items,
    the new cursor and how many events were read."""
    manifest = json.loads(read("manifest.json"))
    if not isinstance(manifest, dict):
        raise IndicatorError("MISP feed: manifest.json is not an object of events")
    newest = cursor
    items: list[Item] = []
    events = 0
    for uuid, info in sorted(manifest.items(), key=lambda kv: int((kv[1] or {}).get("timestamp") or 0)):
        stamp = int((info or {}).get("timestamp") or 0)
        if cursor is not None and stamp <= cursor:
            continue
        if not _safe_name(uuid):
            raise IndicatorError(f"MISP feed: {uuid[:80]!r} is not an event uuid")
        event = json.loads(read(f"{uuid}.json")).get("Event") or {}
        events += 1
        tlp = _tlp_from_tags(event.get("Tag") or (info or {}).get("Tag") or [])
        attributes = list(event.get("Attribute") or [])
        for obj in event.get("Object") or []:
            attributes.extend(obj.get("Attribute") or [])
        for attribute in attributes:
            item = _misp_attribute(attribute, tlp, str(event.get("info") or "")[:200])
            if item is not None:
                items.append(item)
        newest = max(newest or 0, stamp)
    return items, newest, events


def _safe_name(uuid: str) -> bool:
    return bool(uuid) and len(uuid) <= 64 and all(c.isalnum() or c == "-" for c in uuid)


def _misp_attribute(attribute: dict[str, Any], tlp: str | None, info: str) -> Item | None:
    kind = MISP_TYPES.get(str(attribute.get("type")))
    if kind is None or not attribute.get("to_ids", False):
        return None
    raw = str(attribute.get("value") or "")
    mtype = str(attribute.get("type"))
    if "|" in mtype:
        left, _, right = raw.partition("|")
        raw = right if mtype.startswith("filename|") or mtype == "domain|ip" and kind != "domain" else left
    try:
        observable = normalize(kind, raw)
    except IndicatorError:
        return Item(None, name=raw[:200])
    return Item(observable, ref=attribute.get("uuid"), tlp=_tlp_from_tags(attribute.get("Tag") or []) or tlp,
                revoked=bool(attribute.get("deleted")), name=info or None,
                valid_from=_epoch_iso(attribute.get("first_seen")) if str(attribute.get("first_seen") or "").isdigit()
                else None)


def stix_items(objects: Iterable[dict[str, Any]]) -> Iterator[Item]:
    """The indicator objects among STIX 2.1 objects (other types are skipped)."""
    objects = list(objects)
    markings = dict(TLP_MARKINGS)
    for obj in objects:  # marking definitions shipped with the objects (TLP 2.0 by name)
        if obj.get("type") == "marking-definition" and str(obj.get("name", "")).upper().startswith("TLP:"):
            markings.setdefault(obj["id"], str(obj["name"])[4:].lower().replace("white", "clear"))
    for obj in objects:
        if obj.get("type") != "indicator" or not isinstance(obj.get("pattern"), str):
            continue
        if obj.get("pattern_type", "stix") != "stix":
            yield Item(None, pattern=None, name=f"{obj.get('pattern_type')} pattern")
            continue
        tlp = next((markings[m] for m in obj.get("object_marking_refs") or [] if m in markings), None)
        confidence = obj.get("confidence")
        yield Item(pattern=obj["pattern"], ref=obj.get("id"),
                   confidence=int(confidence) if isinstance(confidence, int) and 0 <= confidence <= 100 else None,
                   tlp=tlp, valid_from=obj.get("valid_from"), valid_until=obj.get("valid_until"),
                   revoked=bool(obj.get("revoked")), name=(str(obj["name"])[:200] if obj.get("name") else None),
                   labels=[str(x)[:64] for x in (obj.get("labels") or obj.get("indicator_types") or [])][:20])
