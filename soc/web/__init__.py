"""The HTTP front door: the API under ``/api/v1`` (and, next, the analyst console at ``/``).

Thin like the CLI: routes parse, call the service layer of :class:`soc.app.App` *acting as the
caller* (:meth:`~soc.app.App.acting_as`: the agency scope is enforced inside every store query,
every change is audited under the caller's name) and render. :func:`soc.web.server.create_app`
builds the ASGI application.
"""

__all__: list[str] = []
