"""What a file holds, checked against what its name says, and the reader that fits it.

A file is read by its **content**: ``.evtx`` records when it starts with the EVTX file header
(``ElfFile\\0``), gzip-compressed lines when it starts with the gzip magic (``1f 8b``), else lines
or a JSON array (:func:`.files.read_file`). A name that promises a kind the content does not have
is **refused** rather than guessed at -- a ``.evtx`` without the EVTX header, a ``.gz``/``.gzip``
that is not gzip -- with :class:`~.base.SourceError` naming the file, what was expected and what
was found (a file of random bytes named ``x.evtx`` is not a syslog file). gzip content that fails
to decompress part-way is reported by the reader (the records before the damage are delivered).

Used by the drop folder (:mod:`.inbox`) and the file sources (:mod:`.fileset`); ``soc hunt``
reads by content only.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from soc.ingest.sources.base import DEFAULT_BATCH_SIZE, Batch, SourceCounters, SourceError
from soc.ingest.sources.evtx import EVTX_MAGIC, EvtxReader
from soc.ingest.sources.files import GZIP_MAGIC, read_file

Kind = Literal["evtx", "gzip", "text"]
EVTX_SUFFIXES = (".evtx",)
GZIP_SUFFIXES = (".gz", ".gzip")


def file_kind(path: str | os.PathLike[str]) -> Kind:
    """``evtx``, ``gzip`` or ``text`` from the first bytes; :class:`SourceError` when the name
    says ``.evtx`` or ``.gz`` and the content is not."""
    with open(path, "rb") as fh:
        head = fh.read(len(EVTX_MAGIC))
    name = os.path.basename(path).lower()
    if head == EVTX_MAGIC:
        return "evtx"
    if name.endswith(EVTX_SUFFIXES):
        raise SourceError(f"{path}: refused: named .evtx but not a Windows event log file (expected the "
                          f"EVTX header 'ElfFile', found {_shown(head)})")
    if head[:2] == GZIP_MAGIC:
        return "gzip"
    if name.endswith(GZIP_SUFFIXES):
        raise SourceError(f"{path}: refused: named {Path(name).suffix} but not gzip data (expected the gzip "
                          f"magic bytes 1f 8b, found {_shown(head[:2])}); rename it if it is plain text")
    return "text"


def _shown(head: bytes) -> str:
    return "an empty file" if not head else f"bytes {head.hex(' ')}"


def read_input(
    path: str | os.PathLike[str],
    *,
    start: Any = 0,
    batch_size: int = DEFAULT_BATCH_SIZE,
    id_path: str | None = None,
    counters: SourceCounters | None = None,
    evtx_time_ids: bool = False,
    **read_options: Any,
) -> Iterator[Batch]:
    """The batches of one file by its checked kind (:func:`file_kind` raises before any batch).

    ``start`` is a previous batch's ``position``; ``id_path`` replaces the real path in ids;
    ``evtx_time_ids`` is :class:`.evtx.EvtxReader`'s ``time_ids``."""
    if file_kind(path) == "evtx":
        return EvtxReader(path, batch_size=batch_size, id_path=id_path, counters=counters,
                          time_ids=evtx_time_ids).batches(start=int(start or 0))
    return read_file(path, start_offset=int(start or 0), batch_size=batch_size, id_path=id_path,
                     counters=counters, **read_options)
