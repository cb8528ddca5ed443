"""The project's extensions of Sigma's correlation format: ``beaconing`` and ``first_seen``.

pySigma knows the correlation types of the Sigma specification (``event_count``,
``value_count``, ``temporal``, ``temporal_ordered`` and the ``value_sum`` family) and refuses any
other ``type``. Rather than keep a second parser for correlation rules, a file is read as YAML,
each document with an extension type is *rewritten* before pySigma sees it: the type becomes
``event_count`` (so pySigma still checks the rule references, ``group-by``, ``timespan`` and
aliases, and resolves the references as for any correlation) and the extension -- its real type
and its own keys -- moves to the top-level attribute ``soc-correlation``, which pySigma keeps as
a custom attribute. The compiler reads the real type from there. A Sigma tool other than this
project refuses the file (an unknown type), which is honest: it could not run it.

``sum`` is accepted as a short name of Sigma's own ``value_sum`` (``condition.field`` is the
numeric field summed), so no extension is needed for sums.

The keys of each extension (docs/detection.md, "Project correlation types"):

``beaconing`` -- ``condition`` (``gte: N``): at least N connections of the group in the window;
``jitter``: the largest coefficient of variation (standard deviation / mean) of the intervals
between them, as a fraction (``0.2``) or a percentage (``"20%"``); ``min-interval`` (default
``1s``): connections closer together than this count as one (a beacon that opens two sessions).

``first_seen`` -- ``field``: the value (for example ``source.ip``) that must not have been seen
for the entity (``group-by``, for example ``user.name``) in the ``timespan`` before;
``known-entities-only`` (default true): only entities seen (with other values) in that timespan
alert, so the first ever event of an entity does not; ``min-history`` (default none): and only
when the entity's first sighting in the timespan is at least this long before, so an entity
whose baseline is still forming (a new account, a store or a hunt younger than that) does not
alert on every address it shows in its first days.
"""

from __future__ import annotations

from typing import Any

from sigma.correlations import SigmaCorrelationTimespan
from sigma.exceptions import SigmaTimespanError

from soc.errors import SocError

__all__ = ["ATTRIBUTE", "EXTENSION_TYPES", "ExtensionError", "options", "rewrite"]

#: the custom attribute that carries an extension's type and keys past pySigma
ATTRIBUTE = "soc-correlation"
EXTENSION_TYPES = frozenset({"beaconing", "first_seen"})
#: short names for Sigma's own types
_SHORT_NAMES = {"sum": "value_sum"}
#: the keys of a correlation that Sigma defines (everything else of an extension moves)
_SIGMA_KEYS = frozenset({"type", "rules", "group-by", "timespan", "condition", "aliases", "generate"})
_KEYS = {"beaconing": {"jitter", "min-interval"}, "first_seen": {"field", "known-entities-only", "min-history"}}


class ExtensionError(SocError, ValueError):
    """An extension's keys are wrong (reported on the rule, never raised out of loading)."""


def rewrite(doc: Any) -> Any:
    """``doc`` (one YAML document of a rule file) as pySigma accepts it; documents that use no
    extension are returned unchanged (the same object)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("correlation"), dict):
        return doc
    correlation = doc["correlation"]
    kind = correlation.get("type")
    if kind in _SHORT_NAMES:
        return {**doc, "correlation": {**correlation, "type": _SHORT_NAMES[kind]}}
    if kind not in EXTENSION_TYPES:
        return doc
    sigma = {k: v for k, v in correlation.items() if k in _SIGMA_KEYS}
    sigma["type"] = "event_count"
    if kind == "first_seen":
        sigma["condition"] = {"gte": 1}  # every first sighting qualifies
    extension = {k: v for k, v in correlation.items() if k not in _SIGMA_KEYS}
    return {**doc, "correlation": sigma, ATTRIBUTE: {**extension, "type": kind}}


def _fraction(value: Any, name: str) -> float:
    try:
        number = float(value[:-1]) / 100 if isinstance(value, str) and value.endswith("%") else float(value)
    except (TypeError, ValueError) as error:
        raise ExtensionError(f"{name} must be a fraction (0.2) or a percentage ('20%'), not {value!r}") from error
    if not 0 <= number:
        raise ExtensionError(f"{name} must not be negative")
    return number


def _seconds(value: Any, name: str) -> float:
    try:
        return float(SigmaCorrelationTimespan(str(value)).seconds)
    except SigmaTimespanError as error:
        raise ExtensionError(f"{name} must be a timespan such as 30s or 5m, not {value!r}") from error


def options(attribute: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The type and checked options of an extension (the ``soc-correlation`` attribute)."""
    kind = str(attribute.get("type"))
    if kind not in EXTENSION_TYPES:
        raise ExtensionError(f"unknown project correlation type {kind!r}")
    unknown = sorted(set(attribute) - _KEYS[kind] - {"type"})
    if unknown:
        raise ExtensionError(f"{kind} does not know {', '.join(unknown)} (it knows {', '.join(sorted(_KEYS[kind]))})")
    if kind == "beaconing":
        if "jitter" not in attribute:
            raise ExtensionError("beaconing needs jitter (the largest coefficient of variation of the intervals)")
        return kind, {"jitter": _fraction(attribute["jitter"], "jitter"),
                      "min_interval": _seconds(attribute.get("min-interval", "1s"), "min-interval")}
    field = attribute.get("field")
    if not isinstance(field, str) or not field:
        raise ExtensionError("first_seen needs field (the value that must be new for the entity)")
    known = attribute.get("known-entities-only", True)
    if not isinstance(known, bool):
        raise ExtensionError("known-entities-only must be true or false")
    return kind, {"field": field, "known_entities_only": known,
                  "min_history": _seconds(attribute["min-history"], "min-history")
                  if "min-history" in attribute else 0.0}
