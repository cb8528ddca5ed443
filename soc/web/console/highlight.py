"""What of an event made a rule match: the fields the rule tests, whether each value satisfied
the rule's condition, and which parts of it -- returned as pieces of text (:class:`Piece`)
that the template escapes and wraps in ``<mark>``. Nothing here builds HTML: text from logs
stays data all the way to the page.

The tests come from the rule itself (:func:`rule_tests`): its Sigma file read again, the same
processing pipelines applied as when it was compiled (so the field names are the event's), and
every ``field|modifier: value`` of its condition turned into a :class:`Test`. A test under an
odd number of ``not`` is an exclusion -- an event matched because it did *not* satisfy it -- and
is left out. A correlation's tests are those of the rules it counts, plus its ``group-by`` and
``value_count`` fields (shown as the correlation's keys). Sigma compares strings ignoring case
(``|cased`` excepted); so do the tests.
"""

from __future__ import annotations

import copy
import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from sigma.conditions import (
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionValueExpression,
)
from sigma.rule import SigmaRule
from sigma.types import (
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaString,
    SpecialChars,
)
from sigma.types import SigmaRegularExpressionFlag as Flag

from soc.detect.pipelines import build_pipeline
from soc.detect.rules import load_rules

__all__ = ["FieldRow", "Highlighted", "Piece", "Test", "highlight_event", "mark_text", "rule_tests"]

#: event fields a rule's keywords (values without a field) search
KEYWORD_FIELDS = ("message", "event.original")
#: shortest matched value looked for again in the raw line (shorter ones would mark noise)
MIN_RAW_NEEDLE = 3

Spans = list[tuple[int, int]]


@dataclass(frozen=True, slots=True)
class Piece:
    """A run of text, marked when it is what the rule matched."""

    text: str
    mark: bool = False


@dataclass(frozen=True, slots=True)
class Test:
    """One thing a rule requires of a field (``None``: of the message, a Sigma keyword):
    ``spans(text)`` answers the matched parts of a value, ``[]`` when the whole value is the
    match (a number, an address in a network, a key), or ``None`` when it does not match."""

    field: str | None
    spans: Callable[[str], Spans | None]
    key: bool = False


@dataclass(frozen=True, slots=True)
class FieldRow:
    """One field of the event: its value as pieces, and whether the rule matched it."""

    name: str
    values: tuple[tuple[Piece, ...], ...]
    matched: bool
    key: bool = False


@dataclass(frozen=True, slots=True)
class Highlighted:
    """An event with its matched fields: every field as a row (sorted by name), the raw line
    with the matched values marked, and the names of the matched fields."""

    rows: tuple[FieldRow, ...]
    raw: tuple[Piece, ...]
    matched: tuple[str, ...]


