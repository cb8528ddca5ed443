"""The built-in actions, one small module per group; importing this package registers them.

:func:`load_actions` is here, not in :mod:`soc.playbooks.registry`: the action modules import
the registry to register themselves, so the registry cannot import them back.
"""

from soc.playbooks.actions import (  # noqa: F401 -- imported for their registrations
    approval,
    core,
    enrich,
    incident,
    notify,
    playbook,
    report,
    tasks,
)
from soc.playbooks.registry import REGISTRY, Action

__all__ = ["load_actions"]


def load_actions() -> dict[str, Action]:
    """The registry with every built-in action registered (importing this package did that)."""
    return REGISTRY
