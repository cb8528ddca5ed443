"""Stores, chosen by URL scheme (Faust style): ``sqlite:///path/to/soc.db`` (embedded default),
``opensearch://host:9200`` and ``elasticsearch://host:9200`` (``+https`` for TLS, e.g.
``opensearch+https://user:pass@host:9200``). A URL is shown only through
:func:`soc.secrets.mask_url`; settings put the password from ``store_password_file``/``_env``
into the URL when connecting (:meth:`soc.config.Settings.store_connect_url`)."""

from __future__ import annotations

from importlib import import_module
from typing import Any
from urllib.parse import urlsplit

from soc.secrets import mask_url
from soc.store.base import (
    Conflict,
    Doc,
    EventPage,
    EventQuery,
    FieldFilter,
    Match,
    OwnedBy,
    Store,
    StoreError,
    StoreMissing,
    Window,
    WriteResult,
)

STORES = {
    "sqlite": "soc.store.sqlite:SQLiteStore",
    "opensearch": "soc.store.search:OpenSearchStore",
    "elasticsearch": "soc.store.search:ElasticsearchStore",
}

__all__ = ["KNOWN_OPTIONS", "STORES", "Conflict", "Doc", "EventPage", "EventQuery", "FieldFilter", "Match", "OwnedBy", "Store", "StoreError", "StoreMissing", "Window", "WriteResult", "open_configured_store",
           "open_store"]


#: every option a store may be opened with; each kind takes the ones it declares
#: (``OPENING_OPTIONS`` on the class) and ignores the others (SQLite has no indices or replicas)
KNOWN_OPTIONS = frozenset({"prefix", "replicas", "shards", "retention_days", "query_timeout", "write_timeout",
                           "bootstrap", "durable", "numeric_fields", "create"})


def open_store(url: str, **options: object) -> Store:
    """Open the store a URL names with the ``options`` that apply to its kind (see
    :data:`KNOWN_OPTIONS`): callers pass the same options whatever the store is. The error for
    an unknown scheme lists the schemes this build knows."""
    unknown = set(options) - KNOWN_OPTIONS
    if unknown:
        raise TypeError(f"unknown store option(s) {', '.join(sorted(unknown))}")
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme not in STORES:
        raise StoreError(f"unknown store URL {mask_url(url)!r}: use one of {', '.join(s + '://' for s in STORES)}")
    module, _, name = STORES[scheme].partition(":")
    cls = getattr(import_module(module), name)
    taken = {k: v for k, v in options.items() if k in cls.OPENING_OPTIONS}
    return cls.from_url(url, **taken)


def open_configured_store(settings: Any, url: str | None = None, **options: object) -> Store:
    """The store the settings name (``store_url``, else SQLite in the data dir; ``url``
    overrides), with the store password of the settings, opened with the settings' retention,
    detection query timeout and index settings (``options`` override them)."""
    options.setdefault("retention_days", settings.retention_days)
    options.setdefault("query_timeout", settings.detection.query_timeout_seconds)
    options.setdefault("prefix", settings.kafka.index_prefix)
    options.setdefault("replicas", settings.kafka.index_replicas)
    return open_store(settings.store_connect_url(url), **options)
