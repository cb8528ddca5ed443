"""The console's pages, one module per section; :data:`ROUTERS` lists them."""

from soc.web.console.pages import (
    account,
    admin,
    alert_detail,
    alerts,
    audit,
    dashboard,
    entities,
    events,
    handover,
    health,
    incident_actions,
    incidents,
    playbooks,
    report_builder,
    tasks,
)

ROUTERS = [
    account.router,
    admin.router,
    alerts.router,
    audit.router,
    dashboard.router,
    handover.router,
    health.router,
    incidents.router,
    incident_actions.router,
    report_builder.router,
    playbooks.router,
    tasks.router,
    alert_detail.router,
    events.router,
    entities.router,
]

__all__ = ["ROUTERS"]
