"""The consumer settings every soc Kafka consumer of the log topic uses (the ingest worker and
the embedded service's ``kafka`` source): explicit commits only, from the earliest offset for a
new group, bounded fetches."""

from __future__ import annotations

from typing import Any

from soc.kafka.config import client_options

__all__ = ["consumer_options"]


def consumer_options(bootstrap: str, group: str, *, client_id: str = "soc-ingest", batch_size: int = 5000,
                     max_poll_interval_ms: int = 300_000, session_timeout_ms: int = 45_000,
                     security: dict[str, Any] | None = None) -> dict[str, Any]:
    """Keyword arguments for ``kafka.KafkaConsumer``: offsets are committed by the caller, only
    after the records up to them are stored (``enable_auto_commit=False``); ``security`` are the
    TLS/SASL options (:func:`soc.kafka.config.security_options`)."""
    return client_options(
        bootstrap, security, group_id=group, client_id=client_id,
        enable_auto_commit=False, auto_offset_reset="earliest",
        max_poll_records=batch_size, max_poll_interval_ms=max_poll_interval_ms,
        session_timeout_ms=session_timeout_ms, heartbeat_interval_ms=max(1000, session_timeout_ms // 10),
        max_partition_fetch_bytes=2 * 1024 * 1024, fetch_max_bytes=16 * 1024 * 1024,
        check_crcs=False)
