"""Which source types exist: :data:`REGISTRY`, the registry source definitions are checked
against when they are loaded and the flow builds its sources from.

A source definition (``ingest/sources/*.yml``) names a ``type``; the registry maps that name to a
:class:`~soc.ingest.sources.contract.SourceType`: a factory that builds the running
:class:`~soc.ingest.sources.contract.Source` from the definition and a
:class:`~soc.ingest.sources.contract.SourceEnv` (settings, agencies, state folder, one pass or
follow), plus what the type needs in its definition and how its batches are decoded, parsed and
normalized::

    source = REGISTRY.create(definition, env)    # KeyError naming the known types
    source.start()                                # bind / open; SourceError naming what failed
    print(source.describe())                      # "syslog 'syslog': UDP 0.0.0.0:5514, TCP ..."
    for batch in source.batches():                # until source.stop() (or the input ends)
        store(events_of(batch))
        source.ack(batch)                         # only after the store has the batch

The flow (:mod:`soc.ingest.flow`) does exactly this, one thread per source. A type nothing
implements is refused when the definitions are loaded (:func:`soc.ingest.sourcedefs.load_sources`),
not ignored later.

The built-in types (:mod:`soc.ingest.sources.kinds`) are ``syslog``, ``inbox``, ``tail``, ``file``
and ``evtx``. ``kafka`` is *declared* here -- the schema knows it -- and *provided* by the Kafka
engine (:func:`soc.kafka.source.register`, which the embedded service calls): the ingest engine
does not depend on the Kafka one. A declared type without a factory is refused at start with that
explanation.
"""

from __future__ import annotations

from soc.ingest.sources import kinds
from soc.ingest.sources.contract import SourceRegistry, SourceType

__all__ = ["REGISTRY", "builtin_registry"]


def builtin_registry() -> SourceRegistry:
    """The types of the ingest engine, and ``kafka`` declared (see the module docstring)."""
    registry = SourceRegistry()
    for source_type in kinds.builtin_types():
        registry.register(source_type)
    registry.register(SourceType(
        name="kafka", summary="consume a Kafka topic (the log topic's wire format); commit after storing",
        one_pass=False, provided_by="soc.kafka.source"))
    return registry


#: The registry source definitions are checked against; the embedded service adds the Kafka
#: factory to it (:func:`soc.kafka.source.register`).
REGISTRY = builtin_registry()
