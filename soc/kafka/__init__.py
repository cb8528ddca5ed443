"""The Kafka ingest path (the at-scale deployment; see docs/kafka.md).

=====================  ===================================================================
module                 one job
=====================  ===================================================================
:mod:`.messages`       the wire format of the log topic: record -> pipeline record + context
:mod:`.worker`         the ingest worker: consumer group -> pipeline -> store, commit rule
:mod:`.deadletters`    the dead-letter topic format, and reading it back
:mod:`.replay`         re-ingesting dead letters after a fix (idempotent)
:mod:`.relay`          syslog listener -> Kafka producer
:mod:`.status`         a group's lag per partition, from the broker
:mod:`.metrics`        worker counters, JSON log line, Prometheus text endpoint
=====================  ===================================================================

Modules import kafka-python lazily, so ``soc`` without Kafka configured never loads it.
"""

__all__: list[str] = []
