"""Oversight: the figures of the console's dashboard and health pages, for the province's
leadership and each agency -- alerts over time, by agency and rule, open incidents, MTTD, MTTA
and MTTR with back-filled events counted apart, reports due, the per-agency scorecard
(CSV and .xlsx), log sources and the silent-source check, dead letters and their replay.

Everything goes through the service layer acting as the user (:meth:`soc.app.App.acting_as`):
the scoped store puts the user's agencies inside every query, so an agency's user sees only its
own figures. Modules: :mod:`.span` (time range and buckets), :mod:`.figures` (dashboard,
scorecard), :mod:`.incident_facts`, :mod:`.sources`, :mod:`.deadletters`, :mod:`.tables`
(CSV/xlsx).
"""

from soc.oversight.figures import AgencyRow, Dashboard, Oversight
from soc.oversight.span import Span, span_of

__all__ = ["AgencyRow", "Dashboard", "Oversight", "Span", "span_of"]
