"""Charts of the oversight figures, drawn twice from one data model (:mod:`.model`): as small
server-side SVG for the console's pages (:mod:`.svg`: no JavaScript, no library, text escaped,
a title and a description for screen readers, colours as presentation attributes so the
page's Content-Security-Policy needs no inline style) and as PNG images for the .docx
reports (:mod:`.png`, matplotlib without pyplot: safe in threads). Both draw the same
categories, series, colours and numbers."""

from soc.charts.model import LEVEL_COLORS, PALETTE, Chart, Series, color_of
from soc.charts.png import render_png
from soc.charts.svg import render_svg

__all__ = ["LEVEL_COLORS", "PALETTE", "Chart", "Series", "color_of", "render_png", "render_svg"]
