"""Logging in and out of the console, the language switch, changing one's password.

The login form is checked like the API's login (same lockout, same generic message). Because no
session exists yet, it is protected against login CSRF by its ``Origin`` (or ``Referer``): a
form posted from another site is refused.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from soc.identity.model import PasswordRejected
from soc.identity.sessions import COOKIE_ATTRIBUTES
from soc.web.console.i18n import LANGUAGES
from soc.web.console.render import LANG_COOKIE, render
from soc.web.console.security import console_caller, safe_next
from soc.web.deps import Caller, client_ip, root_of, session_cookie

router = APIRouter(include_in_schema=False)


def _same_origin(request: Request) -> bool:
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source:
        return True  # old browsers and tools send neither; the cookie is SameSite=Strict anyway
    return urlsplit(source).netloc == request.headers.get("host", "")


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/alerts", status_code=303)


@router.get("/login")
def login_page(request: Request, next: str = "/alerts") -> Response:  # noqa: A002
    return render(request, "login.html", next=safe_next(next), error=None, name="")


@router.post("/login")
def login(request: Request, name: Annotated[str, Form()], password: Annotated[str, Form()],
          next: Annotated[str, Form()] = "/alerts") -> Response:  # noqa: A002
    lang_error = None
    if not _same_origin(request):
        lang_error = "origin"
    result, session = (None, None) if lang_error else root_of(request).identity.login(name, password, client_ip(request))
    if session is None:
        from soc.web.console.i18n import language

        lang = language(request.cookies.get(LANG_COOKIE))
        if lang_error:
            error = lang.gettext("This form did not come from this console.")
        elif result is not None and result.reason in ("locked", "throttled"):
            error = lang.gettext("Too many failed logins: try again in {minutes} minutes.",
                                 minutes=max(1, -(-result.wait_seconds // 60)))
        else:
            error = lang.gettext("Wrong user name or password.")
        return render(request, "login.html", status=401 if not lang_error else 403, next=safe_next(next),
                      error=error, name=name)
    response = RedirectResponse("/account/password" if session.must_change_password else safe_next(next),
                                status_code=303)
    response.set_cookie(session_cookie(request), session.id, secure=request.app.state.tls, **COOKIE_ATTRIBUTES)
    return response


@router.post("/logout")
def logout(request: Request, who: Caller = Depends(console_caller)) -> Response:  # noqa: B008
    if who.session is not None:
        root_of(request).identity.logout(who.session.id)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(session_cookie(request), path="/")
    return response


@router.get("/lang/{code}")
def switch_language(code: str, next: str = "/alerts") -> Response:  # noqa: A002
    response = RedirectResponse(safe_next(next), status_code=303)
    if code in LANGUAGES:
        response.set_cookie(LANG_COOKIE, code, max_age=365 * 86400, httponly=True, samesite="strict", path="/")
    return response


@router.get("/account/password")
def password_page(request: Request, who: Caller = Depends(console_caller)) -> Response:  # noqa: B008
    return render(request, "password.html", error=None)


@router.post("/account/password")
def change_password(request: Request, current: Annotated[str, Form()], new: Annotated[str, Form()],
                    who: Caller = Depends(console_caller)) -> Response:  # noqa: B008
    from soc.web.console.i18n import language

    lang = language(request.cookies.get(LANG_COOKIE))
    assert who.session is not None
    try:
        result, session = root_of(request).identity.change_password(who.session, current, new, client_ip(request))
    except PasswordRejected as error:
        return render(request, "password.html", status=400, error=str(error))
    if session is None:
        return render(request, "password.html", status=401, error=lang.gettext("Wrong current password."))
    response = RedirectResponse("/alerts", status_code=303)
    response.set_cookie(session_cookie(request), session.id, secure=request.app.state.tls, **COOKIE_ATTRIBUTES)
    return response
