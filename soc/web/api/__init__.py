"""The routes of ``/api/v1``, one module per resource; :data:`ROUTERS` lists them in order."""

from soc.web.api import (
           agencies,
           alerts,
           audit,
           auth,
           events,
           exceptions,
           health,
           incidents,
           intel,
           jobs,
           playbooks,
           reports,
           rules,
           sources,
           tasks,
           tokens,
           users,
)

ROUTERS = [health.router, auth.router, events.router, alerts.router, jobs.router, incidents.router, tasks.router,
           exceptions.router, intel.router, playbooks.router, reports.router, rules.router,
           sources.router, agencies.router, users.router, tokens.router, audit.router]

__all__ = ["ROUTERS"]
