"""The keyword prefilter of the embedded store (see :mod:`soc.store.sqlite`): which literals
an SQL predicate requires in ``message`` (:func:`keyword_requirement`), and one regular
expression finding any of them (:func:`literal_finder`) in the ASCII-lowercased message
(:func:`fold_ascii`)."""

from __future__ import annotations

import re
from collections.abc import Iterable

_ASCII_FOLD = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}
_TOKEN = re.compile(r"""\s+|'(?:[^']|'')*'|`(?:[^`]|``)*`|\(|\)|[A-Za-z_][A-Za-z0-9_.]*|[^\s()'`A-Za-z_]+""")
#: words that make a predicate too hard to read safely: no prefilter for it
_OPAQUE = {"BETWEEN", "CASE", "SELECT", "EXISTS", "GLOB", "MATCH", "COLLATE"}


def fold_ascii(text: str) -> str:
    """ASCII letters lowercased, everything else kept: the case-insensitivity of SQLite's LIKE."""
    return text.lower() if text.isascii() else text.translate(_ASCII_FOLD)


def _like_fragments(pattern: str, escape: str | None) -> list[str]:
    """The literal runs of a LIKE pattern (between ``%`` and ``_`` wildcards), unescaped."""
    out, current, i = [], [], 0
    while i < len(pattern):
        char = pattern[i]
        if escape is not None and char == escape and i + 1 < len(pattern):
            current.append(pattern[i + 1])
            i += 2
            continue
        if char in "%_":
            out.append("".join(current))
            current = []
        else:
            current.append(char)
        i += 1
    out.append("".join(current))
    return [f for f in out if f]


class _Unreadable(Exception):
    pass


def keyword_requirement(where: str, column: str = "message") -> frozenset[str] | None:
    """Literals (ASCII-lowercased) one of which ``column`` must contain, ignoring ASCII case,
    for the SQL predicate ``where`` to be true; None when there is no such set (or the predicate
    is not one this reader understands, which is then never prefiltered).

    Reads AND / OR / NOT and parentheses; an atom ``column LIKE '<pattern>' [ESCAPE '<c>']``
    requires the longest literal run of its pattern; any other atom requires nothing. OR needs
    every branch to require something (the union), AND any one branch (the most selective),
    NOT nothing. Sound because SQL's three-valued AND/OR are monotone: a true conjunction has
    every conjunct true, a true disjunction at least one."""
    if column not in where.lower():
        return None  # most rules never name the column: no need to read them (hunt start-up)
    tokens = [t for t in _TOKEN.findall(where) if not t.isspace()]
    if any(t.upper() in _OPAQUE for t in tokens):
        return None
    pos = 0

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def word(token: str | None) -> str:
        return token.upper() if token else ""

    def disjunction() -> frozenset[str] | None:
        nonlocal pos
        needs = [conjunction()]
        while word(peek()) == "OR":
            pos += 1
            needs.append(conjunction())
        if any(n is None for n in needs):
            return None
        return frozenset().union(*needs)  # type: ignore[arg-type]

    def conjunction() -> frozenset[str] | None:
        nonlocal pos
        needs = [negation()]
        while word(peek()) == "AND":
            pos += 1
            needs.append(negation())
        known = [n for n in needs if n is not None]
        return max(known, key=lambda n: (min(map(len, n)), -len(n))) if known else None

    def negation() -> frozenset[str] | None:
        nonlocal pos
        if word(peek()) == "NOT":
            pos += 1
            negation()
            return None
        if peek() == "(":
            pos += 1
            need = disjunction()
            if peek() != ")":
                raise _Unreadable
            pos += 1
            return need
        return atom()

    def atom() -> frozenset[str] | None:
        nonlocal pos
        start, depth = pos, 0
        while pos < len(tokens):
            token = tokens[pos]
            if depth == 0 and (token == ")" or word(token) in ("AND", "OR")):
                break
            if token == "(":
                depth += 1
            elif token == ")":
                depth -= 1
            pos += 1
        parts = tokens[start:pos]
        if not parts or depth != 0:
            raise _Unreadable
        name = parts[0][1:-1].replace("``", "`") if parts[0].startswith("`") else parts[0]
        if name.lower() != column or len(parts) not in (3, 5) or word(parts[1]) != "LIKE" \
                or not parts[2].startswith("'"):
            return None
        escape = None
        if len(parts) == 5:
            if word(parts[3]) != "ESCAPE" or not parts[4].startswith("'") or len(parts[4]) != 3:
                return None
            escape = parts[4][1]
        fragments = _like_fragments(parts[2][1:-1].replace("''", "'"), escape)
        return frozenset({fold_ascii(max(fragments, key=len))}) if fragments else None

    try:
        need = disjunction()
    except _Unreadable:
        return None
    return need if pos == len(tokens) else None


#: characters from the most to the least common in (lowercased) log lines, as counted over the
#: loghub and elastic-examples samples; a character not listed counts as rarest
_COMMON = " soe10r2i:ntdau-c47p5hm38.l[]6f9=_b()xywk/vjg;z\"$q>',!\\+@*#&"
_RANK = {c: len(_COMMON) - i for i, c in enumerate(_COMMON)}


def literal_finder(literals: Iterable[str]) -> re.Pattern[str]:
    """One regular expression finding any of ``literals``.

    Each literal is anchored at its rarest character: the pattern starts with a character set,
    which ``re`` scans for in C, and only at those positions checks the rest (the part before
    the anchor by a fixed-width look-behind, the part after directly). Many times faster than
    trying every literal at every position."""
    anchored: dict[str, set[str]] = {}
    for literal in set(literals):
        at = min(range(len(literal)), key=lambda i: (_RANK.get(literal[i], 0), -i))
        before, anchor, after = literal[:at], literal[at], literal[at + 1:]
        rest = (f"(?<={re.escape(before + anchor)})" if before else "") + re.escape(after)
        anchored.setdefault(anchor, set()).add(rest)
    branches = []
    for anchor, rests in sorted(anchored.items()):
        options = sorted(rests)
        tail = "" if "" in rests else options[0] if len(options) == 1 else "(?:" + "|".join(options) + ")"
        branches.append(re.escape(anchor) + tail)
    return re.compile("|".join(branches) if branches else "(?!)")
