"""The console's guard: pages need a session (else a redirect to the login page), forms need the
session's CSRF token, and every page carries a Content-Security-Policy without inline scripts.

The policy allows only the console's own files (``/static``): no inline ``<script>``, no inline
event handlers, no ``style=`` attributes, no third-party host -- so text from a log that slipped
into a page could not run even if it were not escaped (it is: templates autoescape).
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import Request
from fastapi.responses import RedirectResponse

from soc.access import Forbidden
from soc.identity.sessions import check_csrf
from soc.web.deps import Caller, client_ip, root_of, session_cookie
from soc.web.problems import Unauthenticated

__all__ = ["CSP", "LoginRequired", "console_caller", "known_caller", "login_redirect", "safe_next"]

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class LoginRequired(Unauthenticated):
    """A console page without a session: answered with a redirect to the login page."""

    def __init__(self, next_url: str, *, change_password: bool = False) -> None:
        super().__init__("change your password first" if change_password else "log in first")
        self.next_url = next_url
        self.change_password = change_password


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a path of this console only (no ``//host``, no scheme)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/alerts"
    return target


async def console_caller(request: Request) -> Caller:
    """The logged-in user of a console page; forms must carry ``csrf_token``."""
    root = root_of(request)
    session = root.identity.session(request.cookies.get(session_cookie(request)))
    if session is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target)
    if request.method not in SAFE_METHODS:
        form = await request.form()
        token = form.get("csrf_token") or request.headers.get("X-CSRF-Token")
        if not check_csrf(session, token if isinstance(token, str) else None):
            raise Forbidden("the form has expired or did not come from this console: reload the page")
    if session.must_change_password and request.url.path not in ("/account/password", "/logout"):
        raise LoginRequired("/account/password", change_password=True)
    who = Caller(session.principal, root.acting_as(session.principal, ip=client_ip(request),
                                                   user_agent=request.headers.get("user-agent")), session)
    request.state.caller = who
    return who


def known_caller(request: Request) -> Caller | None:
    """The logged-in user of a request that reached no page (an error page's header), if any."""
    found = getattr(request.state, "caller", None)
    if found is not None:
        return found
    root = root_of(request)
    session = root.identity.session(request.cookies.get(session_cookie(request)))
    if session is None or session.must_change_password:
        return None
    return Caller(session.principal, root.acting_as(session.principal, ip=client_ip(request)), session)


def login_redirect(error: LoginRequired) -> RedirectResponse:
    if error.change_password:
        return RedirectResponse("/account/password", status_code=303)
    return RedirectResponse(f"/login?next={quote(error.next_url, safe='/')}", status_code=303)
