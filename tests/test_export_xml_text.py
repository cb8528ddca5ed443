"""Text from logs may hold characters XML 1.0 forbids (a bell in a domain name, an ANSI colour
sequence in a user name, a lone surrogate): the .docx is still built, and shows them as escapes."""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from docx import Document
from lxml import etree

from soc.export.documents import IncidentReport
from soc.export.render_docx import _Writer, render_incident_docx, xml_text
from soc.export.reports import Reports
from soc.store import open_store
from soc.store.base import Store
from tests.test_export_fixtures import alert, incident, make_settings, seed

BUILT_AT = dt.datetime(2026, 12, 1, 3, 0, tzinfo=dt.UTC)
BELL_DOMAIN = "evil\x07.example.vn"
ANSI_TITLE = "Dò mật khẩu \x1b[31mSSH\x1b[0m"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(f"sqlite:///{tmp_path / 'soc.db'}")
    yield s
    s.close()


def _all_text(data: bytes) -> str:
    """Re-open with python-docx, parse document.xml strictly, and return every visible string."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        etree.fromstring(z.read("word/document.xml"))
        etree.fromstring(z.read("docProps/core.xml"))
    doc = Document(io.BytesIO(data))
    cells = (c.text for t in doc.tables for row in t.rows for c in row.cells)
    return "\n".join([*(p.text for p in doc.paragraphs), *cells, doc.core_properties.author])


@pytest.mark.parametrize(("raw", "shown"), [
    ("a\x07b", "a\\u0007b"),
    ("\x1b[31m", "\\u001b[31m"),
    ("\x00\x08\x0b\x0c\x1f", "\\u0000\\u0008\\u000b\\u000c\\u001f"),
    ("x\ud800y\udfff", "x\\ud800y\\udfff"),
    ("\ufffe\uffff", "\\ufffe\\uffff"),
    ("tab\tnl\ncr\r", "tab\tnl\ncr\r"),
    ("Nghệ An \x7f\x85 \ud7ff\ue000\ufffd \U00010000\U0010ffff 😀", "Nghệ An \x7f\x85 \ud7ff\ue000\ufffd \U00010000\U0010ffff 😀"),
    ("C:\\Windows\\u0007", "C:\\Windows\\u0007"),
])
def test_xml_text_escapes_exactly_what_xml_forbids(raw: str, shown: str) -> None:
    assert xml_text(raw) == shown


def test_every_writer_method_cleans_its_text() -> None:
    w = _Writer()
    w.para("para\x07")
    w.field("label\x01", "value\x02")
    w.field("list", ["a\x03", "b"])
    w.boxes([(True, "box\x04")])
    w.table(["head\x05"], [["cell\x06"], [0]])
    text = _all_text(w.save("title\x0e", "author\x0f", "2026-12-01T10:00:00+07:00"))
    for shown in ("para\\u0007", "label\\u0001: value\\u0002", "a\\u0003, b", "☒ box\\u0004", "head\\u0005",
                  "cell\\u0006", "author\\u000f"):
        assert shown in text, shown


def test_incident_report_with_control_characters_from_logs_builds_a_valid_docx(
        tmp_path: Path, store: Store) -> None:
    inc = incident(title=ANSI_TITLE, summary=f"Truy vấn DNS tới {BELL_DOMAIN} từ máy web01.")
    inc.affected_systems[0].domains.append(BELL_DOMAIN)
    body = alert("AL-1", first="2026-11-30T01:00:00.000Z", incident=inc.id)
    body["entities"]["url.domain"] = [BELL_DOMAIN]
    body["rule"]["title"] = ANSI_TITLE
    seed(store, inc, [body])
    result = Reports(store, make_settings(tmp_path, signing=False)).build_incident(inc.id, "initial",
                                                                                   built_at=BUILT_AT)
    docx = next(p for p in result.files if p.suffix == ".docx")
    text = _all_text(docx.read_bytes())
    for shown in ("Các tên miền của hệ thống: nghean.gov.vn, evil\\u0007.example.vn",
                  "Truy vấn DNS tới evil\\u0007.example.vn từ máy web01.",
                  "Tên sự cố: Dò mật khẩu \\u001b[31mSSH\\u001b[0m"):
        assert shown in text, shown
    cells = text.splitlines()
    assert "evil\\u0007.example.vn" in cells, "the IoC table"
    assert "Dò mật khẩu \\u001b[31mSSH\\u001b[0m" in cells, "the alerts table"
    assert "\x07" not in text and "\x1b" not in text
    # only the .docx shows escapes: the JSON keeps the value from the log as it was
    data = json.loads(next(p for p in result.files if p.name.endswith(".json")).read_bytes())
    assert BELL_DOMAIN in data["system"]["domains"]


def test_lone_surrogates_and_nonchars_reach_the_docx_as_escapes(tmp_path: Path, store: Store) -> None:
    """A store keeps UTF-8 only, so a lone surrogate cannot come through a snapshot; the renderer
    still copes with one in the document it is given."""
    seed(store)
    result = Reports(store, make_settings(tmp_path, signing=False)).build_incident("INC-2026-0001", "initial",
                                                                                   built_at=BUILT_AT)
    report = IncidentReport.model_validate_json(next(p for p in result.files if p.suffix == ".json").read_bytes())
    odd = "user\ud800\x07\ufffe"
    report = report.model_copy(update={
        "summary": odd, "incident_title": odd,
        "reporter": report.reporter.model_copy(update={"name": odd}),
        "system": report.system.model_copy(update={"domains": [odd]})})
    text = _all_text(render_incident_docx(report))
    assert text.count("user\\ud800\\u0007\\ufffe") >= 4
