"""The monitoring summary (§2.B) as a Vietnamese .docx: its tables, the same charts as the
console's dashboard next to them (PNG images drawn by :mod:`soc.charts` from the document's
own figures), and the time figures with how each is computed (:mod:`soc.export.measures`).

Like the other renderers, a pure function of the document: the same summary gives the same
bytes (the chart images carry no date)."""

from __future__ import annotations

import io

from babel.numbers import format_decimal
from docx.shared import Inches

from soc.charts import Chart, Series, render_png
from soc.export.documents import MonitoringSummary
from soc.export.measures import METHOD_VI
from soc.export.render_docx import LEVEL_VI, PERIOD_VI, SEVERITY_VI, _Writer

__all__ = ["LEVELS", "monitoring_charts", "render_monitoring_docx", "vi_number"]

LEVELS = ("critical", "high", "medium", "low", "informational")
#: bars shown at most in a ranking chart (the table lists every row)
TOP = 15


def vi_number(value: float | int | None, digits: int = 2) -> str:
    """``336.148,95``: a number written the Vietnamese way (``Không có`` for none)."""
    if value is None:
        return "Không có"
    return format_decimal(value, format="#,##0" + ("." + "0" * digits if digits else ""), locale="vi_VN")


def _ranking(title: str, counts: dict[str, int], labels: dict[str, str] | None = None, unit: str = "") -> Chart:
    rows = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:TOP]
    names = tuple((labels or {}).get(k, k) for k, _ in rows)
    return Chart("hbars", title, names, (Series("count", unit or "Số lượng", tuple(v for _, v in rows)),), unit=unit)


def monitoring_charts(r: MonitoringSummary) -> dict[str, Chart]:
    """The summary's charts, by the table they stand next to."""
    from soc.incidents.model import INCIDENT_TYPES

    types = {k: v[0] for k, v in INCIDENT_TYPES.items()} | {"unassigned": "Chưa gắn với sự cố"}
    buckets = r.alerts_over_time
    present = [level for level in LEVELS if any(b.by_severity.get(level) for b in buckets)]
    others = sorted({k for b in buckets for k in b.by_severity} - set(LEVELS))
    series = tuple(Series(level, LEVEL_VI.get(level, level), tuple(b.by_severity.get(level, 0) for b in buckets))
                   for level in [*present, *others])
    span = "giờ" if r.period.type == "daily" else "ngày"
    return {
        "over_time": Chart("stacked", f"Cảnh báo theo {span} và mức độ", tuple(b.label for b in buckets), series,
                           unit="cảnh báo"),
        "alerts_by_agency": _ranking("Cảnh báo theo đơn vị", r.alerts.by_agency, unit="cảnh báo"),
        "incidents_by_type": _ranking("Sự cố theo loại", r.incidents.by_type, types, unit="sự cố"),
        "incidents_by_agency": _ranking("Sự cố theo đơn vị", r.incidents.by_agency, unit="sự cố"),
    }


def _picture(w: _Writer, chart: Chart) -> None:
    png = render_png(chart, number=lambda v: vi_number(v, 0 if float(v).is_integer() else 1), empty_text="Không có")
    w.doc.add_picture(io.BytesIO(png), width=Inches(6.3))


def _counts_table(w: _Writer, title: str, counts: dict[str, int], labels: dict[str, str] | None = None) -> None:
    w.para(title, bold=True)
    if not counts:
        w.para("Không có")
        return
    w.table(["Nhóm", "Số lượng"], [[(labels or {}).get(k, k), v] for k, v in counts.items()])


