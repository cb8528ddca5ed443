"""The errors of the incident service (:mod:`soc.incidents.service`)."""

from __future__ import annotations

from soc.errors import SocError


class IncidentError(SocError, ValueError):
    """The change cannot be made; the message names the input and what to do instead."""


class IncidentNotFound(IncidentError):
    """No incident has that id."""
