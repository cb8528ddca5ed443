"""The Kafka ingest worker's configuration (:class:`WorkerConfig`) and its store."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from soc.secrets import mask_url
from soc.store import open_store
from soc.store.base import Store

__all__ = ["WorkerConfig", "open_event_store"]


@dataclass
class WorkerConfig:
    """Everything a worker needs; :meth:`from_settings` fills it from :class:`soc.config.Settings`."""

    bootstrap: str
    topics: list[str]
    group: str
    store_url: str = field(repr=False)  # may carry the password: show display_store_url
    dead_letter_topic: str
    batch_size: int = 5000
    max_message_bytes: int = 65536
    invalid_utf8: str = "dead-letter"
    index_prefix: str = "soc"
    index_replicas: int | None = None
    timezone: str = "Asia/Ho_Chi_Minh"
    max_poll_interval_ms: int = 300_000
    session_timeout_ms: int = 45_000
    retry_max_seconds: float = 30.0
    stop_grace: float = 10.0
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    metrics_interval_seconds: float = 30.0
    client_id: str = "soc-ingest"
    write_timeout: float = 60.0

    @property
    def display_store_url(self) -> str:
        """The store URL fit to show and log (password masked)."""
        return mask_url(self.store_url)

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> WorkerConfig:
        """The settings' values, ``overrides`` (not None) on top; the store URL gets the settings'
        store password (:meth:`soc.config.Settings.store_connect_url`)."""
        k = settings.kafka
        values: dict[str, Any] = dict(
            bootstrap=k.bootstrap, topics=[k.topic], group=k.group,
            store_url=settings.store_connect_url(overrides.pop("store_url", None)),
            dead_letter_topic=k.dead_letter_topic, batch_size=k.batch_size, max_message_bytes=k.max_message_bytes,
            invalid_utf8=k.invalid_utf8, index_prefix=k.index_prefix, index_replicas=k.index_replicas, timezone=settings.timezone,
            max_poll_interval_ms=k.max_poll_interval_ms, session_timeout_ms=k.session_timeout_ms,
            retry_max_seconds=k.retry_max_seconds,
            metrics_port=k.metrics_port, metrics_host=k.metrics_host,
            metrics_interval_seconds=k.metrics_interval_seconds)
        values.update({key: v for key, v in overrides.items() if v is not None})
        return cls(**values)


def open_event_store(url: str, prefix: str = "soc", write_timeout: float = 60.0,
                     replicas: int | None = None) -> Store:
    """The store for ``url`` with the index prefix, replicas and a bounded write timeout (a store
    takes the options that apply to it)."""
    return open_store(url, prefix=prefix, write_timeout=write_timeout, replicas=replicas)
