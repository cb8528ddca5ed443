"""One error root (issue #9): every exception class soc defines derives from
:class:`soc.errors.SocError`, except the control-flow signals listed in
:data:`soc.errors.SIGNALS` and private helpers (``_Name``) that never leave their module."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import soc
from soc.errors import SIGNALS, SocError


def _exception_classes() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(soc.__path__, "soc."):
        if info.name.rsplit(".", 1)[-1] == "__main__":  # runs the command line when imported
            continue
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if (inspect.isclass(value) and issubclass(value, BaseException)
                    and value.__module__ == module.__name__):
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return found


def test_every_soc_error_derives_from_the_root() -> None:
    classes = _exception_classes()
    assert len(classes) >= 20, sorted(classes)  # the walk found the modules
    outside = sorted(name for name, cls in classes.items()
                     if not issubclass(cls, SocError) and name not in SIGNALS
                     and not cls.__name__.startswith("_"))
    assert not outside, f"derive these from soc.errors.SocError (or list a signal in SIGNALS): {outside}"


def test_the_signals_exist_and_are_not_errors() -> None:
    classes = _exception_classes()
    for name in SIGNALS:
        assert name in classes, f"SIGNALS names {name}, which soc no longer defines"
        assert not issubclass(classes[name], SocError)


def test_built_in_bases_are_kept() -> None:
    """``except ValueError`` around a validation still catches it."""
    from soc.export.outbox import OutboxError
    from soc.incidents.service import IncidentError, IncidentNotFound
    from soc.ingest.sourcedefs import SourceDefinitionError
    from soc.store.base import Conflict, StoreError

    for cls in (OutboxError, IncidentError, IncidentNotFound, SourceDefinitionError):
        assert issubclass(cls, ValueError) and issubclass(cls, SocError)
    assert issubclass(Conflict, StoreError) and issubclass(Conflict, SocError)
