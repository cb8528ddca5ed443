"""What the worker holds between ``poll`` and ``commit``: the records taken and not yet settled
(:class:`PendingBatch`, which decides the offsets to commit), and the pipeline's dead-letter
stand-in (:class:`DeadLetterStandIn`). See :mod:`soc.kafka.worker` for the commit rule."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from soc.ingest import Record
from soc.kafka import deadletters as dl
from soc.model import Event

__all__ = ["DeadLetterStandIn", "PendingBatch"]


class DeadLetterStandIn:
    """Stands in for the pipeline's dead-letter file: remembers why a record was refused."""

    def __init__(self) -> None:
        self.last: tuple[str, str] | None = None  # (event id, reason)

    def write(self, reason: str, record: Record) -> None:
        self.last = (record.event_id, reason)


class PendingBatch:
    """Records taken from Kafka and not yet committed, with what is still open per partition."""

    def __init__(self) -> None:
        self.events: dict[str, Event] = {}               # id -> document still to write
        self.where: dict[str, tuple[Any, int]] = {}      # id -> (TopicPartition, offset)
        self.raw: dict[str, Any] = {}                    # id -> ConsumerRecord (for dead letters)
        self.dead: list[tuple[dl.DeadLetter, Any]] = []  # dead letters not yet acknowledged, with tp
        self.open: dict[Any, set[int]] = defaultdict(set)  # tp -> offsets not settled yet
        self.end: dict[Any, int] = {}                    # tp -> offset after the last record taken

    def unsettled(self) -> bool:
        return any(self.open.values())

    def commit_targets(self, committed: dict[Any, int]) -> dict[Any, int]:
        """Per partition: the first unsettled offset, else the end; only where it moved on."""
        out = {}
        for tp, end in self.end.items():
            still = self.open.get(tp)
            target = min(still) if still else end
            if target > committed.get(tp, -1):
                out[tp] = target
        return out

    def release(self, partitions: set[Any]) -> dict[Any, int]:
        """Forget the revoked partitions; returns tp -> first unsettled offset (to rewind to)."""
        rewind = {}
        for tp in partitions:
            still = self.open.pop(tp, None)
            if still:
                rewind[tp] = min(still)
            self.end.pop(tp, None)
        if rewind:
            gone = [i for i, (tp, _) in self.where.items() if tp in partitions]
            for id_ in gone:
                self.events.pop(id_, None)
                self.raw.pop(id_, None)
                del self.where[id_]
            self.dead = [(d, tp) for d, tp in self.dead if tp not in partitions]
        return rewind

    def reset(self) -> None:
        self.__init__()  # type: ignore[misc]
