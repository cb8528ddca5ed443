"""Errors as RFC 9457 problem documents (``application/problem+json``).

One answer per situation, the same for every route (docs/api.md):

=====  ==========================================================================
401    no credentials, or a session or token that is unknown, expired or revoked
403    authenticated, but the role or the token's scope does not allow it (and CSRF)
404    not found -- also for an object of an agency outside the caller's scope, so its
       existence is never revealed
409    a concurrent change won (compare-and-set); read again and retry
400    the request names something invalid (the detail says what)
422    the request does not have the expected shape (field errors listed)
429    too many failed logins (``Retry-After``)
500    a bug: logged with an id, the id is in the answer, nothing else is
503    the store does not answer (down, timed out): try again later (``Retry-After``)
=====  ==========================================================================
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from soc.access import Forbidden
from soc.errors import SocError
from soc.store.base import Conflict, StoreError
from soc.store.search_client import RequestTimeout, Unreachable

__all__ = ["MEDIA_TYPE", "NotFound", "PageError", "TooManyAttempts", "Unauthenticated", "install", "problem"]

log = logging.getLogger(__name__)
MEDIA_TYPE = "application/problem+json"
TITLES = {400: "Bad request", 401: "Not authenticated", 403: "Forbidden", 404: "Not found", 405: "Method not allowed",
          409: "Conflict", 422: "Invalid request", 429: "Too many attempts", 500: "Internal error",
          503: "Service unavailable"}
#: seconds a client is asked to wait when the store does not answer
STORE_RETRY_AFTER = 30


class Unauthenticated(SocError):
    """No credentials, or credentials that are not (or no longer) valid."""


class NotFound(SocError, LookupError):
    """Nothing with this id -- or nothing the caller may see (the same answer)."""


class TooManyAttempts(SocError):
    """Locked or throttled after failed logins; ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def problem(status: int, detail: str | None = None, *, title: str | None = None,
            headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    """An RFC 9457 problem document."""
    body: dict[str, Any] = {"type": "about:blank", "title": title or TITLES.get(status, "Error"), "status": status}
    if detail:
        body["detail"] = detail
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


#: how a path outside the API answers an error instead: ``(request, status, detail) -> page``
PageError = Callable[[Request, int, str | None], Response]


def install(app: FastAPI, pages: PageError | None = None) -> None:
    """Register the handlers that turn errors into problem documents -- under ``/api/``; on
    other paths (the console's pages) into ``pages(request, status, detail)`` when given."""

    def answer(request: Request, status: int, detail: str | None = None, *,
               headers: dict[str, str] | None = None, **extra: Any) -> Response:
        if pages is not None and not request.url.path.startswith("/api/"):
            page = pages(request, status, detail)
            page.headers.update(headers or {})
            return page
        return problem(status, detail, headers=headers, **extra)

    @app.exception_handler(Unauthenticated)
    async def _unauthenticated(request: Request, error: Unauthenticated) -> Response:
        return answer(request, 401, str(error), headers={"WWW-Authenticate": 'Bearer realm="soc"'})

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, error: Forbidden) -> Response:
        return answer(request, 403, str(error))

    @app.exception_handler(NotFound)
    async def _not_found(request: Request, error: NotFound) -> Response:
        return answer(request, 404, str(error) or None)

    @app.exception_handler(Conflict)
    async def _conflict(request: Request, error: Conflict) -> Response:
        return answer(request, 409, "someone else changed it meanwhile: read it again and retry")

    @app.exception_handler(TooManyAttempts)
    async def _too_many(request: Request, error: TooManyAttempts) -> Response:
        return answer(request, 429, str(error), headers={"Retry-After": str(error.retry_after)})

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> Response:
        errors = [{"where": ".".join(str(p) for p in e.get("loc", ())), "problem": e.get("msg", "")}
                  for e in error.errors()]
        return answer(request, 422, "the request does not have the expected shape", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> Response:
        return answer(request, error.status_code, error.detail if isinstance(error.detail, str) else None,
                       headers=getattr(error, "headers", None))

    @app.exception_handler(ValueError)
    async def _bad(request: Request, error: ValueError) -> Response:
        if isinstance(error, LookupError):  # UserNotFound, TokenNotFound ...: not found, like any other
            return answer(request, 404, str(error) or None)
        return answer(request, 400, str(error))

    async def _unavailable(request: Request, error: Exception) -> Response:
        log.warning("request %s %s: the store failed: %s: %s", request.method, request.url.path,
                    type(error).__name__, error)
        return answer(request, 503, "the store does not answer at the moment: try again later",
                       headers={"Retry-After": str(STORE_RETRY_AFTER)})

    for unavailable in (StoreError, Unreachable, RequestTimeout):
        app.add_exception_handler(unavailable, _unavailable)

    @app.exception_handler(Exception)
    async def _bug(request: Request, error: Exception) -> Response:
        incident = uuid.uuid4().hex[:12]
        log.exception("request %s %s failed (error id %s)", request.method, request.url.path, incident)
        return answer(request, 500, f"an internal error occurred (error id {incident}); it has been logged",
                       error_id=incident)
