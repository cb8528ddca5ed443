"""The built-in source types: each :class:`~.contract.Source` adapter over the readers of this
package, and :func:`builtin_types` (what :data:`soc.ingest.registry.REGISTRY` starts with).

========  ==========================================================  ===========================
type      what it does                                                delivery
========  ==========================================================  ===========================
syslog    listens on UDP/TCP (RFC 6587) and TLS/mTLS (RFC 5425)        at most once (no ack)
inbox     drop folder: each file read once, moved to done/ or failed  at least once, idempotent
tail      follows one file as it grows, across rotations              at least once, idempotent
file      reads a file or a folder once, in place; progress kept      at least once, idempotent
evtx      watches a folder (or one file) for .evtx exports; each new  at least once, idempotent
          or changed file is read, in place; progress kept
========  ==========================================================  ===========================

(``kafka``, the sixth type, comes from the Kafka engine: :mod:`soc.kafka.source`.)
"""

from __future__ import annotations

import queue
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from soc.ingest.normalize import SourceContext
from soc.ingest.pipeline import IngestPipeline, build_pipeline
from soc.ingest.sources.base import Batch, SourceCounters, SourceError
from soc.ingest.sources.contract import SourceEnv, SourceType
from soc.ingest.sources.fileset import FileSet
from soc.ingest.sources.inbox import Inbox
from soc.ingest.sources.syslog import SyslogListener
from soc.ingest.sources.tail import FileTail
from soc.ingest.sources.tls import tls_endpoint
from soc.ingest.stages import RecordStages, StageOptions, line_file_stages
from soc.model import Event
from soc.net import listen_address

if TYPE_CHECKING:
    from soc.ingest import Record
    from soc.ingest.sourcedefs import SourceDefinition

__all__ = ["CertificateStages", "FilesSource", "InboxSource", "SyslogSource", "TailSource", "builtin_types",
           "syslog_stages"]

EVTX_SETTLE_SECONDS = 5.0
"""An .evtx file on a share is read once it has not changed for this long (a copy in progress)."""
EVTX_POLL_SECONDS = 5.0


class SyslogSource:
    """The syslog listener as a source. Syslog has no acknowledgement, so ``ack`` does nothing;
    the listener's delivery thread waits while the flow stores the previous batch, so a slow
    store pushes back on TCP senders (the listener pauses reading) instead of piling up.
    ``listen_tls`` and ``tls_*`` of the definition (default: ``syslog: {tls: ...}``) add a TLS or
    mutual-TLS listener on its own port (:mod:`.tls`)."""

    def __init__(self, definition: SourceDefinition, env: SourceEnv) -> None:
        syslog = env.settings.syslog
        self.name = definition.name
        self.udp = definition.listen_udp or syslog.udp or None
        self.tcp = definition.listen_tcp or syslog.tcp or None
        self.tls = tls_endpoint(definition, syslog.tls, env.agencies)
        self.listener = SyslogListener(self._deliver, udp=self.udp, tcp=self.tcp, tls=self.tls,
                                       source_name=definition.name, max_frame_bytes=4 * syslog.max_message_bytes) \
            if (self.udp or self.tcp or self.tls) else None
        self.counters: SourceCounters = self.listener.counters if self.listener else SourceCounters()
        self._handoff: queue.Queue[Batch] = queue.Queue(maxsize=1)
        self._ended = threading.Event()      # the listener has delivered everything
        self._flow_gone = threading.Event()  # nobody takes batches any more

    def start(self) -> None:
        if self.listener is None:
            return
        try:
            self.listener.start()
        except OSError as error:
            raise SourceError(f"source {self.name!r}: cannot listen for syslog: {error}. Use --udp/--tcp (or "
                              "listen_tls) with a free port (ports below 1024 need root), or '' to "
                              "disable.") from error

    def _deliver(self, records: list[Record]) -> None:
        batch = records if isinstance(records, Batch) else Batch(records, key=self.name)
        while not self._flow_gone.is_set():
            try:
                self._handoff.put(batch, timeout=0.5)
                return
            except queue.Full:
                continue
        self.counters.drop("not_stored", len(batch))

    def batches(self) -> Iterator[Batch]:
        if self.listener is None:
            return
        try:
            while True:
                try:
                    yield self._handoff.get(timeout=0.2)
                except queue.Empty:
                    if self._ended.is_set():
                        return
        finally:
            self._flow_gone.set()

    def ack(self, batch: Batch) -> None:
        """Nothing to acknowledge to a syslog sender (at-most-once delivery)."""

    def stop(self) -> None:
        if self.listener is not None and not self._ended.is_set():
            self.listener.stop()  # hands over everything it received first
        self._ended.set()

    def listening(self) -> list[tuple[str, str, int]]:
        if self.listener is None:
            return []
        lst = self.listener
        return [(f"syslog {kind}", address[0], address[1])
                for kind, address in (("UDP", lst.udp_address), ("TCP", lst.tcp_address),
                                      (self.tls.kind if self.tls else "TLS", lst.tls_address))
                if address]

    def describe(self) -> str:
        where = ", ".join(f"{label.split()[1]} {listen_address(host, port)}" for label, host, port in self.listening())
        if self.tls is not None and self.tls.mutual:
            where += (" (client certificates required" if self.tls.context.verify_mode == ssl.CERT_REQUIRED
                      else " (client certificates verified when presented") + \
                (", agency from the certificate)" if self.tls.agency_of else ")")
        return f"syslog {self.name!r}: " + (f"listening for syslog on {where}" if where else
                                            "no listener (UDP, TCP and TLS disabled)")


