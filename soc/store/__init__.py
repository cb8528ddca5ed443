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
from soc.store.base import Conflict, Doc, Match, Store, StoreError, Window, WriteResult

STORES = {
    "sqlite": "soc.store.sqlite:SQLiteStore",
    "opensearch": "soc.store.search:OpenSearchStore",
    "elasticsearch": "soc.store.search:ElasticsearchStore",
}

__all__ = ["STORES", "Conflict", "Doc", "Match", "Store", "StoreError", "Window", "WriteResult", "open_configured_store",
           "open_store"]


def open_store(url: str, **options: object) -> Store:
    """Open the store a URL names; the error lists the schemes this build knows."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme not in STORES:
        raise StoreError(f"unknown store URL {mask_url(url)!r}: use one of {', '.join(s + '://' for s in STORES)}")
    module, _, name = STORES[scheme].partition(":")
    cls = getattr(import_module(module), name)
    if scheme == "sqlite":
        from soc.catalog import default_catalog

        # SQLAlchemy convention: sqlite:///relative.db, sqlite:////absolute/path.db
        path = parts.netloc + parts.path[1:] if parts.path.startswith("/") else parts.netloc + parts.path
        options.setdefault("numeric_fields", default_catalog().numeric_fields)
        return cls(path or ":memory:", **options)
    return cls.from_url(url, **options)


def open_configured_store(settings: Any, url: str | None = None, **options: object) -> Store:
    """The store the settings name (``store_url``, else SQLite in the data dir; ``url``
    overrides), with the store password of the settings, opened with the settings' retention
    and detection query timeout."""
    url = settings.store_connect_url(url)
    if not url.startswith("sqlite"):
        options.setdefault("retention_days", settings.retention_days)
        options.setdefault("query_timeout", settings.detection.query_timeout_seconds)
    return open_store(url, **options)
