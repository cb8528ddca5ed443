"""The built-in actions, one small module per group; importing this package registers them."""

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
