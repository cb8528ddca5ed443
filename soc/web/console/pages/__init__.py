"""The console's pages, one module per section; :data:`ROUTERS` lists them."""

from soc.web.console.pages import account

ROUTERS = [account.router]

__all__ = ["ROUTERS"]
