"""The routes of ``/api/v1``, one module per resource; :data:`ROUTERS` lists them in order."""

from soc.web.api import auth, health

ROUTERS = [health.router, auth.router]

__all__ = ["ROUTERS"]
