"""The interactive API documentation at ``/api/docs``, served entirely from this machine.

Provincial networks are often air-gapped, and a page that loads its scripts from a CDN is a
page that runs someone else's code: Swagger UI's files come from the installed
``swagger-ui-bundle-v2`` package (``swagger_ui_bundle.swagger_ui_path``), a fixed list of them
served under ``/api/docs/assets/``. The page has no inline script (its start-up code is
``/api/docs/init.js``) and a Content-Security-Policy that allows 'self' only (and ``data:``
images: Swagger UI's icons are inline SVG in its stylesheet).

"Try it out" works with the console's session (the start-up code reads the CSRF token from
``/api/v1/auth/me`` and sends it with every change) or with an API token ("Authorize").
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response

from soc.web.problems import problem

__all__ = ["ASSETS", "DOCS_CSP", "DOCS_PATH", "install_docs"]

DOCS_PATH = "/api/docs"
#: the Swagger UI files the page uses (nothing else of the package is served)
ASSETS = {"swagger-ui.css": "text/css", "swagger-ui-bundle.js": "text/javascript",
          "favicon-32x32.png": "image/png", "favicon-16x16.png": "image/png"}
DOCS_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
            "font-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>SOC API</title>
<link rel="stylesheet" href="{docs}/assets/swagger-ui.css">
<link rel="icon" type="image/png" href="{docs}/assets/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{docs}/assets/swagger-ui-bundle.js"></script>
<script src="{docs}/init.js"></script>
</body>
</html>
"""

_INIT = """"use strict";
(function () {
  var csrf = null;
  fetch("/api/v1/auth/me", {credentials: "same-origin"})
    .then(function (r) { return r.ok ? r.json() : null; })
    .then(function (me) { if (me && me.csrf_token) { csrf = me.csrf_token; } })
    .catch(function () {});
  window.ui = SwaggerUIBundle({
    url: "%(openapi)s",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    requestInterceptor: function (request) {
      var method = (request.method || "GET").toUpperCase();
      if (csrf && ["GET", "HEAD", "OPTIONS"].indexOf(method) < 0) {
        request.headers["X-CSRF-Token"] = csrf;
      }
      return request;
    }
  });
})();
"""


def _bundle_folder() -> Path | None:
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:  # not installed: the page says so
        return None
    return Path(str(swagger_ui_path))


def install_docs(app: FastAPI, openapi_url: str) -> None:
    """Add ``/api/docs``, its start-up script and its static files to ``app`` (plain routes: not
    part of the API, not in its description)."""
    folder = _bundle_folder()

    async def page(request: Request) -> Response:
        if folder is None:
            return problem(503, "the API documentation needs the package swagger-ui-bundle-v2; the "
                                f"description itself is at {openapi_url}")
        return HTMLResponse(_PAGE.format(docs=DOCS_PATH), headers={"Content-Security-Policy": DOCS_CSP})

    async def init(request: Request) -> Response:
        return Response(_INIT % {"openapi": openapi_url}, media_type="text/javascript")

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        if folder is None or name not in ASSETS:
            return problem(404)
        return FileResponse(folder / name, media_type=ASSETS[name],
                            headers={"Cache-Control": "public, max-age=86400"})

    app.add_route(DOCS_PATH, page, methods=["GET"], include_in_schema=False)
    app.add_route(f"{DOCS_PATH}/init.js", init, methods=["GET"], include_in_schema=False)
    app.add_route(DOCS_PATH + "/assets/{name}", asset, methods=["GET"], include_in_schema=False)
