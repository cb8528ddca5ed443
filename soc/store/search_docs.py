"""Document collections on a search engine, with compare-and-set.

Each collection is its own index, ``<prefix>-docs-<collection>`` (names outside
``[a-z0-9_-]`` are lowercased, cleaned and suffixed with a digest so two collections never
share an index). Bodies are stored as given, plus ``@soc_id`` (the id, the sort tie-breaker;
stripped again on read).

**Versions.** ``Doc.version`` encodes the document's ``(_primary_term, _seq_no)`` as
``primary_term << 40 | seq_no``. Every write of a document takes a higher sequence number of
its shard and a failover only raises the primary term, so the version of a document only
grows -- also across a delete and re-create, so an old version can never match again.
``put(expected_version=v)`` decodes ``v`` into ``if_seq_no``/``if_primary_term``; the server
checks atomically and answers 409, which is :class:`~soc.store.base.Conflict`.
``expected_version=0`` means must-not-exist (``op_type=create``). No extra round trip, no
client-side state. (Versions are large numbers, about 1.1e12 for primary term 1; they stay
exact in JSON doubles for primary terms below 8192.)

**Visibility.** ``get`` is a realtime GET: a write is visible at once, which is what the
scheduler's get + put-CAS leases need. ``find``/``iter_all`` are searches; they first refresh a
collection this store instance wrote since its last refresh (read-your-writes in one process
without a refresh per write); writes of other processes show within the index refresh
interval (1 s by default).

**Bulk writes.** ``create_documents``/``put_documents`` send the same writes as ``create``/``put``
(``create``, or ``index`` with ``if_seq_no``/``if_primary_term``) through ``_bulk``, a few
thousand per request, and read each item's own status: 409 is that document's ``False`` or
:class:`~soc.store.base.Conflict`, anything else that document's error.

**Alerts for Kibana.** Every write of the ``alerts`` collection is also copied, with Elastic's
``kibana.alert.*`` fields and a date ``@timestamp``, into its own mapped index
(:mod:`soc.store.search_alerts_index`); the collection itself and this API are unchanged.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator, Sequence
from typing import Any, Protocol
from urllib.parse import quote

import orjson

from soc.errors import SocError
from soc.store import search_mappings as maps
from soc.store.base import Conflict, Doc, DocWrite, OwnedBy, StoreError
from soc.store.search_alerts_index import ALERTS_COLLECTION, alerts_index, kibana_alert
from soc.store.search_client import HTTPError, error_reason
from soc.store.search_query import doc_query, doc_sort, owned_by_filters

log = logging.getLogger(__name__)

TERM_BITS = 40
_GET_RETRIES = 8  # about 2 s of waiting for a new index's shard to start
_SEQ_MASK = (1 << TERM_BITS) - 1
#: documents per ``_bulk`` request of :meth:`DocumentCollections.create_documents` and
#: ``put_documents``, and the most bytes of one (well under ``http.max_content_length``)
BULK_DOCS = 2000
BULK_BYTES = 8 << 20


def encode_version(seq_no: int, primary_term: int) -> int:
    if not 0 <= seq_no <= _SEQ_MASK:
        raise StoreError(f"sequence number {seq_no} does not fit the version encoding")
    return (primary_term << TERM_BITS) | seq_no


def decode_version(version: int) -> tuple[int, int]:
    """``(seq_no, primary_term)`` of a version issued by :func:`encode_version`."""
    if version < 1 << TERM_BITS:
        raise Conflict(f"version {version} was not issued by this store (it cannot be current)")
    return version & _SEQ_MASK, version >> TERM_BITS


def doc_from_hit(hit: dict[str, Any], id_: str | None = None) -> Doc:
    body = dict(hit.get("_source") or {})
    body.pop(maps.DOC_ID_FIELD, None)
    return Doc(id_ or hit["_id"], encode_version(hit["_seq_no"], hit["_primary_term"]), body)


class SearchHost(Protocol):
    """What :class:`DocumentCollections` needs of the store it is mixed into
    (:class:`~soc.store.search_base.SearchStore`): its index prefix, its requests, and two
    tables the store creates empty."""

    prefix: str
    write_timeout: float
    _dirty: set[str]
    """Indices this instance wrote since their last refresh."""
    _doc_indices: dict[str, str]
    """collection -> its index name (cache of :meth:`DocumentCollections._doc_index`)."""

    def _call(self, method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None,
              ndjson: bool = False, timeout: float | None = None, what: str = "request") -> Any: ...

    def _request(self, method: str, path: str, *, what: str, **kwargs: Any) -> Any: ...

    def _create_index(self, index: str) -> None: ...

    def _pages(self, target: str, body: dict[str, Any], limit: int, *, pit: bool, what: str
               ) -> Iterator[list[dict[str, Any]]]: ...


class DocumentCollections(SearchHost):
    """The document half of the store protocol; mixed into
    :class:`~soc.store.search_base.SearchStore`, which provides the :class:`SearchHost` part."""

    def _doc_index(self, collection: str) -> str:
        index = self._doc_indices.get(collection)
        if index is None:
            safe = re.sub(r"[^a-z0-9_-]", "_", collection.lower()).lstrip("_-")
            if safe != collection or not safe:
                safe = f"{safe}-{maps.fingerprint(collection)}".lstrip("-")
            index = self._doc_indices[collection] = f"{self.prefix}-docs-{safe}"
        return index

    def _doc_write(self, method: str, collection: str, op: str, id_: str,
                   body: dict[str, Any] | None, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """One write (``op`` = ``_create`` or ``_doc``), creating the collection's index if the
        cluster does not create indices automatically. HTTP errors pass through."""
        index = self._doc_index(collection)
        path = f"/{index}/{op}/{quote(id_, safe='')}"
        payload = None if body is None else orjson.dumps({**body, maps.DOC_ID_FIELD: id_})
        try:
            resp = self._call(method, path, params=params, body=payload, what=f"writing {collection}/{id_}")
        except HTTPError as error:
            if error.error_type != "index_not_found_exception" or method == "DELETE":
                raise
            self._create_index(index)
            resp = self._call(method, path, params=params, body=payload, what=f"writing {collection}/{id_}")
        self._dirty.add(index)
        if collection == ALERTS_COLLECTION:
            self._copy_alert(id_, body, resp)
        return resp

    def _copy_alert(self, id_: str, body: dict[str, Any] | None, resp: dict[str, Any]) -> None:
        """Keep the Kibana copy of an alert in step (see the module docstring); never fails the
        write of the alert itself."""
        index = alerts_index(self.prefix)
        path = f"/{index}/_doc/{quote(id_, safe='')}"
        try:
            if body is None:
                self._call("DELETE", path, what=f"deleting the Kibana copy of alert {id_}")
                return
            version = encode_version(resp["_seq_no"], resp["_primary_term"])
            params = {"version": version, "version_type": "external"}
            payload = orjson.dumps(kibana_alert(id_, body, self.prefix))
            try:
                self._call("PUT", path, params=params, body=payload, what=f"copying alert {id_} for Kibana")
            except HTTPError as error:
                if error.error_type != "index_not_found_exception":
                    raise
                self._create_index(index)
                self._call("PUT", path, params=params, body=payload, what=f"copying alert {id_} for Kibana")
            self._dirty.add(index)
        except HTTPError as error:
            if error.status not in (404, 409):  # 409: a newer copy is there already
                log.warning("the Kibana copy of alert %s was not written (soc store reindex rebuilds it): %s",
                            id_, error.reason)
        except (StoreError, KeyError) as error:
            log.warning("the Kibana copy of alert %s was not written (soc store reindex rebuilds it): %s", id_, error)

    def create(self, collection: str, id: str, body: dict[str, Any]) -> bool:
        try:
            self._doc_write("PUT", collection, "_create", id, body)
        except HTTPError as error:
            if error.status == 409:
                return False
            raise StoreError(f"{collection}/{id}: create failed: {error.reason}") from error
        return True

    def create_documents(self, collection: str, docs: Sequence[tuple[str, dict[str, Any]]]
                         ) -> list[bool | SocError]:
        items = self._doc_bulk(collection, [(id_, body, 0) for id_, body in docs])
        results: list[bool | SocError] = []
        for (id_, _), item in zip(docs, items, strict=True):
            if isinstance(item, SocError):
                results.append(item)
            elif item["status"] == 409:
                results.append(False)
            elif item["status"] in (200, 201):
                results.append(True)
            else:
                results.append(StoreError(f"{collection}/{id_}: create failed: {error_reason(item.get('error'))}"))
        return results

    def put_documents(self, collection: str, writes: Sequence[DocWrite]) -> list[int | SocError]:
        items = self._doc_bulk(collection, [(w.id, w.body, w.expected_version) for w in writes])
        results: list[int | SocError] = []
        for write, item in zip(writes, items, strict=True):
            if isinstance(item, SocError):
                results.append(item)
            elif item["status"] == 409:
                results.append(Conflict(f"{collection}/{write.id}: expected version {write.expected_version}, but "
                                        "the document changed, exists or was deleted since"))
            elif item["status"] in (200, 201):
                results.append(encode_version(item["_seq_no"], item["_primary_term"]))
            else:
                results.append(StoreError(f"{collection}/{write.id}: write failed: {error_reason(item.get('error'))}"))
        return results

    def _doc_bulk(self, collection: str, writes: list[tuple[str, dict[str, Any], int | None]]
                  ) -> list[dict[str, Any] | SocError]:
        """The ``_bulk`` items of these writes (``expected_version`` as :meth:`put` takes it), in
        order: each item's answer (``status``, ``_seq_no``, ``_primary_term``, ``error``) or the
        error that kept it from being sent. Creates the collection's index when the cluster
        does not create indices automatically; keeps the Kibana copies of alerts in step."""
        index = self._doc_index(collection)
        items: list[dict[str, Any] | SocError] = []
        lines: list[bytes] = []
        for id_, body, expected in writes:
            action: dict[str, Any] = {"_index": index, "_id": id_}
            try:
                if expected:
                    action["if_seq_no"], action["if_primary_term"] = decode_version(expected)
                lines.append(b"%s\n%s\n" % (orjson.dumps({"create" if expected == 0 else "index": action}),
                                             orjson.dumps({**body, maps.DOC_ID_FIELD: id_})))
                items.append({})
            except Conflict as error:  # a version this store never issued: that write's conflict
                items.append(error)
            except (TypeError, orjson.JSONEncodeError) as error:
                items.append(StoreError(f"{collection}/{id_}: write failed: {error}"))
        sent = [i for i, item in enumerate(items) if not isinstance(item, SocError)]
        answers = self._bulk_lines(collection, lines)
        if any(a["status"] == 404 and "index_not_found" in str(a.get("error")) for a in answers):
            self._create_index(index)  # automatic index creation is off on this cluster
            missing = [k for k, a in enumerate(answers) if a["status"] == 404]
            for k, again in zip(missing, self._bulk_lines(collection, [lines[k] for k in missing]), strict=True):
                answers[k] = again
        for i, answer in zip(sent, answers, strict=True):
            items[i] = answer
        if sent:
            self._dirty.add(index)
        if collection == ALERTS_COLLECTION:
            for (id_, body, _), item in zip(writes, items, strict=True):
                if isinstance(item, dict) and item["status"] in (200, 201):
                    self._copy_alert(id_, body, item)
        return items

    def _bulk_lines(self, collection: str, lines: list[bytes]) -> list[dict[str, Any]]:
        """Each bulk line pair's item answer, sent :data:`BULK_DOCS` (or :data:`BULK_BYTES`) at
        a time; a whole request refused is a StoreError (nothing of it is known to be written)."""
        answers: list[dict[str, Any]] = []
        start = 0
        while start < len(lines):
            end, size = start, 0
            while end < len(lines) and end - start < BULK_DOCS and (size == 0 or size + len(lines[end]) <= BULK_BYTES):
                size += len(lines[end])
                end += 1
            try:
                resp = self._call("POST", "/_bulk", body=b"".join(lines[start:end]), ndjson=True,
                                  timeout=self.write_timeout, what=f"writing {end - start} documents of {collection}",
                                  params={"filter_path": "items.*.status,items.*.error,items.*._seq_no,"
                                                         "items.*._primary_term"})
            except HTTPError as error:
                raise StoreError(f"writing {end - start} documents of {collection} failed: {error.reason}") from error
            answers.extend(next(iter(item.values())) for item in resp["items"])
            start = end
        return answers

    def get(self, collection: str, id: str) -> Doc | None:
        path = f"/{self._doc_index(collection)}/_doc/{quote(id, safe='')}"
        for attempt in range(_GET_RETRIES + 1):
            try:
                resp = self._call("GET", path, what=f"reading {collection}/{id}")
                break
            except HTTPError as error:
                if error.status == 404:
                    return None
                # a collection index another process has just created answers 503 until its
                # shard is started (writes wait for it; a realtime GET does not): wait a little
                if error.status == 503 and attempt < _GET_RETRIES:
                    time.sleep(0.05 * (attempt + 1))
                    continue
                raise StoreError(f"{collection}/{id}: read failed: {error.reason}") from error
        return doc_from_hit(resp, id) if resp.get("found") else None

    def put(self, collection: str, id: str, body: dict[str, Any],
            expected_version: int | None = None) -> int:
        op, params = ("_create" if expected_version == 0 else "_doc"), None
        if expected_version:
            seq_no, term = decode_version(expected_version)
            params = {"if_seq_no": seq_no, "if_primary_term": term}
        try:
            resp = self._doc_write("PUT", collection, op, id, body, params)
        except HTTPError as error:
            if error.status == 409:
                raise Conflict(f"{collection}/{id}: expected version {expected_version}, but the "
                               "document changed, exists or was deleted since") from error
            raise StoreError(f"{collection}/{id}: write failed: {error.reason}") from error
        return encode_version(resp["_seq_no"], resp["_primary_term"])

    def delete(self, collection: str, id: str) -> bool:
        try:
            self._doc_write("DELETE", collection, "_doc", id, None)
        except HTTPError as error:
            if error.status == 404:
                return False
            raise StoreError(f"{collection}/{id}: delete failed: {error.reason}") from error
        return True

    def find(self, collection: str, where: dict[str, Any] | None = None, *,
             time_field: str | None = None, start: str | None = None, end: str | None = None,
             sort: str | None = None, descending: bool = False, limit: int = 1000,
             owned_by: OwnedBy | None = None) -> list[Doc]:
        query = doc_query(where, time_field, start, end, owned_by)
        if query is None:
            return []
        return list(self._docs(collection, query, doc_sort(sort, descending), limit))

    def iter_all(self, collection: str, *, owned_by: OwnedBy | None = None) -> Iterator[Doc]:
        owners = owned_by_filters(owned_by)
        if owners is None:
            return iter(())
        query = {"bool": {"filter": owners}} if owners else {"match_all": {}}
        return self._docs(collection, query, doc_sort(None, False), 2**62)

    def _docs(self, collection: str, query: dict[str, Any], sort: list[dict[str, Any]],
              limit: int) -> Iterator[Doc]:
        if limit <= 0:
            return iter(())
        index = self._doc_index(collection)
        if index in self._dirty:  # read this process's own writes
            self._dirty.discard(index)
            self._request("POST", f"/{index}/_refresh", params={"ignore_unavailable": True}, what="refresh")
        body = {"query": query, "sort": sort, "seq_no_primary_term": True, "track_total_hits": False}
        pages = self._pages(index, body, limit, pit=False, what=f"reading {collection}")
        return (doc_from_hit(hit) for hits in pages for hit in hits)
