"""The audit checkpoints of the periodic summaries, read back for ``soc audit verify``.

Every summary snapshot (Mẫu 05 and the monitoring summaries) holds the audit trail's head at
build time (``audit_checkpoint``, :mod:`soc.export.summary`). The snapshot lives in the same
store as the trail, so someone who can rewrite the trail can rewrite it too; the signed files
cannot be rewritten without the province's key. With a trust anchor (``--ca``, else
``reporting.certificate``) each summary's signed JSON files in the reports folder
(``<out_dir>/<report no>/<report no>.json`` and ``.stix.json`` with their ``.p7s``) are
verified, and the checkpoint they carry is the one that counts:

* a signature that does not verify is a problem (the file was changed or the signature forged);
* a snapshot whose checkpoint differs from its signed file's (or that has one its signed file
  lacks) is a problem (the snapshot was edited);
* a summary without signed files is checked with its snapshot's checkpoint (not signed).

Without a trust anchor every summary is checked with its snapshot's checkpoint.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography import x509

from soc.audit.checkpoints import Checkpoint
from soc.audit.record import AuditError
from soc.export.sign import verify_bytes
from soc.export.snapshot import SNAPSHOTS
from soc.store.base import Store

__all__ = ["SIGNED_SUFFIXES", "SUMMARY_DOCUMENTS", "summary_checkpoints"]

SUMMARY_DOCUMENTS = ("summary_report", "monitoring_summary")
#: the renderings of a summary that carry the checkpoint (the document, and STIX's extension)
SIGNED_SUFFIXES = (".json", ".stix.json")


def _find(data: Any) -> Any:
    """The first ``audit_checkpoint`` value anywhere in parsed JSON (STIX nests the document)."""
    if isinstance(data, dict):
        if "audit_checkpoint" in data:
            return data["audit_checkpoint"]
        values = list(data.values())
    elif isinstance(data, list):
        values = data
    else:
        return None
    for value in values:
        found = _find(value)
        if found is not None:
            return found
    return None


def _signed(folder: Path, report_no: str, anchors: Sequence[x509.Certificate]
            ) -> tuple[dict[str, Any] | None, list[str], bool]:
    """``(checkpoint from a verified file, problems, any signed file found)``."""
    problems: list[str] = []
    found_any = False
    checkpoint = None
    for suffix in SIGNED_SUFFIXES:
        path = folder / f"{report_no}{suffix}"
        sig = Path(f"{path}.p7s")
        if not (path.is_file() and sig.is_file()):
            continue
        found_any = True
        data = path.read_bytes()
        result = verify_bytes(data, sig.read_bytes(), list(anchors))
        if not result.ok:
            problems.append(f"report {report_no}: the signature of {path.name} does not verify, so its audit "
                            f"checkpoint cannot be trusted: {'; '.join(result.problems)}")
            continue
        try:
            value = _find(json.loads(data))
        except ValueError:
            value = None
        if value is not None and checkpoint is None:
            checkpoint = value
    return checkpoint, problems, found_any


def summary_checkpoints(store: Store, out_dir: Path, anchors: Sequence[x509.Certificate] = ()
                        ) -> tuple[list[Checkpoint], list[str]]:
    """The checkpoints of every stored summary and the problems found on the way (see the
    module docstring). ``anchors``: trust anchors for the signatures (none: not checked)."""
    checkpoints: list[Checkpoint] = []
    problems: list[str] = []
    store.refresh()  # the search below then sees every snapshot written before now
    for doc in store.iter_all(SNAPSHOTS):
        if doc.body.get("document") not in SUMMARY_DOCUMENTS:
            continue
        report_no = str(doc.body.get("report_no") or doc.id)
        stored = doc.body.get("audit_checkpoint")
        signed, trouble, found_any = _signed(Path(out_dir) / report_no, report_no, anchors) if anchors else (
            None, [], False)
        problems.extend(trouble)
        if signed is not None:
            if stored != signed:
                problems.append(f"report {report_no}: the audit checkpoint in its stored snapshot differs from "
                                "its signed file: the snapshot was edited")
            body, source, is_signed = signed, f"signed report {report_no}", True
        elif stored is not None and found_any and not trouble:
            problems.append(f"report {report_no}: its stored snapshot carries an audit checkpoint its signed "
                            "file does not: the snapshot was edited")
            continue
        elif stored is not None:
            note = "signature not checked" if not anchors else (
                "its signed file does not verify" if trouble else "no signed file found")
            body, source, is_signed = stored, f"report {report_no} (snapshot; {note})", False
        else:
            continue
        try:
            checkpoints.append(Checkpoint.from_body(body, source, signed=is_signed))
        except AuditError as error:
            problems.append(str(error))
    return checkpoints, problems
