"""Vietnamese .docx laid out like the Circular 20/2017 forms (Mẫu 03, 04, 05) and the monitoring
summary, byte-identical for the same document: core properties carry the report time and every
zip entry the same fixed date.

Text reaches python-docx only through :class:`_Writer` (``_Writer.run`` for the body,
``_Writer.save`` for the core properties), and both pass it through :func:`xml_text`: data from
logs may hold characters XML 1.0 forbids, which lxml refuses.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterable
from datetime import datetime, timedelta

from docx import Document
from docx.document import Document as DocxDocument
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.shared import Pt
from docx.text.paragraph import Paragraph
from docx.text.run import Run

from soc.export.documents import IncidentReport, SummaryReport

ON, OFF = "☒", "☐"
LEVEL_VI = {"informational": "Thông tin", "low": "Thấp", "medium": "Trung bình", "high": "Cao",
            "critical": "Nghiêm trọng"}
SEVERITY_VI = {"low": "Thấp", "medium": "Trung bình", "high": "Cao", "critical": "Nghiêm trọng"}
PERIOD_VI = {"daily": "ngày", "weekly": "tuần", "monthly": "tháng", "quarterly": "quý",
             "semiannual": "06 tháng", "annual": "01 năm"}


# XML 1.0 Char: #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]
_XML_ILLEGAL = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(text: str) -> str:
    """``text`` with every character XML 1.0 forbids (C0 controls but tab, newline and carriage
    return; lone surrogates; U+FFFE, U+FFFF) written as a visible ``\\u0007``-style escape, so that
    a control character in a domain name from a log cannot block a report, and the analyst sees it."""
    return _XML_ILLEGAL.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def box(checked: bool, label: str) -> str:
    return f"{ON if checked else OFF} {label}"


def _text(value: object) -> str:
    if value in (None, "", []):
        return "…"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)


class _Writer:
    def __init__(self) -> None:
        self.doc: DocxDocument = Document()
        style = self.doc.styles["Normal"]
        style.font.name = "Times New Roman"
        style.font.size = Pt(13)

    @staticmethod
    def run(paragraph: Paragraph, text: str) -> Run:
        """The one way text enters the document body: XML-illegal characters become escapes."""
        return paragraph.add_run(xml_text(text))

    def para(self, text: str = "", *, bold: bool = False, italic: bool = False, center: bool = False,
             right: bool = False, size: float | None = None) -> None:
        p = self.doc.add_paragraph()
        run = self.run(p, text)
        run.bold = bold
        run.italic = italic
        if size:
            run.font.size = Pt(size)
        if center:
            p.alignment = WD_ALIGN_PARAGRAPH.CENTER
        elif right:
            p.alignment = WD_ALIGN_PARAGRAPH.RIGHT

    def field(self, label: str, value: object, required: bool = False) -> None:
        p = self.doc.add_paragraph()
        self.run(p, f"{label}{' (*)' if required else ''}: ").bold = False
        self.run(p, _text(value))

    def heading(self, number: int, text: str, required: bool = False) -> None:
        self.para(f"{number}. {text}{' (*)' if required else ''}", bold=True)

    def boxes(self, items: Iterable[tuple[bool, str]]) -> None:
        self.para("    ".join(box(c, label) for c, label in items))

    def table(self, header: list[str], rows: list[list[object]]) -> None:
        table = self.doc.add_table(rows=1, cols=len(header))
        table.style = "Table Grid"
        for cell, text in zip(table.rows[0].cells, header, strict=True):
            self.run(cell.paragraphs[0], text).bold = True
        for row in rows:
            cells = table.add_row().cells
            for cell, value in zip(cells, row, strict=True):
                self.run(cell.paragraphs[0], _text(value) if value not in (0,) else "0")

    def national_header(self, form: str, report_no: str, reported_at: str) -> None:
        self.para(form, bold=True, right=True)
        self.para("CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", bold=True, center=True)
        self.para("Độc lập - Tự do - Hạnh phúc", bold=True, center=True)
        day = datetime.fromisoformat(reported_at)
        self.para(f"Số: {report_no}")
        self.para(f"ngày {day:%d} tháng {day:%m} năm {day:%Y}", italic=True, right=True)

    def signature(self, name: str, title: str, digital: bool) -> None:
        self.para("")
        self.para("CÁ NHÂN/NGƯỜI ĐẠI DIỆN THEO PHÁP LUẬT", bold=True, right=True)
        self.para("(Ký số)" if digital else "(Ký, ghi rõ họ tên, đóng dấu)", italic=True, right=True)
        self.para(title, right=True)
        self.para(name, bold=True, right=True)

    def save(self, title: str, author: str, at: str) -> bytes:
        when = datetime.fromisoformat(at)
        utc_naive = datetime(*when.utctimetuple()[:6])
        core = self.doc.core_properties
        core.title = xml_text(title)
        core.author = xml_text(author)
        core.last_modified_by = xml_text(author)
        core.created = utc_naive
        core.modified = utc_naive
        core.last_printed = utc_naive
        core.revision = 1
        core.comments = ""
        core.keywords = ""
        buf = io.BytesIO()
        self.doc.save(buf)
        return normalize_zip(buf.getvalue(), when.timetuple()[:6])


def normalize_zip(data: bytes, date_time: tuple[int, ...]) -> bytes:
    """Rewrite a zip with the same entries in the same order, every entry dated ``date_time``."""
    stamp = tuple(max(v, 1980) if i == 0 else v for i, v in enumerate(date_time))
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            entry = zipfile.ZipInfo(info.filename, date_time=stamp)  # type: ignore[arg-type]
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            entry.create_system = 3
            zout.writestr(entry, zin.read(info.filename))
    return out.getvalue()


# -- Mẫu 03 / Mẫu 04 ------------------------------------------------------------------------------
def _appendix(w: _Writer, r: IncidentReport) -> None:
    w.para("")
    w.para("PHỤ LỤC: THÔNG TIN BỔ SUNG TỪ HỆ THỐNG GIÁM SÁT (không thuộc biểu mẫu)", bold=True)
    w.field("Mã sự cố", r.incident_id)
    w.field("Tên sự cố", r.incident_title)
    w.field("Loại sự cố", f"{r.incident_type_label} ({r.incident_type})")
    w.field("Phân loại RSIT", r.rsit)
    w.field("Mức độ", SEVERITY_VI.get(r.severity, r.severity))
    w.field("Sự cố nghiêm trọng (Quyết định 05/2017/QĐ-TTg)", "Có" if r.serious else "Không")
    w.field("Hạn gửi báo cáo", r.deadline_due_at)
    w.field("Đơn vị", r.agency.get("name") or r.agency.get("id"))
    w.field("Hồ sơ", f"{r.profile_id} (phiên bản {r.schema_version}); căn cứ: {'; '.join(r.legal_basis)}")
    if r.iocs:
        w.para("Dấu hiệu nhận biết (IoC)", bold=True)
        w.table(["Loại", "Giá trị", "Thấy lần đầu", "Thấy lần cuối"],
                [[i.type, i.value, i.first_seen, i.last_seen] for i in r.iocs])
    if r.alerts:
        w.para("Cảnh báo liên quan", bold=True)
        w.table(["Quy tắc", "Mức", "Thấy lần đầu", "Số sự kiện"],
                [[a.title, LEVEL_VI.get(a.level, a.level), a.first_seen, a.event_count] for a in r.alerts])


def _reporter(w: _Writer, number: int, r: IncidentReport) -> None:
    w.heading(number, "THÔNG TIN VỀ TỔ CHỨC/CÁ NHÂN BÁO CÁO SỰ CỐ")
    w.field("Tên tổ chức/cá nhân", r.reporter.name, True)
    w.field("Địa chỉ", r.reporter.address, True)
    w.field("Điện thoại", r.reporter.phone, True)
    w.field("Email", r.reporter.email, True)


def _levels(w: _Writer, level: int | None) -> None:
    w.para("Phân loại cấp độ hệ thống thông tin:")
    w.boxes((level == n, f"Cấp độ {n}") for n in range(1, 6))


def render_incident_docx(r: IncidentReport) -> bytes:
    w = _Writer()
    w.national_header(r.form, r.report_no, r.reported_at)
    closing = r.report_kind == "closing"
    title = "BÁO CÁO KẾT THÚC ỨNG PHÓ SỰ CỐ" if closing else "BÁO CÁO BAN ĐẦU SỰ CỐ MẠNG"
    w.para(title, bold=True, center=True, size=14)
    if r.addressee:
        w.para(f"Kính gửi: {r.addressee}", center=True)
    s = r.system
    time_of_report = datetime.fromisoformat(r.reported_at).strftime("%d/%m/%Y %H:%M")
    if closing:
        _reporter(w, 1, r)
        w.heading(2, "KÝ HIỆU BÁO CÁO BAN ĐẦU SỰ CỐ")
        w.field("Số", r.initial_ref.report_no if r.initial_ref else None)
        w.field("Ngày", r.initial_ref.date if r.initial_ref else None)
        w.heading(3, "THÔNG TIN VỀ HỆ THỐNG BỊ SỰ CỐ")
        w.field("Tên đơn vị vận hành hệ thống thông tin", s.operator, True)
        w.field("Cơ quan chủ quản", s.owner)
        w.field("Tên hệ thống bị sự cố", s.name)
        _levels(w, s.level)
        w.heading(4, "TÊN/MÔ TẢ VỀ SỰ CỐ")
        w.para(r.summary)
        w.field("Ngày phát hiện sự cố", r.discovered_date, True)
        w.field("Thời gian phát hiện", r.discovered_time, True)
        w.heading(5, "KẾT QUẢ XỬ LÝ SỰ CỐ")
        w.para(_text(r.outcome))
        w.field("Đề xuất đối với các sự cố tương tự", r.future_measures)
        w.heading(6, "CÁC TÀI LIỆU ĐÍNH KÈM")
        a = set(r.attachments)
        w.boxes([("progress_report" in a, "Báo cáo diễn biến"), ("response_plan" in a, "Phương án ứng cứu"),
                 ("system_logs" in a, "Nhật ký hệ thống (log file)"), ("other" in a, "Khác")])
        if r.attachment_files:
            w.field("Tệp đính kèm", r.attachment_files)
        w.heading(7, "THỜI GIAN THỰC HIỆN BÁO CÁO", True)
        w.para(time_of_report)
    else:
        _reporter(w, 1, r)
        w.heading(2, "NGƯỜI LIÊN HỆ")
        c = r.contact
        w.field("Họ và tên", c.full_name if c else None, True)
        w.field("Chức vụ", c.position if c else None)
        w.field("Điện thoại", c.phone if c else None, True)
        w.field("Email", c.email if c else None, True)
        w.heading(3, "THÔNG TIN CHI TIẾT VỀ HỆ THỐNG BỊ SỰ CỐ")
        w.field("Tên đơn vị vận hành hệ thống thông tin", s.operator, True)
        w.field("Cơ quan chủ quản", s.owner)
        w.field("Tên hệ thống bị sự cố", s.name)
        _levels(w, s.level)
        w.field("Tổ chức cung cấp dịch vụ an toàn thông tin", s.sec_provider)
        w.field("Tên nhà cung cấp dịch vụ kết nối bên ngoài (ISP)", s.isp)
        w.heading(4, "MÔ TẢ SƠ BỘ VỀ SỰ CỐ", True)
        w.para(r.summary)
        w.heading(5, "NGÀY, GIỜ PHÁT HIỆN SỰ CỐ", True)
        w.field("Ngày phát hiện sự cố (dd/mm/yy)", r.discovered_date, True)
        w.field("Thời gian phát hiện (hh:mm)", r.discovered_time, True)
        w.heading(6, "HIỆN TRẠNG SỰ CỐ", True)
        w.boxes([(r.status == "handled", "Đã được xử lý"), (r.status == "not_handled", "Chưa được xử lý")])
        w.heading(7, "CÁCH THỨC PHÁT HIỆN", True)
        d = set(r.detection_method)
        w.boxes([("ids" in d, "Qua hệ thống phát hiện xâm nhập (IDS)"),
                 ("log_review" in d, "Kiểm tra dữ liệu lưu lại (Log File)")])
        w.boxes([("notified_by" in d, f"Nhận được thông báo từ: {_text(r.detection_notified_by)}"),
                 ("other" in d, f"Khác: {_text(r.detection_other)}")])
        w.heading(8, "ĐÃ GỬI THÔNG BÁO SỰ CỐ CHO", True)
        n = set(r.notified)
        w.boxes([("network_member" in n, "Thành viên mạng lưới chịu trách nhiệm ứng cứu"),
                 ("isp" in n, "ISP đang trực tiếp cung cấp dịch vụ"),
                 ("coordinating_authority" in n, "Cơ quan điều phối")])
        w.heading(9, "THÔNG TIN BỔ SUNG VỀ HỆ THỐNG BỊ SỰ CỐ")
        w.field("Hệ điều hành", s.os)
        w.field("Version", s.os_version)
        w.para("Các dịch vụ có trên hệ thống:")
        sv = set(s.services)
        w.boxes([("web_server" in sv, "Web server"), ("mail_server" in sv, "Mail server"),
                 ("database_server" in sv, "Database server"),
                 ("other" in sv, f"Khác: {_text(s.services_other)}")])
        w.para("Các biện pháp an toàn thông tin đã triển khai:")
        ct = set(s.controls)
        w.boxes([("antivirus" in ct, "Antivirus"), ("firewall" in ct, "Firewall"),
                 ("ids" in ct, "Hệ thống phát hiện xâm nhập"), ("other" in ct, f"Khác: {_text(s.controls_other)}")])
        w.field("Các địa chỉ IP của hệ thống (public)", s.public_ips)
        w.field("Các tên miền của hệ thống", s.domains)
        w.field("Mục đích sử dụng của hệ thống", s.purpose)
        w.para("Thông tin gửi kèm:")
        a = set(r.attachments)
        w.boxes([("system_logs" in a, "Nhật ký hệ thống"), ("malware_sample" in a, "Mẫu virus/mã độc"),
                 ("other" in a, "Khác")])
        w.para("Yêu cầu giữ bí mật thông tin:")
        w.boxes([(r.confidential is True, "Có"), (r.confidential is False, "Không")])
        w.heading(10, "KIẾN NGHỊ, ĐỀ XUẤT HỖ TRỢ")
        w.para(_text(r.support_request))
        w.heading(11, "THỜI GIAN THỰC HIỆN BÁO CÁO", True)
        w.para(time_of_report)
    w.signature(r.signatory.name, r.signatory.title, r.signatory.signed_by == "digital_signature")
    _appendix(w, r)
    return w.save(f"{title} {r.report_no}", r.reporter.name, r.reported_at)


# -- Mẫu 05 --------------------------------------------------------------------------------------
MAU05_HEADER = ["STT", "Loại sự cố", "Số lượng", "Số sự cố tự xử lý",
                "Số sự cố có hỗ trợ từ các tổ chức khác", "Số sự cố có hỗ trợ từ tổ chức nước ngoài",
                "Số sự cố đề nghị VNCERT hỗ trợ", "Thiệt hại ước tính (VNĐ)"]


def _period_text(start: str, end: str) -> str:
    """``từ tháng 07/2026 đến tháng 12/2026`` (the end is exclusive: the next period's start)."""
    last = datetime.fromisoformat(end) - timedelta(days=1)
    return f"từ tháng {datetime.fromisoformat(start):%m/%Y} đến tháng {last:%m/%Y}"


def render_summary_docx(r: SummaryReport) -> bytes:
    w = _Writer()
    w.national_header(r.form, r.report_no, r.reported_at)
    span = PERIOD_VI.get(r.period.type, r.period.type).upper()
    w.para(f"BÁO CÁO TỔNG HỢP {span} VỀ HOẠT ĐỘNG TIẾP NHẬN VÀ XỬ LÝ SỰ CỐ", bold=True, center=True, size=14)
    w.para(f"Kỳ báo cáo: {_period_text(r.period.start, r.period.end)}", center=True)
    w.para(f"Kính gửi: {r.addressee or 'Trung tâm Ứng cứu khẩn cấp máy tính Việt Nam'}", center=True)
    w.field("Tên tổ chức", r.organisation.name, True)
    w.field("Địa chỉ", r.organisation.address, True)
    w.field("Mã thành viên mạng lưới", r.organisation.member_code)
    w.heading(1, "SỐ LƯỢNG SỰ CỐ VÀ CÁCH THỨC XỬ LÝ")
    rows: list[list[object]] = []
    for i, row in enumerate(r.rows, 1):
        rows.append([i, row.label, row.count, row.self_handled, row.domestic_support, row.foreign_support,
                     row.vncert_support_requested, row.est_damage_vnd])
    t = r.total
    rows.append(["", "Tổng số", t.count, t.self_handled, t.domestic_support, t.foreign_support,
                 t.vncert_support_requested, t.est_damage_vnd])
    w.table(MAU05_HEADER, rows)
    w.heading(2, "DANH SÁCH CÁC TỔ CHỨC TRONG NƯỚC ĐÃ HỖ TRỢ XỬ LÝ SỰ CỐ")
    w.para(_text(r.domestic_helpers) if r.domestic_helpers else "Không có")
    w.heading(3, "DANH SÁCH CÁC TỔ CHỨC NƯỚC NGOÀI ĐÃ HỖ TRỢ XỬ LÝ SỰ CỐ")
    w.para(_text(r.foreign_helpers) if r.foreign_helpers else "Không có")
    w.heading(4, "KIẾN NGHỊ, ĐỀ XUẤT")
    w.para(_text(r.recommendations))
    w.signature(r.signatory.name, r.signatory.title, r.signatory.signed_by == "digital_signature")
    return w.save(f"Mẫu 05 {r.report_no}", r.organisation.name, r.reported_at)
