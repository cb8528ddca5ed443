"""The least privileges each soc process needs on a search store, as role definitions for the
OpenSearch security plugin and for Elasticsearch security (``soc store role --for PROCESS``).

A store URL should name a user with the role of the process that uses it, never a superuser:

=========  =====================================================================================
process    what it does on the store
=========  =====================================================================================
worker     ``soc kafka worker`` (and ``dlq replay``): creates the day indices of events and adds
           events to them (create-only writes); reads nothing
detect     ``soc detect`` and the analysts' commands: reads events (searches, counts, points in
           time), reads and writes the document collections (alerts, rule state, leases,
           incidents, audit...) and creates their indices
service    ``soc run``, the embedded service: all of the above, plus the retention purge
           (deletes old day indices, and older events of the cut-off day)
=========  =====================================================================================

Every process checks its index templates when it opens the store and installs them (with the
retention policy: ISM on OpenSearch, ILM on Elasticsearch) when they are missing or out of date,
so each role also holds those **cluster-wide** privileges: neither engine can limit template or
policy management to a name pattern. Every index privilege is limited to the prefix's indices,
whose patterns come from the store's own index templates (:func:`index_patterns`).

On Elasticsearch the worker and detect roles cannot add new fields to *existing* day indices
after an upgrade (``PUT <events>/_mapping`` needs the broad ``manage`` privilege): the store
logs a warning and the next day's index gets them from the template. Nothing here was checked
against a cluster with security enabled (the test cluster runs without it): the definitions
follow the engines' documented action groups and privileges.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from soc.store import search_mappings as maps
from soc.store.search_base import _PREFIX_RE

__all__ = ["PROCESSES", "Grant", "StoreRole", "index_patterns", "render_role", "store_role"]

#: process -> what it uses the store for (``--for`` of ``soc store role``)
PROCESSES: dict[str, str] = {
    "worker": "soc kafka worker: creates event day indices and adds events (create-only)",
    "detect": "soc detect and analyst commands: reads events; reads and writes document collections",
    "service": "soc run: the embedded service (ingest, detection, playbooks, reports, retention purge)",
}


@dataclass(frozen=True)
class Grant:
    """Privileges on some indices, in the words of each engine."""

    patterns: tuple[str, ...]
    opensearch: tuple[str, ...]
    elasticsearch: tuple[str, ...]
    why: str


@dataclass(frozen=True)
class StoreRole:
    """The role of one process for one index prefix."""

    process: str
    prefix: str
    cluster_opensearch: tuple[str, ...]
    cluster_elasticsearch: tuple[str, ...]
    grants: tuple[Grant, ...]

    @property
    def name(self) -> str:
        return f"{self.prefix}_{self.process}"

    @property
    def description(self) -> str:
        return f"soc {self.process} on indices {', '.join(self.patterns())}: {PROCESSES[self.process]}"

    def patterns(self) -> list[str]:
        """Every index pattern the role grants something on."""
        return list(dict.fromkeys(p for g in self.grants for p in g.patterns))

    def opensearch(self) -> dict[str, object]:
        """The body of ``PUT _plugins/_security/api/roles/NAME``."""
        return {"description": self.description, "cluster_permissions": list(self.cluster_opensearch),
                "index_permissions": [{"index_patterns": list(g.patterns), "allowed_actions": list(g.opensearch)}
                                      for g in self.grants if g.opensearch]}

    def elasticsearch(self) -> dict[str, object]:
        """The body of ``PUT _security/role/NAME``."""
        return {"cluster": list(self.cluster_elasticsearch),
                "indices": [{"names": list(g.patterns), "privileges": list(g.elasticsearch)}
                            for g in self.grants if g.elasticsearch],
                "metadata": {"managed_by": "soc", "process": self.process, "description": self.description}}


def index_patterns(prefix: str) -> dict[str, str]:
    """``{"events": ..., "docs": ...}``: the index patterns of the store's own index templates
    (:mod:`soc.store.search_mappings`), which every event and document index matches."""
    events = maps.events_template(prefix)["index_patterns"]
    docs = maps.docs_template(prefix)["index_patterns"]
    assert len(events) == len(docs) == 1, "one pattern per template"
    return {"events": events[0], "docs": docs[0]}


# what every process does when it opens the store: GET /, read (and install) the templates and
# the retention policy, add new fields to existing event indices
_SETUP_OPENSEARCH = ("cluster_monitor", "cluster_manage_index_templates",
                     "cluster:admin/opendistro/ism/policy/get", "cluster:admin/opendistro/ism/policy/write",
                     "cluster:admin/opendistro/ism/managedindex/add")
_SETUP_ELASTICSEARCH = ("monitor", "manage_index_templates", "manage_ilm")
_SETUP_EVENTS = ("indices:admin/mapping/put", "indices:admin/opensearch/ism/managedindex")
_READ_EVENTS = ("read", "indices:data/read/point_in_time/create", "indices:data/read/point_in_time/delete",
                "indices:admin/refresh*")
_ADD_EVENTS = ("create_index", "indices:data/write/index", "indices:data/write/bulk*")
_PURGE_EVENTS = ("indices_monitor", "delete", "indices:admin/delete")
_DOCS = ("crud", "create_index", "indices:admin/refresh*")


def store_role(process: str, prefix: str = "soc") -> StoreRole:
    """The role ``process`` (a key of :data:`PROCESSES`) needs for the indices of ``prefix``."""
    if process not in PROCESSES:
        raise ValueError(f"unknown process {process!r}: use one of {', '.join(PROCESSES)}")
    if not _PREFIX_RE.match(prefix):
        raise ValueError(f"index prefix {prefix!r}: use lowercase letters, digits, '-' and '_'")
    pattern = index_patterns(prefix)
    events, docs = (pattern["events"],), (pattern["docs"],)
    writes, reads, purges = process in ("worker", "service"), process in ("detect", "service"), process == "service"
    os_events = [*_SETUP_EVENTS, *(_ADD_EVENTS if writes else ()), *(_READ_EVENTS if reads else ()),
                 *(_PURGE_EVENTS if purges else ())]
    es_events = [*(("create_index", "create_doc") if writes else ()), *(("read", "maintenance") if reads else ()),
                 *(("monitor", "delete", "delete_index") if purges else ())]
    grants = [Grant(events, tuple(dict.fromkeys(os_events)), tuple(dict.fromkeys(es_events)),
                    "event day indices: " + ", ".join(w for w, on in (("add", writes), ("read", reads),
                                                                      ("purge", purges)) if on))]
    if reads:
        grants.append(Grant(docs, _DOCS, ("read", "write", "create_index", "maintenance"),
                            "document collections: read, write, create"))
    # documents are written in bulk too (indicators, TAXII objects: ``put_documents``)
    cluster_os = [*_SETUP_OPENSEARCH, *(("indices:data/write/bulk",) if writes or reads else ()),
                  *(("cluster_composite_ops_ro",) if reads else ())]
    return StoreRole(process, prefix, tuple(cluster_os), _SETUP_ELASTICSEARCH, tuple(grants))


def render_role(role: StoreRole, engine: str) -> str:
    """The request that creates ``role`` on ``engine`` (``opensearch`` or ``elasticsearch``),
    as it is typed into Dev Tools or sent with curl: the method and path, then the JSON body."""
    if engine == "opensearch":
        return f"PUT _plugins/_security/api/roles/{role.name}\n" + json.dumps(role.opensearch(), indent=2)
    if engine == "elasticsearch":
        return f"PUT _security/role/{role.name}\n" + json.dumps(role.elasticsearch(), indent=2)
    raise ValueError(f"unknown engine {engine!r}: use opensearch or elasticsearch")
