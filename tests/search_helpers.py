"""Helpers for tests against the real OpenSearch: store URLs and cleaning up test indices."""

from __future__ import annotations

import contextlib

from soc.store.search import OpenSearchStore, SearchStore


def store_url(http_url: str) -> str:
    """``http://127.0.0.1:PORT`` (the fixture's URL) -> ``opensearch://127.0.0.1:PORT``."""
    return "opensearch://" + http_url.split("://", 1)[1]


def open_search_store(http_url: str, prefix: str, **options: object) -> OpenSearchStore:
    options.setdefault("replicas", 0)
    options.setdefault("retention_days", 30)
    return OpenSearchStore.from_url(store_url(http_url), prefix=prefix, **options)  # type: ignore[return-value, arg-type]


def drop(store: SearchStore) -> None:
    """Delete the indices and templates of a test prefix (best effort)."""
    with contextlib.suppress(Exception):
        store.transport.request("DELETE", f"/{store.prefix}-events-*,{store.prefix}-docs-*",
                                params={"ignore_unavailable": True, "allow_no_indices": True})
    for name in ("events", "docs", "kibana-alerts"):
        with contextlib.suppress(Exception):
            store.transport.request("DELETE", f"/_index_template/{store.prefix}-{name}")
    store.close()
