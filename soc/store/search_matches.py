"""Rule queries on the search store: the events compiled predicates match, one predicate or
many in one pass, and event counts; mixed into :class:`~soc.store.search_base.SearchStore`
(which provides paging, points in time and requests: :class:`MatchHost`)."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from typing import Any, Protocol

from soc.store.base import Bucket, Match, StoreError, Window
from soc.store.search_mappings import match_field
from soc.store.search_query import (
    EVENT_SORT,
    PAGE,
    agency_filters,
    epoch,
    events_target,
    lookup,
    match_query,
    where_clause,
    window_filters,
)

__all__ = ["AGGREGATION_PAGE", "MANY_CHUNK", "MatchHost", "RuleMatching"]

#: predicates per request in find_matches_many (named clauses of one bool should)
MANY_CHUNK = 64
#: groups per request of aggregate_matches (below the default search.max_buckets, 65,535)
AGGREGATION_PAGE = 10_000


class MatchHost(Protocol):
    """What :class:`RuleMatching` needs of the store it is mixed into."""

    prefix: str

    @property
    def _keep_alive(self) -> str: ...

    def _search(self, target: str | None, body: dict[str, Any], what: str = "search") -> dict[str, Any]: ...

    def _open_pit(self) -> str | None: ...

    def _close_pit(self, pit: str) -> None: ...

    def _pages(self, target: str, body: dict[str, Any], limit: int, *, pit: bool, what: str
               ) -> Iterator[list[dict[str, Any]]]: ...


class RuleMatching(MatchHost):
    """``find_matches``, ``find_matches_many``, ``count_matches`` and ``count_events``."""

    def _match(self, hit: dict[str, Any], fields: Sequence[str]) -> Match:
        src = hit.get("_source") or {}
        ts = hit["sort"][0] / 1000.0
        values: dict[str, Any] = {}
        for name in fields:
            if name == "_id":
                values[name] = hit["_id"]
            elif name == "@timestamp":
                values[name] = ts
            elif name == "event.ingested":
                values[name] = epoch(lookup(src, name))
            else:
                values[name] = lookup(src, name)
        return Match(hit["_id"], ts, lookup(src, "organization.id"), values)

    @staticmethod
    def _source(fields: Sequence[str]) -> dict[str, Any]:
        return {"includes": sorted({*(f for f in fields if f not in ("_id", "@timestamp")), "organization.id"})}

    def find_matches(self, where: Any, datasets: Sequence[str] | None, window: Window, fields: Sequence[str],
                     limit: int, *, agencies: Collection[str] | None = None) -> list[Match]:
        query = match_query(where, datasets, window, agencies)
        if query is None or limit <= 0:
            return []
        body = {"query": query, "_source": self._source(fields), "track_total_hits": False,
                "sort": list(EVENT_SORT)}
        out: list[Match] = []
        for hits in self._pages(events_target(self.prefix, window), body, limit, pit=True, what="rule query"):
            out.extend(self._match(hit, fields) for hit in hits)
        return out

    def find_matches_many(self, wheres: Sequence[Any], datasets: Sequence[str] | None, window: Window,
                          fields: Sequence[str], limit: int, *,
                          agencies: Collection[str] | None = None) -> list[list[Match]]:
        """:meth:`find_matches` for many predicates in one pass: each predicate is a *named*
        clause (``_name``) of one bool ``should``; a hit's ``matched_queries`` says which
        predicates it satisfies. Hits come in the total event order, so every predicate gets
        its oldest ``limit`` matches; a predicate that has its ``limit`` is dropped from the
        query of the following pages (``search_after``), so a busy rule never makes the store
        page through data only it matches. :data:`MANY_CHUNK` predicates per request."""
        out: list[list[Match]] = [[] for _ in wheres]
        base = match_query(None, datasets, window, agencies)
        if base is None or limit <= 0 or not wheres:
            return out
        filters = list(base["bool"]["filter"]) if "bool" in base else []
        clauses = [where_clause(w) or {"match_all": {}} for w in wheres]
        for start in range(0, len(clauses), MANY_CHUNK):
            self._many_split(dict(enumerate(clauses[start:start + MANY_CHUNK], start)), filters, window,
                             fields, limit, out)
        return out

    def _many_split(self, chunk: dict[int, dict[str, Any]], filters: list[dict[str, Any]], window: Window,
                    fields: Sequence[str], limit: int, out: list[list[Match]]) -> None:
        """One request for ``chunk``; halved when the predicates together exceed the engine's
        clause limit (``indices.query.bool.max_clause_count``, 1024 by default, counted over
        the whole query since Lucene 9)."""
        try:
            self._many_chunk(dict(chunk), filters, window, fields, limit, out)
        except StoreError as error:
            if len(chunk) < 2 or "too_many" not in str(error) and "maxClauseCount" not in str(error):
                raise
            for i in chunk:
                out[i].clear()
            items = list(chunk.items())
            half = len(items) // 2
            for part in (items[:half], items[half:]):
                self._many_split(dict(part), filters, window, fields, limit, out)

    def _many_chunk(self, pending: dict[int, dict[str, Any]], filters: list[dict[str, Any]], window: Window,
                    fields: Sequence[str], limit: int, out: list[list[Match]]) -> None:
        pit_id = self._open_pit() if limit * len(pending) > PAGE else None
        if limit * len(pending) > PAGE and pit_id is None:
            return  # no event index at all
        after: list[Any] | None = None
        target = events_target(self.prefix, window)
        try:
            while pending:
                should = [{"bool": {"filter": [clause], "_name": str(i)}} for i, clause in pending.items()]
                size = min(PAGE, sum(limit - len(out[i]) for i in pending))
                body: dict[str, Any] = {
                    "query": {"bool": {"filter": [*filters, {"bool": {"should": should,
                                                                      "minimum_should_match": 1}}]}},
                    "_source": self._source(fields), "track_total_hits": False,
                    "sort": list(EVENT_SORT), "size": size}
                if after is not None:
                    body["search_after"] = after
                if pit_id:
                    body["pit"] = {"id": pit_id, "keep_alive": self._keep_alive}
                    resp = self._search(None, body, "rule queries")
                    pit_id = resp.get("pit_id") or pit_id
                else:
                    resp = self._search(target, body, "rule queries")
                hits = resp["hits"]["hits"]
                for hit in hits:
                    names = hit.get("matched_queries") or ()  # a dict on ES with named-query scores
                    match: Match | None = None
                    for name in names:
                        i = int(name)
                        if i in pending and len(out[i]) < limit:
                            match = match or self._match(hit, fields)
                            out[i].append(match)
                for i in [i for i in pending if len(out[i]) >= limit]:
                    del pending[i]
                if len(hits) < size:
                    return
                after = hits[-1]["sort"]
        finally:
            if pit_id:
                self._close_pit(pit_id)

    def aggregate_matches(self, where: Any, datasets: Sequence[str] | None, window: Window,
                          group_by: Sequence[str], *, sum_field: str | None = None,
                          bucket_seconds: int | None = None,
                          agencies: Collection[str] | None = None) -> list[Bucket]:
        """A composite aggregation over the matching events, paged by its ``after_key`` (see
        :meth:`Store.aggregate_matches`)."""
        query = match_query(where, datasets, window, agencies)
        if query is None:
            return []
        sources = [{"a": {"terms": {"field": "organization.id", "missing_bucket": True}}}]
        sources += [{f"g{i}": {"terms": {"field": match_field(name), "missing_bucket": True}}}
                    for i, name in enumerate(group_by)]
        if bucket_seconds:  # aligned on multiples of the interval since the epoch, as SQLite's
            sources.append({"t": {"date_histogram": {"field": "@timestamp", "fixed_interval": f"{int(bucket_seconds)}s"}}})
        metrics: dict[str, Any] = {"first": {"min": {"field": "@timestamp"}}, "last": {"max": {"field": "@timestamp"}}}
        if sum_field:
            metrics["total"] = {"sum": {"field": sum_field}}
        out: list[Bucket] = []
        after: dict[str, Any] | None = None
        while True:
            composite: dict[str, Any] = {"size": AGGREGATION_PAGE, "sources": sources}
            if after:
                composite["after"] = after
            body = {"query": query, "size": 0, "track_total_hits": False,
                    "aggs": {"g": {"composite": composite, "aggs": metrics}}}
            resp = self._search(events_target(self.prefix, window), body, "rule aggregation")
            agg = (resp.get("aggregations") or {}).get("g") or {}
            for bucket in agg.get("buckets", []):
                key = bucket["key"]
                out.append(Bucket(key.get("a"), tuple(key.get(f"g{i}") for i in range(len(group_by))),
                                  int(bucket["doc_count"]), bucket["first"]["value"] / 1000.0,
                                  bucket["last"]["value"] / 1000.0,
                                  float((bucket.get("total") or {}).get("value") or 0.0),
                                  key["t"] / 1000.0 if bucket_seconds else None))
            after = agg.get("after_key")
            if not after or not agg.get("buckets"):
                return out

    def _count(self, target: str, query: dict[str, Any], what: str) -> int:
        # _search with size 0 rather than _count: only _search honours the query timeout
        resp = self._search(target, {"query": query, "size": 0, "track_total_hits": True}, what)
        return int(resp["hits"]["total"]["value"])

    def count_matches(self, where: Any, datasets: Sequence[str] | None, window: Window, *,
                      agencies: Collection[str] | None = None) -> int:
        query = match_query(where, datasets, window, agencies)
        return 0 if query is None else self._count(events_target(self.prefix, window), query, "rule count")

    def count_events(self, window: Window | None = None, group_by: str | None = None, *,
                     agencies: Collection[str] | None = None) -> dict[str, int]:
        scope = agency_filters(agencies)
        if scope is None:
            return {"": 0} if group_by is None else {}
        filters = window_filters(window) + scope
        query = {"bool": {"filter": filters}} if filters else {"match_all": {}}
        target = events_target(self.prefix, window)
        if group_by is None:
            return {"": self._count(target, query, "event count")}
        counts: dict[str, int] = {}
        after: dict[str, Any] | None = None
        while True:
            composite: dict[str, Any] = {
                "size": 1000, "sources": [{"k": {"terms": {"field": match_field(group_by), "missing_bucket": True}}}]}
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
