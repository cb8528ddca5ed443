"""The TAXII 2.1 server of ``soc serve`` under ``/taxii2/`` (issue #13, docs/taxii.md): a
separate application mounted by :func:`soc.web.server.create_app`, so that its answers and its
errors are TAXII's (``application/taxii+json;version=2.1``, TAXII error messages) and the API's
problem documents never reach a TAXII client.

* :mod:`.media` -- media types, negotiation (406/415), error messages, token authentication;
* :mod:`.routes` -- the endpoints.
"""

from __future__ import annotations

from fastapi import FastAPI

from soc.app import App
from soc.web.taxii import media, routes

__all__ = ["TAXII_PREFIX", "create_taxii_app"]

TAXII_PREFIX = "/taxii2"


def create_taxii_app(root: App) -> FastAPI:
    """The TAXII application over ``root`` (mount it at :data:`TAXII_PREFIX`)."""
    app = FastAPI(title="SOC TAXII 2.1", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.root = root
    media.install_errors(app)
    app.include_router(routes.router)
    return app
