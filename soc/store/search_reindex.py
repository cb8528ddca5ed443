"""``soc store reindex``: move existing indices to the current mappings, nothing lost.

A mapping cannot change a field's type in place, so event indices created before the ECS types
(:mod:`soc.store.search_mappings`: no ``message.lc`` field) keep their old mapping, and the
compiled rules, which now query the ``lc`` multi-fields, would not match their events. Each such
day index is copied twice with ``_reindex``:

1. into ``<prefix>-migrating-events-<day>`` (outside the event pattern, so searches never see an
   event twice), created with the current event template's settings and mappings; events that
   lack ``ecs.version`` get it on the way;
2. the old index is deleted and the copy is reindexed back under the day's own name, which the
   current template maps; then the temporary index is deleted.

Each hop is counted: the copy must hold exactly as many events as its source (a write that
arrived meanwhile makes the first count differ: the migration of that day stops, with the old
index untouched, and can simply be run again; stop the service first for a quiet run). Event
ids, ``@timestamp``, ``event.ingested`` and every field are copied as they are, so alert ids
(computed from event ids) and rule windows do not change.

Then the Kibana copy of the alerts (:mod:`soc.store.search_alerts_index`) is rebuilt from the
``alerts`` collection and counted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from soc.store import search_mappings as maps
from soc.store.base import StoreError
from soc.store.ecs_schema import ecs_schema
from soc.store.search_alerts_index import ALERTS_COLLECTION, alerts_index
from soc.store.search_base import SearchStore
from soc.store.search_client import HTTPError
from soc.store.search_docs import decode_version

__all__ = ["Moved", "ReindexFailed", "needs_reindex", "reindex"]

log = logging.getLogger(__name__)

_ADD_VERSION = ("if (!ctx._source.containsKey('ecs.version') && !(ctx._source.ecs instanceof Map)) "
                "{ ctx._source['ecs.version'] = params.v }")


class ReindexFailed(StoreError):
    """A copy did not hold as many documents as its source: the source was left as it was."""


@dataclass(frozen=True)
class Moved:
    index: str
    documents: int
    action: str  # "reindexed", "current", "copied" (alerts for Kibana)


def needs_reindex(mapping: dict[str, Any]) -> bool:
    """True for an event index mapped before the ECS types (no ``message.lc``)."""
    message = (mapping.get("properties") or {}).get("message") or {}
    return maps.LOWERCASE not in (message.get("fields") or {})


def _count(store: SearchStore, index: str) -> int:
    store._request("POST", f"/{index}/_refresh", what=f"refreshing {index}")
    resp = store._request("POST", f"/{index}/_search", body={"size": 0, "track_total_hits": True},
                          what=f"counting {index}")
    return int(resp["hits"]["total"]["value"])


def _copy(store: SearchStore, source: str, dest: str, script: bool) -> None:
    body: dict[str, Any] = {"source": {"index": source}, "dest": {"index": dest, "op_type": "create"},
                            "conflicts": "proceed"}
    if script:
        body["script"] = {"lang": "painless", "source": _ADD_VERSION, "params": {"v": ecs_schema().version}}
    resp = store._request("POST", "/_reindex", params={"refresh": True, "wait_for_completion": True}, body=body,
                          timeout=max(store.write_timeout, 3600), what=f"reindexing {source} into {dest}")
    if resp.get("failures"):
        raise ReindexFailed(f"reindexing {source} into {dest}: {resp['failures'][:3]}")


def _move_day(store: SearchStore, index: str, template: dict[str, Any]) -> int:
    temp = index.replace(f"{store.prefix}-events-", f"{store.prefix}-migrating-events-", 1)
    before = _count(store, index)
    try:
        store._call("DELETE", f"/{temp}", what=f"removing {temp}")
    except HTTPError as error:
        if error.status != 404:
            raise StoreError(f"removing {temp}: {error.reason}") from error
    body = {"settings": template["template"]["settings"], "mappings": template["template"]["mappings"]}
    store._request("PUT", f"/{temp}", body=body, what=f"creating {temp}")
    _copy(store, index, temp, script=True)
    copied = _count(store, temp)
    if copied != before:
        store._call("DELETE", f"/{temp}", what=f"removing {temp}")
        raise ReindexFailed(f"{index}: {before} events, but {copied} in the copy (written meanwhile?); "
                            f"{index} is unchanged: run the migration again")
    store._request("DELETE", f"/{index}", what=f"deleting the old {index}")
    _copy(store, temp, index, script=False)
    back = _count(store, index)
    if back < copied:  # more is fine: events written meanwhile went to the new index
        raise ReindexFailed(f"{index}: {back} events after the move, {copied} in {temp} (kept: reindex it "
                            f"into {index} by hand)")
    store._request("DELETE", f"/{temp}", what=f"removing {temp}")
    return back


def reindex(store: SearchStore, *, dry_run: bool = False) -> list[Moved]:
    """Move every event index of the store's prefix that predates the current mappings, then
    rebuild the Kibana copy of the alerts. ``dry_run`` only says what would move."""
    try:
        mappings = store._call("GET", f"/{store.prefix}-events-*/_mapping",
                               params={"allow_no_indices": True, "ignore_unavailable": True},
                               what="reading event index mappings")
    except HTTPError as error:
        raise StoreError(f"reading event index mappings: {error.reason}") from error
    template = maps.events_template(store.prefix, catalog=store.catalog, shards=store.shards, replicas=store.replicas)
    out: list[Moved] = []
    for index in sorted(mappings):
        mapping = mappings[index].get("mappings") or {}
        if not needs_reindex(mapping):
            out.append(Moved(index, -1, "current"))
            continue
        if dry_run:
            out.append(Moved(index, _count(store, index), "would reindex"))
            continue
        out.append(Moved(index, _move_day(store, index, template), "reindexed"))
        log.info("%s moved to the current mappings", index)
    out.append(_copy_alerts(store, dry_run))
    return out


def _copy_alerts(store: SearchStore, dry_run: bool) -> Moved:
    index = alerts_index(store.prefix)
    docs = list(store.iter_all(ALERTS_COLLECTION))
    if dry_run:
        return Moved(index, len(docs), "would copy")
    for doc in docs:
        seq_no, term = decode_version(doc.version)
        store._copy_alert(doc.id, doc.body, {"_seq_no": seq_no, "_primary_term": term})
    if not docs:
        return Moved(index, 0, "copied")
    copies = _count(store, index)
    if copies < len(docs):
        raise ReindexFailed(f"{index}: {copies} alert copies for {len(docs)} alerts (see the warnings above)")
    return Moved(index, copies, "copied")
