"""Document queries on the search engine (:mod:`soc.store.doc_query`): a page of documents by
``search_after``, and counts in total or per group (nested ``terms`` aggregations), all over
one bool filter built from the query.

**Only DSL values.** Every value is a ``term``/``terms``/``prefix``/``range`` value or a
``wildcard`` pattern with ``*``, ``?`` and ``\\`` escaped (free text); never query text.

**Types.** Document indices map strings as exact keywords, numbers as doubles and booleans as
booleans (:func:`soc.store.search_mappings.docs_template`); a field's type is read from the
collection's mapping (cached, read again when a field is not in it yet), so that every operator
asks only what the field can answer -- a number on a keyword field, a prefix on a number, text
on a boolean match nothing instead of failing the search, as in SQLite, where they match
nothing either. Case-insensitive comparisons are ``case_insensitive`` ``term``/``prefix``/
``wildcard`` queries for ASCII values (the flag folds ASCII only); a value with other letters is
a ``regexp`` spelling each of them in both cases (``[đĐ]``), everything else escaped, so ``Đ``
finds ``đ`` as in SQLite (id fields: plain ``term``/``terms``/``prefix``).

**Sort** on the fields (``missing``: first ascending, last descending; an unmapped field
sorts as missing), then ``@soc_id``; the cursor holds the last hit's ``sort`` values, given
back as ``search_after``.

**Counting.** ``track_total_hits`` up to the query's ``track_total`` (``False`` for 0). Group-by counts are
nested ``terms`` aggregations ordered by count, then key: exact on a collection index of one
shard (the default); with more shards a bucket's count may be a lower bound.

**Limits of the engine.** Texts longer than the keyword ``ignore_above`` (8,191 characters)
are kept in ``_source`` but not indexed: no filter, free text, sort or count sees them (SQLite
does). A value compared without case becomes an automaton the engine limits: an ASCII value
with letters of at most :data:`MAX_REGEX_LENGTH` characters, a value with other letters a
regular expression of at most that many; a longer one is a :class:`ValueError` here.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from soc.store import search_mappings as maps
from soc.store.base import OwnedBy, StoreError
from soc.store.doc_query import (
    ID_FIELD,
    MAX_GROUP_BUCKETS,
    DocFilter,
    DocPage,
    DocQuery,
    check_doc_field,
    decode_doc_cursor,
    encode_doc_cursor,
    forms,
    group_sizes,
    number_key,
)
from soc.store.event_query import _shown
from soc.store.search_client import HTTPError
from soc.store.search_docs import doc_from_hit
from soc.store.search_events import _wildcard
from soc.store.search_query import owned_by_filters

__all__ = ["DocSearching", "field_types"]

_TEXT = frozenset({"keyword", "constant_keyword", "wildcard"})
_NUMBER = frozenset({"long", "integer", "short", "byte", "double", "float", "half_float", "scaled_float",
                     "unsigned_long"})
_NONE: dict[str, Any] = {"match_none": {}}
#: sorted on when a sort field is an object: no document has it, so all sort as missing
_NO_FIELD = "@soc_none"
_BAD_CURSOR = "invalid cursor: use the cursor of the previous page as it was given"
#: longest regular expression the engine takes (``index.max_regex_length``, 1,000 by default),
#: and longest text a ``case_insensitive`` term or prefix may have (measured on OpenSearch 2.19:
#: 1,001 characters are "input automaton is too large")
MAX_REGEX_LENGTH = 1000


def field_types(properties: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Dotted field -> ``text``, ``number``, ``bool``, ``object`` or ``other``, from a mapping's
    ``properties``."""
    out: dict[str, str] = {}
    for name, spec in properties.items():
        path = prefix + name
        if "properties" in spec or spec.get("type") in (None, "object", "nested"):
            out[path] = "object"
            out.update(field_types(spec.get("properties") or {}, path + "."))
            continue
        kind = spec.get("type")
        out[path] = ("text" if kind in _TEXT else "number" if kind in _NUMBER else "bool" if kind == "boolean"
                     else "other")
    return out


