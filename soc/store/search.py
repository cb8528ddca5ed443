"""The search-engine store: OpenSearch 2.x and Elasticsearch 8/9, one implementation.

All query building is shared by :class:`SearchStore`; :class:`OpenSearchStore` and
:class:`ElasticsearchStore` differ only in the client library (:mod:`.search_client`), the
retention policy (ISM or ILM) and the point-in-time API paths.

**Index layout** (prefix ``soc`` by default):

* ``soc-events-YYYY.MM.DD`` -- events, one index per UTC day of the event's own
  ``@timestamp``, created on first write from the ``soc-events`` index template (and reachable
  through the ``soc-events`` alias). Not a data stream: a data stream writes to its current
  backing index, chosen by *write* time, so a replayed event after a rollover would land in
  a new backing index and be stored twice. Deriving the index from the event itself makes
  ``op_type=create`` by ``_id`` idempotent across replays: the same event always goes to
  the same index and comes back ``409 -> existing``. (The same id with a *different*
  ``@timestamp`` would be a second document; ids are deterministic from the event's origin,
  and its time is part of its content.) Time-based indices also make retention cheap:
  whole days are dropped as indices, and event-time windows query only their days.
* ``soc-docs-<collection>`` -- one index per document collection (alerts, rule state...),
  from the ``soc-docs`` template: strings exact keywords, numbers doubles.

**Retention**: an ISM policy (OpenSearch; needs the index-management plugin, which the
devstack node does not have -- then :attr:`SearchStore.retention` says so and
:meth:`purge_events` on a schedule is the retention) or an ILM policy (Elasticsearch) deletes
event indices older than ``retention_days``. :meth:`purge_events` deletes whole day indices
before the cut-off and the older part of the cut-off day with ``_delete_by_query``.

**Case-insensitivity and mappings**: see :mod:`soc.store.search_mappings` (ECS types from
:mod:`soc.store.ecs_schema`, each catalogue string with an ``lc`` keyword multi-field with a
lowercase normalizer that rules and searches compare on; ``ecs.version`` on every event;
``ignore_malformed``). Alerts are also copied for Kibana (:mod:`soc.store.search_alerts_index`);
``soc store reindex`` (:mod:`soc.store.search_reindex`) moves indices of an older mapping; logs
another shipper put in the cluster are read in place (:mod:`soc.store.search_sources`).

**Writes**: one ``_bulk`` request per :meth:`write_events` call, bodies pre-serialised with
orjson, ``op_type=create``, ``refresh=false``. The store stamps ``event.ingested`` (one value
per batch, UTC ISO, whole milliseconds rounded down) and ``soc.id`` (the event id: the sort
tie-breaker, since sorting on ``_id`` is discouraged and off by default on Elasticsearch 8+).
Per document: 201 created, 409 existing, 429/5xx retryable, other 4xx rejected with the
reason. A whole request that times out, or is refused with 429/5xx, makes every id retryable
(create-only, so retrying is safe); 413 (too large) splits the batch in halves. Only a store
that cannot be reached at all -- or refuses the request itself (credentials) -- raises
:class:`StoreError`, which says what to check. Indices are created by the first write; on a
cluster with automatic index creation off, the store creates them and retries once.

**Reads**: rule queries are DSL clauses in a bool *filter* with the dataset terms and the
window range, sorted by ``@timestamp`` then ``soc.id`` (the same order as SQLite's
``ts, id``). A request for more than 10,000 hits pages with ``search_after`` inside one point
in time (a consistent snapshot). Event-time windows of up to 31 days name their day indices;
ingest-time windows search all event indices (late events live in their old day's index; the
engines skip shards whose ``event.ingested`` range cannot match). Counts are ``_search`` with
``size: 0`` rather than ``_count``, because only ``_search`` takes a ``timeout``. Every search
carries the server-side ``timeout`` and a client request timeout (``query_timeout``, default
60 s); a timed-out or partially failed search raises rather than return a silently truncated
answer.

**Bootstrap** (:meth:`SearchStore.from_url`): ``GET /`` (reachability, credentials, flavour:
an ``elasticsearch://`` URL on OpenSearch, or the reverse, says which scheme to use), then one
``GET _index_template/<prefix>-*``; templates carry a fingerprint of their bodies, so when
they are current nothing else happens. Otherwise the retention policy and both templates are
(re)installed and fields new in fields.yml are added to existing event indices.

**Documents and compare-and-set**: :mod:`soc.store.search_docs` (``Doc.version`` encodes
``(_primary_term, _seq_no)``; ``put(expected_version=v)`` is ``if_seq_no``/``if_primary_term``).
Query building: :mod:`soc.store.search_query`; rule queries and event counts:
:mod:`soc.store.search_matches`; event search (pages, histograms, top values):
:mod:`soc.store.search_events`; document queries (pages, group-by counts):
:mod:`soc.store.search_doc_query`.
"""

from __future__ import annotations

import logging
from typing import Any

