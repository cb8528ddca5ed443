"""The façade the CLI, playbooks and the scheduler use: build, render, sign, enqueue.

::

    reports = Reports(store, settings)
    built = reports.build_incident("inc-1", "initial")          # snapshot stored, files written, signed
    reports.enqueue(built.report_no)                           # one outbox entry per recipient
    deliver_due(store, settings)                               # soc.export.outbox

A build first checks every required field (one :class:`MissingFieldsError` naming them all),
then stores the snapshot (create-only; id = report number), then writes the files to
``<out_dir>/<report number>/`` with a detached ``.p7s`` beside each when
``reporting.certificate`` is set, and records the report on the incident.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from soc.config import Settings
from soc.export import snapshot as snapshots
from soc.export.periods import parse_period
from soc.export.profiles import Profile, get_profile
from soc.export.render import build_document, render_files
from soc.export.sign import load_signer, sign_file
from soc.export.summary import capture_summary
from soc.model import parse_iso
from soc.store.base import Store

log = logging.getLogger(__name__)


@dataclass
class Preview:
    """What a report holds (or would hold): the document as JSON, or -- when required fields
    are missing -- ``document`` None and every missing field with where to fill it."""

    report_no: str
    document: dict[str, Any] | None
    missing: list[dict[str, str]] = field(default_factory=list)
    stored: bool = False


@dataclass
class BuiltReport:
    report_no: str
    document: str
    kind: str
    profile_id: str
    directory: Path
    files: list[Path] = field(default_factory=list)
    signatures: list[Path] = field(default_factory=list)
    created: bool = True

    @property
    def all_files(self) -> list[Path]:
        return [*self.files, *self.signatures]


class Reports:
    def __init__(self, store: Store, settings: Settings):
        self.store = store
        self.settings = settings

    # -- configuration -------------------------------------------------------------------------
    @property
    def out_dir(self) -> Path:
        return self.settings.reporting.out_dir or self.settings.data_dir / "reports"

    def profile(self, profile_id: str | None) -> Profile:
        return get_profile(profile_id or self.settings.reporting.default_profile, self.settings.reporting.profile_dirs)

    def _signer(self):  # type: ignore[no-untyped-def]
        r = self.settings.reporting
        if not r.certificate or not r.private_key:
            return None
        password = r.signing_key_password()
        return load_signer(r.certificate, r.private_key, password.encode() if password else None)

    # -- building -------------------------------------------------------------------------------
    def build_incident(self, incident_id: str, kind: str = "initial", profile_id: str | None = None,
                       overrides: dict[str, Any] | None = None, *, built_at: datetime | None = None,
                       out_dir: Path | None = None) -> BuiltReport:
        if kind not in ("initial", "update", "closing"):
            raise ValueError(f"report kind {kind!r}: use initial, update or closing")
        profile = self.profile(profile_id)
        snap = snapshots.capture_incident(self.store, self.settings, profile, incident_id, kind, overrides,
                                          built_at=built_at)
        document = build_document(snap)  # raises MissingFieldsError before anything is stored
        while not snapshots.save(self.store, snap):  # another build took this number first
            at = parse_iso(snap["built_at"])
            snap["report_no"] = snapshots.incident_report_no(self.store, incident_id, kind, self.settings, at)
            document = build_document(snap)
        built = self._write(snap, out_dir, document)
        self._record_on_incident(incident_id, {"kind": kind, "report_no": snap["report_no"],
                                               "built_at": snap["built_at"], "path": str(built.directory)})
        return built

    def build_summary(self, period_type: str, period: str | None = None, profile_id: str | None = None, *,
                      now: datetime | None = None, built_at: datetime | None = None,
                      out_dir: Path | None = None, rebuild: bool = False,
                      recommendations: str | None = None) -> BuiltReport:
        """Build the summary of a period (default: the last complete one). Idempotent: the
        report number is the period's, so a second scheduled run finds the stored snapshot and
        only re-renders it; ``rebuild`` stores a new snapshot under ``<number>-r<n>``."""
        p = parse_period(period_type, period, self.settings.timezone, now)
        profile = self.profile(profile_id)
        from soc.export.summary import summary_document, summary_report_no

        report_no = summary_report_no(self.settings, p, summary_document(p.type))
        if profile.id != self.settings.reporting.default_profile:
            report_no += f"-{snapshots._safe(profile.id)}"
        existing = self.store.get(snapshots.SNAPSHOTS, report_no)
        if existing is not None and rebuild:
            n = 2
            while self.store.get(snapshots.SNAPSHOTS, f"{report_no}-r{n}") is not None:
                n += 1
            report_no, existing = f"{report_no}-r{n}", None
        if existing is not None:
            built = self.render(report_no, out_dir)
            built.created = False
            return built
        snap = capture_summary(self.store, self.settings, profile, p, built_at=built_at, report_no=report_no,
                               recommendations=recommendations)
        document = build_document(snap)
        if not snapshots.save(self.store, snap):  # another process built it first
            built = self.render(report_no, out_dir)
            built.created = False
            return built
        return self._write(snap, out_dir, document)

    # -- previewing and signing ---------------------------------------------------------------
    def preview_incident(self, incident_id: str, kind: str = "initial", profile_id: str | None = None,
                         overrides: dict[str, Any] | None = None, *, built_at: datetime | None = None) -> Preview:
        """What :meth:`build_incident` would build now, nothing stored or written: the document,
        or the required fields that are missing (for the report builder)."""
        from soc.export.incident_report import MissingFieldsError

        if kind not in ("initial", "update", "closing"):
            raise ValueError(f"report kind {kind!r}: use initial, update or closing")
        snap = snapshots.capture_incident(self.store, self.settings, self.profile(profile_id), incident_id, kind,
                                          overrides, built_at=built_at)
        try:
            document = build_document(snap)
        except MissingFieldsError as error:
            return Preview(snap["report_no"], None, [asdict(m) for m in error.missing])
        return Preview(snap["report_no"], document.model_dump(mode="json"))

    def preview(self, report_no: str) -> Preview:
        """The document of a stored report, as JSON (raises :class:`SnapshotError` when there is
        no such report)."""
        from soc.export.incident_report import MissingFieldsError

        snap = snapshots.load(self.store, report_no)
        try:
            document = build_document(snap)
        except MissingFieldsError as error:  # a snapshot older than a newly required field
            return Preview(report_no, None, [asdict(m) for m in error.missing], stored=True)
        return Preview(report_no, document.model_dump(mode="json"), stored=True)

    @property
    def can_sign(self) -> bool:
        """Whether a signing certificate and key are configured (``reporting.certificate``)."""
        r = self.settings.reporting
        return bool(r.certificate and r.private_key)

    def sign(self, report_no: str, out_dir: Path | None = None) -> BuiltReport:
        """Write the files of a stored report (byte-identical) and sign each one that has no
        signature yet; raises :class:`SigningError` when no signing key is configured."""
        from soc.export.sign import SigningError

        if not self.can_sign:
            raise SigningError("reports cannot be signed here: set reporting.certificate and reporting.private_key")
        return self.render(report_no, out_dir)

    def render(self, report_no: str, out_dir: Path | None = None) -> BuiltReport:
        """(Re)write the files of a stored report from its snapshot: byte-identical every time."""
        snap = snapshots.load(self.store, report_no)
        return self._write(snap, out_dir)

    def _write(self, snap: dict[str, Any], out_dir: Path | None, document: Any = None) -> BuiltReport:
        directory = Path(out_dir or self.out_dir) / snap["report_no"]
        directory.mkdir(parents=True, exist_ok=True)
        built = BuiltReport(snap["report_no"], snap["document"], snap["kind"], snap["profile"]["id"], directory)
        signer = self._signer()
        for name, data in render_files(snap, document).items():
            path = directory / name
            sig = Path(str(path) + ".p7s")
            unchanged = path.is_file() and path.read_bytes() == data
            if not unchanged:
                tmp = path.with_name(path.name + ".tmp")
                tmp.write_bytes(data)
                os.replace(tmp, path)
            built.files.append(path)
            if signer is not None:  # an unchanged file keeps its signature
                built.signatures.append(sig if unchanged and sig.is_file() else sign_file(path, *signer))
            elif sig.is_file():
                built.signatures.append(sig)
        if signer is None:
            log.warning("report %s is not signed: set reporting.certificate and reporting.private_key",
                        snap["report_no"])
        return built

    # -- the incident's record of its reports ---------------------------------------------------
    def _record_on_incident(self, incident_id: str, record: dict[str, Any]) -> None:
        """Add or replace (same kind and number) the ReportRecord on the incident, through the
        incidents service (compare-and-set, history entry ``report``)."""
        from soc.incidents.model import ReportRecord
        from soc.incidents.service import IncidentNotFound, Incidents

        try:
            Incidents(self.store).record_report(incident_id, ReportRecord.model_validate(record), actor="soc-export")
        except IncidentNotFound:
            log.warning("incident %s is gone; report %s not recorded on it", incident_id, record["report_no"])

    def mark_delivered(self, report_no: str, at: str) -> None:
        snap = self.store.get(snapshots.SNAPSHOTS, report_no)
        if snap is None or snap.body.get("document") != "incident_report":
            return
        incident_id = snap.body["incident"]["id"]
        doc = self.store.get(snapshots.INCIDENTS, incident_id)
        if doc is None:
            return
        for record in doc.body.get("reports", []):
            if record.get("report_no") == report_no and record.get("delivered_at"):
                return  # the first delivery counts
        self._record_on_incident(incident_id, {"kind": snap.body["kind"], "report_no": report_no,
                                               "built_at": snap.body["built_at"], "delivered_at": at})

    def is_late(self, report_no: str, at: str) -> bool:
        snap = self.store.get(snapshots.SNAPSHOTS, report_no)
        if snap is None or snap.body.get("document") != "incident_report":
            return False
        from soc.incidents.model import Incident

        incident = Incident.model_validate(snap.body["incident"])
        due = incident.closing_due if snap.body["kind"] == "closing" else incident.notify_due
        return bool(due) and parse_iso(at) > parse_iso(due)  # type: ignore[arg-type]
