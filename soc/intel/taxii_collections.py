"""What the province publishes into its TAXII collections: STIX bundles of incidents, as the
reports produce them, and indicators an analyst chooses to share.

The collections themselves are settings (``taxii.collections``, :mod:`soc.config_taxii`); the
objects are kept by :class:`~soc.intel.taxii_objects.TaxiiObjects`. Publishing checks two
promises a collection makes to its recipient: **what it carries** (``content``: incidents,
indicators) and **up to which TLP** -- content marked more restricted than the collection's TLP
is refused, never silently re-marked (a report marked TLP:AMBER+STRICT because it is
confidential does not go into a TLP:GREEN collection). Every publication is one audit record
under the acting principal.

:func:`share_indicators` takes STIX ``indicator`` objects (dicts or ``stix2`` objects) so that
the intel engine's ``soc intel share`` can call it with whatever it selected from an incident.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from soc.access import Principal
from soc.audit import AuditTrail
from soc.clock import Clock, system_clock
from soc.config import Settings
from soc.config_taxii import TaxiiCollectionSettings, tlp_rank
from soc.errors import SocError
from soc.export import snapshot as snapshots
from soc.export.documents import IncidentReport
from soc.export.render import build_document
from soc.export.render_stix import TLP2, build_bundle, tlp_marking
from soc.intel.taxii_objects import AddResult, TaxiiObjects
from soc.store.base import Store

__all__ = ["TaxiiPublishError", "collection_of", "incident_bundle", "publish_incident", "publish_objects",
           "share_indicators", "tlp_of"]

#: TLP 2.0 marking-definition id -> level
_LEVEL_OF = {marking: level for level, marking in TLP2.items()}


class TaxiiPublishError(SocError):
    """Something cannot be published into a collection; the message says why."""


def collection_of(settings: Settings, key: str) -> TaxiiCollectionSettings:
    """The configured collection with this id or alias, or :class:`TaxiiPublishError`."""
    found = settings.taxii.collection(key)
    if found is None:
        known = ", ".join(f"{c.id} ({c.alias or c.title})" for c in settings.taxii.collections) or "none configured"
        raise TaxiiPublishError(f"no TAXII collection {key!r} (taxii.collections: {known})")
    return found


def _plain(objects: Iterable[Any]) -> list[dict[str, Any]]:
    out = []
    for obj in objects:
        if isinstance(obj, Mapping):
            out.append(dict(obj))
        elif hasattr(obj, "serialize"):  # a stix2 object
            out.append(json.loads(obj.serialize()))
        else:
            raise TaxiiPublishError(f"not a STIX object: {type(obj).__name__}")
    return out


def tlp_of(objects: Sequence[Mapping[str, Any]]) -> str | None:
    """The most restricted TLP 2.0 level the objects are marked with (``None``: unmarked)."""
    levels = {_LEVEL_OF[ref] for obj in objects for ref in obj.get("object_marking_refs") or ()
              if ref in _LEVEL_OF}
    return max(levels, key=tlp_rank) if levels else None


def publish_objects(store: Store, collection: TaxiiCollectionSettings, objects: Iterable[Any], *, kind: str,
                    actor: Principal, audit: AuditTrail | None = None, clock: Clock = system_clock,
                    about: str | None = None) -> AddResult:
    """Add STIX objects to ``collection`` after checking what it carries (``kind``) and its TLP;
    audited as ``taxii.publish`` under ``actor``."""
    if not collection.carries(kind):
        raise TaxiiPublishError(f"collection {collection.title!r} does not carry {kind} "
                                f"(its content: {', '.join(collection.content)})")
    plain = _plain(objects)
    level = tlp_of(plain)
    if level is not None and tlp_rank(level) > tlp_rank(collection.tlp):
        raise TaxiiPublishError(f"the content is marked TLP:{level.upper()}, more restricted than collection "
                                f"{collection.title!r} (TLP:{collection.tlp.upper()}): publish it into a "
                                "collection of that TLP")
    result = TaxiiObjects(store, clock=clock).add(collection.id, plain)
    if audit is not None:
        audit.record(actor, "taxii.publish", ("taxii_collections", collection.id), {
            "kind": kind, "about": about, "objects": result.total, "added": len(result.successes),
            "refused": len(result.failures), "tlp": level, "date_added": result.date_added})
    if result.failures:
        first = result.failures[0]
        raise TaxiiPublishError(f"{len(result.failures)} object(s) refused, e.g. {first['id']}: {first['message']}")
    return result


def _latest_report(store: Store, incident_id: str) -> str:
    doc = store.get(snapshots.INCIDENTS, incident_id)
    if doc is None:
        raise TaxiiPublishError(f"no incident {incident_id!r}")
    reports = sorted((r for r in doc.body.get("reports") or () if r.get("report_no")),
                     key=lambda r: str(r.get("built_at") or ""))
    if not reports:
        raise TaxiiPublishError(f"incident {incident_id!r} has no report yet: build one first "
                                f"(soc report build --incident {incident_id}), then publish it")
    return str(reports[-1]["report_no"])


def incident_bundle(store: Store, incident_id: str, report_no: str | None = None) -> tuple[str, list[dict[str, Any]]]:
    """``(report number, objects)``: the STIX objects of an incident's report (the newest, or
    ``report_no``) exactly as the report's STIX file has them -- same ids, timestamps and TLP
    (the profile's, AMBER+STRICT when the report is confidential)."""
    report_no = report_no or _latest_report(store, incident_id)
    snap = snapshots.load(store, report_no)
    if snap.get("document") != "incident_report" or snap.get("incident", {}).get("id") != incident_id:
        raise TaxiiPublishError(f"report {report_no} is not a report of incident {incident_id!r}")
    document = build_document(snap)
    assert isinstance(document, IncidentReport)
    bundle = build_bundle(document, snap["profile"].get("tlp", "amber+strict"))
    return report_no, json.loads(bundle.serialize())["objects"]


def publish_incident(store: Store, settings: Settings, collection_key: str, incident_id: str, *,
                     actor: Principal, audit: AuditTrail | None = None, report_no: str | None = None,
                     clock: Clock = system_clock) -> tuple[str, AddResult]:
    """Publish an incident's STIX bundle (:func:`incident_bundle`) into a collection:
    ``(report number, result)``. Publishing the same report again adds nothing."""
    collection = collection_of(settings, collection_key)
    report_no, objects = incident_bundle(store, incident_id, report_no)
    result = publish_objects(store, collection, objects, kind="incidents", actor=actor, audit=audit, clock=clock,
                             about=f"incident {incident_id}, report {report_no}")
    return report_no, result


def share_indicators(store: Store, settings: Settings, collection_key: str, indicators: Iterable[Any], *,
                     actor: Principal, audit: AuditTrail | None = None, tlp: str | None = None,
                     about: str | None = None, clock: Clock = system_clock) -> AddResult:
    """Share STIX ``indicator`` objects in a collection. Unmarked indicators get the TLP 2.0
    marking ``tlp`` (default: the collection's) and the marking definition goes with them."""
    collection = collection_of(settings, collection_key)
    plain = _plain(indicators)
    if not plain:
        raise TaxiiPublishError("no indicators to share")
    for obj in plain:
        if obj.get("type") != "indicator":
            raise TaxiiPublishError(f"{obj.get('id') or obj.get('type')!r} is not an indicator")
    level = (tlp or collection.tlp).lower()
    tlp_rank(level)
    marking = json.loads(tlp_marking(level).serialize())
    for obj in plain:
        if not obj.get("object_marking_refs"):
            obj["object_marking_refs"] = [marking["id"]]
    return publish_objects(store, collection, [marking, *plain], kind="indicators", actor=actor, audit=audit,
                           clock=clock, about=about)
