"""Charts as PNG images for the .docx reports (matplotlib, Agg, without pyplot: no global
state, safe in the service's threads). The same :class:`~soc.charts.model.Chart` as the
console's SVG: categories, series, colours and numbers. The bytes depend only on the chart
(no date or version stamped in the file), so a report rendered twice is the same file."""

from __future__ import annotations

import io
from collections.abc import Callable

from soc.charts.model import Chart, color_of, shorten

__all__ = ["render_png"]

Number = Callable[[float], str]
DPI = 150


def _plain(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def _t(text: str) -> str:
    """Text as matplotlib shows it literally: a ``$`` would start mathematical notation."""
    return text.replace("$", r"\$")


def render_png(chart: Chart, *, number: Number = _plain, width_inches: float = 6.3, empty_text: str = "–") -> bytes:
    """The chart as PNG bytes, ``width_inches`` wide (a page of A4 with margins: 6.3)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    rows = len(chart.categories)
    height = max(1.6, 0.28 * rows + 0.9) if chart.kind == "hbars" else 2.8
    figure = Figure(figsize=(width_inches, height), dpi=DPI)
    axes = figure.add_subplot()
    axes.set_title(_t(chart.title), fontsize=10, loc="left")
    if chart.empty:
        axes.axis("off")
        axes.text(0.5, 0.5, _t(empty_text), ha="center", va="center", fontsize=10, transform=axes.transAxes)
    elif chart.kind == "hbars":
        _hbars(axes, chart, number)
    else:
        _columns(axes, chart, number)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    axes.tick_params(labelsize=8)
    formatter = FuncFormatter(lambda value, _pos: _t(number(value)))
    values_axis = axes.xaxis if chart.kind == "hbars" else axes.yaxis
    values_axis.set_major_formatter(formatter)
    if all(float(v).is_integer() for s in chart.series for v in s.values if v is not None):
        values_axis.set_major_locator(MaxNLocator(integer=True))
    if len(chart.series) > 1 and not chart.empty:
        axes.legend(fontsize=7, frameon=False, ncols=min(5, len(chart.series)), loc="upper left",
                    bbox_to_anchor=(0, -0.18 if chart.kind != "hbars" else -0.6 / max(1, rows) - 0.05))
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=DPI, metadata={"Software": None})
    return out.getvalue()


def _columns(axes, chart: Chart, number: Number) -> None:  # type: ignore[no-untyped-def]
    positions = list(range(len(chart.categories)))
    if chart.unit:
        axes.set_ylabel(_t(chart.unit), fontsize=8)
    if chart.kind == "lines":
        for s, series in enumerate(chart.series):
            values = [float("nan") if v is None else v for v in series.values]
            axes.plot(positions, values, marker="o", markersize=3, linewidth=1.6, color=color_of(series.key, s),
                      label=_t(series.label))
    else:
        stacked = chart.kind == "stacked"
        n = len(chart.series) or 1
        width = 0.7 if stacked else 0.8 / n
        bottoms = [0.0] * len(positions)
        for s, series in enumerate(chart.series):
            values = [v or 0 for v in series.values]
            x = positions if stacked else [p - 0.4 + width * (s + 0.5) for p in positions]
            axes.bar(x, values, width=width, bottom=bottoms if stacked else None, color=color_of(series.key, s),
                     label=_t(series.label))
            if stacked:
                bottoms = [b + v for b, v in zip(bottoms, values, strict=True)]
    every = max(1, -(-len(positions) // 12))
    axes.set_xticks(positions[::every], [_t(shorten(c, 12)) for c in chart.categories[::every]])
    axes.set_ylim(bottom=0)
    axes.grid(axis="y", linewidth=0.4, alpha=0.5)


def _hbars(axes, chart: Chart, number: Number) -> None:  # type: ignore[no-untyped-def]
    positions = list(range(len(chart.categories)))[::-1]  # the first category on top
    lefts = [0.0] * len(positions)
    for s, series in enumerate(chart.series):
        values = [v or 0 for v in series.values]
        axes.barh(positions, values, left=lefts, height=0.6, color=color_of(series.key, s), label=_t(series.label))
        lefts = [a + b for a, b in zip(lefts, values, strict=True)]
    for y, total in zip(positions, lefts, strict=True):
        axes.text(total, y, " " + _t(number(total)), va="center", fontsize=7)
    axes.set_yticks(positions, [_t(shorten(c, 40)) for c in chart.categories])
    axes.set_xlim(left=0, right=(max(lefts, default=0) or 1) * 1.15)
    if chart.unit:
        axes.set_xlabel(_t(chart.unit), fontsize=8)
