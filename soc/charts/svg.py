"""Charts as small SVG documents for the console's pages.

No script, no style attribute (the page's Content-Security-Policy forbids inline style):
colours are presentation attributes (``fill``), sizes and fonts come from the page's
stylesheet through classes. Every text -- category names come from the data (agency and rule
names) -- is escaped here; the result is safe to place in a page as it is. Each mark carries a
``<title>`` (the browser shows it on hover and screen readers read it), and the chart a title
and a description (``role="img"``); pages show the numbers as a table next to it too.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from html import escape

from markupsafe import Markup

from soc.charts.model import Chart, color_of, nice_ticks, shorten

__all__ = ["render_svg"]

Number = Callable[[float], str]
WIDTH = 640
COLUMN_HEIGHT = 250
ROW = 22
CHAR = 6.4  # average width of a character at the chart's font size (11 px), for layout


def _plain(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _f(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def render_svg(chart: Chart, *, ident: str = "chart", number: Number = _plain, empty_text: str = "–",
               width: int = WIDTH) -> Markup:
    """The chart as an ``<svg>`` element (escaped, ready for a page); ``ident`` makes the ids
    of its title and description unique on the page, ``number`` writes a value (the reader's
    language), ``empty_text`` is said when there is nothing to draw, ``width`` is the drawing's
    width in its own units (a wide chart: more room per column at the same text size)."""
    ident = "".join(c for c in ident if c.isalnum() or c in "-_") or "chart"
    if chart.kind == "hbars":
        height, body = _hbars(chart, number, width)
    else:
        height, body = _columns(chart, number, width)
    if chart.empty:
        height = 60
        body = [f'<text x="{width / 2}" y="34" text-anchor="middle" class="empty">{_e(empty_text)}</text>']
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart chart-{chart.kind}" viewBox="0 0 {width} {height}" '
            f'role="img" aria-labelledby="{ident}-t {ident}-d" preserveAspectRatio="xMinYMin meet">'
            f'<title id="{ident}-t">{_e(chart.title)}</title><desc id="{ident}-d">{_e(chart.description or chart.title)}</desc>')
    return Markup(head + "".join(body) + "</svg>")


def _legend(chart: Chart, top: float, width: int) -> tuple[list[str], float]:
    """Swatches and labels of the series, in rows from ``top``; the height they take."""
    if len(chart.series) < 2:
        return [], 0.0
    parts, x, y = [], 10.0, top
    for i, series in enumerate(chart.series):
        size = 18 + len(series.label) * CHAR + 14
        if x + size > width and x > 10:
            x, y = 10.0, y + 16
        parts.append(f'<rect x="{_f(x)}" y="{_f(y)}" width="10" height="10" fill="{color_of(series.key, i)}"/>'
                     f'<text x="{_f(x + 14)}" y="{_f(y + 9)}" class="legend">{_e(series.label)}</text>')
        x += size
    return parts, y - top + 16


def _columns(chart: Chart, number: Number, width: int) -> tuple[int, list[str]]:
    left, right, top = 56.0, 12.0, 14.0
    legend, legend_height = _legend(chart, 0, width)
    bottom = 30.0
    height = COLUMN_HEIGHT + legend_height
    x0, x1, y0, y1 = left, width - right, top, COLUMN_HEIGHT - bottom
    ticks = nice_ticks(chart.top())
    scale = (y1 - y0) / (ticks[-1] or 1)
    out: list[str] = ['<g class="axis">']
    for tick in ticks:
        y = y1 - tick * scale
        out.append(f'<line x1="{_f(x0)}" x2="{_f(x1)}" y1="{_f(y)}" y2="{_f(y)}" class="grid"/>'
                   f'<text x="{_f(x0 - 6)}" y="{_f(y + 4)}" text-anchor="end">{_e(number(tick))}</text>')
    if chart.unit:
        out.append(f'<text x="4" y="{_f(y0 - 4)}" class="unit">{_e(chart.unit)}</text>')
    count = len(chart.categories) or 1
    band = (x1 - x0) / count
    every = max(1, math.ceil(count / max(1, int((x1 - x0) // 56))))
    for i, name in enumerate(chart.categories):
        if i % every == 0:
            out.append(f'<text x="{_f(x0 + band * (i + 0.5))}" y="{_f(y1 + 16)}" text-anchor="middle">'
                       f'{_e(shorten(name, 12))}</text>')
    out.append(f'<line x1="{_f(x0)}" x2="{_f(x1)}" y1="{_f(y1)}" y2="{_f(y1)}" class="base"/></g>')
    if chart.kind == "lines":
        out += _lines(chart, number, x0, band, y1, scale)
    else:
        out += _bars(chart, number, x0, band, y1, scale)
    out += [f'<g transform="translate(0 {_f(COLUMN_HEIGHT - 8)})">', *legend, "</g>"] if legend else []
    return int(height), out


def _mark_title(chart: Chart, i: int, label: str, value: float, number: Number) -> str:
    what = f"{chart.full_categories[i]} · {label}: {number(value)}" if len(chart.series) > 1 else \
        f"{chart.full_categories[i]}: {number(value)}"
    return f"<title>{_e(what)}</title>"


def _bars(chart: Chart, number: Number, x0: float, band: float, y1: float, scale: float) -> list[str]:
    out = ['<g class="marks">']
    stacked = chart.kind == "stacked"
    n = len(chart.series) or 1
    width = band * 0.7 if stacked else band * 0.8 / n
    for i in range(len(chart.categories)):
        base = y1
        for s, series in enumerate(chart.series):
            value = series.values[i]
            if not value:
                continue
            h = value * scale
            x = x0 + band * i + (band * 0.15 if stacked else band * 0.1 + s * width)
            y = base - h if stacked else y1 - h
            out.append(f'<rect x="{_f(x)}" y="{_f(y)}" width="{_f(max(width, 1))}" height="{_f(max(h, 0.5))}" '
                       f'fill="{color_of(series.key, s)}">{_mark_title(chart, i, series.label, value, number)}</rect>')
            if stacked:
                base -= h
    out.append("</g>")
    return out


def _lines(chart: Chart, number: Number, x0: float, band: float, y1: float, scale: float) -> list[str]:
    out = ['<g class="marks">']
    for s, series in enumerate(chart.series):
        color = color_of(series.key, s)
        run: list[str] = []
        points = []
        for i, value in enumerate(series.values):
            if value is None:
                if len(run) > 1:
                    out.append(f'<polyline points="{" ".join(run)}" fill="none" stroke="{color}" stroke-width="2"/>')
                run = []
                continue
            x, y = x0 + band * (i + 0.5), y1 - value * scale
            run.append(f"{_f(x)},{_f(y)}")
            points.append(f'<circle cx="{_f(x)}" cy="{_f(y)}" r="3" fill="{color}">'
                          f'{_mark_title(chart, i, series.label, value, number)}</circle>')
        if len(run) > 1:
            out.append(f'<polyline points="{" ".join(run)}" fill="none" stroke="{color}" stroke-width="2"/>')
        out += points
    out.append("</g>")
    return out


def _hbars(chart: Chart, number: Number, width: int) -> tuple[int, list[str]]:
    label_width, right, top = 230.0, 70.0, 6.0
    legend, legend_height = _legend(chart, 0, width)
    rows = len(chart.categories)
    plot_bottom = top + rows * ROW
    height = plot_bottom + 8 + (legend_height + 6 if legend else 0)
    x0, x1 = label_width, width - right
    sums = [sum(s.values[i] or 0 for s in chart.series) for i in range(rows)]
    scale = (x1 - x0) / (max(sums, default=0) or 1)
    out = ['<g class="axis">']
    for i, name in enumerate(chart.categories):
        y = top + i * ROW + ROW / 2 + 4
        out.append(f'<text x="{_f(x0 - 8)}" y="{_f(y)}" text-anchor="end">{_e(shorten(name, 34))}'
                   f'<title>{_e(chart.full_categories[i])}</title></text>')
    out.append(f'<line x1="{_f(x0)}" x2="{_f(x0)}" y1="{_f(top)}" y2="{_f(plot_bottom)}" class="base"/></g>'
               '<g class="marks">')
    for i in range(rows):
        x = x0
        y = top + i * ROW + 4
        for s, series in enumerate(chart.series):
            value = series.values[i]
            if not value:
                continue
            w = value * scale
            out.append(f'<rect x="{_f(x)}" y="{_f(y)}" width="{_f(max(w, 1))}" height="{ROW - 8}" '
                       f'fill="{color_of(series.key, s)}">{_mark_title(chart, i, series.label, value, number)}</rect>')
            x += w
        out.append(f'<text x="{_f(x + 6)}" y="{_f(y + ROW / 2)}" class="value">{_e(number(sums[i]))}</text>')
    out.append("</g>")
    if legend:
        out += [f'<g transform="translate(0 {_f(plot_bottom + 10)})">', *legend, "</g>"]
    return int(math.ceil(height)), out
