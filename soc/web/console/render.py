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
from soc.web.console.security import known_caller
from soc.web.console.text import zone_label

__all__ = ["LANG_COOKIE", "TEMPLATES", "env", "error_page", "render", "url_with"]

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


#: what each refusal tells a console user, and what to do (the detail of a 400 is shown too)
ERROR_TITLES = {400: "The request is not valid", 401: "Log in first", 403: "You may not do this",
                404: "Not found", 409: "Someone else changed this meanwhile", 422: "The form is not valid",
                429: "Too many attempts", 500: "Something went wrong", 503: "The store does not answer"}
ERROR_ADVICE = {403: "Your roles or your agency do not allow this page or action. Ask an administrator if you need it.",
                404: "It does not exist, or it belongs to an agency outside your scope.",
                409: "Reload the page and make your change again.",
                500: "The error has been logged; give its id to the operators.",
                503: "Try again in a moment; the operators have been told in the service log."}


def error_page(request: Request, status: int, detail: str | None) -> HTMLResponse:
    """An error on a console page, as a page in the user's language (the API answers problem
    documents instead). A 404 says nothing about whether the object exists elsewhere."""
    shown = detail if status in (400, 409, 422, 429, 500) else None
    request.state.caller = known_caller(request)
    return render(request, "error.html", status=status, status_code=status,
                  title=ERROR_TITLES.get(status, "Error"), advice=ERROR_ADVICE.get(status), detail=shown)
