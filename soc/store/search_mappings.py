r"""Index templates and retention policies for the search store, generated from the catalogue.

``ingest/fields.yml`` (through :func:`soc.catalog.default_catalog`) lists the fields the
service emits: each gets its mapping here (ECS's type when ECS defines the field, else the type
fields.yml gives it), and everything else is mapped by dynamic templates. Nothing in this module talks to a server; :mod:`soc.store.search` installs what it
builds.

**ECS types** (issue #14). A field of the catalogue that the Elastic Common Schema defines is
mapped as ECS maps it (:mod:`soc.store.ecs_schema`, generated from the schema's files): ``message``
is ``match_only_text``, ``process.command_line`` and ``url.original`` are ``wildcard`` (with ECS's
``text`` multi-field), names and paths are ``keyword`` with ECS's ``ignore_above``, addresses
``ip``, and so on; the project's own fields (``winlog.*``, ``agency``...) take their type from
fields.yml. Kibana therefore sees ECS types, top values keep their case, and a substring of a
20,000-character command line is found with a ``wildcard`` query (``case_insensitive``) on the
wildcard field itself. Every document carries ``ecs.version`` (:data:`ECS_VERSION_FIELD`).

**The ``lc`` multi-field** (:data:`LOWERCASE`): every string field of the catalogue also has
``<field>.lc``, a keyword with the ``soc_lowercase`` normalizer described below. Whatever must
match case-insensitively -- compiled Sigma rules (:mod:`soc.detect.search_backend`), event-search
filters and free text -- queries ``<field>.lc`` (:func:`match_field`), so the rules' results do
not change with the ECS types: a leading-wildcard ``query_string`` on a ``wildcard`` field
matches nothing on OpenSearch 2.19 (below), on the ``lc`` keyword it does. Fields outside the
catalogue (the ``dynamic`` prefixes, unknown keys) are still lowercase keywords themselves.
Indices created before the ECS types have no ``lc`` fields: ``soc store reindex`` moves them
(:mod:`soc.store.search_reindex`).

Case-insensitivity (Sigma matches case-insensitively; keyword fields do not, see pySigma
Elasticsearch backend issues #107 and #178): every string field a rule can query --
``keyword`` *and* ``text`` in fields.yml, every string under the ``dynamic`` prefixes and any
unknown string -- is a ``keyword`` with the custom ``soc_lowercase`` normalizer. The
normalizer is applied at index time and to the query value of term, terms, match, wildcard,
prefix, regexp and query_string queries, so ``user.name: ROOT`` finds ``root`` and
``message: *Failed PASSWORD*`` finds ``Failed password for ...``. It lowercases only (no ASCII
folding): Vietnamese diacritics stay significant, as in Sigma. The analyst's free text is the
exception: ``message`` and ``event.original`` also carry a ``folded`` sub-field (:data:`FOLDED`)
with the ``soc_folding`` normalizer (lowercase, then ASCII folding: ``Đăng nhập`` is indexed
``dang nhap``), which event search uses so that ``dang nhap`` finds ``Đăng nhập``. Event indices
that existed before get the sub-field only if their analysis settings have the normalizer, so
existing indices are left as they are (:func:`unfolded`) and new day indices have it. One trap (measured on 2.19.6):
a ``regexp`` pattern is lowercased as a whole too, so ``\D``, ``\S``, ``\W`` turn into
``\d``, ``\s``, ``\w``; write them ``[^\d]``, ``[^\s]``, ``[^\w]``.

Why do the rules compare on the ``lc`` keyword rather than on ECS's ``wildcard`` fields
themselves (``process.command_line``, ``url.original``...)? Measured on the
devstack's OpenSearch 2.19.6 (see ``tests/test_search_store.py``): it accepts a normalizer,
and term/wildcard/prefix/regexp queries then match case-insensitively, but ``query_string``
with a leading wildcard (``message:*password*``, which is how Lucene-syntax Sigma backends
write ``contains``) matches nothing even in lower case, and ``terms`` ignores the
normalizer; Elasticsearch's ``wildcard`` type accepts no normalizer at all. A keyword with a
normalizer behaves the same for every query type on both engines. The price: a leading
wildcard scans the shard's term dictionary (about 50 ms per 200,000 distinct messages on
the devstack, against 5-250 ms for the wildcard type depending on selectivity), and values
longer than ``ignore_above`` (8,191 characters, so that a normalized value never exceeds
Lucene's 32,766-byte term limit) are kept in ``_source`` -- returned by every read -- but not
indexed for that field, so no rule can match them on it (event search still finds them on the
``wildcard`` fields, see :mod:`soc.store.search_events`). The document itself is never
rejected for its length.

**Cost** (``benchmarks/search_ecs_mapping.py``, 20,000 real sshd/Apache events, OpenSearch 2.19.6
on 2 shared CPUs, load average 2.4-3.0): every catalogue string is indexed twice (ECS field and
``lc``), plus ECS's ``text`` multi-fields and the ``wildcard`` n-grams: bulk writes about half as
fast as with the old lowercase-only keywords (4,600/s against 9,300/s without command lines;
3,200/s against 7,500/s with a 40-400-character command line on every event) and the index
1.75-1.9 times larger (884 against 466 bytes per event; 1,509 against 859). ECS's ``text``
multi-fields are about a third of the write cost (6,300/s, 811 bytes without them). Rule queries
stay within 1-2 ms of before (4-5 ms).

Store-owned keys are exact keywords without the normalizer, as their SQLite columns are case
sensitive: ``event.dataset``, ``organization.id``, ``soc.id`` (the event id, the sort
tie-breaker), and in document collections every string.

``index.mapping.ignore_malformed`` makes a bad number, IP or date (``source.ip:
"not-an-ip"``, ``process.pid: "abc"``) drop only that field from the index (it is listed in
``_ignored``; the value stays in ``_source``); the event is still stored. On OpenSearch 2.19.6
this also covers an object sent where a keyword is mapped (measured: without the setting that
document is rejected with 400; Elasticsearch documents no ``ignore_malformed`` for keyword
fields -- not measured here -- so there it would come back in ``rejected``). What a mapping still rejects -- a concrete value where an object is mapped
(``user: "root"`` next to ``user.name``), or more than the total-fields limit (10,000) of
distinct fields -- comes back per document in ``WriteResult.rejected`` with the reason.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from soc.catalog import Catalog, default_catalog
from soc.store.ecs_schema import STRING_TYPES, ecs_schema

NORMALIZER = "soc_lowercase"
#: the case-insensitive sub-field of every string field of the catalogue (see the docstring)
LOWERCASE = "lc"
#: the ECS version every event carries
ECS_VERSION_FIELD = "ecs.version"
#: the normalizer of the free-text copies: lowercase and ASCII folding (diacritics dropped)
FOLDING_NORMALIZER = "soc_folding"
#: the sub-field of ``message`` and ``event.original`` that free text searches
FOLDED = "folded"
#: the fields that carry a folded copy
FOLDED_FIELDS = ("message", "event.original")
#: Longest string (in UTF-16 units) indexed in a keyword: a unit is at most 3 UTF-8 bytes, also
#: after lowercasing, so 8,191 units stay well under Lucene's 32,766-byte term limit.
IGNORE_ABOVE = 8191
EVENT_FIELDS_LIMIT = 10_000
DOC_FIELDS_LIMIT = 5_000
#: Fields the store itself writes and keys on: exact, case preserved (grouping keys).
EXACT_FIELDS = ("event.dataset", "organization.id", "soc.id")
#: The event id copy used as the sort tie-breaker (sorting on ``_id`` is discouraged and
#: disabled by default on Elasticsearch 8+).
ID_FIELD = "soc.id"
#: The document id copy in document collections (stripped from bodies on read).
DOC_ID_FIELD = "@soc_id"
#: Where an unqualified query_string term (Sigma ``keywords``) looks.
DEFAULT_QUERY_FIELDS = ("message.lc",)

_LOWERCASE_KEYWORD = {"type": "keyword", "normalizer": NORMALIZER, "ignore_above": IGNORE_ABOVE}
_EXACT_KEYWORD = {"type": "keyword", "ignore_above": IGNORE_ABOVE}
_TYPES: dict[str, dict[str, Any]] = {
    "keyword": _LOWERCASE_KEYWORD,
    "text": _LOWERCASE_KEYWORD,
    "long": {"type": "long"},
    "float": {"type": "double"},
    "ip": {"type": "ip"},
    "date": {"type": "date", "format": "strict_date_optional_time||epoch_millis"},
    "boolean": {"type": "boolean"},
}


def field_mapping(kind: str) -> dict[str, Any]:
    """The mapping of one fields.yml type (unknown types map like ``keyword``)."""
    return dict(_TYPES.get(kind, _LOWERCASE_KEYWORD))


#: the project's own string fields (not in ECS): case kept, like Winlogbeat's keywords
_OWN_STRING = {"keyword": {"type": "keyword", "ignore_above": IGNORE_ABOVE},
               "text": {"type": "match_only_text"}}


def _catalog_mapping(name: str, kind: str) -> dict[str, Any]:
    """ECS's mapping of a catalogue field, else the fields.yml type; strings get ``lc``."""
    if name in EXACT_FIELDS:
        return dict(_EXACT_KEYWORD)
    mapping = ecs_schema().mapping(name)
    if mapping is None:
        mapping = dict(_OWN_STRING[kind]) if kind in _OWN_STRING else field_mapping(kind)
    if mapping["type"] in STRING_TYPES:
        mapping["fields"] = {**mapping.get("fields", {}), LOWERCASE: dict(_LOWERCASE_KEYWORD)}
    return mapping


