"""Playbooks: declarative YAML (``playbooks/``) run by an idempotent, resumable engine.

* :mod:`.model` -- the format and its validation;
* :mod:`.template` -- sandboxed Jinja2 arguments and conditions;
* :mod:`.registry` and :mod:`.actions` -- what a step may do;
* :mod:`.runner` -- runs: idempotency keys, leases, resume, the append-only record (its parts:
  :mod:`.runs`, :mod:`.triggers`, :mod:`.steps`, :mod:`.resume`, :mod:`.record`);
* :mod:`.schedule` -- scheduled playbooks and the recovery sweep in ``soc run``.

See ``docs/playbooks.md``.
"""

from soc.playbooks.model import (
           Playbook,
           PlaybookError,
           load_playbook,
           load_playbooks,
           parse_playbook,
)
from soc.playbooks.runner import APPROVALS, RUNS, STEPS, PlaybookRunner

__all__ = ["APPROVALS", "RUNS", "STEPS", "Playbook", "PlaybookError", "PlaybookRunner", "load_playbook",
           "load_playbooks", "parse_playbook"]
