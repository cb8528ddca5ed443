"""Checkpoints: the chain's head kept apart from the chain, so removing the newest records --
or rewriting records and every hash after them -- shows.

A checkpoint is ``{"seq", "hash", "at"}`` of the head record. It is kept

* in every periodic summary report (``audit_checkpoint`` in the document, covered by the
  report's CMS signature; :mod:`soc.export.audit_checkpoints` reads them back and checks the
  signatures);
* in the checkpoint file (:func:`checkpoint_file`, ``audit.checkpoint_file`` in the settings,
  default ``<data_dir>/audit-checkpoints.jsonl``), one JSON line per ``soc audit checkpoint``,
  written outside the store -- copy it, or the line printed, somewhere the store's
  administrators cannot write;
* wherever the operator keeps a printed one (``soc audit verify --checkpoint SEQ:HASH``).

:func:`soc.audit.verify.verify` checks the chain against every checkpoint: one whose sequence
number is beyond the head means the newest records were removed; one whose hash differs from
the record of that number means records were rewritten. Records appended after the newest
checkpoint can still be removed unnoticed: take checkpoints often (the daily summary does).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from soc.audit.record import AuditError, Head, is_hash
from soc.audit.trail import AuditTrail
from soc.config import Settings
from soc.store.base import Store

__all__ = ["CHECKPOINT_FILE_NAME", "Checkpoint", "append_checkpoint", "audit_checkpoint", "checkpoint_file",
           "parse_checkpoint", "read_checkpoints"]

CHECKPOINT_FILE_NAME = "audit-checkpoints.jsonl"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A head of the chain as kept somewhere: ``source`` says where (for messages), ``signed``
    that a verified signature covers it."""

    seq: int
    hash: str
    at: str | None
    source: str
    signed: bool = False

    @classmethod
    def from_body(cls, body: Any, source: str, *, signed: bool = False) -> Checkpoint:
        """A checkpoint from ``{"seq", "hash", "at"}``; raises :class:`AuditError` when it is not one."""
        if not isinstance(body, dict) or not isinstance(body.get("seq"), int) or isinstance(body.get("seq"), bool) \
                or body["seq"] < 1 or not is_hash(body.get("hash")):
            raise AuditError(f"{source}: not an audit checkpoint (needs seq >= 1 and a SHA-256 hex hash)")
        at = body.get("at")
        return cls(body["seq"], body["hash"], at if isinstance(at, str) else None, source, signed)

    def body(self) -> dict[str, Any]:
        return {"seq": self.seq, "hash": self.hash, "at": self.at}

    def __str__(self) -> str:
        return f"{self.source} (record {self.seq}, hash {self.hash[:16]}...)"


def audit_checkpoint(store: Store) -> dict[str, Any] | None:
    """The head of the trail in ``store`` as a checkpoint ``{"seq", "hash", "at"}``; ``None``
    when the trail is empty. This is what periodic summaries embed."""
    head = AuditTrail(store).head()
    return head.body() if head.seq else None


def checkpoint_file(settings: Settings) -> Path:
    """The checkpoint file of the settings: ``audit.checkpoint_file``, else
    ``<data_dir>/audit-checkpoints.jsonl``."""
    audit = getattr(settings, "audit", None)
    configured = getattr(audit, "checkpoint_file", None)
    return Path(configured) if configured else settings.data_dir / CHECKPOINT_FILE_NAME


def append_checkpoint(path: Path, head: Head, *, taken_at: str, by: str) -> dict[str, Any]:
    """Append the checkpoint of ``head`` to the file (created with its folder when missing;
    one JSON line, flushed to disk) and return the line's object."""
    if head.seq < 1:
        raise AuditError("the audit trail is empty: there is nothing to checkpoint yet")
    line = {**head.body(), "taken_at": taken_at, "by": by}
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (json.dumps(line, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    return line


def checkpoint_now(trail: AuditTrail, path: Path, *, taken_at: str, by: str) -> dict[str, Any] | None:
    """Append the trail's current head to the checkpoint file (``soc audit checkpoint``, and
    the service every ``audit.checkpoint_minutes``); ``None`` when the trail is still empty."""
    head = trail.head()
    return append_checkpoint(path, head, taken_at=taken_at, by=by) if head.seq else None


def read_checkpoints(path: Path) -> tuple[list[Checkpoint], list[str]]:
    """The checkpoints of a file and the problems of lines that are not checkpoints (a missing
    file has none of either)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return [], []
    except (OSError, UnicodeDecodeError) as error:
        return [], [f"cannot read the checkpoint file {path}: {error}"]
    found, problems = [], []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            found.append(Checkpoint.from_body(json.loads(line), f"checkpoint file {where}"))
        except (ValueError, AuditError) as error:
            problems.append(f"{where}: not a checkpoint line ({error})")
    return found, problems


def parse_checkpoint(text: str) -> Checkpoint:
    """A checkpoint the operator kept, as ``SEQ:HASH`` or the JSON line ``soc audit checkpoint``
    printed; raises :class:`AuditError`."""
    text = text.strip()
    if text.startswith("{"):
        try:
            return Checkpoint.from_body(json.loads(text), "the checkpoint given")
        except ValueError as error:
            raise AuditError(f"the checkpoint given is not JSON: {error}") from error
    seq, _, digest = text.partition(":")
    if not seq.isdigit() or not is_hash(digest.lower()):
        raise AuditError(f"checkpoint {text!r}: give SEQ:HASH (e.g. 42:3f5a...; 64 hex digits) or the JSON "
                         "line `soc audit checkpoint` printed")
    return Checkpoint.from_body({"seq": int(seq), "hash": digest.lower()}, f"the checkpoint given ({seq})")
