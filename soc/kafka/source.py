"""The ``kafka`` source type of the embedded service: a topic consumed into the embedded store.

A source definition such as::

    name: agency-shippers
    type: kafka
    topic: soc.logs            # default: the kafka: settings' topic
    bootstrap: kafka1:9092     # default: the kafka: settings' bootstrap
    group: soc-run-shippers    # default: soc-run-NAME
    agency: so-tttt            # records without a key or soc.agency header are this agency's
    format: auto

reads the log topic's wire format (:mod:`soc.kafka.messages`: one raw message per record; key =
agency; ``soc.*`` headers) with the same consumer settings as ``soc kafka worker``
(:func:`soc.kafka.consumer.consumer_options`), in its own consumer group. It runs inside the
embedded flow (:mod:`soc.ingest.flow`): each polled batch goes through the stages and the sink like
any source's, and only then :meth:`KafkaSource.ack` commits, per partition, the offset after the
batch -- explicitly and synchronously (``enable_auto_commit=False``). A crash before the commit
re-reads the batch; ids are :func:`soc.model.kafka_event_id` of the record's coordinates and the
store is create-only, so nothing is lost or doubled. Polling, storing and committing happen on the
source's one thread, in that order, so a rebalance (inside ``poll``) never meets a batch that is
stored but not committed; a commit that fails anyway (the member was evicted while the store was
down for longer than ``max_poll_interval_ms``) is logged, and the next owner re-reads the batch.

Records the wire format refuses (no value, an unknown agency in the key, a bad header: see
:func:`soc.kafka.messages.inspect`) go to the service's dead-letter file with the reason and their
exact bytes, then count as settled. The defaults of the record context come from the definition:
its name (``soc.source`` when the record has no ``soc.source`` header), its agency (when the record
has no key and no ``soc.agency`` header; ``by-network``: from the ``soc.peer`` header), its format
and time zone and dataset. The service's ``soc.raw_b64`` rule applies to bytes that are not UTF-8
(stored, flagged), as for the other embedded sources.

The source type is declared by the ingest engine (:mod:`soc.ingest.registry`); :func:`register`
provides it (the embedded service calls it).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from soc.config_security import KafkaSecurityError
from soc.ingest.normalize import SourceContext
from soc.ingest.pipeline import IngestPipeline, build_pipeline
from soc.ingest.sourcedefs import BY_NETWORK
from soc.ingest.sources.base import Batch, SourceCounters, SourceError
from soc.ingest.stages import StageOptions
from soc.kafka.config import security_options
from soc.kafka.consumer import consumer_options
from soc.kafka.messages import ContextKey, Malformed, context_for, inspect, to_record
from soc.model import Event
from soc.secrets import SecretError

if TYPE_CHECKING:
    from soc.ingest.sourcedefs import SourceDefinition
    from soc.ingest.sources.contract import SourceEnv, SourceRegistry

__all__ = ["KafkaBatch", "KafkaSource", "KafkaStages", "register"]

log = logging.getLogger(__name__)
POLL_MS = 500


class KafkaBatch(Batch):
    """A batch of Kafka records: ``contexts[i]`` is record i's ``(context key, peer)``, or the
    reason it is malformed; ``position`` maps ``(topic, partition)`` to the offset to commit."""

    __slots__ = ("contexts",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.contexts: list[tuple[ContextKey, str | None] | str] = []


class KafkaSource:
    """See the module docstring. ``batches`` polls; ``ack`` commits (same thread)."""

    def __init__(self, definition: SourceDefinition, env: SourceEnv, *, consumer_factory: Any = None) -> None:
        k = env.settings.kafka
        self.name = definition.name
        self.topic = definition.topic or k.topic
        self.bootstrap = definition.bootstrap or k.bootstrap
        self.group = definition.group or f"soc-run-{definition.name}"
        self.batch_size = k.batch_size
        try:
            security = security_options(k, self.bootstrap)
        except (KafkaSecurityError, SecretError) as error:
            raise SourceError(f"source {self.name!r}: {error}") from error
        self.options = consumer_options(self.bootstrap, self.group, client_id=f"soc-run-{definition.name}",
                                        batch_size=k.batch_size, max_poll_interval_ms=k.max_poll_interval_ms,
                                        session_timeout_ms=k.session_timeout_ms, security=security)
        self.agencies = env.agencies
        self.zone = definition.timezone
        self.defaults = dict(default_agency=None if definition.agency == BY_NETWORK else definition.agency,
                             default_source=definition.name, default_format=definition.format)
        self.counters = SourceCounters()
        self.consumer: Any = None
        self._factory = consumer_factory
        self._stop = threading.Event()
        self._polling = False
        self._lock = threading.Lock()

    def start(self) -> None:
        """Connect and subscribe (:class:`SourceError` when the brokers cannot be reached)."""
        from kafka import KafkaConsumer
        from kafka.errors import KafkaError

        try:
            self.consumer = (self._factory or KafkaConsumer)(**self.options)
            self.consumer.subscribe([self.topic])
        except KafkaError as error:
            raise SourceError(f"source {self.name!r}: cannot consume {self.topic} from Kafka at {self.bootstrap}: "
                              f"{error}") from error

    def batches(self) -> Iterator[Batch]:
        with self._lock:
            if self.consumer is None:  # stopped before it began
                return
            self._polling = True
        try:
            while not self._stop.is_set():
                polled = self.consumer.poll(timeout_ms=POLL_MS, max_records=self.batch_size)
                if polled:
                    yield self._batch(polled)
        finally:
            self.consumer.close(autocommit=False)

    def _batch(self, polled: dict[Any, list[Any]]) -> KafkaBatch:
        batch = KafkaBatch(key=self.topic, position={})
        for tp, records in polled.items():
            for rec in records:
                try:
                    found: tuple[ContextKey, str | None] | str = inspect(
                        rec.topic, rec.key, rec.value, rec.headers, self.agencies, self.zone, **self.defaults)
                except Malformed as error:
                    found = str(error)
                batch.append(to_record(rec.topic, rec.partition, rec.offset, rec.timestamp, rec.value or b"",
                                       None if isinstance(found, str) else found[1]))
                batch.contexts.append(found)
                self.counters.add(1, len(rec.value or b""))
            batch.position[(tp.topic, tp.partition)] = records[-1].offset + 1
        return batch

    def ack(self, batch: Batch) -> None:
        """The batch is stored: commit, per partition, the offset after it."""
        from kafka import OffsetAndMetadata, TopicPartition

        offsets = {TopicPartition(t, p): OffsetAndMetadata(o, "", -1) for (t, p), o in batch.position.items()}
        try:
            self.consumer.commit(offsets)
        except Exception as error:  # noqa: BLE001  (evicted/rebalanced: the next owner re-reads; ids dedupe)
            self.counters.error("commit_failed")
            log.warning("%s: offset commit failed (%s); these records will be read again", self.name, error)

    def stop(self) -> None:
        """``batches`` ends within one poll (and closes the consumer); a source stopped before it
        polled closes it here."""
        self._stop.set()
        with self._lock:
            if not self._polling and self.consumer is not None:
                self.consumer.close(autocommit=False)
                self.consumer = None

    def listening(self) -> list[tuple[str, str, int]]:
        return []

    def describe(self) -> str:
        return f"kafka {self.name!r}: consuming {self.topic} from {self.bootstrap} (group {self.group})"


class KafkaStages:
    """Decode/parse/normalize with a context per record (agency from the key, ``soc.*`` headers):
    one pipeline per context key, built like the worker's; malformed records dead-lettered."""

    def __init__(self, definition: SourceDefinition, options: StageOptions) -> None:
        self.agencies = options.agencies
        self.dataset = definition.dataset
        self.options = options
        self.pipelines: dict[ContextKey, IngestPipeline] = {}
        self.malformed = 0

    def _pipeline(self, key: ContextKey) -> IngestPipeline:
        pipeline = self.pipelines.get(key)
        if pipeline is None:
            pipeline = self.pipelines[key] = build_pipeline(
                context_for(key, self.agencies, self.dataset), key.fmt,
                max_message_bytes=self.options.max_message_bytes, dead_letter=self.options.dead_letter)
        return pipeline

    def process(self, batch: Batch) -> list[Event]:
        contexts = batch.contexts if isinstance(batch, KafkaBatch) else []
        events: list[Event] = []
        for record, found in zip(batch, contexts, strict=True):
            if isinstance(found, str):
                self.malformed += 1
                if self.options.dead_letter is not None:
                    self.options.dead_letter.write(found, record)
                continue
            event = self._pipeline(found[0]).process_one(record)
            if event is not None:
                events.append(event)
        return events

    def counters(self) -> dict[str, int]:
        totals: dict[str, int] = {"malformed": self.malformed, "dead_lettered": 0}
        for pipeline in self.pipelines.values():
            for key, value in pipeline.counters.as_dict().items():
                if isinstance(value, int):
                    totals[key] = totals.get(key, 0) + value
        if self.options.dead_letter is not None:
            totals["dead_lettered"] += self.malformed
        return totals


def kafka_stages(definition: SourceDefinition, context: SourceContext, options: StageOptions) -> KafkaStages:
    """The stages of a ``kafka`` source (``context`` is the definition's; records may name others)."""
    return KafkaStages(definition, options)


def register(registry: SourceRegistry) -> None:
    """Provide the ``kafka`` source type in ``registry``."""
    registry.provide("kafka", KafkaSource, stages=kafka_stages)
