"""The scorecard as a table, written as CSV and as an .xlsx workbook (openpyxl).

Cells hold data from logs and from people (agency and rule names): text a spreadsheet would
run as a formula (starting with ``= + - @``, a tab or a carriage return) is made inert -- in CSV
by a leading apostrophe (what the event export does), in .xlsx by storing it as a string cell
(never a formula) marked with a quote prefix. Numbers stay numbers.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from soc.oversight.figures import AgencyRow

__all__ = ["FORMULA_START", "neutral", "scorecard_rows", "to_csv", "to_xlsx"]

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
#: the scorecard's columns (keys; pages and files name them in the reader's language)
COLUMNS = ("agency", "name", "sources", "silent", "alerts", "incidents", "by_type", "mttd_median_minutes",
           "mttd_count", "backfilled", "mttr_median_hours", "mttr_count", "closed_alerts", "false_positives",
           "fp_rate", "overdue_reports")


def neutral(value: Any) -> Any:
    """A CSV cell: numbers as they are, text that would run as a formula with a leading apostrophe."""
    if value is None:
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    text = str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def scorecard_rows(rows: Sequence[AgencyRow], type_label: Any = str) -> list[list[Any]]:
    """One list of values per agency, in :data:`COLUMNS` order (``type_label``: code -> name)."""
    out = []
    for r in rows:
        mttd = r.times.mttd.minutes()[0]
        mttr = r.times.mttr.hours()[0]
        types = "; ".join(f"{type_label(code)}: {n}" for code, n in sorted(r.by_type.items(), key=lambda i: (-i[1], i[0])))
        out.append([r.agency or "", r.name, r.sources, r.silent, r.alerts, r.incidents, types, mttd,
                    r.times.mttd.count, r.times.backfilled, mttr, r.times.mttr.count, r.closed, r.false_positives,
                    None if r.fp_rate is None else round(r.fp_rate, 4), r.overdue])
    return out


def to_csv(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> bytes:
    """UTF-8 CSV with a byte-order mark (spreadsheets then read the diacritics right)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([neutral(h) for h in header])
    for row in rows:
        writer.writerow([neutral(v) for v in row])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def to_xlsx(header: Sequence[str], rows: Sequence[Sequence[Any]], *, title: str, notes: Sequence[str] = ()) -> bytes:
    """An .xlsx workbook: one sheet with the header (bold, frozen), the rows, and ``notes``
    (how the figures are computed) below them."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    sheet.title = _sheet_title(title)
    sheet.append([str(h) for h in header])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for values in rows:
        sheet.append([None if v is None else v if isinstance(v, (int, float)) and not isinstance(v, bool)
                      else str(v) for v in values])
    for line in notes:
        sheet.append([])
        sheet.append([str(line)])
    for row in sheet.iter_rows():
        for cell in row:
            if isinstance(cell.value, str) and cell.value.startswith(FORMULA_START):
                cell.data_type = "s"  # text, never a formula
                cell.quotePrefix = True
    sheet.freeze_panes = "A2"
    for column in sheet.columns:
        width = max((len(str(c.value)) for c in column[: len(rows) + 1] if c.value is not None), default=8)
        sheet.column_dimensions[column[0].column_letter].width = min(60, max(8, width + 2))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _sheet_title(title: str) -> str:
    cleaned = "".join(" " if c in "[]:*?/\\" else c for c in title).strip()
    return (cleaned or "Sheet")[:31]
