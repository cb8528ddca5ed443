"""The TAXII 2.1 side of HTTP: media types, ``Accept`` negotiation (406), ``Content-Type``
checks (415), the TAXII error message (title, description, ``http_status``...) and the
authentication of a request by API token.

Everything under ``/taxii2/`` answers in ``application/taxii+json;version=2.1`` -- errors too:
a TAXII client reads TAXII error messages, not the API's problem documents
(:mod:`soc.web.problems`), so the TAXII application has its own exception handlers
(:func:`install_errors`) and the API's never see its requests.

**Tokens.** ``Authorization: Bearer TOKEN`` with an API token (``soc tokens create --scope
taxii:<collection id>:read``); ``Token TOKEN`` is the same (``taxii2-client``'s ``TokenAuth``
sends that). No console sessions, no HTTP Basic. Without a valid token: 401 with
``WWW-Authenticate``; a token without the collection's scope: 403.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from soc.access import Principal
from soc.app import App
from soc.errors import SocError
from soc.intel.taxii_objects import TaxiiRequestError
from soc.store.base import StoreError
from soc.store.search_client import RequestTimeout, Unreachable

__all__ = ["STIX_MEDIA", "TAXII_MEDIA", "TaxiiHttpError", "authenticate", "check_content_type", "error_response",
           "install_errors", "negotiate", "taxii_response"]

log = logging.getLogger(__name__)
TAXII_MEDIA = "application/taxii+json;version=2.1"
STIX_MEDIA = "application/stix+json;version=2.1"
REALM = 'Bearer realm="taxii"'
TITLES = {400: "Bad request", 401: "Not authenticated", 403: "Forbidden", 404: "Not found",
          405: "Method not allowed", 406: "Not acceptable", 413: "Content too large",
          415: "Unsupported media type", 422: "Unprocessable content", 500: "Internal error",
          503: "Service unavailable"}
#: seconds a client is asked to wait when the store does not answer
RETRY_AFTER = 30


class TaxiiHttpError(SocError):
    """An answer other than success under ``/taxii2/``: a TAXII error message with ``status``."""

    def __init__(self, status: int, description: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.headers = headers or {}


def taxii_response(body: Any, *, status: int = 200, media: str = TAXII_MEDIA,
                   headers: dict[str, str] | None = None) -> Response:
    """A TAXII answer: JSON in ``media``, never cached."""
    data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(data, status_code=status, media_type=media,
                    headers={"Cache-Control": "no-store", **(headers or {})})


def error_response(status: int, description: str | None = None, *, headers: dict[str, str] | None = None,
                   **extra: Any) -> Response:
    """A TAXII 2.1 error message (§3.6.1)."""
    body: dict[str, Any] = {"title": TITLES.get(status, "Error"), "http_status": str(status)}
    if description:
        body["description"] = description
    body.update(extra)
    return taxii_response(body, status=status, headers=headers)


def _ranges(header: str) -> list[tuple[str, dict[str, str]]]:
    """The media ranges of an ``Accept`` header with their parameters (``q=0`` ones left out)."""
    out = []
    for item in header.split(","):
        kind, *params = (part.strip() for part in item.split(";"))
        values = {}
        for param in params:
            name, _, value = param.partition("=")
            values[name.strip().lower()] = value.strip().strip('"')
        if not kind:
            continue
        try:
            if float(values.get("q", "1")) <= 0:
                continue
        except ValueError:
            continue
        out.append((kind.lower(), values))
    return out


def _accepts(ranges: list[tuple[str, dict[str, str]]], media: str) -> bool:
    kind = media.split(";", 1)[0]
    for candidate, params in ranges:
        if candidate in ("*/*", "application/*"):
            return True
        if candidate == kind and params.get("version", "2.1") == "2.1":
            return True
    return False


def negotiate(request: Request, offered: tuple[str, ...] = (TAXII_MEDIA,)) -> str:
    """The media type to answer in: the first of ``offered`` the ``Accept`` header allows (no
    header: the first), else 406."""
    header = request.headers.get("accept", "").strip()
    if not header:
        return offered[0]
    ranges = _ranges(header)
    for media in offered:
        if _accepts(ranges, media):
            return media
    raise TaxiiHttpError(406, f"this resource is served as {' or '.join(offered)}; the Accept header allows none")


def check_content_type(request: Request) -> None:
    """A POST body must be ``application/taxii+json;version=2.1`` (no version: 2.1), else 415."""
    header = request.headers.get("content-type", "")
    kind, *params = (part.strip() for part in header.split(";"))
    values = {p.partition("=")[0].strip().lower(): p.partition("=")[2].strip().strip('"') for p in params}
    if kind.lower() != "application/taxii+json" or values.get("version", "2.1") != "2.1":
        raise TaxiiHttpError(415, f"send the envelope as {TAXII_MEDIA}, not {header[:100] or 'no Content-Type'}")


def authenticate(request: Request) -> Principal:
    """The principal of the request's API token, or 401."""
    root: App = request.app.state.root
    scheme, _, secret = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() not in ("bearer", "token") or not secret.strip():
        raise TaxiiHttpError(401, "send an API token: Authorization: Bearer TOKEN", headers={"WWW-Authenticate": REALM})
    principal = root.identity.resolve_token(secret.strip())
    if principal is None:
        raise TaxiiHttpError(401, "the token is unknown, expired or revoked", headers={"WWW-Authenticate": REALM})
    return principal


def install_errors(app: FastAPI) -> None:
    """Answer every error of the TAXII application as a TAXII error message."""

    @app.exception_handler(TaxiiHttpError)
    async def _taxii(request: Request, error: TaxiiHttpError) -> Response:
        return error_response(error.status, str(error), headers=error.headers)

    @app.exception_handler(TaxiiRequestError)
    async def _bad(request: Request, error: TaxiiRequestError) -> Response:
        return error_response(400, str(error))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> Response:
        return error_response(400, "the request does not have the expected shape")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> Response:
        detail = error.detail if isinstance(error.detail, str) else None
        return error_response(error.status_code, detail, headers=getattr(error, "headers", None))

    async def _unavailable(request: Request, error: Exception) -> Response:
        log.warning("TAXII %s %s: the store failed: %s: %s", request.method, request.url.path,
                    type(error).__name__, error)
        return error_response(503, "the store does not answer at the moment: try again later",
                              headers={"Retry-After": str(RETRY_AFTER)})

    for unavailable in (StoreError, Unreachable, RequestTimeout):
        app.add_exception_handler(unavailable, _unavailable)

    @app.exception_handler(Exception)
    async def _bug(request: Request, error: Exception) -> Response:
        incident = uuid.uuid4().hex[:12]
        log.exception("TAXII %s %s failed (error id %s)", request.method, request.url.path, incident)
        return error_response(500, f"an internal error occurred (error id {incident}); it has been logged",
                              error_id=incident)
