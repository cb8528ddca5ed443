"""From a snapshot to files: which document, which formats (from the profile), which bytes.

Pure: the same snapshot always gives the same ``{file name: bytes}``.

The renderers of .docx (python-docx, matplotlib), STIX (stix2) and MISP are imported when a file
is rendered, not with this module: every command builds the reports service, and those imports
were a quarter of the start-up of ``soc hunt`` (0.4 s of 2 s).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from soc.export.documents import IncidentReport, MonitoringSummary, SummaryReport
from soc.export.incident_report import build_incident_report
from soc.export.render_json import render_json
from soc.export.summary import build_monitoring_summary, build_summary_report

SUFFIX = {"json": ".json", "docx": ".docx", "stix": ".stix.json", "misp": ".misp.json"}
CONTENT_TYPE = {".json": "application/json", ".docx": "application/vnd.openxmlformats-officedocument."
                "wordprocessingml.document", ".stix.json": "application/stix+json;version=2.1",
                ".misp.json": "application/json", ".p7s": "application/pkcs7-signature"}


def content_type(name: str) -> str:
    for suffix in (".stix.json", ".misp.json", ".p7s", ".docx", ".json"):
        if name.endswith(suffix):
            return CONTENT_TYPE[suffix]
    return "application/octet-stream"


def build_document(snapshot: dict[str, Any]) -> BaseModel:
    kind = snapshot["document"]
    if kind == "incident_report":
        return build_incident_report(snapshot)
    if kind == "summary_report":
        return build_summary_report(snapshot)
    return build_monitoring_summary(snapshot)


def render_files(snapshot: dict[str, Any], document: BaseModel | None = None) -> dict[str, bytes]:
    """Every file the snapshot's profile asks for (MISP is for incident reports only; a summary
    in STIX is a report carrying the summary in a property extension)."""
    from soc.export.render_docx import render_incident_docx, render_summary_docx
    from soc.export.render_misp import render_misp
    from soc.export.render_monitoring import render_monitoring_docx
    from soc.export.render_stix import render_stix, render_summary_stix

    doc = document or build_document(snapshot)
    profile = snapshot["profile"]
    tlp = profile.get("tlp", "amber+strict")
    stem = snapshot["report_no"]
    files: dict[str, bytes] = {}
    for fmt in profile["formats"]:
        name = stem + SUFFIX[fmt]
        if fmt == "json":
            files[name] = render_json(doc)
        elif fmt == "docx":
            if isinstance(doc, IncidentReport):
                files[name] = render_incident_docx(doc)
            elif isinstance(doc, SummaryReport):
                files[name] = render_summary_docx(doc)
            elif isinstance(doc, MonitoringSummary):
                files[name] = render_monitoring_docx(doc)
        elif fmt == "stix" and isinstance(doc, IncidentReport):
            files[name] = render_stix(doc, tlp)
        elif fmt == "stix":
            files[name] = render_summary_stix(doc, "amber" if tlp in ("clear", "green") else tlp)
        elif fmt == "misp" and isinstance(doc, IncidentReport):
            files[name] = render_misp(doc, tlp)
    if not files:  # a profile without a format for this document still gets the canonical JSON
        files[stem + ".json"] = render_json(doc)
    return files
