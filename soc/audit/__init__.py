"""The audit trail (issue #10, "Trust", item 3): who did what, when, to what, from where --
append-only, hash-chained and checked against checkpoints kept apart from it.

* :mod:`~soc.audit.record`      a record, its canonical form and hash (the format an auditor
  needs to check an export without this code)
* :mod:`~soc.audit.trail`       :class:`AuditTrail`: append (one sequence for every process),
  head, read, list
* :mod:`~soc.audit.verify`      :func:`verify`: one streaming pass over the chain, O(n), and the
  checkpoints
* :mod:`~soc.audit.checkpoints` checkpoints: the head kept in signed summaries, a file outside
  the store, or by the operator
* :mod:`~soc.audit.export`      :func:`export_trail`: JSON lines plus the verification; the
  export is itself audited
* :mod:`~soc.audit.store`       :class:`AuditedStore`: a store that records every document write
  made through it under a principal

Use::

    trail = AuditTrail(store, clock=clock)             # over the store itself, not a scoped view
    trail.record(principal, "report.send", ("report_snapshots", report_no), {"recipient": "mps"},
                 ip=request_ip, user_agent=agent)
    trail.record("scheduler", "summary.build", ...)     # a system component: system:scheduler
    view = AuditedStore(ScopedStore(store, scope), trail, principal)   # writes recorded
    result = verify(store, checkpoints)                 # result.ok, result.first, result.summary()

See ``docs/audit.md``.
"""

from soc.audit.checkpoints import (
    Checkpoint,
    append_checkpoint,
    audit_checkpoint,
    checkpoint_file,
    checkpoint_now,
    parse_checkpoint,
    read_checkpoints,
)
from soc.audit.export import ExportResult, export_trail
from soc.audit.record import (
    AUDIT,
    GENESIS,
    Actor,
    AuditError,
    AuditRecord,
    Head,
    Target,
    canonical,
    record_hash,
)
from soc.audit.store import NOT_AUDITED, AuditedStore, changes
from soc.audit.trail import AuditTrail, RecordPage
from soc.audit.verify import CheckpointResult, Problem, Verification, verify

__all__ = [
    "AUDIT", "GENESIS", "NOT_AUDITED", "Actor", "AuditError", "AuditRecord", "AuditTrail", "AuditedStore",
    "Checkpoint", "CheckpointResult", "ExportResult", "Head", "Problem", "RecordPage", "Target", "Verification",
    "append_checkpoint", "audit_checkpoint", "canonical", "changes", "checkpoint_file", "checkpoint_now", "export_trail",
    "parse_checkpoint", "read_checkpoints", "record_hash", "verify",
]
