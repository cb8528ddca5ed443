"""The oversight dashboard and the per-agency scorecard (:mod:`soc.oversight`).

``/dashboard``: charts of the range (``since``/``until`` in the URL; default the last 30 days) --
alerts over time by severity, by agency, top rules, open incidents by agency, MTTD/MTTA/MTTR
trends -- the key figures, the reports due, and how each figure is computed. Each chart is a
server-drawn SVG (no script) with its numbers in a table next to it.

``/dashboard/scorecard``: one row per agency for the yearly assessment, exportable as CSV and
.xlsx (``/dashboard/scorecard.csv``, ``.xlsx``; cells that would run as formulas are made
inert; every export is in the audit trail under the user's name).

Every figure is computed through the service layer acting as the user: an agency's user sees
only its agencies' figures, whatever the URL asks.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from soc.charts import render_svg
from soc.incidents.model import INCIDENT_TYPES
from soc.oversight import Oversight, Span, span_of
from soc.oversight.charts import dashboard_charts
from soc.oversight.tables import COLUMNS, scorecard_rows, to_csv, to_xlsx
from soc.web.console.i18n import Language, language
from soc.web.console.render import LANG_COOKIE, render
from soc.web.console.security import console_caller
from soc.web.deps import Caller, client_ip

router = APIRouter(include_in_schema=False)


def N_(message: str) -> str:
    """A message translated where it is shown (marked here so the catalogue check finds it)."""
    return message


#: drawing widths of the charts that are not half the page wide (their text stays the size of the page's)
WIDTHS = {"over_time": 1300, "mttd": 440, "mtta": 440, "mttr": 440}
#: the range presets of the form (what is put in ``since``)
PRESETS = (("24h", N_("last 24 hours")), ("7d", N_("last 7 days")), ("30d", N_("last 30 days")),
           ("90d", N_("last 90 days")), ("365d", N_("last year")))
#: the scorecard's column titles, by :data:`soc.oversight.tables.COLUMNS` key
HEADERS = {"agency": N_("Agency id"), "name": N_("Agency name"), "sources": N_("Sources connected"), "silent": N_("Sources silent"),
           "alerts": N_("Alerts"), "incidents": N_("Incidents"), "by_type": N_("Incidents by type"),
           "mttd_median_minutes": N_("MTTD, median (minutes)"), "mttd_count": N_("Incidents in MTTD"),
           "backfilled": N_("Back-filled (apart from MTTD)"), "mttr_median_hours": N_("MTTR, median (hours)"),
           "mttr_count": N_("Incidents in MTTR"), "closed_alerts": N_("Alerts closed"), "false_positives": N_("Closed as false positive"),
           "fp_rate": N_("False-positive rate"), "overdue_reports": N_("Reports overdue")}


def _lang(request: Request) -> Language:
    return language(request.cookies.get(LANG_COOKIE))


def _span(request: Request, who: Caller) -> Span:
    root = who.services
    return span_of(request.query_params.get("since"), request.query_params.get("until"), root.settings.zone,
                   root.clock())


def _oversight(who: Caller) -> Oversight:
    who.principal.require("alerts:read")
    who.principal.require("incidents:read")
    return Oversight(who.services)


def _number(lang: Language):  # type: ignore[no-untyped-def]
    return lambda value: lang.number(value, 0 if float(value).is_integer() else 1)


def type_label(lang: Language, code: str) -> str:
    """The national incident type's name (Vietnamese, as the forms say it; the code in English)."""
    return INCIDENT_TYPES[code][0] if code in INCIDENT_TYPES and lang.code == "vi" else code


def method_notes(lang: Language, hours: float) -> list[str]:
    """How each figure is computed, in the reader's language (the definitions of
    :mod:`soc.export.measures`; the reports say them in the words of ``METHOD_VI``)."""
    shown = lang.number(hours, 0 if float(hours).is_integer() else 1)
    return [lang.gettext(text, hours=shown) for text in METHOD_EN]


METHOD_EN = (
    N_("MTTD: median and mean time from the first event's own time to detection (the first alert), over incidents "
    "discovered in the range, not merged, not false positive or benign; only incidents whose first event was stored "
    "within {hours} hours of happening count. Incidents from back-filled data (events stored later than {hours} hours) "
    "are counted apart."),
    N_("MTTA: median and mean time from detection to the first action of a person on the incident (opening, "
    "assigning, a status change, a note, a verdict); what the service and playbooks do does not count."),
    N_("MTTR: median and mean time from detection to the end of the response (status resolved), over responses that "
    "ended in the range, not false positive or benign."),
)


