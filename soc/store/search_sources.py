"""Logs already in the cluster, queried in place: ``winlogbeat-*``, ``logs-windows.*-*``...

Provinces that run Elasticsearch often ship Windows logs with Winlogbeat or Elastic Agent
already. Copying them into ``<prefix>-events-*`` would store them twice; instead a *search source*
(:class:`soc.config.SearchSourceSettings`: a name, index patterns, the shipper, the datasets its
documents belong to) is read where it is. :class:`InPlaceEvents` is a view of the store that
looks like a store to the detection engine (:class:`soc.detect.engine.DetectionEngine`): rule
queries (compiled for the ``dsl-inplace`` dialect, :class:`soc.detect.search_backend.InPlaceSearchBackend`:
the shipper's field names, values as the rule spells them) run on the source's indices, and
everything else -- alerts, rule state -- goes to the store itself. Event search in place is
:meth:`InPlaceEvents.search_events` (filters and free text on the shipper's fields).

**The shipper's layout** (Winlogbeat 8 and Elastic Agent's Windows integration write the same
``winlog`` object): ``winlog.channel``, ``winlog.event_id`` (a keyword: ``"4688"``),
``winlog.provider_name``, ``winlog.computer_name``, ``winlog.record_id``,
``winlog.event_data.*`` (keywords, case kept), ``event.code`` (the event id as a keyword),
``host.name``, ``message``, and the ECS fields their pipelines add (``process.*``,
``user.*``...). The project's ``windows`` pipeline maps Sigma's Windows fields onto exactly those
``winlog.*`` names, so the same rules apply.

**Scheduled runs.** :class:`soc.detect.scheduler.RuleRunner` runs over a view as over a store:
the rules' state (watermarks, leases, health; collection ``rule_state``) is kept per source, in
``rule_state.<source>``, so a rule has one watermark on the store's events and one per source.
The scheduler's windows are on ingest time (``event.ingested``), which these documents usually
lack: the view reads them on the source's ``time_field`` (``@timestamp`` by default; Elastic
Agent's integrations set ``event.ingested``), so on ``@timestamp`` an event that reaches the
cluster later than the scheduler's overlap after its own time is not seen by the scheduled runs.

**Ids.** A match's id is ``<source>:<index>:<_id>`` -- stable as long as the document stays in
its index, so alert ids (computed from event ids) are stable across runs -- and
:meth:`InPlaceEvents.get_events` reads them back for the analyst's pivot. There is no
``event.ingested`` in these documents, so windows are on ``@timestamp``; the source's agency (if
set) is the agency of its matches.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from soc.model import Event
from soc.store.base import EventPage, EventQuery, Match, Window
from soc.store.search_base import SearchStore
from soc.store.search_query import flatten, lookup, ms, where_clause

__all__ = ["DIALECT", "InPlaceEvents", "SearchSource"]

#: the query dialect of rules run in place
DIALECT = "dsl-inplace"
_SORT = [{"@timestamp": {"order": "asc"}}, {"_id": {"order": "asc"}}]
_PAGE = 10_000


@dataclass(frozen=True)
class SearchSource:
    """One search source (see :class:`soc.config.SearchSourceSettings`)."""

    name: str
    index: str
    shipper: str = "winlogbeat"
    datasets: tuple[str, ...] = ("windows.security", "windows.sysmon", "windows.system", "windows.powershell")
    agency: str | None = None
    time_field: str = "@timestamp"

    @classmethod
    def from_settings(cls, spec: Any) -> SearchSource:
        return cls(spec.name, spec.index, spec.shipper, tuple(spec.datasets), spec.agency,
                   getattr(spec, "time_field", "@timestamp"))


#: the collection of the scheduler's rule state, kept per source (see **Scheduled runs**)
RULE_STATE = "rule_state"


def _window_filters(window: Window | None, ingest_field: str = "@timestamp") -> list[dict[str, Any]]:
    if window is None or (window.start is None and window.end is None):
        return []
    field = ingest_field if window.field == "event.ingested" else "@timestamp"
    spec: dict[str, Any] = {"format": "epoch_millis"}
    if window.start is not None:
        spec["gte"] = ms(window.start)
    if window.end is not None:
        spec["lt"] = ms(window.end)
    return [{"range": {field: spec}}]


class InPlaceEvents:
    """A store view whose events are a search source's documents (see the module docstring)."""

    dialect = DIALECT

    def __init__(self, store: SearchStore, source: SearchSource):
        self.store = store
        self.source = source

    def __getattr__(self, name: str) -> Any:  # alerts, exceptions, refresh...: the store's own
        return getattr(self.store, name)

    # -- documents: the store's, with the rule state kept per source ---------------------------
    def _collection(self, collection: str) -> str:
        return f"{RULE_STATE}.{self.source.name}" if collection == RULE_STATE else collection

    def get(self, collection: str, id: str) -> Any:
        return self.store.get(self._collection(collection), id)

    def put(self, collection: str, id: str, body: dict[str, Any], expected_version: int | None = None) -> int:
        return self.store.put(self._collection(collection), id, body, expected_version)

    def create(self, collection: str, id: str, body: dict[str, Any]) -> bool:
        return self.store.create(self._collection(collection), id, body)

    def delete(self, collection: str, id: str) -> bool:
        return self.store.delete(self._collection(collection), id)

    def create_documents(self, collection: str, docs: Any) -> Any:
        return self.store.create_documents(self._collection(collection), docs)

    def put_documents(self, collection: str, writes: Any) -> Any:
        return self.store.put_documents(self._collection(collection), writes)

    def find(self, collection: str, *args: Any, **kwargs: Any) -> Any:
        return self.store.find(self._collection(collection), *args, **kwargs)

    def iter_all(self, collection: str, **kwargs: Any) -> Any:
        return self.store.iter_all(self._collection(collection), **kwargs)

    # -- rule queries ------------------------------------------------------------------------------
    def _query(self, where: Any, datasets: Sequence[str] | None, window: Window | None,
               agencies: Collection[str] | None) -> dict[str, Any] | None:
        if datasets is not None and not set(datasets) & set(self.source.datasets):
            return None
        if agencies is not None and self.source.agency not in agencies:
            return None
        filters = _window_filters(window, self.source.time_field)
        clause = where_clause(where)
        if clause:
            filters.append(clause)
        return {"bool": {"filter": filters}} if filters else {"match_all": {}}

    def _id(self, hit: dict[str, Any]) -> str:
        return f"{self.source.name}:{hit['_index']}:{hit['_id']}"

    def _hits(self, query: dict[str, Any], limit: int, source: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        after = None
        while len(out) < limit:
            body: dict[str, Any] = {"query": query, "sort": _SORT, "size": min(_PAGE, limit - len(out)),
                                    "_source": source, "track_total_hits": False}
            if after is not None:
                body["search_after"] = after
            hits = self.store._search(self.source.index, body, f"reading {self.source.name} in place")["hits"]["hits"]
            out.extend(hits)
            if len(hits) < body["size"]:
                break
            after = hits[-1]["sort"]
        return out

    def find_matches(self, where: Any, datasets: Sequence[str] | None, window: Window, fields: Sequence[str],
                     limit: int, *, agencies: Collection[str] | None = None) -> list[Match]:
        query = self._query(where, datasets, window, agencies)
        if query is None or limit <= 0:
            return []
        wanted = sorted({f for f in fields if f not in ("_id", "@timestamp", "event.ingested")})
        out = []
        for hit in self._hits(query, limit, {"includes": wanted} if wanted else False):
            src = hit.get("_source") or {}
            ts = hit["sort"][0] / 1000.0
            values = {name: (self._id(hit) if name == "_id" else ts if name in ("@timestamp", "event.ingested")
                             else lookup(src, name)) for name in fields}
            out.append(Match(self._id(hit), ts, self.source.agency, values))
        return out

    def find_matches_many(self, wheres: Sequence[Any], datasets: Sequence[str] | None, window: Window,
                          fields: Sequence[str], limit: int, *,
                          agencies: Collection[str] | None = None) -> list[list[Match]]:
        return [self.find_matches(w, datasets, window, fields, limit, agencies=agencies) for w in wheres]

    def count_matches(self, where: Any, datasets: Sequence[str] | None, window: Window, *,
                      agencies: Collection[str] | None = None) -> int:
        query = self._query(where, datasets, window, agencies)
        if query is None:
            return 0
        body = {"query": query, "size": 0, "track_total_hits": True}
        return int(self.store._search(self.source.index, body, "rule count in place")["hits"]["total"]["value"])

    def prepare_fields(self, fields: Any) -> None:
        """Nothing to prepare: the shipper's mapping is what it is."""

    # -- events --------------------------------------------------------------------------------------
    def get_events(self, ids: Sequence[str], *, agencies: Collection[str] | None = None) -> list[Event]:
        """The documents behind match ids (``<source>:<index>:<_id>``), flattened, ``_id`` = the id."""
        if agencies is not None and self.source.agency not in agencies:
            return []
        found: dict[str, Event] = {}
        for id_ in dict.fromkeys(ids):
            name, _, rest = id_.partition(":")
            index, _, doc_id = rest.rpartition(":")
            if name != self.source.name or not index:
                continue
            body = {"query": {"bool": {"filter": [{"ids": {"values": [doc_id]}}, {"term": {"_index": index}}]}},
                    "size": 1}
            for hit in self.store._search(self.source.index, body, "reading events in place")["hits"]["hits"]:
                event: Event = flatten(hit.get("_source") or {})
                event["_id"] = id_
                found[id_] = event
        return [found[i] for i in ids if i in found]

    def search_events(self, query: EventQuery) -> EventPage:
        """One page of the source's documents, newest first: the query's filters compare values
        as stored (``equals``/``in``: ``term``/``terms``; ``prefix``; ``exists``; ``range``),
        free text is a ``query_string``-free ``multi_match`` phrase prefix over ``message``.
        Cursors are not offered in place (``cursor`` is always ``None``)."""
        filters = _window_filters(Window(query.start, query.end, "@timestamp"))
        for f in query.filters:
            if f.op == "equals":
                filters.append({"term": {f.field: f.value}})
            elif f.op == "in":
                filters.append({"terms": {f.field: list(f.value)}})
            elif f.op == "prefix":
                filters.append({"prefix": {f.field: {"value": f.value}}})
            elif f.op == "exists":
                clause = {"exists": {"field": f.field}}
                filters.append(clause if f.value else {"bool": {"must_not": [clause]}})
            elif f.op == "not_equals":
                filters.append({"bool": {"must_not": [{"term": {f.field: f.value}}]}})
            elif f.op == "range":
                times = f.kind in ("time", "date")
                spec: dict[str, Any] = {k: (ms(v) if times else v)
                                        for k, v in zip(("gte", "lt"), f.value, strict=True) if v is not None}
                if times:
                    spec["format"] = "epoch_millis"
                filters.append({"range": {f.field: spec}})
            elif f.op == "cidr":
                filters.append({"term": {f.field: f.value}})
        if query.text:
            filters.append({"match_phrase_prefix": {"message": {"query": query.text}}})
        body = {"query": {"bool": {"filter": filters}}, "size": query.size, "track_total_hits": True,
                "sort": [{"@timestamp": {"order": query.order}}, {"_id": {"order": query.order}}]}
        resp = self.store._search(self.source.index, body, f"searching {self.source.name} in place")
        events = []
        for hit in resp["hits"]["hits"]:
            event: Event = flatten(hit.get("_source") or {})
            event["_id"] = self._id(hit)
            events.append(event)
        total = resp["hits"].get("total") or {}
        return EventPage(events, None, int(total.get("value", len(events))), total.get("relation", "eq") == "eq")
