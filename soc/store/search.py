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

**Case-insensitivity and mappings**: see :mod:`soc.store.search_mappings` (keyword fields with
a lowercase normalizer; ``ignore_malformed``; why not the ``wildcard`` type).

**Writes**: one ``_bulk`` request per :meth:`write_events` call, bodies pre-serialised with
orjson, ``op_type=create``, ``refresh=false``. The store stamps ``event.ingested`` (one value
per batch, UTC ISO) and ``soc.id`` (the event id: the sort tie-breaker, since sorting on
``_id`` is discouraged and off by default on Elasticsearch 8+). Per document: 201 created,
409 existing, 429/5xx retryable, other 4xx rejected with the reason. Only a store that cannot
be reached at all raises :class:`StoreError`.

**Reads**: rule queries are DSL clauses in a bool *filter* with the dataset terms and the
window range, sorted by ``@timestamp`` then ``soc.id`` (the same order as SQLite's
``ts, id``); beyond 10,000 hits the store pages with ``search_after`` inside a point in time.
Every search carries the server-side ``timeout`` and a client request timeout
(``query_timeout``); a timed-out or partially failed search raises rather than return a
silently truncated answer.

**Documents and compare-and-set**: ``Doc.version`` encodes the document's
``(_primary_term, _seq_no)`` as ``primary_term << 40 | seq_no``. Both only grow for a
document (every write takes a higher shard sequence number; a failover raises the primary
term), so the version is a monotonically increasing int, and ``put(expected_version=v)``
decodes it into ``if_primary_term``/``if_seq_no``: the server checks atomically, a 409 is
:class:`Conflict`. ``expected_version=0`` is ``op_type=create``. ``get`` is a realtime GET
(scheduler leases are get + put-CAS, so they never wait for a refresh); ``find`` and
``iter_all`` first refresh a collection this store has written since its last refresh, so
a process always reads its own writes without paying a refresh per write.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, ClassVar
from urllib.parse import quote

import orjson

from soc.catalog import Catalog, default_catalog
from soc.model import Event, iso, now_utc
from soc.store import search_mappings as maps
from soc.store.base import Conflict, Doc, Match, StoreError, Window, WriteResult
from soc.store.search_client import (
    ElasticsearchTransport,
    Endpoint,
    HTTPError,
    OpenSearchTransport,
    RequestTimeout,
    Transport,
    Unreachable,
    error_reason,
    parse_url,
)

log = logging.getLogger(__name__)

PAGE = 10_000  # hits per request (the default index.max_result_window)
TERM_BITS = 40  # Doc.version = primary_term << 40 | seq_no
_SEQ_MASK = (1 << TERM_BITS) - 1
_TIME_FIELDS = ("@timestamp", "event.ingested")
_DROP_KEYS = ("_id", "_ts")
_DAY_RE = re.compile(r"-events-(\d{4})\.(\d{2})\.(\d{2})$")
_PREFIX_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_MAX_DAY_LIST = 31  # event-time windows up to this many days query their day indices by name


def encode_version(seq_no: int, primary_term: int) -> int:
    if not 0 <= seq_no <= _SEQ_MASK:
        raise StoreError(f"sequence number {seq_no} does not fit the version encoding")
    return (primary_term << TERM_BITS) | seq_no


def decode_version(version: int) -> tuple[int, int]:
    """``(seq_no, primary_term)`` of a :attr:`Doc.version`."""
    if version < 1 << TERM_BITS:
        raise Conflict(f"version {version} was not issued by this store")
    return version & _SEQ_MASK, version >> TERM_BITS


def _ms(seconds: float) -> int:
    """Epoch seconds -> the smallest whole millisecond >= it (stored times are whole ms)."""
    return math.ceil(round(seconds * 1000, 3))


