"""The Kafka ingest worker's configuration (:class:`WorkerConfig`) and its store, and the one
place the TLS/SASL options of every Kafka client are built (:func:`security_options`).

Every consumer, producer and admin client of soc -- the worker and its dead-letter producer, the
syslog relay, the ``kafka`` source of ``soc run``, ``soc kafka status`` and ``soc kafka dlq`` --
is created with :func:`client_options` over the options :func:`security_options` makes from the
``kafka:`` settings (``security_protocol``, ``ssl_*``, ``sasl_*``:
:class:`soc.config_security.KafkaSecuritySettings`), so a setting reaches all of them or none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from soc.config_security import KafkaSecuritySettings, check_sasl_transport
from soc.secrets import mask_url
from soc.store import open_store
from soc.store.base import Store

__all__ = ["WorkerConfig", "client_options", "open_event_store", "security_options"]


def security_options(kafka: KafkaSecuritySettings | None, bootstrap: str) -> dict[str, Any]:
    """kafka-python keyword arguments for the TLS and SASL settings of ``kafka`` (the ``kafka:``
    section), for a client of the brokers ``bootstrap``: nothing for ``PLAINTEXT`` (or ``None``);
    ``security_protocol``, ``ssl_cafile``/``ssl_certfile``/``ssl_keyfile``/``ssl_password``,
    ``ssl_check_hostname`` for TLS; ``sasl_mechanism``, ``sasl_plain_username`` and
    ``sasl_plain_password`` (SCRAM uses them too) for SASL. The result holds secrets: never show
    or log it.

    Raises :class:`soc.config_security.KafkaSecurityError` for SASL PLAIN without TLS to a broker
    that is not this machine (unless ``allow_plaintext_sasl``), :class:`soc.secrets.SecretError`
    when a password file or variable is missing."""
    if kafka is None or kafka.security_protocol == "PLAINTEXT":
        return {}
    protocol = kafka.security_protocol
    check_sasl_transport(protocol, kafka.sasl_mechanism, bootstrap, kafka.allow_plaintext_sasl)
    options: dict[str, Any] = {"security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        options["ssl_check_hostname"] = kafka.ssl_check_hostname
        for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            if getattr(kafka, name) is not None:
                options[name] = str(getattr(kafka, name))
        password = kafka.ssl_key_secret()
        if password is not None:
            options["ssl_password"] = password
    if protocol.startswith("SASL_"):
        options.update(sasl_mechanism=kafka.sasl_mechanism, sasl_plain_username=kafka.sasl_username,
                       sasl_plain_password=kafka.sasl_secret())
    return options


def client_options(bootstrap: str, security: dict[str, Any] | None = None, **options: Any) -> dict[str, Any]:
    """Keyword arguments for a kafka-python client (``KafkaConsumer``, ``KafkaProducer``,
    ``KafkaAdminClient``): the brokers, the security options (:func:`security_options`), then
    the client's own ``options``."""
    return {"bootstrap_servers": bootstrap, **(security or {}), **options}


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
    security: dict[str, Any] = field(default_factory=dict, repr=False)
    """The Kafka clients' TLS/SASL options (:func:`security_options`; holds secrets)."""

    @property
    def display_store_url(self) -> str:
        """The store URL fit to show and log (password masked)."""
        return mask_url(self.store_url)

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> WorkerConfig:
        """The settings' values, ``overrides`` (not None) on top; the store URL gets the settings'
        store password (:meth:`soc.config.Settings.store_connect_url`), the Kafka clients the
        settings' TLS/SASL options for the brokers used (:func:`security_options`)."""
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
        values.setdefault("security", security_options(k, values["bootstrap"]))
        return cls(**values)


def open_event_store(url: str, prefix: str = "soc", write_timeout: float = 60.0,
                     replicas: int | None = None) -> Store:
    """The store for ``url`` with the index prefix, replicas and a bounded write timeout (a store
    takes the options that apply to it)."""
    return open_store(url, prefix=prefix, write_timeout=write_timeout, replicas=replicas)