def event_fields(catalog: Catalog | None = None) -> dict[str, dict[str, Any]]:
    """Flat name -> mapping of every field the event template declares."""
    catalog = catalog or default_catalog()
    return _event_fields(catalog)


_FIELDS_CACHE: dict[int, tuple[Catalog, dict[str, dict[str, Any]]]] = {}


def _event_fields(catalog: Catalog) -> dict[str, dict[str, Any]]:
    cached = _FIELDS_CACHE.get(id(catalog))
    if cached is not None and cached[0] is catalog:
        return cached[1]
    flat = {name: _catalog_mapping(name, kind) for name, kind in catalog.field_types.items()}
    for name in EXACT_FIELDS:
        flat[name] = dict(_EXACT_KEYWORD)
    flat["event.ingested"] = field_mapping("date")
    flat[ECS_VERSION_FIELD] = ecs_schema().mapping(ECS_VERSION_FIELD) or dict(_EXACT_KEYWORD)
    for name in FOLDED_FIELDS:
        mapping = flat.setdefault(name, {"type": "match_only_text"})
        mapping["fields"] = {**mapping.get("fields", {}), FOLDED: {
            "type": "keyword", "normalizer": FOLDING_NORMALIZER, "ignore_above": IGNORE_ABOVE}}
    _FIELDS_CACHE[id(catalog)] = (catalog, flat)
    return flat


