"""The ingest pipeline: records -> decode -> parse -> normalize -> events, with counters.

:class:`IngestPipeline` is what sources call. It never raises because of input: every
non-empty record yields exactly one event (``event.kind: pipeline_error`` when it could not
be parsed) or, when a dead-letter file is configured, one dead letter. Nothing is dropped
silently; :class:`IngestCounters` says what happened to each record.

- empty records (only whitespace/line ends after decoding) are skipped and counted as
  ``empty``: there is nothing to store;
- records larger than ``max_message_bytes`` are dead-lettered with the reason
  ``oversized (N bytes > max)``; without a dead-letter file they are stored as failed events
  holding the first ``max_message_bytes`` (tag ``_oversized``), never dropped;
- ``fmt="auto"`` picks a parser per record from its first characters; a source that knows
  the format of a whole file (:func:`soc.ingest.parsers.detect_format`) passes it instead;
- an unexpected exception inside the stages (a bug, not bad input) is caught per record:
  the record is dead-lettered with the error as the reason, or stored as a failed event.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from soc.ingest import Record
from soc.ingest.deadletter import DeadLetterWriter
from soc.ingest.decode import INVALID_UTF8, decode
from soc.ingest.normalize import SourceContext, format_utc, normalize
from soc.ingest.parsers import parse
from soc.model import FAILED, PARSED, PARTIAL, Event, Parsed

ContextFor = Callable[[Record], SourceContext]


@dataclass(slots=True)
class IngestCounters:
    """What happened to the records a pipeline processed."""

    records: int = 0
    parsed: int = 0
    partial: int = 0
    failed: int = 0
    dead_lettered: int = 0
    decode_errors: int = 0
    empty: int = 0
    oversized: int = 0
    internal_errors: int = 0
    per_dataset: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "parsed": self.parsed,
            "partial": self.partial,
            "failed": self.failed,
            "dead_lettered": self.dead_lettered,
            "decode_errors": self.decode_errors,
            "empty": self.empty,
            "oversized": self.oversized,
            "internal_errors": self.internal_errors,
            "per_dataset": dict(self.per_dataset),
        }


class IngestPipeline:
    """Decode, parse and normalize records from one source (or many, via ``context``).

    ``context`` is a :class:`SourceContext`, or a callable giving the context of each record
    (a shared listener resolving agencies by address). ``fmt`` is a parser name or ``auto``.
    """

    def __init__(
        self,
        context: SourceContext | ContextFor,
        fmt: str = "auto",
        max_message_bytes: int = 65536,
        dead_letter: DeadLetterWriter | None = None,
    ) -> None:
        self._fixed = context if isinstance(context, SourceContext) else None
        self._context_for = None if isinstance(context, SourceContext) else context
        self.fmt = fmt
        self.max_message_bytes = max_message_bytes
        self.dead_letter = dead_letter
        self.counters = IngestCounters()

    def process(self, records: Iterable[Record]) -> list[Event]:
        """Events for ``records`` in order (empty and dead-lettered records yield none)."""
        out: list[Event] = []
        append = out.append
        for record in records:
            event = self.process_one(record)
            if event is not None:
                append(event)
        return out

    def process_one(self, record: Record) -> Event | None:
        """The event for one record, or None (empty, or dead-lettered)."""
        counters = self.counters
        counters.records += 1
        try:
            raw = record.raw
            if len(raw) > self.max_message_bytes:
                return self._oversized(record)
            text, flags = decode(raw)
            if not text or text.isspace():
                counters.empty += 1
                return None
            if flags & INVALID_UTF8:
                counters.decode_errors += 1
            ctx = self._fixed if self._fixed is not None else self._context_for(record)  # type: ignore[misc]
            parsed = parse(text, self.fmt)
            event = normalize(parsed, text, record, ctx, flags)
        except Exception as exc:  # noqa: BLE001  (a stage bug must not stop the source)
            return self._internal_error(record, exc)
        status = parsed.status
        if status == PARSED:
            counters.parsed += 1
        elif status == PARTIAL:
            counters.partial += 1
        else:
            counters.failed += 1
        counters.per_dataset[event["event.dataset"]] += 1
        return event

    # ---- the unhappy paths ------------------------------------------------------------------

    def _oversized(self, record: Record) -> Event | None:
        size = len(record.raw)
        reason = f"oversized ({size} bytes > {self.max_message_bytes})"
        self.counters.oversized += 1
        if self.dead_letter is not None:
            self.dead_letter.write(reason, record)
            self.counters.dead_lettered += 1
            return None
        text, flags = decode(record.raw[: self.max_message_bytes])
        ctx = self._context_or_default(record)
        parsed = Parsed(fields={"message": text, "soc.parse.parser": "none"}, status=FAILED, error=f"{reason}: first {self.max_message_bytes} bytes kept")
        event = normalize(parsed, text, record, ctx, flags & ~INVALID_UTF8)
        event.setdefault("tags", []).append("_oversized")
        self.counters.failed += 1
        self.counters.per_dataset[event["event.dataset"]] += 1
        return event

    def _context_or_default(self, record: Record) -> SourceContext:
        if self._fixed is not None:
            return self._fixed
        try:
            return self._context_for(record)  # type: ignore[misc]
        except Exception:  # noqa: BLE001
            return SourceContext(source=record.origin)

    def _internal_error(self, record: Record, exc: Exception) -> Event | None:
        reason = f"internal error: {type(exc).__name__}: {str(exc)[:300]}"
        self.counters.internal_errors += 1
        if self.dead_letter is not None:
            try:
                self.dead_letter.write(reason, record)
                self.counters.dead_lettered += 1
                return None
            except OSError:
                pass
        text = record.raw[: self.max_message_bytes].decode("utf-8", "replace")
        received = format_utc(record.received)
        event: Event = {
            "_id": record.event_id,
            "@timestamp": received,
            "event.created": received,
            "event.kind": "pipeline_error",
            "event.dataset": "generic.text",
            "event.original": text,
            "message": text,
            "soc.parse.status": FAILED,
            "soc.parse.error": reason,
            "soc.parse.parser": "none",
            "soc.time.zone": "received",
            "soc.time.year": "received",
            "soc.source": record.origin,
            "tags": ["_parse_failed", "_internal_error"],
        }
        self.counters.failed += 1
        self.counters.per_dataset["generic.text"] += 1
        return event


def build_pipeline(context: SourceContext | ContextFor, fmt: str = "auto", *, max_message_bytes: int = 65536,
                   dead_letter: DeadLetterWriter | None = None) -> IngestPipeline:
    """The decode -> parse -> normalize stages for one source context: the one place they are put
    together, for the embedded service's sources (:mod:`soc.ingest.stages`), whole files
    (:class:`soc.ingest.reader.FileIngestor`) and the Kafka worker (one per record context)."""
    return IngestPipeline(context, fmt, max_message_bytes, dead_letter)