class CertificateStages:
    """The stages of a syslog source: the default record stages, and for records whose agency a
    client certificate gave (:attr:`soc.ingest.Record.agency`) one pipeline per such agency,
    built like the default one but with that agency (no address lookup)."""

    def __init__(self, definition: SourceDefinition, context: SourceContext, options: StageOptions) -> None:
        self.default = RecordStages(context, definition.format, options)
        self.context = context
        self.fmt = definition.format
        self.options = options
        self.certified: dict[str, IngestPipeline] = {}

    def _pipeline(self, agency_id: str) -> IngestPipeline:
        pipeline = self.certified.get(agency_id)
        if pipeline is None:
            agencies = self.options.agencies
            name = agencies.name_of(agency_id) if agencies is not None else agency_id
            context = SourceContext(source=self.context.source, agency_id=agency_id, agency_name=name,
                                    zone=self.context.zone, dataset=self.context.dataset)
            pipeline = self.certified[agency_id] = build_pipeline(
                context, self.fmt, max_message_bytes=self.options.max_message_bytes,
                dead_letter=self.options.dead_letter)
        return pipeline

    def process(self, batch: Batch) -> list[Event]:
        if not any(record.agency for record in batch):
            return self.default.process(batch)
        plain = Batch([r for r in batch if not r.agency], key=batch.key, errors=batch.errors)
        events = self.default.process(plain)
        for record in batch:
            if record.agency:
                event = self._pipeline(record.agency).process_one(record)
                if event is not None:
                    events.append(event)
        return events

    def counters(self) -> dict[str, int]:
        totals = dict(self.default.counters())
        for pipeline in self.certified.values():
            for key, value in pipeline.counters.as_dict().items():
                if isinstance(value, int):
                    totals[key] = totals.get(key, 0) + value
        return totals


def syslog_stages(definition: SourceDefinition, context: SourceContext, options: StageOptions) -> CertificateStages:
    """The stages of a ``syslog`` source (see :class:`CertificateStages`)."""
    return CertificateStages(definition, context, options)


