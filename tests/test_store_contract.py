"""The store contract (tests/store_contract.py) against SQLite and the real OpenSearch."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from soc.catalog import default_catalog
from soc.store.base import Store
from soc.store.sqlite import SQLiteStore
from tests.search_helpers import drop, open_search_store
from tests.store_contract import StoreContract, big_events


class TestSQLiteStore(StoreContract):
    # what pySigma's SQLite backend generates: columns named after the fields, NOCASE text
    PREDICATES: ClassVar[dict[str, Any]] = {
        "user_equals_ROOT": "`user.name` = 'ROOT'",
        "message_contains_Failed_PASSWORD": "message LIKE '%Failed PASSWORD%' ESCAPE '\\'",
        "source_ip_equals": "`source.ip` = '10.1.2.3'",
        "status_at_least_500": "`http.response.status_code` >= 500",
    }

    @staticmethod
    def _open(path: Path) -> SQLiteStore:
        return SQLiteStore(path, numeric_fields=default_catalog().numeric_fields)

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[Store]:
        store = self._open(tmp_path / "soc.db")
        yield store
        store.close()

    @pytest.fixture(scope="class")
    @classmethod
    def big_store(cls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
        store = cls._open(tmp_path_factory.mktemp("big") / "soc.db")
        assert store.write_events(big_events()).created == len(big_events())
        yield store
        store.close()


@pytest.mark.search
class TestOpenSearchStore(StoreContract):
    # query DSL clauses as a Sigma DSL backend writes them; case-insensitivity comes from the
    # index mapping (keyword + lowercase normalizer), not from the query
    PREDICATES: ClassVar[dict[str, Any]] = {
        # catalogue strings compare without case on their `lc` multi-field (soc.store.search_mappings)
        "user_equals_ROOT": {"term": {"user.name.lc": "ROOT"}},
        "message_contains_Failed_PASSWORD": {"wildcard": {"message.lc": {"value": "*Failed PASSWORD*"}}},
        "source_ip_equals": {"term": {"source.ip": "10.1.2.3"}},
        "status_at_least_500": {"range": {"http.response.status_code": {"gte": 500}}},
    }

    @pytest.fixture
    def store(self, opensearch_url: str, unique_name: str) -> Iterator[Store]:
        store = open_search_store(opensearch_url, unique_name)
        yield store
        drop(store)

    @pytest.fixture(scope="class")
    @classmethod
    def big_store(cls, opensearch_url: str) -> Iterator[Store]:
        store = open_search_store(opensearch_url, f"t-big-{uuid.uuid4().hex[:8]}")
        result = store.write_events(big_events())
        assert (result.created, result.rejected, result.retryable) == (len(big_events()), [], [])
        store.refresh()
        yield store
        drop(store)


@pytest.mark.search
class TestElasticsearchStore(TestOpenSearchStore):
    """The same contract on Elasticsearch 8 and 9 (testcontainers; only where Docker exists)."""

    @staticmethod
    def _open_es(url: str, prefix: str) -> Store:
        from soc.store.search import ElasticsearchStore

        return ElasticsearchStore.from_url("elasticsearch://" + url.split("://", 1)[1], prefix=prefix,
                                           replicas=0, retention_days=30)

    @pytest.fixture
    def store(self, elasticsearch_url: str, unique_name: str) -> Iterator[Store]:  # type: ignore[override]
        store = self._open_es(elasticsearch_url, unique_name)
        yield store
        drop(store)  # type: ignore[arg-type]

    @pytest.fixture(scope="class")
    @classmethod
    def big_store(cls, elasticsearch_url: str) -> Iterator[Store]:  # type: ignore[override]
        store = cls._open_es(elasticsearch_url, f"t-big-{uuid.uuid4().hex[:8]}")
        result = store.write_events(big_events())
        assert (result.created, result.rejected, result.retryable) == (len(big_events()), [], [])
        store.refresh()
        yield store
        drop(store)  # type: ignore[arg-type]
