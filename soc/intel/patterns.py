"""STIX 2.1 indicator patterns, as far as they can be matched one value at a time.

A feed's indicator carries a pattern (``[ipv4-addr:value = '198.51.100.7']``). The matcher
compares single values, so only patterns that say "any of these values" are taken in: one
observation or several joined by ``OR``, whose comparisons are ``=`` or ``IN`` (and
``ISSUBSET`` on an address: a network) on the paths below, joined by ``OR``. Everything else --
``AND`` of two properties, ``FOLLOWEDBY``, ``WITHIN``/``REPEATS`` qualifiers, ``LIKE``,
``MATCHES``, ``!=``, other objects or properties -- is kept with the indicator and reported as
not matchable (:class:`Parsed.unmatchable` says why), never matched as something it is not.

The syntax is read by the ``stix2`` package's pattern visitor (the OASIS grammar), so a pattern
the standard refuses is refused here with the grammar's message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stix2.pattern_visitor import create_pattern_object

from soc.intel.indicators import IndicatorError, Observable, normalize

__all__ = ["PATHS", "Parsed", "parse_pattern"]

#: object path -> indicator type
PATHS = {
    "ipv4-addr:value": "ipv4", "ipv6-addr:value": "ipv6", "domain-name:value": "domain", "url:value": "url",
    "file:hashes.MD5": "md5", "file:hashes.SHA-1": "sha1", "file:hashes.SHA-256": "sha256",
    "file:hashes.SHA1": "sha1", "file:hashes.SHA256": "sha256",
    "email-addr:value": "email", "email-message:from_ref.value": "email", "email-message:sender_ref.value": "email",
}


@dataclass
class Parsed:
    """The values a pattern matches, or why it cannot be matched value by value."""

    pattern: str
    observables: list[Observable] = field(default_factory=list)
    unmatchable: str | None = None

    @property
    def matchable(self) -> bool:
        return self.unmatchable is None and bool(self.observables)


class _Unmatchable(Exception):
    pass


def parse_pattern(pattern: str) -> Parsed:
    """The observables of a STIX 2.1 pattern (see the module docstring)."""
    out = Parsed(pattern)
    try:
        tree = create_pattern_object(pattern, version="2.1")
    except Exception as error:  # the grammar's ParseException and friends
        out.unmatchable = f"not a valid STIX 2.1 pattern: {str(error)[:200]}"
        return out
    try:
        for comparison in _comparisons(tree):
            out.observables.extend(_observables(comparison, pattern))
    except _Unmatchable as why:
        out.observables.clear()
        out.unmatchable = str(why)
    if out.unmatchable is None and not out.observables:
        out.unmatchable = "no value to match"
    return out


def _comparisons(node: Any) -> list[Any]:
    kind = type(node).__name__
    if kind == "OrObservationExpression":
        return [c for operand in node.operands for c in _comparisons(operand)]
    if kind == "ObservationExpression":
        return _comparisons(node.operand)
    if kind == "ParentheticalExpression":
        return _comparisons(node.expression)
    if kind == "OrBooleanExpression":
        return [c for operand in node.operands for c in _comparisons(operand)]
    if kind.endswith("ComparisonExpression"):
        return [node]
    if kind in ("AndBooleanExpression", "AndObservationExpression"):
        raise _Unmatchable("AND: more than one value must hold at once")
    if kind == "FollowedByObservationExpression":
        raise _Unmatchable("FOLLOWEDBY: a sequence of observations")
    if kind == "QualifiedObservationExpression":
        raise _Unmatchable("a qualifier (WITHIN, REPEATS, START/STOP)")
    raise _Unmatchable(f"{kind} is not supported")


def _path(lhs: Any) -> str:
    parts = [getattr(p, "property_name", None) for p in lhs.property_path]
    if any(not isinstance(p, str) for p in parts):
        raise _Unmatchable("a list index or a reference in the object path")
    return f"{lhs.object_type_name}:{'.'.join(parts)}"


def _observables(comparison: Any, pattern: str) -> list[Observable]:
    if getattr(comparison, "negated", False):
        raise _Unmatchable("NOT: a negated comparison")
    path = _path(comparison.lhs)
    type_ = PATHS.get(path)
    if type_ is None:
        raise _Unmatchable(f"{path}: not an address, domain, URL, hash or e-mail sender")
    operator = comparison.operator
    if operator == "=":
        values = [comparison.rhs.value]
    elif operator == "IN":
        values = [v.value for v in comparison.rhs.value]
    elif operator == "ISSUBSET" and type_ in ("ipv4", "ipv6"):
        values = [comparison.rhs.value]
    else:
        raise _Unmatchable(f"{path} {operator}: only = and IN (and ISSUBSET on addresses) are matched")
    out = []
    for value in values:
        try:
            observable = normalize(type_, value)
        except IndicatorError as error:
            raise _Unmatchable(str(error)) from None
        out.append(Observable(observable.type, observable.value, observable.cidr, pattern))
    return out
