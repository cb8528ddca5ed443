"""What every extractor shares: the :data:`Extractor` signature and :func:`mark`.

A module of its own so the extractors (:mod:`.sshd`, :mod:`.pam`...) and the package that
maps programs to them (:mod:`soc.ingest.extract`) both import it, and neither imports the other
back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Extractor = Callable[[str, dict[str, Any]], bool]
"""``extractor(message, fields) -> recognised``; it adds ECS fields to ``fields``."""


def mark(
    fields: dict[str, Any],
    action: str,
    outcome: str,
    category: tuple[str, ...],
    types: tuple[str, ...],
) -> bool:
    """Set ``event.action``/``outcome``/``category``/``type`` (fresh lists per event)."""
    fields["event.action"] = action
    fields["event.outcome"] = outcome
    fields["event.category"] = list(category)
    fields["event.type"] = list(types)
    return True
