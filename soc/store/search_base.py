"""The shared half of the search store: everything but the client library and the flavour's
retention and point-in-time APIs. The design (index layout, mappings, writes, reads, CAS) is
described in :mod:`soc.store.search`, which holds the two concrete stores.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import orjson

from soc.catalog import Catalog, default_catalog
from soc.model import Event, iso, now_utc
from soc.secrets import mask_url
from soc.store import search_mappings as maps
from soc.store.base import StoreError, WriteResult
from soc.store.ecs_schema import ecs_schema
from soc.store.search_alerts_index import alerts_template
from soc.store.search_client import (
    Endpoint,
    HTTPError,
    RequestTimeout,
    Transport,
    Unreachable,
    error_reason,
    parse_url,
)
from soc.store.search_doc_query import DocSearching
from soc.store.search_docs import DocumentCollections
from soc.store.search_events import EventSearching
from soc.store.search_matches import RuleMatching
from soc.store.search_query import (
    PAGE,
    agency_filters,
    canonical,
    flatten,
    ms,
    strip_store_fields,
)

log = logging.getLogger(__name__)

#: Per-document refusals that are the cluster's state, not the document's fault: retryable, or a
#: full disk would send every document to the dead letters. Disk flood stage
#: (read-only-allow-delete block), the shard limit, closed indices, rejected execution, breakers.
CLUSTER_PROBLEMS = ("cluster_block_exception", "maximum shards open", "index_closed_exception",
                    "es_rejected_execution_exception", "circuit_breaking_exception")


def _cluster_problem(reason: str) -> bool:
    return any(problem in reason for problem in CLUSTER_PROBLEMS)

_DROP_KEYS = ("_id", "_ts")
_DAY_RE = re.compile(r"-events-(\d{4})\.(\d{2})\.(\d{2})$")
_PREFIX_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


class QueryTimeout(StoreError):
    """A search did not finish within the query timeout: its answer would be incomplete."""


class PartialResult(StoreError):
    """A search failed on some shards: its answer would be incomplete."""


class SearchStore(RuleMatching, EventSearching, DocumentCollections, DocSearching):
    """A :class:`soc.store.base.Store` on a search engine. Use :meth:`from_url`."""

    dialect = "dsl"
    #: the options of :func:`soc.store.open_store` this store takes (``create`` does not apply:
    #: indices are created as events arrive)
    OPENING_OPTIONS = frozenset({"prefix", "replicas", "shards", "retention_days", "query_timeout",
                                 "write_timeout", "bootstrap"})
    flavour: ClassVar[str] = ""
    product: ClassVar[str] = ""
    transport_class: ClassVar[type[Transport]]

    def __init__(self, transport: Transport, *, prefix: str = "soc", retention_days: int | None = 180,
                 query_timeout: float = 60, write_timeout: float = 120, replicas: int | None = None,
                 shards: int = 1, catalog: Catalog | None = None):
        if not _PREFIX_RE.match(prefix):
            raise ValueError(f"index prefix {prefix!r}: use lowercase letters, digits, '-' and '_'")
        self.transport = transport
        self.prefix = prefix
        self.retention_days = retention_days
        self.query_timeout = float(query_timeout)
        self.write_timeout = float(write_timeout)
        self.replicas = replicas
        self.shards = shards
        self.catalog = catalog or default_catalog()
        #: how old events are removed: the installed policy, or why there is none
        self.retention = "not checked yet"
        self.server_version = ""
        self._events_pattern = f"{prefix}-events-*"
        self._dirty: set[str] = set()
        self._doc_indices: dict[str, str] = {}
        self._doc_types: dict[str, dict[str, str]] = {}

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "soc", retention_days: int | None = 180,
                 query_timeout: float = 60, write_timeout: float = 120, replicas: int | None = None,
                 shards: int = 1, bootstrap: bool = True) -> SearchStore:
        """Open the store a URL names and install its templates and retention policy (one
        round trip when they are already current). ``replicas=None`` keeps the cluster
        default; use 0 on a single node."""
        try:
            endpoint = parse_url(url)
        except ValueError as error:
            raise StoreError(str(error)) from error
        if endpoint.flavour != cls.flavour:
            raise StoreError(f"{mask_url(url)!r} is an {endpoint.flavour} URL; {cls.__name__} needs {cls.flavour}://")
        store = cls(cls.make_transport(endpoint, query_timeout), prefix=prefix,
                    retention_days=retention_days, query_timeout=query_timeout,
                    write_timeout=write_timeout, replicas=replicas, shards=shards)
        if bootstrap:
            try:
                store.bootstrap()
            except BaseException:
                store.close()
                raise
        return store

    @classmethod
    def make_transport(cls, endpoint: Endpoint, timeout: float) -> Transport:
        return cls.transport_class(endpoint, timeout=timeout + 5)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.transport.endpoint.display!r}, prefix={self.prefix!r})"

    # -- flavour hooks ---------------------------------------------------------------------------
    def _check_server(self, info: dict[str, Any]) -> None:
        raise NotImplementedError

    def _install_retention(self) -> dict[str, Any]:
        """Install the retention policy; return extra events-index settings it needs."""
        raise NotImplementedError

    def _open_pit(self) -> str | None:
        """A point in time over all event indices; ``None`` when there is none."""
        raise NotImplementedError

    def _close_pit(self, pit: str) -> None:
        raise NotImplementedError

    # -- plumbing --------------------------------------------------------------------------------
    def _unreachable(self, error: Exception) -> StoreError:
        return StoreError(
            f"{self.product} at {self.transport.endpoint.display} is unreachable ({error}). Check that "
            f"the cluster is running and reachable from this host, the host and port in the store "
            f"URL, and for https the certificate options (ca_certs=..., verify_certs=...). Nothing "
            f"this call sent is confirmed.")

    def _call(self, method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None,
              ndjson: bool = False, timeout: float | None = None, what: str = "request") -> Any:
        """One request; :class:`HTTPError` passes through, everything else is a StoreError."""
        try:
            return self.transport.request(method, path, params=params, body=body, ndjson=ndjson,
                                          timeout=timeout)
        except Unreachable as error:
            raise self._unreachable(error) from error
        except RequestTimeout as error:
            raise StoreError(f"{what}: {error}") from error

    def _request(self, method: str, path: str, *, what: str, **kwargs: Any) -> Any:
        """Like :meth:`_call`, with HTTP errors as StoreError too."""
        try:
            return self._call(method, path, what=what, **kwargs)
        except HTTPError as error:
            raise StoreError(f"{what} failed: {error.reason}") from error

    def _search(self, target: str | None, body: dict[str, Any], what: str = "search") -> dict[str, Any]:
        # whole milliseconds: the engines refuse fractional time values such as "0.5s"
        body.setdefault("timeout", f"{max(1, round(self.query_timeout * 1000))}ms")
        path = f"/{target}/_search" if target else "/_search"
        params = {"ignore_unavailable": True, "allow_no_indices": True} if target else None
        try:
            resp = self._request("POST", path, params=params, body=body, timeout=self.query_timeout + 5,
                                 what=what)
        except StoreError as error:
            if isinstance(error.__cause__, RequestTimeout):
                raise QueryTimeout(f"{what} timed out: no answer within {self.query_timeout + 5:g} s "
                                   "(narrow the query or raise the query timeout)") from error
            raise
        if resp.get("timed_out"):
            raise QueryTimeout(f"{what} timed out after {self.query_timeout:g} s; the answer would be "
                               "incomplete (narrow the query or raise the store's query_timeout)")
        shards = resp.get("_shards") or {}
        if shards.get("failed"):
            reasons = {error_reason(f.get("reason")) for f in shards.get("failures", [])}
            raise PartialResult(f"{what} failed on {shards['failed']} of {shards.get('total')} shards: "
                                + "; ".join(sorted(reasons)))
        return resp

    # -- bootstrap -------------------------------------------------------------------------------
    def bootstrap(self) -> None:
        """Check the server, then install templates and the retention policy if not current."""
        try:
            info = self.transport.request("GET", "/")
        except Unreachable as error:
            if "not Elasticsearch" in str(error):
                raise StoreError(f"{self.transport.endpoint.display}: {error}") from error
            raise self._unreachable(error) from error
        except RequestTimeout as error:
            raise self._unreachable(error) from error
        except HTTPError as error:
            if error.status in (401, 403):
                raise StoreError(f"{self.product} at {self.transport.endpoint.display} refused the "
                                 f"credentials ({error.reason}): check the user and password in the "
                                 f"store URL ({self.flavour}+https://user:password@host:port)") from error
            if error.error_type == "media_type_header_exception":
                raise StoreError(f"{self.product} at {self.transport.endpoint.display} rejected the "
                                 f"client's API version ({error.reason}): install the elasticsearch "
                                 f"Python client with the server's major version") from error
            raise StoreError(f"{self.product} at {self.transport.endpoint.display}: {error}") from error
        self._check_server(info)
        self.server_version = str((info.get("version") or {}).get("number", ""))
        base_events = maps.events_template(self.prefix, catalog=self.catalog, shards=self.shards,
                                           replicas=self.replicas)
        docs = maps.docs_template(self.prefix, shards=self.shards, replicas=self.replicas)
        kibana = alerts_template(self.prefix, shards=self.shards, replicas=self.replicas)
        digest = maps.fingerprint(self.flavour, base_events, docs, kibana, self.retention_days)
        current = self._installed_templates()
        metas = [current.get(f"{self.prefix}-{k}") or {} for k in ("events", "docs", "kibana-alerts")]
        if all(meta.get("fingerprint") == digest for meta in metas):
            self.retention = str(metas[0].get("retention") or "installed earlier")
            return
        extra = self._install_retention() if self.retention_days else {}
        if not self.retention_days:
            self.retention = "none (retention_days not set): run purge_events to remove old events"
        events = maps.events_template(self.prefix, catalog=self.catalog, shards=self.shards,
                                      replicas=self.replicas, extra_settings=extra)
        for name, body in ((f"{self.prefix}-events", events), (f"{self.prefix}-docs", docs),
                           (f"{self.prefix}-kibana-alerts", kibana)):
            body["_meta"].update(fingerprint=digest, retention=self.retention)
            self._request("PUT", f"/_index_template/{name}", body=body, what=f"installing index template {name}")
        self._update_existing_mappings(events)

    def _installed_templates(self) -> dict[str, dict[str, Any]]:
        """Name -> ``_meta`` of this prefix's installed index templates."""
        try:
            resp = self._call("GET", f"/_index_template/{self.prefix}-*", what="reading index templates")
        except HTTPError as error:
            if error.status == 404:
                return {}
            raise StoreError(f"reading index templates failed: {error.reason}") from error
        return {t["name"]: (t.get("index_template") or {}).get("_meta") or {}
                for t in resp.get("index_templates", [])}

    def _update_existing_mappings(self, events: dict[str, Any]) -> None:
        """Add fields new in fields.yml to today's (and older) event indices."""
        mappings = events["template"]["mappings"]
        body = {"properties": maps.unfolded(mappings["properties"]), "dynamic_templates": mappings["dynamic_templates"]}
        try:
            self._call("PUT", f"/{self._events_pattern}/_mapping", params={"allow_no_indices": True},
                       body=body, what="updating event index mappings")
        except (HTTPError, StoreError) as error:
            log.warning("existing event indices keep their mapping (%s); new day indices get the new "
                        "template; rules compare on the lc fields of the ECS mapping: run `soc store reindex` "
                        "to move the old indices", error)

    # -- events: writing -------------------------------------------------------------------------
    def _event_index(self, event: Event) -> tuple[str, str]:
        """(index name, canonical @timestamp text) of an event, from its own time only."""
        ts = event.get("@timestamp")
        if ts is None:
            raw = event.get("_ts")
            if raw is None:
                raise KeyError("@timestamp")
            ts = iso(datetime.fromtimestamp(float(raw), UTC))
        elif not isinstance(ts, str):
            raise ValueError(f"@timestamp must be ISO 8601 text, not {type(ts).__name__}")
        elif not canonical(ts):  # other ISO forms: normalised as SQLite's get_events returns them
            dt = datetime.fromisoformat(ts)
            ts = iso(dt if dt.tzinfo else dt.replace(tzinfo=UTC))
        return f"{self.prefix}-events-{ts[:4]}.{ts[5:7]}.{ts[8:10]}", ts

    def write_events(self, events: Sequence[Event]) -> WriteResult:
        result = WriteResult()
        ingested = iso(now_utc())
        ecs_version = ecs_schema().version
        ids: list[str] = []
        lines: list[bytes] = []
        dumps = orjson.dumps
        for event in events:
            try:
                id_ = event["_id"]
                if not isinstance(id_, str) or not id_:
                    raise ValueError("_id must be a non-empty string")
                index, ts = self._event_index(event)
                doc = {k: v for k, v in event.items() if k not in _DROP_KEYS}
                doc["@timestamp"] = ts
                if not doc.get("event.dataset"):
                    doc["event.dataset"] = "generic.text"
                doc["event.ingested"] = ingested
                doc.setdefault(maps.ECS_VERSION_FIELD, ecs_version)
                doc[maps.ID_FIELD] = id_
                line = b'{"create":{"_index":"%s","_id":%s}}\n%s\n' % (index.encode(), dumps(id_), dumps(doc))
            except (KeyError, TypeError, ValueError, orjson.JSONEncodeError) as error:
                id_ = event.get("_id") if isinstance(event, Mapping) else None
                result.rejected.append((str(id_), f"{type(error).__name__}: {error}"))
                continue
            ids.append(id_)
            lines.append(line)
        if ids:
            self._bulk(ids, lines, result, retry_missing=True)
        return result

    def _bulk(self, ids: list[str], lines: list[bytes], result: WriteResult, *, retry_missing: bool) -> None:
        try:
            resp = self.transport.request(
                "POST", "/_bulk", params={"filter_path": "errors,items.*.status,items.*.error"},
                body=b"".join(lines), ndjson=True, timeout=self.write_timeout)
        except Unreachable as error:
            raise self._unreachable(error) from error
        except RequestTimeout:
            result.retryable.extend(ids)  # some may be written: a create-only retry is safe
            return
        except HTTPError as error:
            if error.status == 413 and len(ids) > 1:  # larger than http.max_content_length: halve
                half = len(ids) // 2
                self._bulk(ids[:half], lines[:half], result, retry_missing=retry_missing)
                self._bulk(ids[half:], lines[half:], result, retry_missing=retry_missing)
            elif error.status == 429 or error.status >= 500:
                result.retryable.extend(ids)
            else:  # the whole request refused (credentials, permissions): not the documents' fault
                raise StoreError(f"{self.product} refused the bulk write: {error.reason}") from error
            return
        if not resp.get("errors"):
            result.created += len(ids)
            return
        missing: list[int] = []
        for i, (id_, item) in enumerate(zip(ids, resp["items"], strict=True)):
            op = next(iter(item.values()))
            status = op["status"]
            if status in (200, 201):
                result.created += 1
            elif status == 409:
                result.existing += 1
            elif status == 429 or status >= 500:
                result.retryable.append(id_)
            elif _cluster_problem(reason := error_reason(op.get("error"))):
                log.error("%s refuses writes for a reason no retry fixes by itself (free disk, raise the "
                          "shard limit, open the index...): %s", self.product, reason)
                result.retryable.append(id_)
            elif retry_missing and status == 404 and "index_not_found" in str(op.get("error")):
                missing.append(i)  # automatic index creation is disabled on this cluster
            else:
                result.rejected.append((id_, reason))
        if missing:
            for index in {orjson.loads(lines[i].split(b"\n", 1)[0])["create"]["_index"] for i in missing}:
                self._create_index(index)
            self._bulk([ids[i] for i in missing], [lines[i] for i in missing], result, retry_missing=False)

    def _create_index(self, index: str) -> None:
        try:
            self._call("PUT", f"/{index}", what=f"creating index {index}")
        except HTTPError as error:
            if error.error_type != "resource_already_exists_exception":
                raise StoreError(f"creating index {index} failed: {error.reason}") from error

    def prepare_fields(self, fields: Iterable[str]) -> None:
        """Nothing to do: listed fields are in the template, others are mapped on first sight
        by the dynamic templates, and a query on a field no event has yet matches nothing."""

    def refresh(self) -> None:
        self._dirty.clear()
        self._request("POST", f"/{self._events_pattern},{self.prefix}-docs-*/_refresh",
                      params={"ignore_unavailable": True, "allow_no_indices": True}, what="refresh")

    # -- events: reading -------------------------------------------------------------------------
    def _pages(self, target: str, body: dict[str, Any], limit: int, *, pit: bool, what: str
               ) -> Iterator[list[dict[str, Any]]]:
        """Hits in pages of at most :data:`PAGE`, ``search_after`` on the body's total sort;
        all inside one point in time when ``pit`` and more than one page may be needed."""
        pit_id = self._open_pit() if pit and limit > PAGE else None
        if pit and limit > PAGE and pit_id is None:
            return  # no event index at all
        remaining, after = limit, None
        try:
            while remaining > 0:
                page = dict(body, size=min(remaining, PAGE))
                if after is not None:
                    page["search_after"] = after
                if pit_id:
                    page["pit"] = {"id": pit_id, "keep_alive": self._keep_alive}
                    resp = self._search(None, page, what)
                    pit_id = resp.get("pit_id") or pit_id
                else:
                    resp = self._search(target, page, what)
                hits = resp["hits"]["hits"]
                yield hits
                remaining -= len(hits)
                if len(hits) < page["size"]:
                    return
                after = hits[-1]["sort"]
        finally:
            if pit_id:
                self._close_pit(pit_id)

    @property
    def _keep_alive(self) -> str:
        return f"{max(120, int(self.query_timeout * 2))}s"

    def get_events(self, ids: Sequence[str], *, agencies: Collection[str] | None = None) -> list[Event]:
        """Events by id (an ``ids`` query over all event indices: the day is not known)."""
        found: dict[str, Event] = {}
        scope = agency_filters(agencies)
        unique = list(dict.fromkeys(ids)) if scope is not None else []
        for start in range(0, len(unique), 1000):
            chunk = unique[start:start + 1000]
            body = {"query": {"bool": {"filter": [{"ids": {"values": chunk}}, *(scope or [])]}}, "size": len(chunk),
                    "_source": {"excludes": [maps.ID_FIELD]}}
            for hit in self._search(self._events_pattern, body, "reading events")["hits"]["hits"]:
                src = hit.get("_source") or {}
                event: Event = flatten(src) if any(isinstance(v, Mapping) for v in src.values()) else src
                event.pop(maps.ID_FIELD, None)
                strip_store_fields(event)
                event["_id"] = hit["_id"]
                found.setdefault(hit["_id"], event)
        return [found[i] for i in ids if i in found]

    def purge_events(self, older_than: float) -> int:
        """Delete events with ``@timestamp`` before ``older_than``: whole day indices, then the
        older part of the cut-off day. Returns how many events were deleted."""
        self._request("POST", f"/{self._events_pattern}/_refresh",
                      params={"ignore_unavailable": True, "allow_no_indices": True}, what="refresh")
        try:
            rows = self._call("GET", f"/_cat/indices/{self._events_pattern}",
                              params={"format": "json", "h": "index,docs.count"}, what="listing event indices")
        except HTTPError as error:
            if error.status == 404:
                return 0
            raise StoreError(f"listing event indices failed: {error.reason}") from error
        cutoff = datetime.fromtimestamp(older_than, UTC)
        whole, partial, deleted = [], [], 0
        for row in rows:
            m = _DAY_RE.search(row["index"])
            if not m:
                partial.append(row["index"])
                continue
            day = datetime(int(m[1]), int(m[2]), int(m[3]), tzinfo=UTC)
            if day + timedelta(days=1) <= cutoff:
                whole.append(row["index"])
                deleted += int(row.get("docs.count") or 0)
            elif day <= cutoff:
                partial.append(row["index"])
        for start in range(0, len(whole), 50):
            self._request("DELETE", "/" + ",".join(whole[start:start + 50]), what="deleting old event indices")
        for index in partial:
            resp = self._request(
                "POST", f"/{index}/_delete_by_query", params={"conflicts": "proceed", "refresh": True},
                body={"query": {"range": {"@timestamp": {"lt": ms(older_than), "format": "epoch_millis"}}}},
                timeout=max(self.write_timeout, 600), what=f"purging {index}")
            deleted += int(resp.get("deleted", 0))
        return deleted

    def close(self) -> None:
        self.transport.close()
