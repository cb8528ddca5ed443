"""``soc kafka status``: a consumer group's lag per partition, from the broker.

Lag = the partition's end offset (log end) minus the group's committed offset: the records
the group has not settled yet. Computed without joining the group (an OffsetFetch and a
ListOffsets request), so it works whether workers run or not and never disturbs them.
The dead-letter topic's record count is shown next to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class PartitionLag:
    topic: str
    partition: int
    committed: int | None  # None: the group never committed on this partition
    end: int
    beginning: int

    @property
    def lag(self) -> int:
        start = self.committed if self.committed is not None else self.beginning
        return max(0, self.end - start)


@dataclass
class GroupStatus:
    group: str
    partitions: list[PartitionLag] = field(default_factory=list)
    dead_letters: int | None = None
    dead_letter_topic: str | None = None

    @property
    def lag(self) -> int:
        return sum(p.lag for p in self.partitions)

    @property
    def fully_committed(self) -> bool:
        return all(p.committed == p.end for p in self.partitions if p.end > p.beginning or p.committed)

    def as_dict(self) -> dict[str, Any]:
        return {
            "group": self.group, "lag": self.lag, "fully_committed": self.fully_committed,
            "dead_letter_topic": self.dead_letter_topic, "dead_letters": self.dead_letters,
            "partitions": [{"topic": p.topic, "partition": p.partition, "committed": p.committed,
                            "end": p.end, "lag": p.lag} for p in self.partitions],
        }


def topic_counts(consumer: Any, topic: str) -> tuple[list[Any], dict[Any, int], dict[Any, int]]:
    from kafka import TopicPartition

    parts = consumer.partitions_for_topic(topic) or set()
    tps = [TopicPartition(topic, p) for p in sorted(parts)]
    if not tps:
        return [], {}, {}
    return tps, consumer.beginning_offsets(tps), consumer.end_offsets(tps)


def group_status(bootstrap: str, group: str, topics: list[str], dead_letter_topic: str | None = None, *,
                 security: dict[str, Any] | None = None) -> GroupStatus:
    """Committed vs end offsets of ``group`` on every partition of ``topics`` (``security``: the
    TLS/SASL options, :func:`soc.kafka.config.security_options`)."""
    from kafka import KafkaConsumer

    from soc.kafka.config import client_options

    consumer = KafkaConsumer(**client_options(bootstrap, security, group_id=group, enable_auto_commit=False,
                                              client_id="soc-kafka-status"))
    try:
        status = GroupStatus(group, dead_letter_topic=dead_letter_topic)
        for topic in topics:
            tps, begin, end = topic_counts(consumer, topic)
            for tp in tps:
                committed = consumer.committed(tp)
                status.partitions.append(PartitionLag(topic, tp.partition, committed, end[tp], begin[tp]))
        if dead_letter_topic:
            tps, begin, end = topic_counts(consumer, dead_letter_topic)
            status.dead_letters = sum(end[tp] - begin[tp] for tp in tps) if tps else 0
        return status
    finally:
        consumer.close(autocommit=False)
