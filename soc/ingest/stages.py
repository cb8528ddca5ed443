"""decode -> parse -> normalize for one source's batches: which stages a source gets.

The flow (:mod:`soc.ingest.flow`) asks the source's type for its stages
(:attr:`soc.ingest.sources.contract.SourceType.stages`), built from the source definition, its
normalization context (agency, zone, dataset: :func:`soc.ingest.sourcedefs.context_for`) and
:class:`StageOptions`; the default is :func:`record_stages` for message sources (syslog, tail) and
:func:`file_stages` for sources whose batches are whole files (inbox, file, evtx). Every variant
builds its pipelines with :func:`soc.ingest.pipeline.build_pipeline`, as the Kafka worker does.

A :class:`Stages` object is used by one thread (the source's). It never raises because of input:
what cannot become an event is dead-lettered (reason, origin, exact bytes), and the input a
source could not read (``batch.errors``) is dead-lettered with the source's reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from soc.ingest import Record
from soc.ingest.deadletter import DeadLetterWriter
from soc.ingest.normalize import SourceContext
from soc.ingest.pipeline import build_pipeline
from soc.ingest.reader import FileIngestor, file_format
from soc.ingest.sources.base import Batch
from soc.ingest.sources.content import file_kind
from soc.model import Event

if TYPE_CHECKING:
    from soc.ingest.sourcedefs import SourceDefinition

__all__ = ["FileStages", "RecordStages", "StageOptions", "Stages", "StagesFactory", "file_stages",
           "line_file_stages", "record_stages"]


class Stages(Protocol):
    """The stages of one source: events of a batch, and what happened so far."""

    def process(self, batch: Batch) -> list[Event]: ...

    def counters(self) -> dict[str, int]:
        """Totals: ``records``, ``parsed``, ``partial``, ``failed``, ``dead_lettered`` (records and
        unreadable input), ``source_errors`` ..."""
        ...


@dataclass(frozen=True)
class StageOptions:
    """What stages may use besides the definition and its context."""

    max_message_bytes: int = 65536
    dead_letter: DeadLetterWriter | None = None
    agencies: Any = None
    """:class:`soc.agencies.AgencyTree`, for stages that find the agency per record."""
    settings: Any = None


StagesFactory = Callable[["SourceDefinition", SourceContext, StageOptions], Stages]


def _ints(counters: dict[str, Any]) -> dict[str, int]:
    return {k: v for k, v in counters.items() if isinstance(v, int)}


class RecordStages:
    """One pipeline for every record of the source (syslog messages, tailed lines). With
    ``file_path`` the batch's ``key`` (the file a tail read: the rotated name while it finishes
    a rotated file) becomes each event's ``log.file.path``."""

    def __init__(self, context: SourceContext, fmt: str, options: StageOptions, *, file_path: bool = False) -> None:
        self.pipeline = build_pipeline(context, fmt, max_message_bytes=options.max_message_bytes,
                                       dead_letter=options.dead_letter)
        self.dead_letter = options.dead_letter
        self.file_path = file_path
        self.source_errors = 0

    def process(self, batch: Batch) -> list[Event]:
        for origin, reason in batch.errors:
            self.source_errors += 1
            if self.dead_letter is not None:
                self.dead_letter.write(f"source: {reason}", Record(b"", "", datetime.now(UTC), origin))
        events = self.pipeline.process(batch)
        if self.file_path and batch.key:
            for event in events:
                event["log.file.path"] = batch.key
        return events

    def counters(self) -> dict[str, int]:
        totals = _ints(self.pipeline.counters.as_dict())
        totals["source_errors"] = self.source_errors
        totals["dead_lettered"] += self.source_errors if self.dead_letter is not None else 0
        return totals


class FileStages:
    """Batches that are whole files (``batch.key`` is the file): the format is detected once per
    file (unless the definition forces one), and every event gets ``log.file.path``."""

    def __init__(self, context: SourceContext, fmt: str, options: StageOptions) -> None:
        self.ingestor = FileIngestor(context, fmt=fmt, dead_letter=options.dead_letter,
                                     max_message_bytes=options.max_message_bytes)
        self.fmt = fmt
        self.has_dead_letter = options.dead_letter is not None
        self._files: dict[str, tuple[str, str]] = {}  # key -> (parser, how it is read)

    def _file(self, key: str) -> tuple[str, str]:
        found = self._files.get(key)
        if found is None:
            path = Path(key)
            try:
                kind = file_kind(path)
            except (OSError, ValueError):  # refused or gone: the batch says why
                kind = "text"
            parser = file_format(path, self.fmt) if path.is_file() else self.fmt
            how = f"Windows .evtx records ({parser})" if kind == "evtx" else \
                f"gzip, {parser}" if kind == "gzip" else parser
            found = self._files[key] = (parser, how)
        return found

    def format_of(self, key: str) -> str:
        """How the file ``key`` is read, for the log: its parser, and ``.evtx``/gzip when it is."""
        return self._file(key)[1]

    def process(self, batch: Batch) -> list[Event]:
        parser = self._file(batch.key)[0] if batch else self.fmt
        events = self.ingestor.events(batch, parser)
        if batch.final:
            self._files.pop(batch.key, None)
        return events

    def counters(self) -> dict[str, int]:
        totals = self.ingestor.counters()
        totals.setdefault("dead_lettered", 0)
        if self.has_dead_letter:
            totals["dead_lettered"] += totals.get("source_errors", 0)
        return totals


def record_stages(definition: SourceDefinition, context: SourceContext, options: StageOptions) -> Stages:
    """The default stages of message sources."""
    return RecordStages(context, definition.format, options)


def line_file_stages(definition: SourceDefinition, context: SourceContext, options: StageOptions) -> Stages:
    """The stages of a followed file (tail): lines, with ``log.file.path``."""
    return RecordStages(context, definition.format, options, file_path=True)


def file_stages(definition: SourceDefinition, context: SourceContext, options: StageOptions) -> Stages:
    """The default stages of sources whose batches are whole files."""
    return FileStages(context, definition.format, options)
