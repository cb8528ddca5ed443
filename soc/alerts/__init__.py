"""The alert workflow (issue #10, item 4): who acknowledged, assigned, closed and reopened which
alert, when and why -- one alert at a time (:mod:`.workflow`) or every alert a query matches
(:mod:`.bulk`: synchronous for small sets, a resumable background job for large ones).

* :mod:`.model` -- statuses (``open`` -> ``acknowledged`` -> ``closed``, reopen; ``new`` reads
  as ``open``), close reasons, a change and the history entry it makes;
* :mod:`.query` -- which alerts a bulk change applies to, and reading them in keyset pages;
* :mod:`.workflow` -- :class:`AlertWorkflow`, compare-and-set changes with an append-only
  history (collection ``alert_history``);
* :mod:`.bulk` -- :class:`BulkAlerts`, bulk changes as jobs (collection ``jobs``).

Every method takes the acting :class:`~soc.access.Principal` and requires its permission;
the store it is given is the principal's (scoped to its agencies and audited by the caller).
"""

from soc.alerts.bulk import BulkAlerts
from soc.alerts.model import (
    CLOSE_REASONS,
    STATUSES,
    AlertChange,
    AlertNotFound,
    AlertWorkflowError,
    InvalidTransition,
    status_of,
)
from soc.alerts.query import AlertQuery
from soc.alerts.workflow import AlertUpdate, AlertWorkflow

__all__ = [
    "CLOSE_REASONS",
    "STATUSES",
    "AlertChange",
    "AlertNotFound",
    "AlertQuery",
    "AlertUpdate",
    "AlertWorkflow",
    "AlertWorkflowError",
    "BulkAlerts",
    "InvalidTransition",
    "status_of",
]
