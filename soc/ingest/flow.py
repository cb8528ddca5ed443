"""The ingest topology: source -> decode -> parse -> normalize -> sink(store), one thread per source.

:class:`Topology` builds a :class:`~soc.ingest.sources.contract.Source` for each source
definition from the registry (:data:`soc.ingest.registry.REGISTRY`), gives it its stages (its
type's, or the defaults of :mod:`soc.ingest.stages`) and runs it on its own thread::

    topology = Topology(definitions, env, sink, dead_letter=letters, out=print)
    topology.start()       # every source started (bound, opened) before any thread runs
    ...
    topology.stop()        # sources stop, hand over what they hold; the threads store it and end

Each thread does, for every batch its source yields: stages -> ``sink.write`` (returns once the
store has every event, retrying while it is down) -> ``source.ack(batch)``. So a batch is
acknowledged only after it is stored (end-to-end acknowledgement, as in Vector): a replayable
source (inbox, tail, file, evtx, kafka) persists its position or commits its offsets then, and a
crash anywhere before re-reads the batch, which the deterministic ids and create-only writes store
once. Nothing is lost, nothing is doubled.

Counts are kept per source (:meth:`Topology.counts`) and, for sources whose batches are whole
files, per file: when a file is finished one line says how it went::

    inbox 'inbox': auth.log (syslog) done: 7121 stored, 0 already there, 3 partially parsed, ...
    evtx 'dc-logs': Security.evtx (Windows .evtx records (json)) partial: 270 stored, ... 5 unreadable ...
    inbox 'inbox': x.evtx failed: refused: named .evtx but not a Windows event log file ... -> failed/

A source thread that meets a bug (not bad input: the stages never raise for that) logs it and
stops that source without acknowledging the batch; the other sources go on.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from soc.ingest.deadletter import DeadLetterWriter
from soc.ingest.registry import REGISTRY
from soc.ingest.sink import Sink, SinkStopped
from soc.ingest.sourcedefs import SourceDefinition, context_for
from soc.ingest.sources.base import Batch
from soc.ingest.sources.contract import Source, SourceEnv, SourceRegistry, SourceType
from soc.ingest.stages import StageOptions, Stages, file_stages, record_stages

__all__ = ["FileTally", "SourceRun", "Topology"]

log = logging.getLogger(__name__)


@dataclass
class FileTally:
    """What became of one file's records."""

    records: int = 0
    stored: int = 0
    existing: int = 0
    partial: int = 0
    unparsed: int = 0
    dead_lettered: int = 0
    unreadable: int = 0
    how: str = ""
    reasons: list[str] = field(default_factory=list)

    def line(self, batch: Batch) -> str:
        """The report line of a finished file (``batch`` is its final batch)."""
        status = "failed" if batch.failed else "partial" if self.unreadable else "done"
        counts = (f"{self.stored} stored, {self.existing} already there, {self.partial} partially parsed, "
                  f"{self.unparsed} failed to parse, {self.dead_lettered} dead-lettered")
        name = Path(batch.key).name
        shown = f"{name} ({self.how})" if self.how else name
        if batch.failed:
            return f"{shown} failed: {batch.failed} ({counts})"
        if self.unreadable:
            return (f"{shown} partial: {counts}; {self.unreadable} unreadable part(s) dead-lettered, first: "
                    f"{self.reasons[0] if self.reasons else '?'}")
        return f"{shown} {status}: {counts}"