def match_field(name: str, catalog: Catalog | None = None) -> str:
    """The field a case-insensitive comparison of ``name`` queries: ``<name>.lc`` for a string
    field of the catalogue, the field itself otherwise (numbers, addresses, times, exact store
    keys, and fields outside the catalogue, which are lowercase keywords themselves)."""
    mapping = _event_fields(catalog or default_catalog()).get(name)
    if mapping is not None and LOWERCASE in (mapping.get("fields") or {}):
        return f"{name}.{LOWERCASE}"
    return name


def exists_field(name: str, catalog: Catalog | None = None) -> str:
    """The field an ``exists`` test of ``name`` looks at: the field itself, or ``<name>.lc`` when
    ECS leaves it unindexed (``event.original``: ``index: false, doc_values: false``) or it is
    text without norms (``match_only_text``). A value longer than ``ignore_above`` is not in
    ``lc``: there the test says absent."""
    mapping = _event_fields(catalog or default_catalog()).get(name)
    if mapping is None or LOWERCASE not in (mapping.get("fields") or {}):
        return name
    if mapping.get("index") is False or mapping["type"] in ("match_only_text", "text"):
        return f"{name}.{LOWERCASE}"
    return name


def properties_tree(flat: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Nest flat dotted names into ``properties`` trees (``a.b`` is the object path a -> b)."""
    root: dict[str, Any] = {}
    for name in sorted(flat):
        node = root
        parts = name.split(".")
        for i, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {"properties": {}})
            if "properties" not in child:
                raise ValueError(f"fields.yml: {'.'.join(parts[:i + 1])!r} is a field and also "
                                 f"the parent of {name!r}; one name cannot be both")
            node = child["properties"]
        if parts[-1] in node:
            raise ValueError(f"fields.yml: {name!r} is a field and also the parent of other fields")
        node[parts[-1]] = flat[name]
    return root


def _dynamic_templates(prefixes: tuple[str, ...]) -> list[dict[str, Any]]:
    templates: list[dict[str, Any]] = []
    for i, prefix in enumerate(prefixes):
        # everything under a vendor prefix is keyword text, numbers and booleans included
        for kind in ("string", "long", "double", "boolean"):
            templates.append({f"vendor_{i}_{kind}": {
                "path_match": prefix.rstrip(".") + ".*", "match_mapping_type": kind,
                "mapping": dict(_LOWERCASE_KEYWORD)}})
    templates.append({"strings": {"match_mapping_type": "string", "mapping": dict(_LOWERCASE_KEYWORD)}})
    templates.append({"decimals": {"match_mapping_type": "double", "mapping": {"type": "double"}}})
    return templates


def _settings(shards: int, replicas: int | None, fields_limit: int) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "number_of_shards": shards,
        "mapping.total_fields.limit": fields_limit,
        "mapping.ignore_malformed": True,
    }
    if replicas is not None:
        settings["number_of_replicas"] = replicas
    return settings


def events_template(prefix: str, *, catalog: Catalog | None = None, shards: int = 1,
                    replicas: int | None = None, extra_settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """The composable index template of the daily event indices ``<prefix>-events-*``."""
    catalog = catalog or default_catalog()
    flat = {name: orjson.loads(orjson.dumps(m)) for name, m in _event_fields(catalog).items()}
    settings = _settings(shards, replicas, EVENT_FIELDS_LIMIT)
    settings["query.default_field"] = list(DEFAULT_QUERY_FIELDS)
    settings["analysis"] = {"normalizer": {
        NORMALIZER: {"type": "custom", "filter": ["lowercase"]},
        FOLDING_NORMALIZER: {"type": "custom", "filter": ["lowercase", "asciifolding"]}}}
    settings.update(extra_settings or {})
    return {
        "index_patterns": [f"{prefix}-events-*"],
        "priority": 200,
        "template": {
            "settings": {"index": settings},
            "mappings": {
                "dynamic": True,
                "date_detection": False,
                "numeric_detection": False,
                "dynamic_templates": _dynamic_templates(catalog.dynamic_prefixes),
                "properties": properties_tree(flat),
            },
            "aliases": {f"{prefix}-events": {}},
        },
        "_meta": {"managed_by": "soc", "description": "SOC events, one index per UTC day of @timestamp",
                  "ecs_version": ecs_schema().version},
    }


def unfolded(properties: dict[str, Any]) -> dict[str, Any]:
    """Event ``properties`` without the folded sub-fields: what may be added to an event index
    created before them (its analysis settings lack the folding normalizer)."""
    out = dict(properties)
    for name in FOLDED_FIELDS:
        node, parts = out, name.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict) or "properties" not in child:
                break
            node[part] = child = {**child, "properties": dict(child["properties"])}
            node = child["properties"]
        else:
            if isinstance(node.get(parts[-1]), dict):
                node[parts[-1]] = {k: v for k, v in node[parts[-1]].items() if k != "fields"}
    return out


def docs_template(prefix: str, *, shards: int = 1, replicas: int | None = None) -> dict[str, Any]:
    """The template of the document collections ``<prefix>-docs-<collection>``.

    Document bodies are nested JSON filtered by exact value: strings are exact keywords (ISO
    UTC times with a ``Z`` sort correctly as text, so ``first_seen`` ranges and sorts work),
    numbers are doubles (so sorts are numeric whatever the first value looked like).
    """
    return {
        "index_patterns": [f"{prefix}-docs-*"],
        "priority": 200,
        "template": {
            "settings": {"index": _settings(shards, replicas, DOC_FIELDS_LIMIT)},
            "mappings": {
                "dynamic": True,
                "date_detection": False,
                "numeric_detection": False,
                "dynamic_templates": [
                    {"strings": {"match_mapping_type": "string", "mapping": dict(_EXACT_KEYWORD)}},
                    {"integers": {"match_mapping_type": "long", "mapping": {"type": "double"}}},
                    {"decimals": {"match_mapping_type": "double", "mapping": {"type": "double"}}},
                ],
                "properties": {DOC_ID_FIELD: dict(_EXACT_KEYWORD)},
            },
        },
        "_meta": {"managed_by": "soc", "description": "SOC document collections (alerts, rule state...)"},
    }


def ism_policy(prefix: str, retention_days: int) -> dict[str, Any]:
    """OpenSearch ISM: delete an event index ``retention_days`` after it was created.

    ISM counts from the index *creation* date; an index created late for old events (a
    backfill) lives its full retention from then. :meth:`purge_events` is exact.
    """
    return {"policy": {
        "description": f"SOC: delete {prefix}-events-* indices after {retention_days} days",
        "default_state": "hot",
        "states": [
            {"name": "hot", "actions": [],
             "transitions": [{"state_name": "delete", "conditions": {"min_index_age": f"{retention_days}d"}}]},
            {"name": "delete", "actions": [{"delete": {}}], "transitions": []},
        ],
        "ism_template": [{"index_patterns": [f"{prefix}-events-*"], "priority": 200}],
    }}


def ilm_policy(prefix: str, retention_days: int) -> dict[str, Any]:
    """Elasticsearch ILM: delete an event index ``retention_days`` after its day.

    With ``index.lifecycle.parse_origination_date`` (set by :func:`ilm_settings`) ILM reads
    the origination date from the index name (``soc-events-2025.01.31``), so a backfilled old
    day is deleted on time rather than ``retention_days`` after its creation.
    """
    return {"policy": {
        "_meta": {"managed_by": "soc", "description": f"delete {prefix}-events-* after {retention_days} days"},
        "phases": {
            "hot": {"min_age": "0ms", "actions": {}},
            "delete": {"min_age": f"{retention_days}d", "actions": {"delete": {}}},
        },
    }}


def ilm_settings(policy_name: str) -> dict[str, Any]:
    return {"lifecycle.name": policy_name, "lifecycle.parse_origination_date": True}


def fingerprint(*bodies: Any) -> str:
    """A short digest of template and policy bodies: unchanged digest, nothing to install."""
    digest = hashlib.blake2b(digest_size=8)
    for body in bodies:
        digest.update(orjson.dumps(body, option=orjson.OPT_SORT_KEYS))
    return digest.hexdigest()
