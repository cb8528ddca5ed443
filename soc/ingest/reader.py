"""Whole files through the ingest stages: used by ``soc hunt`` and by the service's file sources
(inbox, file, evtx: :class:`soc.ingest.stages.FileStages`).

Picks the source by content (``.evtx`` by its magic bytes, JSON arrays, plain or gzip lines),
detects the format once per file from its first lines (unless the caller forces one), and
yields normalized events batch by batch together with the source batch, so the caller can
acknowledge a batch only after the store has it. Input a source could not turn into a record
(a corrupt .evtx chunk, a file refused for its content) is dead-lettered with the source's
reason. Every event carries ``log.file.path``: the file it came from (the batch's ``key``: the
real path, or for the inbox the path the file was dropped at).
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
from soc.ingest.pipeline import IngestPipeline, build_pipeline
from soc.ingest.sources import SourceError
from soc.ingest.sources.base import Batch
from soc.ingest.sources.content import file_kind
from soc.ingest.sources.evtx import EvtxReader, is_evtx
from soc.ingest.sources.files import read_file
from soc.model import Event

SNIFF_LINES = 50


def file_format(path: Path, forced: str = "auto") -> str:
    """The parser for a file: ``forced`` unless ``auto``; ``json`` for .evtx; else detected
    (``auto``: line by line, when the file cannot be sampled)."""
    if forced != "auto":
        return forced
    if is_evtx(path):
        return "json"
    sample: list[str] = []
    try:
        for batch in read_file(path, batch_size=SNIFF_LINES):
            sample = [decode(r.raw)[0] for r in itertools.islice(batch, SNIFF_LINES)]
            break
    except (SourceError, OSError, ValueError):  # reported by the reading itself
        return "auto"
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
        self.refused: list[str] = []  # files whose content is not what their name says, and why

    def _pipeline(self, fmt: str) -> IngestPipeline:
        if fmt not in self._pipelines:
            self._pipelines[fmt] = build_pipeline(self.context, fmt, max_message_bytes=self.max_message_bytes,
                                                  dead_letter=self._dead_letter)
        return self._pipelines[fmt]

    def events(self, batch: Batch, fmt: str) -> list[Event]:
        """Events of one source batch, each with ``log.file.path``; the batch's source errors are
        dead-lettered."""
        for origin, reason in batch.errors:
            self.source_errors += 1
            if self._dead_letter is not None:
                self._dead_letter.write(f"source: {reason}", Record(b"", "", datetime.now(UTC), origin))
        events = self._pipeline(fmt).process(batch)
        if batch.key:
            for event in events:
                event["log.file.path"] = batch.key
        return events

    def read(self, path: Path, *, start_offset: int = 0) -> Iterator[tuple[list[Event], int]]:
        """(events, position) per batch; position is the source's resume point (bytes for text).
        A file whose content is not what its name says (a ``.evtx`` without the EVTX header, a
        ``.gz`` that is not gzip) gives nothing: it is dead-lettered and listed in ``refused``."""
        try:
            file_kind(path)
        except SourceError as error:
            self.source_errors += 1
            self.refused.append(str(error))
            if self._dead_letter is not None:
                self._dead_letter.write(f"source: {error}", Record(b"", "", datetime.now(UTC), str(path)))
            return
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