def _epoch(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return value / 1000.0
    dt = datetime.fromisoformat(str(value))
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def lookup(source: Mapping[str, Any], name: str) -> Any:
    """Value of a dotted field in a ``_source`` whose keys are flat (``"user.name"``), nested
    (``{"user": {"name": ...}}``) or any mix of the two; ``None`` when absent."""
    if name in source:
        return source[name]
    head = name
    while "." in head:
        head, _, _ = head.rpartition(".")
        child = source.get(head)
        if isinstance(child, Mapping):
            return lookup(child, name[len(head) + 1:])
    return None


def flatten(source: Mapping[str, Any], parent: str = "") -> dict[str, Any]:
    """Nested objects -> flat dotted keys (events are flat; a foreign writer may nest)."""
    out: dict[str, Any] = {}
    for key, value in source.items():
        name = f"{parent}.{key}" if parent else key
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, name))
        else:
            out[name] = value
    return out


@lru_cache(maxsize=4096)
def _day_of(text: str) -> str:
    """``YYYY.MM.DD`` (UTC) of an ISO timestamp text; ``ValueError`` when it is not one."""
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).strftime("%Y.%m.%d")


def _canonical(text: str) -> bool:
    """True for :func:`soc.model.iso` output (``2025-01-31T08:15:00.123Z``), kept as is."""
    return len(text) == 24 and text[4] == "-" and text[10] == "T" and text[19] == "." and text[23] == "Z"


def _where_clause(where: Any) -> dict[str, Any] | None:
    """The compiled predicate as one DSL clause: a clause dict, a ``{"query": ...}`` body, a
    list of alternatives, or a Lucene query string (run as ``query_string``)."""
    if where is None or where == "" or where == {}:
        return None
    if isinstance(where, str):
        return {"query_string": {"query": where}}
    if isinstance(where, Mapping):
        return dict(where["query"]) if set(where) == {"query"} else dict(where)
    if isinstance(where, (list, tuple)):
        clauses = [c for c in map(_where_clause, where) if c]
        return {"bool": {"should": clauses, "minimum_should_match": 1}} if clauses else None
    raise StoreError(f"the dsl dialect takes a query DSL clause (dict) or a Lucene query string, "
                     f"not {type(where).__name__}")