class InboxSource:
    """The drop folder (:class:`.inbox.Inbox`): ``path`` of the definition, else the settings' inbox."""

    def __init__(self, definition: SourceDefinition, env: SourceEnv) -> None:
        self.name = definition.name
        self.folder = Path(definition.path) if definition.path else env.settings.inbox
        self.follow = env.follow
        self.inbox = Inbox(self.folder, settle_seconds=2.0 if env.follow else 0.0)
        self.counters = self.inbox.counters

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)

    def batches(self) -> Iterator[Batch]:
        return self.inbox.batches(follow=self.follow)

    def ack(self, batch: Batch) -> None:
        self.inbox.ack(batch)

    def stop(self) -> None:
        self.inbox.stop()

    def listening(self) -> list[tuple[str, str, int]]:
        return []

    def describe(self) -> str:
        return f"inbox {self.name!r}: drop log files into {self.inbox.folder} (then moved to done/ or failed/)"


class TailSource:
    """A followed file (:class:`.tail.FileTail`); its position is kept in
    ``<data dir>/state/tail-NAME.json``. One pass (``--once``) reads up to the current end."""

    def __init__(self, definition: SourceDefinition, env: SourceEnv) -> None:
        self.name = definition.name
        self.path = str(definition.path)
        self.follow = env.follow
        self.tail = FileTail(self.path, env.state_dir / f"tail-{definition.name}.json")
        self.counters = self.tail.counters

    def start(self) -> None:
        self.tail.state_path.parent.mkdir(parents=True, exist_ok=True)

    def batches(self) -> Iterator[Batch]:
        if self.follow:
            yield from self.tail.batches()
            return
        try:
            while got := self.tail.poll():
                yield from got
        finally:
            self.tail.close()

    def ack(self, batch: Batch) -> None:
        self.tail.ack(batch)

    def stop(self) -> None:
        self.tail.stop()

    def listening(self) -> list[tuple[str, str, int]]:
        return []

    def describe(self) -> str:
        return f"tail {self.name!r}: following {self.tail.path}"


class FilesSource:
    """Files read in place (:class:`.fileset.FileSet`): ``file`` reads its path once; ``evtx``
    watches its path for ``.evtx`` files (once with ``--once``). Progress is kept in
    ``<data dir>/state/TYPE-NAME.json``."""

    def __init__(self, definition: SourceDefinition, env: SourceEnv) -> None:
        self.name = definition.name
        self.kind = definition.type
        self.evtx = definition.type == "evtx"
        follow = env.follow and self.evtx
        self.files = FileSet(
            str(definition.path), env.state_dir / f"{definition.type}-{definition.name}.json",
            suffixes=(".evtx",) if self.evtx else (), follow=follow,
            settle_seconds=EVTX_SETTLE_SECONDS if follow else 0.0,
            poll_interval=EVTX_POLL_SECONDS if follow else 0.2)
        self.counters = self.files.counters

    def start(self) -> None:
        self.files.state_path.parent.mkdir(parents=True, exist_ok=True)

    def batches(self) -> Iterator[Batch]:
        return self.files.batches()

    def ack(self, batch: Batch) -> None:
        self.files.ack(batch)

    def stop(self) -> None:
        self.files.stop()

    def listening(self) -> list[tuple[str, str, int]]:
        return []

    def describe(self) -> str:
        if self.evtx:
            how = "watching for new and changed .evtx files" if self.files.follow else "reading its .evtx files once"
        else:
            how = "reading once (files already read are skipped, grown ones read from where they stopped)"
        return f"{self.kind} {self.name!r}: {self.files.path}: {how}; nothing is moved"


def builtin_types() -> list[SourceType]:
    """The source types this package implements."""
    return [
        SourceType("syslog", "listen for syslog on UDP/TCP (RFC 5424/3164, RFC 6587 framing) and TLS/mTLS "
                   "(RFC 5425)", SyslogSource, one_pass=False, stages=syslog_stages),
        SourceType("inbox", "drop folder: each file read once, then moved to done/ or failed/",
                   InboxSource, files=True),
        SourceType("tail", "follow one file as it grows, across rotations", TailSource, needs=("path",),
                   stages=line_file_stages),
        SourceType("file", "read a file or a folder once, in place; progress kept across restarts",
                   FilesSource, needs=("path",), files=True),
        SourceType("evtx", "watch a folder (or one file) for .evtx exports; read each new or changed file",
                   FilesSource, needs=("path",), files=True),
    ]