def text_of(value: Any) -> str:
    """A value as the page shows it (booleans as JSON spells them)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


# -- tests from a Sigma value ---------------------------------------------------------------
def _string_test(value: Any, contains: bool = False) -> Callable[[str], Spans | None] | None:
    if value.contains_placeholder():
        return None
    pattern = []
    for part in value.iter_parts():
        if part == SpecialChars.WILDCARD_MULTI:
            pattern.append(".*?")
        elif part == SpecialChars.WILDCARD_SINGLE:
            pattern.append(".")
        elif isinstance(part, str) and part:
            pattern.append("(" + re.escape(part) + ")")
    flags = re.DOTALL | (0 if isinstance(value, SigmaCasedString) else re.IGNORECASE)
    compiled = re.compile("".join(pattern), flags)
    match = compiled.search if contains else compiled.fullmatch

    def spans(text: str) -> Spans | None:
        found = match(text)
        if found is None:
            return None
        return [found.span(i) for i in range(1, (compiled.groups or 0) + 1) if found.span(i)[1] > found.span(i)[0]]

    return spans


def _regex_test(value: Any) -> Callable[[str], Spans | None] | None:
    flags = 0
    for flag, python in ((Flag.IGNORECASE, re.IGNORECASE), (Flag.MULTILINE, re.MULTILINE), (Flag.DOTALL, re.DOTALL)):
        if flag in (value.flags or ()):
            flags |= python
    try:
        compiled = re.compile(str(value.regexp.original if hasattr(value.regexp, "original") else value.regexp), flags)
    except re.error:
        return None

    def spans(text: str) -> Spans | None:
        found = [m.span() for m in compiled.finditer(text) if m.end() > m.start()]
        return found if found or compiled.search(text) else None

    return spans


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _value_test(value: Any, keyword: bool = False) -> Callable[[str], Spans | None] | None:
    """The test of one Sigma value, or ``None`` when it names no value to compare
    (placeholders, field references, null). A keyword (a value without a field) is found
    anywhere in the message, as the backends search it."""
    if isinstance(value, SigmaString):
        return _string_test(value, contains=keyword)
    if isinstance(value, SigmaRegularExpression):
        return _regex_test(value)
    if isinstance(value, SigmaNumber):
        wanted = float(value.number)
        return lambda text: [] if _number(text) == wanted else None
    if isinstance(value, SigmaBool):
        spelled = "true" if value.boolean else "false"
        return lambda text: [] if text.lower() == spelled else None
    if isinstance(value, SigmaCIDRExpression):
        network = ipaddress.ip_network(str(value.network), strict=False)

        def inside(text: str) -> Spans | None:
            try:
                return [] if ipaddress.ip_address(text.strip()) in network else None
            except ValueError:
                return None

        return inside
    if isinstance(value, SigmaCompareExpression):
        bound, op = float(value.number.number), value.op.name
        compare = {"LT": bound.__gt__, "LTE": bound.__ge__, "GT": bound.__lt__, "GTE": bound.__le__}[op]
        return lambda text: [] if (n := _number(text)) is not None and compare(n) else None
    if isinstance(value, SigmaExists):
        return (lambda text: []) if value.exists else None
    return None


def _walk(node: Any, negated: bool, out: list[Test]) -> None:
    if isinstance(node, (ConditionFieldEqualsValueExpression, ConditionValueExpression)):
        if negated:
            return
        field = getattr(node, "field", None)
        values = node.value.values if isinstance(node.value, SigmaExpansion) else [node.value]
        for value in values:
            spans = _value_test(value, keyword=field is None)
            if spans is not None:
                out.append(Test(field, spans))
        return
    for child in getattr(node, "args", None) or ():
        _walk(child, negated ^ isinstance(node, ConditionNOT), out)


@lru_cache(maxsize=512)
def _event_rule_tests(path: str, modified: float, rule_id: str, pipelines: tuple[str, ...]) -> tuple[Test, ...]:
    loaded = load_rules([Path(path)])
    rule = next((r for r in loaded.rules if isinstance(r, SigmaRule) and str(r.id or r.name) == rule_id), None)
    if rule is None:
        return ()
    work = copy.deepcopy(rule)
    build_pipeline(pipelines).apply(work)
    tests: list[Test] = []
    for condition in work.detection.parsed_condition:
        _walk(condition.parsed, False, tests)
    return tuple(tests)


def _whole(_: str) -> Spans:
    return []


def rule_tests(rule_id: str, detections: Mapping[str, Any], _depth: int = 0) -> tuple[Test, ...]:
    """The positive tests of a compiled rule (``detections``: rule id -> :class:`Detection` of
    the rule set) -- empty when the rule is unknown, or its file is gone."""
    detection = detections.get(rule_id)
    if detection is None or _depth > 5:
        return ()
    if detection.kind == "correlation" and detection.correlation is not None:
        spec = detection.correlation
        tests = [t for ref in spec.rules for t in rule_tests(ref, detections, _depth + 1)]
        keys = [*spec.group_by, *([spec.value_field] if spec.value_field else [])]
        return (*tests, *(Test(name, _whole, key=True) for name in keys))
    path = detection.info.path
    try:
        modified = Path(path).stat().st_mtime if path else 0.0
    except OSError:
        return ()
    if not path:
        return ()
    return _event_rule_tests(path, modified, rule_id, tuple(detection.report.pipelines))


# -- pieces -----------------------------------------------------------------------------------
def _merged(spans: Iterable[tuple[int, int]]) -> Spans:
    out: Spans = []
    for start, end in sorted(spans):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def _pieces(text: str, spans: Spans | None) -> tuple[Piece, ...]:
    if spans is None:
        return (Piece(text),) if text else ()
    if not spans:
        return (Piece(text, True),)
    pieces: list[Piece] = []
    at = 0
    for start, end in _merged(spans):
        if start > at:
            pieces.append(Piece(text[at:start]))
        pieces.append(Piece(text[start:end], True))
        at = end
    if at < len(text):
        pieces.append(Piece(text[at:]))
    return tuple(pieces)


def _needle_spans(text: str, needles: Iterable[str]) -> Spans:
    wanted = sorted({n for n in needles if len(n) >= MIN_RAW_NEEDLE}, key=len, reverse=True)
    if not wanted or not text:
        return []
    return [m.span() for m in re.finditer("|".join(re.escape(n) for n in wanted), text, re.IGNORECASE)]


def mark_text(text: str, needles: Iterable[str]) -> tuple[Piece, ...]:
    """``text`` with every occurrence of each needle (of at least :data:`MIN_RAW_NEEDLE`
    characters) marked, ignoring case."""
    return _pieces(text, _needle_spans(text, needles) or None)


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _spans(text: str, tests: Sequence[Test]) -> tuple[Spans | None, bool]:
    """What ``tests`` matched in one value (``None``: nothing; ``[]``: the whole value), and
    whether a key test matched."""
    found: Spans = []
    whole = matched = key = False
    for test in tests:
        spans = test.spans(text)
        if spans is None:
            continue
        matched, key = True, key or test.key
        whole = whole or not spans
        found += spans
    if not matched:
        return None, False
    return ([] if whole else found), key


def _row(name: str, value: Any, tests: Sequence[Test]) -> tuple[FieldRow, list[str]]:
    """A field's row, and the matched text of its values (to find again in the raw line)."""
    shown: list[tuple[Piece, ...]] = []
    matched_text: list[str] = []
    matched = key = False
    for item in _as_list(value):
        text = text_of(item)
        spans, is_key = _spans(text, tests) if tests else (None, False)
        matched, key = matched or spans is not None, key or is_key
        pieces = _pieces(text, spans)
        shown.append(pieces)
        matched_text += [p.text for p in pieces if p.mark]
    return FieldRow(name, tuple(shown), matched, key), matched_text


def highlight_event(event: Mapping[str, Any], tests: Sequence[Test]) -> Highlighted:
    """Every field of ``event`` with what ``tests`` matched in it (see the module docstring)."""
    by_field: dict[str, list[Test]] = {}
    for test in tests:
        for name in KEYWORD_FIELDS if test.field is None else (test.field,):
            by_field.setdefault(name, []).append(test)
    rows: list[FieldRow] = []
    needles: list[str] = []
    for name in sorted(event):
        row, found = _row(name, event[name], by_field.get(name, ()))
        rows.append(row)
        if name != "event.original":
            needles += found
    raw_text = text_of(event.get("event.original"))
    own, _ = _spans(raw_text, by_field.get("event.original", ()))
    spans = (own or []) + _needle_spans(raw_text, needles)
    raw = _pieces(raw_text, [(0, len(raw_text))] if own == [] else (spans or None))
    return Highlighted(tuple(rows), raw, tuple(r.name for r in rows if r.matched))
