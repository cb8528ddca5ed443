"""Whole files through the ingest stages: used by ``soc hunt`` and by the service's inbox.

Picks the source by content (``.evtx`` by its magic bytes, JSON arrays, plain or gzip lines),
detects the format once per file from its first lines (unless the caller forces one), and
yields normalized events batch by batch together with the source batch, so the caller can
acknowledge a batch only after the store has it. Input a source could not turn into a record
(a corrupt .evtx chunk) is dead-lettered with the source's reason.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from soc.ingest import Record
from soc.ingest.deadletter import DeadLetterFile
from soc.ingest.decode import decode
from soc.ingest.normalize import SourceContext
from soc.ingest.parsers import detect_format
from soc.ingest.pipeline import IngestPipeline
from soc.ingest.sources.base import Batch
from soc.ingest.sources.evtx import EvtxReader, is_evtx
from soc.ingest.sources.files import read_file
from soc.model import Event

SNIFF_LINES = 50


def file_format(path: Path, forced: str = "auto") -> str:
    """The parser for a file: ``forced`` unless ``auto``; ``json`` for .evtx; else detected."""
    if forced != "auto":
        return forced
    if is_evtx(path):
        return "json"
    sample: list[str] = []
    for batch in read_file(path, batch_size=SNIFF_LINES):
        sample = [decode(r.raw)[0] for r in itertools.islice(batch, SNIFF_LINES)]
        break
    return detect_format(sample) if sample else "auto"


def source_batches(path: Path, **options: Any) -> Iterator[Batch]:
    if is_evtx(path):
        yield from EvtxReader(path).batches(start=options.get("start_offset", 0))
    else:
        yield from read_file(path, **options)


class FileIngestor:
    """Turns files into event batches with one pipeline (and one set of counters)."""

    def __init__(self, context: SourceContext, *, fmt: str = "auto",
                 dead_letter: Path | DeadLetterFile | None = None, max_message_bytes: int = 65536):
        self.context = context
        self.fmt = fmt
        self._owns_dead_letter = isinstance(dead_letter, Path)
        self._dead_letter = DeadLetterFile(dead_letter) if isinstance(dead_letter, Path) else dead_letter
        self._pipelines: dict[str, IngestPipeline] = {}
        self.max_message_bytes = max_message_bytes
        self.source_errors = 0

    def _pipeline(self, fmt: str) -> IngestPipeline:
        if fmt not in self._pipelines:
            self._pipelines[fmt] = IngestPipeline(self.context, fmt, self.max_message_bytes, self._dead_letter)
        return self._pipelines[fmt]

    def events(self, batch: Batch, fmt: str) -> list[Event]:
        """Events of one source batch; the batch's source errors are dead-lettered."""
        for origin, reason in batch.errors:
            self.source_errors += 1
            if self._dead_letter is not None:
                self._dead_letter.write(f"source: {reason}", Record(b"", "", datetime.now(UTC), origin))
        return self._pipeline(fmt).process(batch)

    def read(self, path: Path, *, start_offset: int = 0) -> Iterator[tuple[list[Event], int]]:
        """(events, position) per batch; position is the source's resume point (bytes for text)."""
        fmt = file_format(path, self.fmt)
        for batch in source_batches(path, start_offset=start_offset):
            position = batch.position if isinstance(batch.position, int) else 0
            yield self.events(batch, fmt), position

    def counters(self) -> dict[str, int]:
        total: dict[str, int] = {"source_errors": self.source_errors}
        for pipeline in self._pipelines.values():
            for key, value in pipeline.counters.as_dict().items():
                if isinstance(value, int):
                    total[key] = total.get(key, 0) + value
        return total

    def close(self) -> None:
        if self._dead_letter is not None and self._owns_dead_letter:
            self._dead_letter.close()
