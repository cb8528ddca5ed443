"""Rendering console pages: one Jinja2 environment (autoescaping on: text from logs is always
shown as text), the request's language and zone in every template."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from soc.web.console.i18n import LANGUAGES, language
from soc.web.console.text import zone_label

__all__ = ["LANG_COOKIE", "TEMPLATES", "env", "render", "url_with"]

TEMPLATES = Path(__file__).resolve().parent / "templates"
LANG_COOKIE = "soc_lang"

env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "svg"]),
                  undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def url_with(request: Request, **changes: Any) -> str:
    """The current URL with query parameters changed (``None`` removes one): filters stay in the URL."""
    params = dict(request.query_params)
    for key, value in changes.items():
        if value is None or value == "":
            params.pop(key, None)
        else:
            params[key] = str(value)
    query = urlencode(params)
    return f"{request.url.path}?{query}" if query else request.url.path


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A page in the request's language, with the caller (when logged in) and helpers."""
    lang = language(request.cookies.get(LANG_COOKIE))
    root = request.app.state.root
    zone = root.settings.zone
    who = getattr(request.state, "caller", None)
    html = env.get_template(template).render(
        request=request, lang=lang, _=lang.gettext, ngettext=lang.ngettext, languages=LANGUAGES, zone=zone,
        zone_label=zone_label(zone), who=who, csrf=who.session.csrf if who and who.session else "",
        url_with=lambda **c: url_with(request, **c), **context)
    return HTMLResponse(html, status_code=status)