@router.get("/dashboard")
def dashboard_page(request: Request, who: Caller = Depends(console_caller)) -> Response:  # noqa: B008
    oversight = _oversight(who)
    lang = _lang(request)
    try:
        span = _span(request, who)
    except ValueError as error:
        return render(request, "dashboard/page.html", status=400, error=str(error), d=None, charts={},
                      presets=PRESETS, since=request.query_params.get("since", ""),
                      until=request.query_params.get("until", ""))
    d = oversight.dashboard(span)
    charts = dashboard_charts(d, lang.gettext, lang.code)
    svgs = {name: render_svg(chart, ident=f"chart-{name}", number=_number(lang), empty_text=lang.gettext("No data"),
                             width=WIDTHS.get(name, 640)) for name, chart in charts.items()}
    return render(request, "dashboard/page.html", error=None, d=d, charts=charts, svgs=svgs, presets=PRESETS,
                  since=span.since, until=span.until, methods=method_notes(lang, d.times.threshold_hours),
                  level_names={k: lang.gettext(v) for k, v in _LEVELS.items()},
                  type_label=lambda code: type_label(lang, code))


_LEVELS = {"critical": N_("Critical"), "high": N_("High"), "medium": N_("Medium"), "low": N_("Low"),
           "informational": N_("Informational")}


def _scorecard(request: Request, who: Caller) -> tuple[Span, list[Any], Language]:
    oversight = _oversight(who)
    span = _span(request, who)
    return span, oversight.scorecard(span), _lang(request)


@router.get("/dashboard/scorecard")
def scorecard_page(request: Request, who: Caller = Depends(console_caller)) -> Response:  # noqa: B008
    try:
        span, rows, lang = _scorecard(request, who)
    except ValueError as error:
        return render(request, "dashboard/scorecard.html", status=400, error=str(error), rows=[], span=None,
                      presets=PRESETS, since=request.query_params.get("since", ""),
                      until=request.query_params.get("until", ""), methods=[], query="")
    query = request.url.query
    return render(request, "dashboard/scorecard.html", error=None, rows=rows, span=span, presets=PRESETS,
                  since=span.since, until=span.until, query=("?" + query) if query else "",
                  methods=method_notes(lang, who.services.settings.oversight.backfill_hours),
                  type_label=lambda code: type_label(lang, code))


def _export(request: Request, who: Caller, fmt: str) -> Response:
    span, rows, lang = _scorecard(request, who)
    header = [lang.gettext(HEADERS[key]) for key in COLUMNS]
    values = scorecard_rows(rows, lambda code: type_label(lang, code))
    who.services.audit.record(who.principal, "export.scorecard", ("scorecard", None), {
        "format": fmt, "since": span.since or None, "until": span.until or None, "start": span.start.isoformat(),
        "end": span.end.isoformat(), "rows": len(values)}, ip=client_ip(request),
        user_agent=request.headers.get("user-agent"))
    stamp = f"{span.start.astimezone(span.zone):%Y%m%d}-{span.end.astimezone(span.zone):%Y%m%d}"
    name = f"scorecard-{stamp}.{fmt}"
    if fmt == "csv":
        body, media = to_csv(header, values), "text/csv; charset=utf-8"
    else:
        notes = [lang.gettext("Range: {start} – {end} ({zone})", start=lang.time(span.start, span.zone),
                              end=lang.time(span.end, span.zone), zone=str(span.zone)),
                 *method_notes(lang, who.services.settings.oversight.backfill_hours)]
        body = to_xlsx(header, values, title=lang.gettext("Scorecard"), notes=notes)
        media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return Response(body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"',
                                                     "Cache-Control": "no-store"})


@router.get("/dashboard/scorecard.csv")
def scorecard_csv(request: Request, who: Caller = Depends(console_caller)) -> Response:  # noqa: B008
    return _export(request, who, "csv")


@router.get("/dashboard/scorecard.xlsx")
def scorecard_xlsx(request: Request, who: Caller = Depends(console_caller)) -> Response:  # noqa: B008
    return _export(request, who, "xlsx")