class SearchStore:
    """A :class:`soc.store.base.Store` on a search engine. Use :meth:`from_url`."""

    dialect = "dsl"
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
        self._lock = threading.Lock()

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
            raise StoreError(f"{url!r} is an {endpoint.flavour} URL; {cls.__name__} needs {cls.flavour}://")
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

    def _open_pit(self, target: str) -> str:
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
        body.setdefault("timeout", f"{self.query_timeout:g}s")
        path = f"/{target}/_search" if target else "/_search"
        params = {"ignore_unavailable": True, "allow_no_indices": True} if target else None
        resp = self._request("POST", path, params=params, body=body, timeout=self.query_timeout + 5,
                             what=what)
        if resp.get("timed_out"):
            raise StoreError(f"{what} timed out after {self.query_timeout:g} s; the answer would be "
                             "incomplete (narrow the query or raise the store's query_timeout)")
        shards = resp.get("_shards") or {}
        if shards.get("failed"):
            reasons = {error_reason(f.get("reason")) for f in shards.get("failures", [])}
            raise StoreError(f"{what} failed on {shards['failed']} of {shards.get('total')} shards: "
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
        digest = maps.fingerprint(self.flavour, base_events, docs, self.retention_days)
        current = self._installed_templates()
        if all(current.get(f"{self.prefix}-{k}") == digest for k in ("events", "docs")):
            self.retention = f"installed earlier (retention_days={self.retention_days})"
            return
        extra = self._install_retention() if self.retention_days else {}
        if not self.retention_days:
            self.retention = "none (retention_days not set): run purge_events to remove old events"
        events = maps.events_template(self.prefix, catalog=self.catalog, shards=self.shards,
                                      replicas=self.replicas, extra_settings=extra)
        for name, body in ((f"{self.prefix}-events", events), (f"{self.prefix}-docs", docs)):
            body["_meta"]["fingerprint"] = digest
            self._request("PUT", f"/_index_template/{name}", body=body, what=f"installing index template {name}")
        self._update_existing_mappings(events)

    def _installed_templates(self) -> dict[str, str]:
        try:
            resp = self._call("GET", f"/_index_template/{self.prefix}-*", what="reading index templates")
        except HTTPError as error:
            if error.status == 404:
                return {}
            raise StoreError(f"reading index templates failed: {error.reason}") from error
        return {t["name"]: ((t.get("index_template") or {}).get("_meta") or {}).get("fingerprint")
                for t in resp.get("index_templates", [])}

    def _update_existing_mappings(self, events: dict[str, Any]) -> None:
        """Add fields new in fields.yml to today's (and older) event indices."""
        mappings = events["template"]["mappings"]
        body = {"properties": mappings["properties"], "dynamic_templates": mappings["dynamic_templates"]}
        try:
            self._call("PUT", f"/{self._events_pattern}/_mapping", params={"allow_no_indices": True},
                       body=body, what="updating event index mappings")
        except (HTTPError, StoreError) as error:
            log.warning("existing event indices keep their mapping (%s); new day indices get the new "
                        "template", error)

    # -- events: writing -------------------------------------------------------------------------
    def _event_index(self, event: Event) -> tuple[str, str]:
        """(index name, @timestamp text) of an event, from its own time only."""
        ts = event.get("@timestamp")
        if ts is None:
            raw = event.get("_ts")
            if raw is None:
                raise KeyError("@timestamp")
            ts = iso(datetime.fromtimestamp(float(raw), UTC))
        elif not isinstance(ts, str):
            raise ValueError(f"@timestamp must be ISO 8601 text, not {type(ts).__name__}")
        elif not _canonical(ts):
            ts = iso(datetime.fromisoformat(ts).replace(tzinfo=None).replace(tzinfo=UTC)
                     if datetime.fromisoformat(ts).tzinfo is None else datetime.fromisoformat(ts))
        day = ts[:10].replace("-", ".") if ts.endswith("Z") else _day_of(ts)
        return f"{self.prefix}-events-{day}", ts

    def write_events(self, events: Sequence[Event]) -> WriteResult:
        result = WriteResult()
        ingested = iso(now_utc())
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
                doc[maps.ID_FIELD] = id_
                line = b'{"create":{"_index":"%s","_id":%s}}\n%s\n' % (index.encode(), dumps(id_), dumps(doc))
            except (KeyError, TypeError, ValueError, orjson.JSONEncodeError) as error:
                result.rejected.append((str(event.get("_id")), f"{type(error).__name__}: {error}"))
                continue
            ids.append(id_)
            lines.append(line)
        if ids:
            self._bulk(ids, lines, result, retry_missing=True)
        return result

    def _bulk(self, ids: list[str], lines: list[bytes], result: WriteResult, *, retry_missing: bool) -> None:
        try:
            resp = self._call("POST", "/_bulk", params={"filter_path": "errors,items.*.status,items.*.error"},
                              body=b"".join(lines), ndjson=True, timeout=self.write_timeout,
                              what="bulk write")
        except StoreError as error:
            if isinstance(error.__cause__, RequestTimeout):
                result.retryable.extend(ids)  # the server may have written some: create-only retry
                return
            raise
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
            elif retry_missing and status == 404 and "index_not_found" in str(op.get("error")):
                missing.append(i)  # automatic index creation is disabled on this cluster
            else:
                result.rejected.append((id_, error_reason(op.get("error"))))
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
    def _window_filters(self, window: Window | None) -> list[dict[str, Any]]:
        if window is None:
            return []
        if window.field not in _TIME_FIELDS:
            raise StoreError(f"windows run on @timestamp or event.ingested, not {window.field!r}")
        filters = []
        bounds = {k: _ms(v) for k, v in (("gte", window.start), ("lt", window.end)) if v is not None}
        if bounds:
            filters.append({"range": {window.field: {**bounds, "format": "epoch_millis"}}})
        if window.ingested_before is not None:
            filters.append({"range": {"event.ingested": {"lt": _ms(window.ingested_before),
                                                         "format": "epoch_millis"}}})
        return filters

    def _events_target(self, window: Window | None) -> str:
        """The day indices of an event-time window (short windows), else all event indices."""
        if window is None or window.field != "@timestamp" or window.start is None or window.end is None:
            return self._events_pattern
        first = datetime.fromtimestamp(window.start, UTC).date()
        last = datetime.fromtimestamp(max(window.start, window.end - 0.001), UTC).date()
        days = (last - first).days + 1
        if days > _MAX_DAY_LIST:
            return self._events_pattern
        return ",".join(f"{self.prefix}-events-{(first + timedelta(days=i)).strftime('%Y.%m.%d')}"
                        for i in range(days))

    def _match_query(self, where: Any, datasets: Sequence[str] | None, window: Window | None
                     ) -> dict[str, Any] | None:
        filters = self._window_filters(window)
        if datasets is not None:
            if not datasets:
                return None
            filters.append({"terms": {"event.dataset": list(datasets)}})
        clause = _where_clause(where)
        if clause:
            filters.append(clause)
        return {"bool": {"filter": filters}} if filters else {"match_all": {}}

    def _pages(self, target: str, body: dict[str, Any], limit: int, *, pit: bool, what: str
               ) -> Iterator[list[dict[str, Any]]]:
        """Hits in pages of at most :data:`PAGE`, ``search_after`` on the body's total sort;
        in a point in time when ``pit`` and more than one page is needed."""
        size = min(limit, PAGE)
        resp = self._search(target, dict(body, size=size), what)
        hits = resp["hits"]["hits"]
        yield hits
        remaining = limit - len(hits)
        if len(hits) < size or remaining <= 0:
            return
        pit_id = self._open_pit(target) if pit else None
        try:
            while remaining > 0 and hits:
                page = dict(body, size=min(remaining, PAGE), search_after=hits[-1]["sort"])
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
        finally:
            if pit_id:
                self._close_pit(pit_id)

    @property
    def _keep_alive(self) -> str:
        return f"{max(120, int(self.query_timeout * 2))}s"

    def find_matches(self, where: Any, datasets: Sequence[str] | None, window: Window,
                     fields: Sequence[str], limit: int) -> list[Match]:
        query = self._match_query(where, datasets, window)
        if query is None or limit <= 0:
            return []
        source = sorted({*(f for f in fields if f not in ("_id", "@timestamp")), "organization.id"})
        body = {"query": query, "_source": {"includes": source}, "track_total_hits": False,
                "sort": [{"@timestamp": {"order": "asc"}}, {maps.ID_FIELD: {"order": "asc"}}]}
        out: list[Match] = []
        for hits in self._pages(self._events_target(window), body, limit, pit=True, what="rule query"):
            for hit in hits:
                src = hit.get("_source") or {}
                ts = hit["sort"][0] / 1000.0
                values: dict[str, Any] = {}
                for name in fields:
                    if name == "_id":
                        values[name] = hit["_id"]
                    elif name == "@timestamp":
                        values[name] = ts
                    elif name == "event.ingested":
                        values[name] = _epoch(lookup(src, name))
                    else:
                        values[name] = lookup(src, name)
                out.append(Match(hit["_id"], ts, lookup(src, "organization.id"), values))
        return out

    def _count(self, target: str, query: dict[str, Any], what: str) -> int:
        # _search with size 0 rather than _count: only _search honours the query timeout
        resp = self._search(target, {"query": query, "size": 0, "track_total_hits": True}, what)
        return int(resp["hits"]["total"]["value"])

    def count_matches(self, where: Any, datasets: Sequence[str] | None, window: Window) -> int:
        query = self._match_query(where, datasets, window)
        return 0 if query is None else self._count(self._events_target(window), query, "rule count")

    def count_events(self, window: Window | None = None, group_by: str | None = None) -> dict[str, int]:
        filters = self._window_filters(window)
        query = {"bool": {"filter": filters}} if filters else {"match_all": {}}
        target = self._events_target(window)
        if group_by is None:
            return {"": self._count(target, query, "event count")}
        counts: dict[str, int] = {}
        after: dict[str, Any] | None = None
        while True:
            composite: dict[str, Any] = {
                "size": 1000, "sources": [{"k": {"terms": {"field": group_by, "missing_bucket": True}}}]}
            if after:
                composite["after"] = after
            resp = self._search(target, {"query": query, "size": 0, "aggs": {"g": {"composite": composite}}},
                                f"event count by {group_by}")
            agg = (resp.get("aggregations") or {}).get("g") or {}
            for bucket in agg.get("buckets", []):
                key = bucket["key"]["k"]
                if isinstance(key, float) and key.is_integer():
                    key = int(key)
                counts[str(key)] = counts.get(str(key), 0) + bucket["doc_count"]
            after = agg.get("after_key")
            if not after or not agg.get("buckets"):
                return counts

    def get_events(self, ids: Sequence[str]) -> list[Event]:
        """Events by id (an ``ids`` query over all event indices: the day is not known)."""
        found: dict[str, Event] = {}
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), 1000):
            chunk = unique[start:start + 1000]
            body = {"query": {"ids": {"values": chunk}}, "size": len(chunk),
                    "_source": {"excludes": [maps.ID_FIELD]}}
            for hit in self._search(self._events_pattern, body, "reading events")["hits"]["hits"]:
                src = hit.get("_source") or {}
                event: Event = flatten(src) if any(isinstance(v, Mapping) for v in src.values()) else src
                event.pop(maps.ID_FIELD, None)
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
                body={"query": {"range": {"@timestamp": {"lt": _ms(older_than), "format": "epoch_millis"}}}},
                timeout=max(self.write_timeout, 600), what=f"purging {index}")
            deleted += int(resp.get("deleted", 0))
        return deleted

    # -- documents -------------------------------------------------------------------------------
    def _doc_index(self, collection: str) -> str:
        index = self._doc_indices.get(collection)
        if index is None:
            safe = re.sub(r"[^a-z0-9_-]", "_", collection.lower()).lstrip("_-")
            if safe != collection or not safe:
                safe = f"{safe}-{maps.fingerprint(collection)}".lstrip("-")
            index = self._doc_indices[collection] = f"{self.prefix}-docs-{safe}"
        return index

    def _doc_write(self, method: str, collection: str, path: str, body: dict[str, Any] | None,
                   params: dict[str, Any] | None = None) -> dict[str, Any]:
        """A write to a document collection (creating its index when auto-creation is off)."""
        index = self._doc_index(collection)
        payload = None if body is None else orjson.dumps({**body, maps.DOC_ID_FIELD: path.rsplit("/", 1)[1]})
        for attempt in range(2):
            try:
                resp = self._call(method, f"/{index}/{path}", params=params, body=payload,
                                  what=f"writing to {collection}")
                self._dirty.add(index)
                return resp
            except HTTPError as error:
                if attempt == 0 and error.error_type == "index_not_found_exception" and method != "DELETE":
                    self._create_index(index)
                    continue
                raise
        raise AssertionError("unreachable")

    @staticmethod
    def _doc(hit: dict[str, Any], id_: str | None = None) -> Doc:
        body = dict(hit.get("_source") or {})
        body.pop(maps.DOC_ID_FIELD, None)
        return Doc(id_ or hit["_id"], encode_version(hit["_seq_no"], hit["_primary_term"]), body)

    def create(self, collection: str, id: str, body: dict[str, Any]) -> bool:
        try:
            self._doc_write("PUT", collection, f"_create/{quote(id, safe='')}", body)
        except HTTPError as error:
            if error.status == 409:
                return False
            raise StoreError(f"{collection}/{id}: create failed: {error.reason}") from error
        return True

    def get(self, collection: str, id: str) -> Doc | None:
        try:
            resp = self._call("GET", f"/{self._doc_index(collection)}/_doc/{quote(id, safe='')}",
                              what=f"reading {collection}/{id}")
        except HTTPError as error:
            if error.status == 404:
                return None
            raise StoreError(f"{collection}/{id}: read failed: {error.reason}") from error
        return self._doc(resp, id) if resp.get("found") else None

    def put(self, collection: str, id: str, body: dict[str, Any], expected_version: int | None = None) -> int:
        key, params = quote(id, safe=""), None
        if expected_version == 0:
            path = f"_create/{key}"
        else:
            path = f"_doc/{key}"
            if expected_version is not None:
                seq_no, term = decode_version(expected_version)
                params = {"if_seq_no": seq_no, "if_primary_term": term}
        try:
            resp = self._doc_write("PUT", collection, path, body, params)
        except HTTPError as error:
            if error.status == 409 or (expected_version and error.status == 404):
                raise Conflict(f"{collection}/{id}: expected version {expected_version}, but the "
                               "document changed (or exists, or was deleted) since") from error
            raise StoreError(f"{collection}/{id}: write failed: {error.reason}") from error
        return encode_version(resp["_seq_no"], resp["_primary_term"])

    def delete(self, collection: str, id: str) -> bool:
        try:
            self._doc_write("DELETE", collection, f"_doc/{quote(id, safe='')}", None)
        except HTTPError as error:
            if error.status == 404:
                return False
            raise StoreError(f"{collection}/{id}: delete failed: {error.reason}") from error
        return True

    def _read_own_writes(self, index: str) -> None:
        if index in self._dirty:
            self._dirty.discard(index)
            self._request("POST", f"/{index}/_refresh", params={"ignore_unavailable": True},
                          what="refresh")

    def find(self, collection: str, where: dict[str, Any] | None = None, *, time_field: str | None = None,
             start: str | None = None, end: str | None = None, sort: str | None = None,
             descending: bool = False, limit: int = 1000) -> list[Doc]:
        filters: list[dict[str, Any]] = []
        for name, value in (where or {}).items():
            if isinstance(value, (list, tuple, set, frozenset)):
                if not value:
                    return []
                filters.append({"terms": {name: list(value)}})
            elif value is None:
                filters.append({"bool": {"must_not": {"exists": {"field": name}}}})
            else:
                filters.append({"term": {name: value}})
        if time_field and (start is not None or end is not None):
            bounds = {k: v for k, v in (("gte", start), ("lt", end)) if v is not None}
            filters.append({"range": {time_field: bounds}})
        order: list[dict[str, Any]] = [{maps.DOC_ID_FIELD: {"order": "asc"}}]
        if sort:
            order.insert(0, {sort: {"order": "desc" if descending else "asc", "unmapped_type": "keyword",
                                    "missing": "_last" if descending else "_first"}})
        return list(self._docs(collection, {"bool": {"filter": filters}}, order, limit))

    def iter_all(self, collection: str) -> Iterator[Doc]:
        return self._docs(collection, {"match_all": {}}, [{maps.DOC_ID_FIELD: {"order": "asc"}}], 2**62)

    def _docs(self, collection: str, query: dict[str, Any], sort: list[dict[str, Any]], limit: int
              ) -> Iterator[Doc]:
        if limit <= 0:
            return iter(())
        index = self._doc_index(collection)
        self._read_own_writes(index)
        body = {"query": query, "sort": sort, "seq_no_primary_term": True, "track_total_hits": False}
        pages = self._pages(index, body, limit, pit=False, what=f"reading {collection}")
        return (self._doc(hit) for hits in pages for hit in hits)

    def close(self) -> None:
        self.transport.close()


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
        self.retention = f"ISM policy {name}: delete event indices {self.retention_days} days after creation"
        return {}

    def _open_pit(self, target: str) -> str:
        resp = self._request("POST", f"/{self._events_pattern if ',' in target else target}"
                             "/_search/point_in_time", params={"keep_alive": self._keep_alive},
                             what="opening a point in time")
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

    def _open_pit(self, target: str) -> str:
        resp = self._request("POST", f"/{self._events_pattern if ',' in target else target}/_pit",
                             params={"keep_alive": self._keep_alive}, what="opening a point in time")
        return str(resp["id"])

    def _close_pit(self, pit: str) -> None:
        try:
            self._call("DELETE", "/_pit", body={"id": pit}, what="closing a point in time")
        except (HTTPError, StoreError) as error:
            log.debug("closing point in time failed: %s", error)