def _pattern(text: str) -> str:
    """A Lucene regular expression matching ``text`` ignoring case: ASCII letters through the
    query's ``case_insensitive`` flag (which covers ASCII only), other letters as a class of their
    case forms (``[đĐ]``), every other character escaped."""
    out = []
    for ch in text:
        if ch.isascii():
            out.append(ch if ch.isalnum() else "\\" + ch)
            continue
        forms_ = sorted({v for v in (ch, ch.lower(), ch.upper(), ch.title()) if len(v) == 1})
        out.append("[" + "".join(forms_) + "]" if len(forms_) > 1 else ch)
    return "".join(out)


def _ci(name: str, kind: str, text: str) -> dict[str, Any]:
    """``name`` equals (``kind`` ``term``), starts with (``prefix``) or contains (``wildcard``)
    ``text`` ignoring case."""
    value = _wildcard(text) if kind == "wildcard" else text
    if text.lower() == text == text.upper():  # nothing to fold: digits, punctuation...
        return {kind: {name: {"value": value}}}
    if text.isascii():
        if len(text) > MAX_REGEX_LENGTH:  # the flag builds an automaton of the text
            raise ValueError(f"{_shown(text)}: too long to compare without case on the search store "
                             f"(at most {MAX_REGEX_LENGTH:,} characters)")
        return {kind: {name: {"value": value, "case_insensitive": True}}}
    pattern = _pattern(text)
    pattern = {"term": pattern, "prefix": pattern + ".*", "wildcard": ".*" + pattern + ".*"}[kind]
    if len(pattern) > MAX_REGEX_LENGTH:
        raise ValueError(f"{_shown(text)}: too long to compare without case on the search store "
                         f"(at most {MAX_REGEX_LENGTH:,} characters once its letters are spelled in both cases)")
    return {"regexp": {name: {"value": pattern, "case_insensitive": True, "flags": "NONE"}}}


def _any(clauses: list[dict[str, Any]]) -> dict[str, Any]:
    if not clauses:
        return _NONE
    return clauses[0] if len(clauses) == 1 else {"bool": {"should": clauses, "minimum_should_match": 1}}


def _equals(name: str, kind: str | None, f: DocFilter) -> dict[str, Any]:
    values = [forms(v) for v in f.values]
    if kind == "text":
        texts = list(dict.fromkeys(v.text for v in values))
        if f.exact:
            return {"term": {name: texts[0]}} if len(texts) == 1 else {"terms": {name: texts}}
        return _any([_ci(name, "term", t) for t in texts])
    if kind == "number":
        numbers = list(dict.fromkeys(v.number for v in values if v.number is not None))
        return {"terms": {name: numbers}} if numbers else _NONE
    if kind == "bool":
        booleans = sorted({v.boolean for v in values if v.boolean is not None})
        return {"terms": {name: booleans}} if booleans else _NONE
    return _NONE


def filter_clause(f: DocFilter, name: str, kind: str | None) -> dict[str, Any]:
    """The DSL clause of one checked filter on the engine field ``name`` of type ``kind``
    (:func:`field_types`; ``None``: not mapped yet)."""
    if f.op == "not_equals":
        return {"bool": {"must_not": [_equals(name, kind, f)]}}
    if f.op == "exists":
        clause = {"exists": {"field": name}} if kind in ("text", "number", "bool") else _NONE
        return clause if f.value else {"bool": {"must_not": [clause]}}
    if f.op == "prefix":
        if kind != "text":
            return _NONE
        return {"prefix": {name: {"value": f.value}}} if f.exact else _ci(name, "prefix", f.value)
    if f.op == "range":
        gte, lt = f.value
        text = isinstance(gte if gte is not None else lt, str)
        if kind != ("text" if text else "number"):
            return _NONE
        return {"range": {name: {k: v for k, v in (("gte", gte), ("lt", lt)) if v is not None}}}
    return _equals(name, kind, f)


