"""Exporting the trail: JSON lines an auditor can check without this code, and the result of
verifying the chain; the export itself is recorded in the trail.

The output has one line per record, in sequence order, holding the stored body exactly (keys
sorted; recompute each ``hash`` with the canonical form of :mod:`soc.audit.record` and follow
``prev`` from line to line), then one last line ``{"verification": {...}, "export": {...}}``:
the outcome of :func:`soc.audit.verify.verify` over the *whole* chain at the time of the
export, with the checkpoints it was checked against, and what was exported (range, count,
time, by whom). Records with ``at`` outside ``[since, until)`` are left out; the first line's
``prev`` links the export to the record before it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

from soc.access import Principal
from soc.audit.checkpoints import Checkpoint
from soc.audit.record import AUDIT, AuditRecord, seq_of
from soc.audit.trail import AuditTrail
from soc.audit.verify import Verification, verify
from soc.model import iso

__all__ = ["EXPORT_ACTION", "ExportResult", "export_trail"]

EXPORT_ACTION = "export.audit"


@dataclass(frozen=True, slots=True)
class ExportResult:
    records: int
    verification: Verification
    record: AuditRecord  # the trail's record of this export


def _line(data: Any) -> bytes:
    return (json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":")) + "\n").encode("utf-8")


def export_trail(trail: AuditTrail, out: IO[bytes], *, actor: Principal | str, since: datetime | None = None,
                 until: datetime | None = None, checkpoints: Iterable[Checkpoint] = (),
                 problems: Iterable[str] = (), name: str | None = None, ip: str | None = None, user_agent: str | None = None) -> ExportResult:
    """Verify the chain against ``checkpoints`` (``problems``: see :func:`~soc.audit.verify.verify`), write the records with ``at`` in ``[since,
    until)`` and the verification to ``out``, and record the export (action
    :data:`EXPORT_ACTION`, details: range, count, verified, ``name`` of the file) under ``actor``."""
    verification = verify(trail.store, checkpoints, problems)
    start, end = (iso(since) if since else None), (iso(until) if until else None)
    count = 0
    trail.store.refresh()  # records other processes wrote a moment ago, too
    for doc in trail.store.iter_all(AUDIT):
        if seq_of(doc.id) is None:
            continue
        at = doc.body.get("at")
        if (start or end) and not isinstance(at, str):
            continue
        if (start is None or at >= start) and (end is None or at < end):  # type: ignore[operator]
            out.write(_line(doc.body))
            count += 1
    exported = {"records": count, "since": start, "until": end, "at": iso(trail.clock()),
                "by": actor.label if isinstance(actor, Principal) else f"system:{actor.removeprefix('system:')}"}
    out.write(_line({"verification": verification.body(), "export": exported}))
    out.flush()
    record = trail.record(actor, EXPORT_ACTION, (AUDIT, None),
                          {"records": count, "since": start, "until": end, "verified": verification.ok,
                           "problems": verification.problem_count, "file": name}, ip=ip, user_agent=user_agent)
    return ExportResult(count, verification, record)
