"""The root of the project's errors.

Every error class defined in :mod:`soc` derives from :class:`SocError`, so a caller (the
command line, the service's loops, a test) can tell "soc refused or failed, and the message
says why" from a bug (any other exception) with one ``except SocError``. Each class keeps the
built-in base it had before (``class SourceDefinitionError(SocError, ValueError)``), so
``except ValueError`` and friends still work.

Errors that know whether trying again later may help carry a ``retryable`` attribute
(:class:`soc.mail.MailError`, :class:`soc.export.channels.DeliveryError`,
:class:`soc.playbooks.registry.ActionError`, :class:`soc.outgoing.OutgoingRefused`). The root
does not define one: the playbook runner treats an exception without it as retryable, and a
root default would change that for every subclass.

Not errors, and therefore not below the root (:data:`SIGNALS`): exceptions used as control
flow by the playbook engine -- :class:`soc.playbooks.registry.Wait` (an action parks its run)
and :class:`soc.playbooks.registry.Cancelled` (an action stops because its step was cancelled).
Private helper exceptions (``_NotAJsonArray``, ``_Unreadable``) never leave their module and
are not below the root either. ``tests/test_errors.py`` walks every module of :mod:`soc` and
holds the rest to this rule.
"""

from __future__ import annotations

__all__ = ["SIGNALS", "SocError"]


class SocError(Exception):
    """Something soc was asked to do cannot be done; the message names the input, setting or
    server concerned and what to check. Subclasses say which part of soc raised it."""


#: Exception classes that are control-flow signals, not errors (qualified names): they do not
#: derive from :class:`SocError`.
SIGNALS: tuple[str, ...] = (
    "soc.playbooks.registry.Wait",
    "soc.playbooks.registry.Cancelled",
)
