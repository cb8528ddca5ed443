"""What a chart shows, independent of how it is drawn.

A :class:`Chart` has ``categories`` (the x axis of ``stacked``/``bars``/``lines``, the bars of
``hbars``) and one or more :class:`Series` whose ``values`` line up with them (``None``: no
value, e.g. a day without any incident to measure -- drawn as a gap, never as zero). A
series' ``key`` picks its colour (:func:`color_of`: the alert levels have the console's
colours) and stays the same across languages; ``label`` is what the reader sees.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["KINDS", "LEVEL_COLORS", "PALETTE", "Chart", "Series", "as_series", "color_of", "nice_ticks", "shorten"]

KINDS = ("stacked", "bars", "hbars", "lines")
#: the console's colours of the alert levels (static/console.css)
LEVEL_COLORS = {"critical": "#8b0000", "high": "#c0392b", "medium": "#b9770e", "low": "#2471a3",
                "informational": "#5d6d7e"}
#: colours of other series, in order (distinguishable in print and for common colour blindness)
PALETTE = ("#0b5cad", "#d35400", "#1e8449", "#7d3c98", "#b03a2e", "#117a65", "#5d6d7e", "#b7950b")


def color_of(key: str, index: int) -> str:
    """The colour of a series: its level's, else the palette's ``index``-th."""
    return LEVEL_COLORS.get(key, PALETTE[index % len(PALETTE)])


@dataclass(frozen=True)
class Series:
    key: str
    label: str
    values: tuple[float | None, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", tuple(self.values))


@dataclass(frozen=True)
class Chart:
    """``kind``: ``stacked`` (stacked columns), ``bars`` (grouped columns), ``hbars``
    (horizontal bars, one per category: rankings) or ``lines``. ``unit`` names the values'
    unit (the axis title); ``description`` is the text alternative, said by screen readers."""

    kind: Literal["stacked", "bars", "hbars", "lines"]
    title: str
    categories: tuple[str, ...]
    series: tuple[Series, ...]
    unit: str = ""
    description: str = ""
    #: the full text of each category when ``categories`` are shortened for the axis
    full_categories: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"chart kind {self.kind!r}: use one of {', '.join(KINDS)}")
        object.__setattr__(self, "categories", tuple(self.categories))
        object.__setattr__(self, "series", tuple(self.series))
        object.__setattr__(self, "full_categories", tuple(self.full_categories) or self.categories)
        for series in self.series:
            if len(series.values) != len(self.categories):
                raise ValueError(f"series {series.key!r} has {len(series.values)} values for "
                                 f"{len(self.categories)} categories")

    @property
    def empty(self) -> bool:
        """Nothing to draw: no category, or no value anywhere."""
        return not self.categories or all(v in (None, 0) for s in self.series for v in s.values)

    def top(self) -> float:
        """The largest value the axis must reach (stacked: the largest column's sum)."""
        if self.kind == "stacked":
            sums = [sum(v or 0 for v in column) for column in zip(*(s.values for s in self.series), strict=True)]
            return max(sums, default=0.0)
        return max((v for s in self.series for v in s.values if v is not None), default=0.0)


def nice_ticks(top: float, count: int = 4) -> list[float]:
    """Round axis ticks from 0 reaching at least ``top`` (1, 2, 2.5 or 5 times a power of ten)."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / count
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    ticks = [0.0]
    while ticks[-1] < top:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def shorten(text: str, length: int) -> str:
    """``text`` cut to ``length`` characters with an ellipsis."""
    return text if len(text) <= length else text[: max(1, length - 1)].rstrip() + "…"


def as_series(key: str, label: str, values: Sequence[float | None]) -> Series:
    return Series(key, label, tuple(values))
