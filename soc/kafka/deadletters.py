"""The dead-letter topic: records the worker could not store, with why and where they came from.

One dead letter is one Kafka record on the dead-letter topic (``soc.logs.dlq`` by default):

* **value** -- the original record's value, byte for byte (``None`` for a tombstone): the
  truth, never re-encoded, so a replay sees exactly what the worker saw;
* **key** -- the original key (the agency), so dead letters stay partitioned like their source;
* **headers** -- the original headers, plus:

  ==================  ==========================================================================
  ``soc.dlq.reason``  why (``oversized (70000 bytes > 65536)``, ``not UTF-8``, ``malformed
                      record: unknown agency 'x' ...``, ``store rejected: mapper_parsing_exception:
                      ...``); UTF-8 text
  ``soc.dlq.stage``   ``record`` (before parsing), ``pipeline`` (size, encoding, stage error) or
                      ``store`` (the search engine refused the document: mapping, other 4xx)
  ``soc.dlq.topic``   the original coordinates: topic, partition, offset (decimal text), and
  ``soc.dlq.partition``  the original record's timestamp in ms (``soc.dlq.timestamp``): the
  ``soc.dlq.offset``  replay rebuilds the same event id and the same receive time from them
  ``soc.dlq.timestamp``
  ``soc.dlq.event_id``  the event id those coordinates give (for searching the store)
  ``soc.dlq.time``    when it was dead-lettered (UTC ISO)
  ==================  ==========================================================================

A dead letter is published and acknowledged (``acks=all``) before the offset of its original
record is committed, so a crash between the two publishes it again on restart: the topic is
at-least-once, and consumers of it (``soc kafka dlq list``) group by ``soc.dlq.event_id``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from soc.kafka.messages import Coordinates
from soc.model import iso, kafka_event_id, now_utc

PREFIX = "soc.dlq."
REASON = PREFIX + "reason"
STAGE = PREFIX + "stage"
TOPIC = PREFIX + "topic"
PARTITION = PREFIX + "partition"
OFFSET = PREFIX + "offset"
TIMESTAMP = PREFIX + "timestamp"
EVENT_ID = PREFIX + "event_id"
TIME = PREFIX + "time"

STAGE_RECORD = "record"
STAGE_PIPELINE = "pipeline"
STAGE_STORE = "store"


@dataclass(slots=True)
class DeadLetter:
    """A dead letter: the original record and why it could not be stored."""

    reason: str
    stage: str
    coordinates: Coordinates
    timestamp_ms: int | None
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] = field(default_factory=list)  # the original headers
    dlq_time: str = ""
    dlq_offset: tuple[int, int] | None = None  # (partition, offset) on the dead-letter topic

    @property
    def event_id(self) -> str:
        c = self.coordinates
        return kafka_event_id(c.topic, c.partition, c.offset)

    def preview(self, chars: int = 120) -> str:
        if self.value is None:
            return "(no value)"
        return self.value[: chars * 4].decode("utf-8", "replace")[:chars].replace("\n", "\\n")

    def to_kafka(self) -> dict[str, Any]:
        """Keyword arguments for ``KafkaProducer.send(dead_letter_topic, **...)``."""
        c = self.coordinates
        extra = [
            (REASON, self.reason.encode("utf-8", "replace")),
            (STAGE, self.stage.encode()),
            (TOPIC, c.topic.encode()),
            (PARTITION, str(c.partition).encode()),
            (OFFSET, str(c.offset).encode()),
            (TIMESTAMP, str(self.timestamp_ms if self.timestamp_ms is not None else -1).encode()),
            (EVENT_ID, self.event_id.encode()),
            (TIME, (self.dlq_time or iso(now_utc())).encode()),
        ]
        original = [(k, v) for k, v in self.headers if not k.startswith(PREFIX)]
        return {"key": self.key, "value": self.value, "headers": original + extra}

    @classmethod
    def from_kafka(cls, record: Any) -> DeadLetter:
        """A dead letter from a record consumed off the dead-letter topic."""
        h: dict[str, bytes] = {}
        original: list[tuple[str, bytes]] = []
        for name, value in record.headers or ():
            if name.startswith(PREFIX):
                h.setdefault(name, value)
            else:
                original.append((name, value))
        try:
            coords = Coordinates(h[TOPIC].decode(), int(h[PARTITION]), int(h[OFFSET]))
        except (KeyError, ValueError) as error:
            raise ValueError(f"{record.topic}/{record.partition}/{record.offset} is not a soc dead letter "
                             f"(missing or bad {error})") from None
        ts = int(h.get(TIMESTAMP, b"-1"))
        return cls(reason=h.get(REASON, b"").decode("utf-8", "replace"),
                   stage=h.get(STAGE, b"").decode("utf-8", "replace"), coordinates=coords,
                   timestamp_ms=None if ts < 0 else ts, key=record.key, value=record.value,
                   headers=original, dlq_time=h.get(TIME, b"").decode("utf-8", "replace"),
                   dlq_offset=(record.partition, record.offset))


def read_dead_letters(bootstrap: str, topic: str, *, timeout_s: float = 10.0, security: dict[str, Any] | None = None,
                      **config: Any) -> Iterator[DeadLetter]:
    """Every dead letter on ``topic`` from the beginning to the end offsets as of the call
    (no consumer group: reading never commits or moves anyone's position). ``security``: the
    TLS/SASL options (:func:`soc.kafka.config.security_options`)."""
    from kafka import KafkaConsumer, TopicPartition

    from soc.kafka.config import client_options

    consumer = KafkaConsumer(**client_options(bootstrap, security, enable_auto_commit=False, group_id=None,
                                              client_id="soc-dlq-reader", **config))
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        if not tps:
            return
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        remaining = {tp for tp in tps if ends[tp] > consumer.position(tp)}
        idle_since = None
        import time

        while remaining:
            batch = consumer.poll(timeout_ms=500)
            if not batch:
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since > timeout_s:
                    raise TimeoutError(f"reading {topic}: no records for {timeout_s:g} s before the end offsets")
                continue
            idle_since = None
            for tp, records in batch.items():
                for record in records:
                    if record.offset < ends[tp]:
                        yield DeadLetter.from_kafka(record)
                if consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
                    consumer.pause(tp)
    finally:
        consumer.close(autocommit=False)
