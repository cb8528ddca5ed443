"""The store collections of playbook runs, their record and their approvals.

A module of its own (names only) so the runner and the actions that read runs or approvals
(:mod:`.actions.playbook`, :mod:`.actions.approval`) share them without importing each other.
"""

from __future__ import annotations

RUNS = "playbook_runs"
"""One document per run (id: hash of playbook id and trigger key)."""
STEPS = "playbook_steps"
"""The append-only record: step attempts and run events."""
APPROVALS = "playbook_approvals"
"""One document per approval step (id: the step key)."""