class DocHost(Protocol):
    """What :class:`DocSearching` needs of :class:`~soc.store.search_base.SearchStore`."""

    _dirty: set[str]
    _doc_types: dict[str, dict[str, str]]

    def _doc_index(self, collection: str) -> str: ...

    def _search(self, target: str | None, body: dict[str, Any], what: str = "search") -> dict[str, Any]: ...

    def _call(self, method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None,
              ndjson: bool = False, timeout: float | None = None, what: str = "request") -> Any: ...

    def _request(self, method: str, path: str, *, what: str, **kwargs: Any) -> Any: ...


class DocSearching(DocHost):
    """:meth:`query_documents` and :meth:`count_documents`; mixed into
    :class:`~soc.store.search_base.SearchStore`."""

    def _types(self, index: str, fields: Iterator[str]) -> dict[str, str]:
        """The types of a collection index's fields, read again when one of ``fields`` is not
        among them yet (mapped since the last read)."""
        types = self._doc_types.get(index)
        if types is not None and all(f in types for f in fields):
            return types
        try:
            resp = self._call("GET", f"/{index}/_mapping", what=f"reading the fields of {index}")
        except HTTPError as error:
            if error.status != 404:
                raise StoreError(f"reading the fields of {index} failed: {error.reason}") from error
            return {}
        mapping = next(iter(resp.values()), None) if isinstance(resp, dict) else None
        properties = ((mapping or {}).get("mappings") or {}).get("properties") or {}
        types = self._doc_types[index] = field_types(properties)
        return types

    def _prepare(self, query: DocQuery, more: Sequence[str], owned_by: OwnedBy | None
                 ) -> tuple[str, dict[str, str], dict[str, Any] | None]:
        """The index, its field types and the query clause (``None``: nothing can match)."""
        index = self._doc_index(query.collection)
        if index in self._dirty:  # read this process's own writes
            self._dirty.discard(index)
            self._request("POST", f"/{index}/_refresh", params={"ignore_unavailable": True}, what="refresh")
        names = [*(f.field for f in query.filters), *query.text_fields, *more]
        types = self._types(index, (n for n in names if n != ID_FIELD))
        filters: list[dict[str, Any]] = []
        if owned_by is not None:
            for name in owned_by.fields:
                check_doc_field(name, "owner field")
            owners = owned_by_filters(owned_by)
            if owners is None:
                return index, types, None
            filters.extend(owners)
        if query.text is not None:
            filters.append(_any([_ci(self._name(n), "wildcard", query.text)
                                 for n in query.text_fields if self._kind(types, n) == "text"]))
        filters.extend(filter_clause(f, self._name(f.field), self._kind(types, f.field)) for f in query.filters)
        return index, types, {"bool": {"filter": filters}} if filters else {"match_all": {}}

    @staticmethod
    def _name(field: str) -> str:
        return maps.DOC_ID_FIELD if field == ID_FIELD else field

    @staticmethod
    def _kind(types: dict[str, str], field: str) -> str | None:
        return "text" if field == ID_FIELD else types.get(field)

    def _sort(self, query: DocQuery, types: dict[str, str]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for name in query.sort:
            kind = self._kind(types, name)
            if name == ID_FIELD:
                out.append({maps.DOC_ID_FIELD: {"order": query.order}})
                continue
            field = name if kind in (None, "text", "number", "bool") else _NO_FIELD
            out.append({field: {"order": query.order, "missing": "_last" if query.descending else "_first",
                                "unmapped_type": "keyword"}})
        return out

    def _after(self, query: DocQuery, types: dict[str, str]) -> list[Any]:
        values = decode_doc_cursor(query, "dsl")
        for name, value in zip(query.sort, values, strict=True):
            kind = self._kind(types, name)
            if kind == "number":
                ok = value in ("-Infinity", "Infinity") or (value is not None and not isinstance(value, str))
            elif kind == "bool":
                ok = value is None or value in (0, 1)
            else:
                ok = value is None or isinstance(value, str)
            if not ok:
                raise ValueError(_BAD_CURSOR)
        return values

    def query_documents(self, query: DocQuery, *, owned_by: OwnedBy | None = None) -> DocPage:
        """One page of the documents matching ``query`` (see :class:`~soc.store.base.Store`)."""
        index, types, clause = self._prepare(query, [n for n in query.sort if n != ID_FIELD], owned_by)
        after = self._after(query, types) if query.cursor else None
        if clause is None:
            return DocPage([], None, 0)
        body: dict[str, Any] = {"query": clause, "sort": self._sort(query, types), "size": query.size + 1,
                                "track_total_hits": query.track_total or False, "seq_no_primary_term": True}
        if after is not None:
            body["search_after"] = after
        try:
            resp = self._search(index, body, f"reading {query.collection}")
        except StoreError as error:
            cause = error.__cause__
            if after is not None and isinstance(cause, HTTPError) and cause.status == 400:
                raise ValueError(_BAD_CURSOR) from error
            raise
        hits = resp["hits"]["hits"]
        more = len(hits) > query.size
        hits = hits[:query.size]
        total = resp["hits"].get("total") or {}
        count, exact = int(total.get("value", 0)), total.get("relation", "eq") == "eq"
        if not more and after is None:  # the whole answer (as SQLite, whatever track_total)
            count, exact = len(hits), True
        elif not query.track_total:  # not counted: the page
            count, exact = len(hits), False
        cursor = encode_doc_cursor("dsl", query, hits[-1]["sort"]) if more else None
        return DocPage([doc_from_hit(hit) for hit in hits], cursor, max(count, len(hits)), exact)

    def count_documents(self, query: DocQuery, group_by: Sequence[str] = (), *, size: int | Sequence[int] = 100,
                        owned_by: OwnedBy | None = None) -> list[tuple[tuple[Any, ...], int]]:
        """How many documents match ``query``, in total or per group (see :class:`~soc.store.base.Store`)."""
        fields, sizes = group_sizes(group_by, size)
        index, types, clause = self._prepare(query, [f for f in fields if f != ID_FIELD], owned_by)
        if clause is None:
            return [] if fields else [((), 0)]
        if not fields:
            resp = self._search(index, {"query": clause, "size": 0, "track_total_hits": True},
                                f"counting {query.collection}")
            return [((), int(resp["hits"]["total"]["value"]))]
        kinds = [self._kind(types, f) for f in fields]
        if any(kind not in ("text", "number", "bool") for kind in kinds):
            return []  # a field no document has a value of: no groups
        aggs: dict[str, Any] = {}
        for name, level_size in reversed(list(zip(fields, sizes, strict=True))):
            terms = {"terms": {"field": self._name(name), "size": level_size,
                               "order": [{"_count": "desc"}, {"_key": "asc"}]}}
            if aggs:
                terms["aggs"] = aggs
            aggs = {"g": terms}
        body = {"query": clause, "size": 0, "track_total_hits": False, "aggs": aggs}
        try:
            resp = self._search(index, body, f"counting {query.collection} by {', '.join(fields)}")
        except StoreError as error:
            if "too_many_buckets" in str(error):
                raise ValueError(f"more than {MAX_GROUP_BUCKETS:,} groups: ask for fewer per level (size)") from error
            raise
        out: list[tuple[tuple[Any, ...], int]] = []
        buckets = _walk((resp.get("aggregations") or {}).get("g") or {}, kinds, (), out)
        if buckets > MAX_GROUP_BUCKETS:
            raise ValueError(f"more than {MAX_GROUP_BUCKETS:,} groups: ask for fewer per level (size)")
        return out


def _walk(agg: dict[str, Any], kinds: list[str | None], key: tuple[Any, ...],
          out: list[tuple[tuple[Any, ...], int]]) -> int:
    """Leaf groups of nested ``terms`` buckets into ``out``; returns how many buckets there were."""
    seen = 0
    for bucket in agg.get("buckets") or []:
        seen += 1
        value = bucket["key"]
        kind = kinds[len(key)]
        value = bool(value) if kind == "bool" else number_key(value) if kind == "number" else value
        if len(key) + 1 == len(kinds):
            out.append(((*key, value), int(bucket["doc_count"])))
        else:
            seen += _walk(bucket.get("g") or {}, kinds, (*key, value), out)
    return seen
