"""The contract between the flow and its sources: :class:`Source` (what every source does),
:class:`SourceType` (one ``type:`` of source definition) and :class:`SourceRegistry` (type name ->
type). The default registry, with the built-in types, is :data:`soc.ingest.registry.REGISTRY`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from soc.ingest.sources.base import Batch, SourceCounters, SourceError

if TYPE_CHECKING:
    from soc.agencies import AgencyTree
    from soc.config import Settings
    from soc.ingest.sourcedefs import SourceDefinition
    from soc.ingest.stages import StagesFactory

__all__ = ["Source", "SourceEnv", "SourceFactory", "SourceRegistry", "SourceType"]


@runtime_checkable
class Source(Protocol):
    """A running source: it yields batches, is told when each is stored, and stops.

    ``batches`` is iterated by one thread, which also calls ``ack`` (in batch order, after the
    batch is stored: a replayable source persists its position then, a Kafka source commits).
    ``stop`` may be called from any thread; ``batches`` then ends soon, after handing over what it
    already received (a listener delivers its pending messages). ``describe`` is one line for the
    start-up banner: what the source listens on or reads. ``listening`` lists its network
    addresses as ``(label, host, port)`` (empty for file sources).
    """

    name: str
    counters: SourceCounters

    def start(self) -> None: ...

    def batches(self) -> Iterator[Batch]: ...

    def ack(self, batch: Batch) -> None: ...

    def stop(self) -> None: ...

    def describe(self) -> str: ...

    def listening(self) -> list[tuple[str, str, int]]: ...


@dataclass(frozen=True)
class SourceEnv:
    """What a source factory may use besides its definition."""

    settings: Settings
    agencies: AgencyTree
    state_dir: Path
    """Where replayable sources keep their progress (``<data dir>/state``)."""
    follow: bool = True
    """False: one pass over what is there now (``soc run --once``); sources that cannot end
    (listeners, Kafka) are not started."""


SourceFactory = Callable[["SourceDefinition", SourceEnv], Source]


@dataclass(frozen=True)
class SourceType:
    """One ``type:`` of source definition.

    ``factory`` builds the source (None: declared, provided by another engine at start-up);
    ``needs`` are definition fields it cannot do without (checked when definitions are loaded);
    ``files`` says its batches are whole files (``batch.key`` is the file: format detected per
    file, ``log.file.path`` on each event, one report line per file); ``one_pass`` that it can
    read what is there and end (``soc run --once``); ``stages`` builds its decode/parse/normalize
    stages when the default ones do not fit (Kafka: per-record agency from the record key).
    """

    name: str
    summary: str
    factory: SourceFactory | None = None
    needs: tuple[str, ...] = ()
    files: bool = False
    one_pass: bool = True
    stages: StagesFactory | None = None
    provided_by: str = ""


@dataclass
class SourceRegistry:
    """Source type name -> :class:`SourceType`."""

    types: dict[str, SourceType] = field(default_factory=dict)

    def register(self, source_type: SourceType) -> None:
        """Add a type, or replace one (an engine providing a declared type's factory)."""
        self.types[source_type.name] = source_type

    def provide(self, name: str, factory: SourceFactory, *, stages: StagesFactory | None = None) -> None:
        """Give the declared type ``name`` its factory (and stages)."""
        self.types[name] = replace(self.get(name), factory=factory, stages=stages)

    def names(self) -> list[str]:
        return list(self.types)

    def get(self, name: str) -> SourceType:
        """The type called ``name``; ``KeyError`` naming the known types."""
        try:
            return self.types[name]
        except KeyError:
            raise KeyError(f"unknown source type {name!r} (known: {', '.join(self.types)})") from None

    def create(self, definition: SourceDefinition, env: SourceEnv) -> Source:
        """The source for ``definition`` (:class:`SourceError` when its type has no factory here)."""
        source_type = self.get(definition.type)
        if source_type.factory is None:
            raise SourceError(f"source {definition.name!r}: type {definition.type!r} is provided by "
                              f"{source_type.provided_by or 'another engine'}, which this process did not load")
        return source_type.factory(definition, env)

    def copy(self) -> SourceRegistry:
        return SourceRegistry(dict(self.types))
