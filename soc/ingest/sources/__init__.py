"""Sources: transports that turn bytes on the wire or on disk into batches of :class:`Record`.

A source frames (lines, RFC 6587 frames, datagrams, JSON array elements, .evtx records) and
never parses content. Each yields :class:`Batch` es (``list[Record]`` plus a resume position,
``final``, ``errors`` and ``failed``) and keeps :class:`SourceCounters`.

=====================  =========================  ===============================================
module                 entry point                delivery guarantee
=====================  =========================  ===============================================
:mod:`.files`          :func:`read_file`          at-least-once, idempotent (ids from file+offset)
:mod:`.tail`           :class:`FileTail`          at-least-once, idempotent; position saved on ack
:mod:`.inbox`          :class:`Inbox`             at-least-once, idempotent; file moved on ack
:mod:`.fileset`        :class:`FileSet`           at-least-once, idempotent; files read in place,
                                                  progress saved on ack (``file``, ``evtx`` types)
:mod:`.evtx`           :class:`EvtxReader`        at-least-once, idempotent; corrupt records
                                                  reported in ``batch.errors``
:mod:`.syslog`         :class:`SyslogListener`    at-most-once (syslog has no acknowledgement)
=====================  =========================  ===============================================

:mod:`.content` checks a file's content against its name (a ``.evtx`` without the EVTX header, a
``.gz`` that is not gzip are refused) and picks its reader. :mod:`.contract` says what every
source of the embedded flow does (:class:`~.contract.Source`) and how source types are registered;
:mod:`.kinds` adapts the readers above to it (the ``syslog``, ``inbox``, ``tail``, ``file`` and
``evtx`` types). The syslog listener's halves: :mod:`.udp` (datagrams), :mod:`.tcp` (TCP
connections and the TLS handshake), :mod:`.tls` (TLS and mutual TLS: the server context, who is
admitted, the agency a client certificate names).

Messages longer than a source's hard cap are kept truncated and marked (:func:`truncated_size`),
never dropped silently.
"""

from __future__ import annotations

from soc.ingest.sources.base import (
    MAX_LINE_BYTES,
    Batch,
    SourceCounters,
    SourceError,
    mark_truncated,
    truncated_size,
)
from soc.ingest.sources.evtx import EvtxReader, read_evtx
from soc.ingest.sources.files import iter_records, read_file
from soc.ingest.sources.fileset import FileSet
from soc.ingest.sources.framing import Frame, SyslogFramer
from soc.ingest.sources.inbox import Inbox
from soc.ingest.sources.syslog import ListenerCounters, SyslogListener, server_tls_context
from soc.ingest.sources.tail import FileTail

__all__ = [
    "MAX_LINE_BYTES",
    "Batch",
    "EvtxReader",
    "FileSet",
    "FileTail",
    "Frame",
    "Inbox",
    "ListenerCounters",
    "SourceCounters",
    "SourceError",
    "SyslogFramer",
    "SyslogListener",
    "iter_records",
    "mark_truncated",
    "read_evtx",
    "read_file",
    "server_tls_context",
    "truncated_size",
]