from soc.store import search_mappings as maps
from soc.store.base import StoreError
from soc.store.search_base import SearchStore
from soc.store.search_client import ElasticsearchTransport, HTTPError, OpenSearchTransport

__all__ = ["ElasticsearchStore", "OpenSearchStore", "SearchStore"]

log = logging.getLogger(__name__)


class OpenSearchStore(SearchStore):
    """OpenSearch 2.x through opensearch-py (``opensearch://`` URLs)."""

    flavour = "opensearch"
    product = "OpenSearch"
    transport_class = OpenSearchTransport

    def _check_server(self, info: dict[str, Any]) -> None:
        version = info.get("version") or {}
        where = self.transport.endpoint.display
        if version.get("distribution") != "opensearch":
            raise StoreError(f"{where} is Elasticsearch {version.get('number', '?')}, not OpenSearch: "
                             f"use an elasticsearch:// store URL")
        if int(str(version.get("number", "0")).split(".")[0]) < 2:
            raise StoreError(f"{where} runs OpenSearch {version.get('number')}: this store needs 2.x or later")

    def _install_retention(self) -> dict[str, Any]:
        name = f"{self.prefix}-events-retention"
        wanted = maps.ism_policy(self.prefix, int(self.retention_days or 0))
        path = f"/_plugins/_ism/policies/{name}"
        params: dict[str, Any] | None = None
        try:
            current = self._call("GET", path, what="reading the ISM policy")
            params = {"if_seq_no": current["_seq_no"], "if_primary_term": current["_primary_term"]}
        except HTTPError as error:
            if error.status == 400 and "no handler found" in str(error.body):
                self.retention = ("none: the OpenSearch index-management (ISM) plugin is not installed; "
                                  "run purge_events on a schedule to remove old events")
                log.warning("%s", self.retention)
                return {}
            if error.status != 404:
                raise StoreError(f"reading ISM policy {name} failed: {error.reason}") from error
        self._request("PUT", path, params=params, body=wanted, what=f"installing ISM policy {name}")
        try:  # ism_template only reaches indices created from now on: add the existing ones
            self._call("POST", f"/_plugins/_ism/add/{self._events_pattern}", body={"policy_id": name},
                       what="attaching the ISM policy")
        except (HTTPError, StoreError) as error:
            log.warning("existing event indices were not put under ISM policy %s: %s", name, error)
        self.retention = f"ISM policy {name}: delete event indices {self.retention_days} days after creation"
        return {}

    def _open_pit(self) -> str | None:
        try:
            resp = self._call("POST", f"/{self._events_pattern}/_search/point_in_time",
                              params={"keep_alive": self._keep_alive}, what="opening a point in time")
        except HTTPError as error:
            # 2.19 answers a pattern that matches no index with 400 "invalid id: [null]"
            if error.status == 404 or "invalid id: [null]" in error.reason:
                return None
            raise StoreError(f"opening a point in time failed: {error.reason}") from error
        return str(resp["pit_id"])

    def _close_pit(self, pit: str) -> None:
        try:
            self._call("DELETE", "/_search/point_in_time", body={"pit_id": [pit]}, what="closing a point in time")
        except (HTTPError, StoreError) as error:  # it expires by itself after keep_alive
            log.debug("closing point in time failed: %s", error)


class ElasticsearchStore(SearchStore):
    """Elasticsearch 8/9 through the official client (``elasticsearch://`` URLs). Client and
    server majors must match (the client sends ``compatible-with=<its major>``)."""

    flavour = "elasticsearch"
    product = "Elasticsearch"
    transport_class = ElasticsearchTransport

    def _check_server(self, info: dict[str, Any]) -> None:
        version = info.get("version") or {}
        if version.get("distribution") == "opensearch":
            raise StoreError(f"{self.transport.endpoint.display} is OpenSearch: use an opensearch:// store URL")
        if int(str(version.get("number", "0")).split(".")[0]) < 8:
            raise StoreError(f"{self.transport.endpoint.display} runs Elasticsearch {version.get('number')}: "
                             "this store needs 8.x or later")

    def _install_retention(self) -> dict[str, Any]:
        name = f"{self.prefix}-events-retention"
        self._request("PUT", f"/_ilm/policy/{name}", body=maps.ilm_policy(self.prefix, int(self.retention_days or 0)),
                      what=f"installing ILM policy {name}")
        self.retention = (f"ILM policy {name}: delete event indices {self.retention_days} days after "
                          "their day (origination date parsed from the index name)")
        return maps.ilm_settings(name)

    def _open_pit(self) -> str | None:
        try:
            resp = self._call("POST", f"/{self._events_pattern}/_pit", params={"keep_alive": self._keep_alive},
                              what="opening a point in time")
        except HTTPError as error:
            if error.status == 404:
                return None
            raise StoreError(f"opening a point in time failed: {error.reason}") from error
        return str(resp["id"])

    def _close_pit(self, pit: str) -> None:
        try:
            self._call("DELETE", "/_pit", body={"id": pit}, what="closing a point in time")
        except (HTTPError, StoreError) as error:
            log.debug("closing point in time failed: %s", error)