def _times(w: _Writer, r: MonitoringSummary) -> None:
    i = r.incidents
    hours = vi_number(i.backfill_hours, 0 if float(i.backfill_hours).is_integer() else 1)
    w.table(["Chỉ số", "Trung vị", "Trung bình", "Số sự cố được tính"], [
        ["Thời gian phát hiện (MTTD, phút)", vi_number(i.mttd_median_minutes), vi_number(i.mttd_minutes),
         i.mttd_count],
        ["Thời gian tiếp nhận (MTTA, phút)", vi_number(i.mtta_median_minutes), vi_number(i.mtta_minutes),
         i.mtta_count],
        ["Thời gian xử lý (MTTR, giờ)", vi_number(i.mttr_median_hours), vi_number(i.mttr_hours), i.mttr_count],
    ])
    if i.backfilled:
        delay = f" (độ trễ thu thập trung vị {vi_number(i.backfill_delay_median_hours)} giờ)" \
            if i.backfill_delay_median_hours is not None else ""
        w.para(f"{i.backfilled} sự cố từ dữ liệu nạp bù (sự kiện được thu thập muộn hơn {hours} giờ sau khi xảy ra) "
               f"được tính riêng, không đưa vào MTTD{delay}.")
    if i.detect_unknown:
        w.para(f"{i.detect_unknown} sự cố phát hiện muộn hơn {hours} giờ mà sự kiện đầu tiên không còn lưu "
               "(không xác định được thời điểm thu thập) được tính riêng, không đưa vào MTTD.")
    if i.not_acknowledged:
        w.para(f"{i.not_acknowledged} sự cố chưa có thao tác của người xử lý (không đưa vào MTTA).")
    w.para("Cách tính:", bold=True)
    for key in ("mttd", "mtta", "mttr"):
        w.para(METHOD_VI[key].format(hours=hours), italic=True, size=11)


def render_monitoring_docx(r: MonitoringSummary) -> bytes:
    from soc.incidents.model import INCIDENT_TYPES

    types = {k: v[0] for k, v in INCIDENT_TYPES.items()} | {"unassigned": "Chưa gắn với sự cố"}
    charts = monitoring_charts(r)
    w = _Writer()
    w.para(f"Số: {r.report_no}")
    w.para("BÁO CÁO TỔNG HỢP TÌNH HÌNH GIÁM SÁT AN TOÀN THÔNG TIN", bold=True, center=True, size=14)
    w.para(f"Kỳ báo cáo ({PERIOD_VI.get(r.period.type, r.period.type)}): {r.period.label}, "
           f"từ {r.period.start} đến {r.period.end}", center=True)
    if r.addressee:
        w.para(f"Kính gửi: {r.addressee}", center=True)
    w.field("Đơn vị", r.unit.name, True)
    w.field("Địa chỉ", r.unit.address, True)
    w.heading(1, "CẢNH BÁO")
    w.field("Tổng số cảnh báo", r.alerts.total)
    _picture(w, charts["over_time"])
    _counts_table(w, "Theo mức độ", r.alerts.by_severity, LEVEL_VI)
    _counts_table(w, "Theo loại sự cố", r.alerts.by_type, types)
    _counts_table(w, "Theo đơn vị", r.alerts.by_agency)
    if r.alerts.by_agency:
        _picture(w, charts["alerts_by_agency"])
    w.heading(2, "SỰ CỐ")
    i = r.incidents
    w.field("Sự cố mới phát hiện", i.opened)
    w.field("Sự cố đã đóng", i.closed)
    w.field("Sự cố còn mở cuối kỳ", i.open_at_end)
    w.field("Sự cố nghiêm trọng", i.serious)
    _times(w, r)
    _counts_table(w, "Theo mức độ", i.by_severity, SEVERITY_VI)
    _counts_table(w, "Theo loại sự cố", i.by_type, types)
    if i.by_type:
        _picture(w, charts["incidents_by_type"])
    _counts_table(w, "Theo đơn vị", i.by_agency)
    if i.by_agency:
        _picture(w, charts["incidents_by_agency"])
    w.heading(3, "NGUỒN NHẬT KÝ")
    w.field("Số sự kiện trong kỳ", r.log_sources.events_total)
    w.field("Số sự kiện kỳ trước", r.log_sources.events_previous)
    w.para("Nguồn ngừng gửi nhật ký (có ở kỳ trước, không có trong kỳ này)", bold=True)
    if r.log_sources.silent:
        w.table(["Trường", "Giá trị", "Số sự kiện kỳ trước"],
                [[s.field, s.value, s.previous_count] for s in r.log_sources.silent])
    else:
        w.para("Không có")
    w.heading(4, "NGUỒN TẤN CÔNG VÀ MỤC TIÊU NHIỀU NHẤT")
    w.table(["Nguồn", "Số cảnh báo"], [[x.value, x.hits] for x in r.top_sources] or [["Không có", ""]])
    w.table(["Mục tiêu", "Số cảnh báo"], [[x.value, x.hits] for x in r.top_targets] or [["Không có", ""]])
    return w.save(f"Báo cáo giám sát {r.report_no}", r.unit.name, r.reported_at)