class SourceRun:
    """One source on its own thread: batches -> stages -> sink -> ack, with its counts."""

    def __init__(self, definition: SourceDefinition, source_type: SourceType, source: Source, stages: Stages,
                 sink: Sink, out: Callable[[str], None]) -> None:
        self.definition = definition
        self.type = source_type
        self.source = source
        self.stages = stages
        self.sink = sink
        self.out = out
        self.label = f"{definition.type} {definition.name!r}"
        self.counts: Counter[str] = Counter()
        self.files: dict[str, FileTally] = {}
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def start_thread(self) -> None:
        self.thread = threading.Thread(target=self.run, name=f"soc-source-{self.definition.name}", daemon=True)
        self.thread.start()

    def run(self) -> None:
        batches = iter(self.source.batches())
        try:
            for batch in batches:
                if not self._one(batch):
                    return
        except Exception as error:  # noqa: BLE001  (a source's bug stops that source, not the service)
            self.error = error
            log.exception("%s stopped: reading failed", self.label)
            self.out(f"{self.label} stopped: {error}")
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()

    def _one(self, batch: Batch) -> bool:
        """Store and acknowledge one batch; False when this source must stop."""
        before = self.stages.counters()
        if self.type.files and batch.key and batch.key not in self.files:
            self._open_file(batch)
        try:
            events = self.stages.process(batch)
            result = self.sink.write(events)
        except SinkStopped as error:
            self.out(f"{self.label}: {error}; the batch is not acknowledged")
            return False
        except Exception as error:  # noqa: BLE001
            self.error = error
            log.exception("%s stopped at a batch of %s", self.label, batch.key or "records")
            self.out(f"{self.label} stopped (the batch is not acknowledged): {type(error).__name__}: {error}")
            self.source.stop()
            return False
        self.source.ack(batch)
        after = self.stages.counters()
        delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
        c = self.counts
        c["batches"] += 1
        c["records"] += len(batch)
        c["stored"] += result.created
        c["duplicates"] += result.existing
        c["dead_lettered"] += delta.get("dead_lettered", 0) + len(result.rejected)
        for key in ("parsed", "partial", "failed", "empty", "source_errors"):
            c[key] += delta.get(key, 0)
        if self.type.files and batch.key:
            self._file(batch, delta, result.created, result.existing, len(result.rejected))
        return True

    def _open_file(self, batch: Batch) -> None:
        """A file's first batch: its tally, and how it is read (while it is still where it was)."""
        tally = self.files[batch.key] = FileTally()
        format_of = getattr(self.stages, "format_of", None)
        if batch and format_of is not None:
            tally.how = format_of(batch.key)

    def _file(self, batch: Batch, delta: dict[str, int], created: int, existing: int, rejected: int) -> None:
        tally = self.files[batch.key]
        tally.records += len(batch)
        tally.stored += created
        tally.existing += existing
        tally.partial += delta.get("partial", 0)
        tally.unparsed += delta.get("failed", 0)
        tally.dead_lettered += delta.get("dead_lettered", 0) + rejected
        unreadable = [reason for _, reason in batch.errors if reason != batch.failed]
        tally.unreadable += len(unreadable)
        tally.reasons += unreadable[:1]
        if batch.final:
            del self.files[batch.key]
            status = "failed" if batch.failed else "partial" if tally.unreadable else "done"
            self.counts[f"files_{status}"] += 1
            self.out(f"{self.label}: {tally.line(batch)}")


class Topology:
    """The sources of the loaded definitions, their stages, one sink. See the module docstring."""

    def __init__(self, definitions: Iterable[SourceDefinition], env: SourceEnv, sink: Sink, *,
                 dead_letter: DeadLetterWriter | None = None, registry: SourceRegistry = REGISTRY,
                 out: Callable[[str], None] | None = None) -> None:
        self.definitions = list(definitions)
        self.env = env
        self.sink = sink
        self.dead_letter = dead_letter
        self.registry = registry
        self.out = out or (lambda line: log.info("%s", line))
        self.runs: list[SourceRun] = []
        self.skipped: list[str] = []

    def _build(self, definition: SourceDefinition) -> SourceRun | None:
        source_type = self.registry.get(definition.type)
        if not self.env.follow and not source_type.one_pass:
            self.skipped.append(f"{definition.type} {definition.name!r}: not started (a one-pass run reads only "
                                "the sources that end: inbox, file, evtx, tail)")
            return None
        source = self.registry.create(definition, self.env)
        options = StageOptions(max_message_bytes=self.env.settings.syslog.max_message_bytes,
                               dead_letter=self.dead_letter, agencies=self.env.agencies, settings=self.env.settings)
        factory = source_type.stages or (file_stages if source_type.files else record_stages)
        stages = factory(definition, context_for(definition, self.env.agencies), options)
        return SourceRun(definition, source_type, source, stages, self.sink, self.out)

    def start(self) -> None:
        """Build and start every source (raises the first start failure, after stopping the
        sources already started), then run each on its thread."""
        for definition in self.definitions:
            try:
                run = self._build(definition)
                if run is None:
                    continue
                run.source.start()
            except Exception:
                for started in self.runs:
                    started.source.stop()
                self.runs = []
                raise
            self.runs.append(run)
        for run in self.runs:
            run.start_thread()

    def describe(self) -> list[str]:
        """One line per source (what it listens on or reads), then the sources not started."""
        return [run.source.describe() for run in self.runs] + self.skipped

    def listening(self) -> list[tuple[str, str, int]]:
        """Every network address the sources listen on: ``(label, host, port)``."""
        return [address for run in self.runs for address in run.source.listening()]

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the source threads to end (one pass); True when they all have."""
        for run in self.runs:
            if run.thread is not None:
                run.thread.join(timeout)
        return not any(run.thread is not None and run.thread.is_alive() for run in self.runs)

    def stop(self, grace: float = 30.0) -> None:
        """Stop every source; wait up to ``grace`` seconds for the threads to store what the
        sources handed over; then abandon the writes still waiting for the store (their batches
        are not acknowledged) and wait for the threads once more."""
        for run in self.runs:
            run.source.stop()
        if not self.wait(grace):
            self.sink.abandon()
            self.wait(5.0)

    def counts(self) -> dict[str, dict[str, int]]:
        """Per source name: batches, records, stored, duplicates, parsed, partial, failed,
        dead_lettered, files_done/partial/failed ..."""
        return {run.definition.name: dict(run.counts) for run in self.runs}

    def totals(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for run in self.runs:
            total.update(run.counts)
        return total
