"""The dashboard's charts (:mod:`soc.charts` data), in the reader's language: ``gettext`` of the
page translates the titles and series names; categories are bucket times written the
language's way, agency names and rule titles as they are (data, escaped by the renderer)."""

from __future__ import annotations

from collections.abc import Callable

from soc.charts import Chart, Series
from soc.oversight.figures import Dashboard
from soc.oversight.span import Bucket

__all__ = ["TOP", "bucket_label", "dashboard_charts"]

Gettext = Callable[..., str]
#: bars of a ranking chart (the table next to it lists every row)
TOP = 12
LEVEL_NAMES = {"critical": "Critical", "high": "High", "medium": "Medium", "low": "Low",
               "informational": "Informational"}
#: strftime patterns per language and bucket unit
PATTERNS = {"vi": {"hour": "%H:00", "day": "%d/%m", "week": "%d/%m", "month": "%m/%Y"},
            "en": {"hour": "%H:00", "day": "%m-%d", "week": "%m-%d", "month": "%Y-%m"}}


def bucket_label(bucket: Bucket, unit: str, language: str) -> str:
    return bucket.start.strftime(PATTERNS.get(language, PATTERNS["vi"])[unit])


def _ranking(title: str, rows: list[tuple[str, int]], series_label: str, description: str) -> Chart:
    shown = rows[:TOP]
    return Chart("hbars", title, tuple(name for name, _ in shown),
                 (Series("count", series_label, tuple(n for _, n in shown)),), description=description)


def dashboard_charts(d: Dashboard, _: Gettext, language: str) -> dict[str, Chart]:
    """Every chart of the dashboard, by name."""
    labels = tuple(bucket_label(b, d.span.unit, language) for b in d.span.buckets)
    full = tuple(b.start.strftime("%Y-%m-%d %H:%M") for b in d.span.buckets)
    unit = {"hour": _("per hour"), "day": _("per day"), "week": _("per week"), "month": _("per month")}[d.span.unit]
    levels = tuple(Series(level, _(LEVEL_NAMES.get(level, level)), tuple(counts)) for level, counts in d.levels.items())
    charts = {
        "over_time": Chart("stacked", _("Alerts over time by severity ({unit})", unit=unit), labels, levels,
                           unit=_("alerts"), full_categories=full,
                           description=_("{n} alerts in the range, stacked by severity", n=d.alerts_total)),
        "by_agency": _ranking(_("Alerts by agency"), [(name or agency or _("No agency"), n)
                                                      for agency, name, n in d.by_agency],
                              _("alerts"), _("The agencies with the most alerts in the range")),
        "top_rules": _ranking(_("Top rules"), [(title, n) for _rid, title, n in d.top_rules], _("alerts"),
                              _("The rules that raised the most alerts in the range")),
        "open_incidents": _ranking(_("Open incidents by agency"), [(name or agency or _("No agency"), n)
                                                                    for agency, name, n in d.open_incidents],
                                   _("incidents"), _("Incidents not closed, by agency, now")),
    }
    t = d.trend
    charts["mttd"] = Chart("lines", _("MTTD, median (minutes)"), labels,
                           (Series("mttd", _("MTTD"), t.mttd),), unit=_("minutes"), full_categories=full,
                           description=_("Median minutes from the first event to detection, per bucket"))
    charts["mtta"] = Chart("lines", _("MTTA, median (minutes)"), labels,
                           (Series("mtta", _("MTTA"), t.mtta),), unit=_("minutes"), full_categories=full,
                           description=_("Median minutes from detection to the first action by a person"))
    charts["mttr"] = Chart("lines", _("MTTR, median (hours)"), labels,
                           (Series("mttr", _("MTTR"), t.mttr),), unit=_("hours"), full_categories=full,
                           description=_("Median hours from detection to the end of the response"))
    return charts
