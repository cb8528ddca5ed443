"""The monitoring summary (.docx) carries the dashboard's charts as images next to its tables,
says how MTTD, MTTA and MTTR are computed, and measures time-to-detect honestly: a month of
replayed old logs no longer reads "MTTD 336.148,95 phút" -- back-filled incidents are counted
apart. The charts themselves: one data model, drawn as SVG (escaped, no script or style) and
as PNG (the same bytes for the same chart)."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from pathlib import Path

from docx import Document

from soc.charts import Chart, Series, render_png, render_svg
from soc.export.documents import MonitoringSummary
from soc.export.render_monitoring import monitoring_charts, vi_number
from soc.export.reports import Reports
from soc.store import open_store
from tests.test_export_fixtures import make_settings
from tests.test_oversight import ingested_at

UTC = dt.UTC
STORED = dt.datetime(2026, 11, 20, 1, 0, tzinfo=UTC)  # when the replayed logs were stored
OLD = STORED - dt.timedelta(days=233)  # when they happened


def _incident(id_: str, first: dt.datetime, discovered: dt.datetime, **more: object) -> dict[str, object]:
    at = discovered.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    body = {"id": id_, "title": f"Sự cố {id_}", "status": "triage", "severity": "high",
            "incident_type": "unauthorized_access", "agency": "so-tttt", "agencies": ["so-tttt"], "alert_ids": [],
            "first_seen": first.strftime("%Y-%m-%dT%H:%M:%S.000Z"), "discovered_at": at, "created_at": at,
            "updated_at": at, "history": [{"at": at, "actor": "system:detection", "action": "opened", "detail": {}}]}
    body.update(more)
    return body


def _alert(id_: str, first: dt.datetime, level: str, incident: str | None, event: str) -> dict[str, object]:
    seen = first.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return {"id": id_, "status": "new", "agency": "so-tttt", "incident_id": incident, "first_seen": seen,
            "last_seen": seen, "detected_at": seen, "event_ids": [event], "event_count": 1,
            "rule": {"id": f"r-{level}", "title": "Dò mật khẩu SSH", "level": level},
            "entities": {"source.ip": ["203.0.113.5"], "host.name": ["web01"]}}


def test_replayed_old_logs_give_an_honest_mttd_and_the_docx_has_charts(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, signing=False, default_profile="vn.mps.a05-2025")
    store = open_store(f"sqlite:///{tmp_path / 'soc.db'}")
    prompt_first = dt.datetime(2026, 11, 10, 1, 0, tzinfo=UTC)
    store.create("incidents", "I-live", _incident("I-live", prompt_first, prompt_first + dt.timedelta(minutes=10),
                                                  history=[{"at": "2026-11-10T01:40:00.000Z", "actor": "lan",
                                                            "action": "assign", "detail": {}}]))
    store.create("incidents", "I-old", _incident("I-old", OLD, STORED + dt.timedelta(minutes=5), alert_ids=["A-old"]))
    store.create("alerts", "A-live", _alert("A-live", prompt_first, "medium", "I-live", "ev-live"))
    store.create("alerts", "A-old", _alert("A-old", OLD, "high", "I-old", "ev-old"))
    for day in range(5):
        store.create("alerts", f"A-{day}", _alert(f"A-{day}", dt.datetime(2026, 11, 3 + day, 3, tzinfo=UTC),
                                                  ("critical", "low")[day % 2], None, f"ev-{day}"))
    with ingested_at(STORED):
        assert store.write_events([{"_id": "ev-old", "@timestamp": OLD.isoformat(), "organization.id": "so-tttt",
                                    "message": "Failed password for root"}]).created == 1
    store.refresh()
    built = Reports(store, settings).build_summary("monthly", "2026-11", built_at=dt.datetime(2026, 12, 1, 2, tzinfo=UTC))
    data = json.loads((built.directory / f"{built.report_no}.json").read_bytes())
    i = data["incidents"]
    naive = ((STORED + dt.timedelta(minutes=5)) - OLD).total_seconds() / 60
    assert naive > 335_000  # what the summary used to say for this month
    assert (i["mttd_minutes"], i["mttd_median_minutes"], i["mttd_count"]) == (10.0, 10.0, 1)
    assert (i["backfilled"], i["detect_unknown"], i["backfill_hours"]) == (1, 0, 24.0)
    assert abs(i["backfill_delay_median_hours"] - 233 * 24) < 0.01
    assert (i["mtta_median_minutes"], i["mtta_count"], i["not_acknowledged"]) == (30.0, 1, 1)
    # alerts over time: one bucket per day of November, the counts by level add up
    over = data["alerts_over_time"]
    assert len(over) == 30 and over[0]["label"] == "01/11"
    totals: dict[str, int] = {}
    for bucket in over:
        for level, n in bucket["by_severity"].items():
            totals[level] = totals.get(level, 0) + n
    assert totals == data["alerts"]["by_severity"]

    doc = Document(io.BytesIO((built.directory / f"{built.report_no}.docx").read_bytes()))
    text = "\n".join(p.text for p in doc.paragraphs)
    assert "1 sự cố từ dữ liệu nạp bù" in text and "được tính riêng, không đưa vào MTTD" in text
    assert "Cách tính:" in text and "chỉ tính sự cố có sự kiện đầu tiên được thu thập trong vòng 24 giờ" in text
    cells = [c.text for t in doc.tables for row in t.rows for c in row.cells]
    assert "Thời gian phát hiện (MTTD, phút)" in cells and "10,00" in cells
    assert not any(re.fullmatch(r"33\d\.\d{3},\d\d", c) for c in cells)  # no months-long "MTTD"
    shapes = doc.inline_shapes
    assert len(shapes) >= 3  # over time, alerts by agency, incidents by type, incidents by agency
    images = [p for p in doc.part.package.parts if p.content_type == "image/png"]
    assert len(images) == len(shapes) and all(p.blob.startswith(b"\x89PNG") for p in images)
    # the same snapshot renders the same bytes (the images carry no date)
    again = Reports(store, settings).render(built.report_no, tmp_path / "again")
    assert {p.name: p.read_bytes() for p in again.files} == {p.name: p.read_bytes() for p in built.files}
    # the charts are drawn from the document's own figures
    charts = monitoring_charts(MonitoringSummary.model_validate(data))
    over_time = charts["over_time"]
    assert [s.key for s in over_time.series] == ["critical", "medium", "low"]  # A-old happened in April
    assert {s.key: sum(v or 0 for v in s.values) for s in over_time.series} == totals
    store.close()


def test_vietnamese_numbers_in_the_report() -> None:
    assert vi_number(336148.95) == "336.148,95" and vi_number(None) == "Không có" and vi_number(12, 0) == "12"


def test_svg_is_escaped_accessible_and_without_script_or_style() -> None:
    hostile = '"><img src=x onerror=alert(1)><script>alert(1)</script>'
    chart = Chart("hbars", hostile, (hostile, "b"), (Series("count", hostile, (3, 1)),), description=hostile)
    svg = str(render_svg(chart, ident="x\"><script>"))
    assert "<script" not in svg and "<img" not in svg and "style=" not in svg
    assert "&lt;script&gt;" in svg and 'role="img"' in svg and 'aria-labelledby="xscript-t xscript-d"' in svg
    columns = Chart("stacked", "t", ("a", "b"), (Series("high", "Cao", (1, None)), Series("low", "Thấp", (2, 2))))
    svg = str(render_svg(columns))
    assert svg.count("<rect") == 3 + 2  # three bars, two legend swatches
    assert 'fill="#c0392b"' in svg  # the level's colour, as a presentation attribute
    lines = Chart("lines", "t", ("a", "b", "c", "d"), (Series("m", "m", (1, None, 2, 3)),))
    assert str(render_svg(lines)).count("<polyline") == 1  # a gap is not drawn as zero
    empty = Chart("bars", "t", ("a",), (Series("m", "m", (None,)),))
    assert "Không có" in str(render_svg(empty, empty_text="Không có"))


def test_png_is_the_same_for_the_same_chart() -> None:
    chart = Chart("stacked", "Cảnh báo theo ngày ($5 $)", ("01/11", "02/11"),
                  (Series("critical", "Nghiêm trọng", (1, 2)), Series("low", "Thấp", (0, 4))), unit="cảnh báo")
    first = render_png(chart)
    assert first.startswith(b"\x89PNG") and first == render_png(chart)
    assert b"matplotlib" not in first  # no version stamped in the file
