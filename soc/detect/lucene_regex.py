r"""Sigma ``|re`` (Python/PCRE syntax, ``re.search`` semantics, as the SQLite store runs it)
translated into a Lucene regexp that matches the same values, or refused.

Why a translation and not the pattern as written: a Lucene regexp always matches the *whole*
value (``^``/``$`` are plain characters there), knows no ``(?i)``, reads ``"<>#@&~`` as
operators, and has no lookaround, backreference or word boundary. Passed through unchanged, a
SigmaHQ rule silently means something else on the search store. So:

- each top-level branch is wrapped in ``.*…`` / ``….*`` unless it starts with ``^`` / ends with
  ``$``; ``$`` also allows one final newline (as in Python); ``.`` becomes ``[^\n]`` (Python's
  dot does not match a newline unless ``(?s)``);
- lazy quantifiers become greedy: whether *some* match exists (all ``re.search`` answers here)
  does not depend on laziness;
- ``\s`` and ``\S`` become explicit classes of exactly Python's whitespace; ``\d \w`` (and
  ``\D \W``) become the ASCII classes ``[0-9]`` and ``[0-9A-Z_a-z]``: Python's are Unicode-wide
  on ``str`` (hundreds of ranges, past the engine's regexp length), so a non-ASCII digit or
  letter (``é``, ``٣``) is the one known difference;
- every literal non-alphanumeric character is backslash-escaped (Lucene reads ``\x`` as a
  literal ``x``), so Lucene operators and ``/`` (query_string's regex delimiter) stay literal;
- ignoring case (``(?i)`` or Sigma's ``|i``) spells each letter as the class of its case forms;
  ``lowercase=True`` (fields holding lower-cased values, the ``.lc`` multi-fields) spells it in
  lower case only, which also survives the lowercase normalizer being applied to the pattern;
- what has no exact Lucene equivalent (lookaround, backreferences, ``\b``/``\B``/``\A``/``\Z``,
  possessive quantifiers, atomic groups, ``(?m)``/``(?x)``, scoped flags, anchors inside a
  branch) raises :class:`UntranslatableRegex` naming the construct: the rule does not compile
  for that store rather than run a different query.
"""

from __future__ import annotations

import re

from soc.errors import SocError

__all__ = ["UntranslatableRegex", "MAX_LENGTH", "TOO_COMPLEX_ADVICE", "explain_engine_error", "translate"]

MAX_CHAR = 0x10FFFF
#: longest regexp the engine accepts (``index.max_regex_length``, 1,000 by default)
MAX_LENGTH = 1000
#: past this code point no character has a one-character case form elsewhere
_CASED_END = 0x1E943
_DIGIT = [(ord("0"), ord("9"))]
_WORD = [(ord("0"), ord("9")), (ord("A"), ord("Z")), (ord("_"), ord("_")), (ord("a"), ord("z"))]
#: Python's ``\s`` on ``str`` (``str.isspace``), exactly
_SPACE = [(0x9, 0xD), (0x1C, 0x20), (0x85, 0x85), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200A),
          (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000)]
_FLAGS = re.compile(r"\(\?([aiLmsux]+)\)")
_CONTROL = {"t": "\t", "n": "\n", "r": "\r", "f": "\f", "v": "\v", "a": "\a"}
_REFUSED_ESCAPES = {"b": "word boundary \\b", "B": "non-boundary \\B", "A": "anchor \\A",
                    "Z": "anchor \\Z", "z": "anchor \\z", "G": "anchor \\G"}


class UntranslatableRegex(SocError, ValueError):
    """A regular expression uses a construct a Lucene regexp cannot express exactly."""


def _negate(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out, low = [], 0
    for lo, hi in _merge(ranges):
        if lo > low:
            out.append((low, lo - 1))
        low = hi + 1
    if low <= MAX_CHAR:
        out.append((low, MAX_CHAR))
    return out


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def _subtract(ranges: list[tuple[int, int]], lo2: int, hi2: int) -> list[tuple[int, int]]:
    out = []
    for lo, hi in ranges:
        if hi < lo2 or lo > hi2:
            out.append((lo, hi))
            continue
        if lo < lo2:
            out.append((lo, lo2 - 1))
        if hi > hi2:
            out.append((hi2 + 1, hi))
    return out


class _Translator:
    def __init__(self, pattern: str, ignore_case: bool, dotall: bool, lowercase: bool) -> None:
        self.p, self.i = pattern, 0
        self.ignore_case, self.dotall, self.lowercase = ignore_case, dotall, lowercase

    # -- helpers -----------------------------------------------------------------------------
    def refuse(self, construct: str) -> UntranslatableRegex:
        return UntranslatableRegex(f"regular expression {self.p!r}: {construct} (at offset {self.i}) "
                                   f"has no exact equivalent in a Lucene regexp")

    def peek(self, n: int = 0) -> str:
        return self.p[self.i + n] if self.i + n < len(self.p) else ""

    def case_ranges(self, ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """The ranges, with case forms added (ignore case), upper case dropped (lowercase)."""
        if self.ignore_case or self.lowercase:
            extra = []
            for lo, hi in ranges:
                for a, b, shift in ((65, 90, 32), (97, 122, -32)):
                    if lo <= b and hi >= a:
                        extra.append((max(lo, a) + shift, min(hi, b) + shift))
                for code in range(max(lo, 128), min(hi, _CASED_END) + 1):  # other cased letters
                    ch = chr(code)
                    extra.extend((ord(f), ord(f)) for f in (ch.lower(), ch.upper())
                                 if len(f) == 1 and f != ch and not lo <= ord(f) <= hi)
            ranges = _merge(ranges + extra)
        if self.lowercase:
            ranges = _subtract(ranges, 65, 90)
            ranges = [r for r in ranges if not (r[0] == r[1] and r[0] > 127 and chr(r[0]).lower() != chr(r[0]))]
        return ranges

    @staticmethod
    def lit(code: int) -> str:
        ch = chr(code)
        return ch if ch.isalnum() else "\\" + ch

    def emit_class(self, ranges: list[tuple[int, int]], negated: bool = False) -> str:
        ranges = self.case_ranges(_merge(ranges))
        if negated:
            ranges = _negate(ranges)
            if self.lowercase:
                ranges = _subtract(ranges, 65, 90)
        if not ranges:
            return "#"  # Lucene's empty language: matches nothing, like an empty class
        if len(ranges) == 1 and ranges[0][0] == ranges[0][1]:
            return self.lit(ranges[0][0])
        if ranges[0][0] == 0 and ranges[-1][1] == MAX_CHAR:  # shorter as a negated class
            rest = _negate(ranges)
            if self.lowercase:  # no A-Z in the values: leave them out (the pattern gets lower-cased)
                rest = _subtract(rest, 65, 90)
            return f"[^{self.body(rest)}]" if rest else ".{1}"
        return f"[{self.body(ranges)}]"

    def body(self, ranges: list[tuple[int, int]]) -> str:
        return "".join(self.lit(lo) if lo == hi else f"{self.lit(lo)}-{self.lit(hi)}" for lo, hi in ranges)

    def emit_char(self, ch: str) -> str:
        return self.emit_class([(ord(ch), ord(ch))])

    # -- grammar -----------------------------------------------------------------------------
    def top(self) -> str:
        self.leading_flags()
        branches = self.branches(at_start=True, at_end=True)
        if self.i < len(self.p):
            raise self.refuse("an unbalanced ')'")
        return "|".join(branches) if len(branches) == 1 else "|".join(f"({b})" for b in branches)

    def leading_flags(self) -> None:
        while match := _FLAGS.match(self.p, self.i):
            end = match.end() - 1
            for flag in match.group(1):
                if flag == "i":
                    self.ignore_case = True
                elif flag == "s":
                    self.dotall = True
                elif flag not in "u":
                    raise self.refuse(f"the inline flag (?{flag})")
            self.i = end + 1

    def branches(self, at_start: bool, at_end: bool) -> list[str]:
        out = [self.sequence(at_start, at_end)]
        while self.peek() == "|":
            self.i += 1
            out.append(self.sequence(at_start, at_end))
        return out

    def sequence(self, at_start: bool, at_end: bool) -> str:
        """One branch. ``at_start``/``at_end``: nothing can come before/after it in a match of
        the whole pattern, so it gets the ``.*`` (or honours ``^``/``$``) itself; a group that
        opens/closes such a branch passes that on to its own branches (``(^|/)x``)."""
        parts: list[str] = []
        prefix = suffix = None
        if at_start and self.peek() == "^":
            prefix = ""
            self.i += 1
        while self.i < len(self.p) and self.peek() not in "|)":
            if self.peek() == "^":
                raise self.refuse("an anchor '^' inside a branch")
            if self.peek() == "$":
                self.i += 1
                if at_end and (self.i == len(self.p) or self.peek() in "|)"):
                    suffix = "\n?"
                    break
                raise self.refuse("an anchor '$' inside a branch")
            first = at_start and prefix is None and not parts
            close = self.plain_group_end() if self.peek() == "(" and (first or at_end) else None
            if close is not None:
                last = at_end and (close + 1 == len(self.p) or self.p[close + 1] in "|)")
                if first or last:
                    self.i += 1
                    parts.append(self.group(first, last))
                    prefix = "" if first else prefix
                    suffix = "" if last else suffix
                    continue
            parts.append(self.quantified())
        body = "".join(parts)
        if prefix is None:
            prefix = ".*" if at_start else ""
        if suffix is None:
            suffix = ".*" if at_end else ""
        return prefix + body + suffix or "()"  # Lucene reads an empty branch as an error or nothing

    def plain_group_end(self) -> int | None:
        """Where the group opening at ``self.i`` closes, if it is a plain (capturing,
        non-capturing or named) group without a quantifier; else ``None``."""
        if self.p.startswith("(?", self.i) and not (self.p.startswith(("(?:", "(?P<"), self.i)
                                                   or (self.peek(2) == "<" and self.peek(3) not in "=!")):
            return None
        depth, k = 0, self.i
        while k < len(self.p):
            ch = self.p[k]
            if ch == "\\":
                k += 2
                continue
            if ch == "[":
                k += 1
                if k < len(self.p) and self.p[k] == "^":
                    k += 1
                if k < len(self.p) and self.p[k] == "]":
                    k += 1
                while k < len(self.p) and self.p[k] != "]":
                    k += 2 if self.p[k] == "\\" else 1
            elif ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
                if depth == 0:
                    after = self.p[k + 1:k + 2]
                    saved, self.i = self.i, k + 1
                    quantified = after in ("*", "+", "?") or (after == "{" and bool(self.brace()))
                    self.i = saved
                    return None if quantified else k
            k += 1
        return None

    def quantified(self) -> str:
        atom = self.atom()
        while True:
            ch = self.peek()
            if ch in ("*", "+", "?"):
                self.i += 1
                quant = ch
            elif ch == "{" and self.brace():
                quant = self.brace()
                self.i = self.p.index("}", self.i) + 1
            else:
                return atom
            if self.peek() == "?":
                self.i += 1  # lazy: the same set of matching values
            elif self.peek() == "+":
                raise self.refuse("a possessive quantifier")
            atom = f"({atom}){quant}"

    def brace(self) -> str:
        end = self.p.find("}", self.i)
        if end < 0:
            return ""
        inner = self.p[self.i + 1:end]
        low, sep, high = inner.partition(",")
        if not (low.isdigit() or (sep and low == "" and high.isdigit())) or (high and not high.isdigit()):
            return ""
        return "{" + (low or "0") + sep + high + "}"

    def atom(self) -> str:
        ch = self.peek()
        self.i += 1
        if ch == "(":
            return self.group()
        if ch == "[":
            return self.char_class()
        if ch == ".":
            return "." if self.dotall else self.emit_class([(10, 10)], negated=True)
        if ch == "\\":
            return self.escape()
        if ch in "*+?":
            raise self.refuse("a quantifier with nothing to repeat")
        if ch == "{" and self.brace():
            raise self.refuse("a quantifier with nothing to repeat")
        return self.emit_char(ch)

    def group(self, at_start: bool = False, at_end: bool = False) -> str:
        if self.peek() == "?":
            rest = self.p[self.i + 1:self.i + 3]
            if rest[:1] == ":":
                self.i += 2
            elif rest.startswith("P<") or (rest[:1] == "<" and rest[1:2] not in ("=", "!")):
                self.i = self.p.index(">", self.i) + 1
            elif rest[:1] in ("=", "!") or rest in ("<=", "<!"):
                raise self.refuse("a lookaround")
            elif rest.startswith("P="):
                raise self.refuse("a backreference")
            elif rest[:1] == ">":
                raise self.refuse("an atomic group")
            elif rest[:1] == "#":
                raise self.refuse("a comment group")
            else:
                raise self.refuse("a scoped inline flag or conditional group")
        inner = self.branches(at_start, at_end)
        if self.peek() != ")":
            raise self.refuse("an unbalanced '('")
        self.i += 1
        return "(" + "|".join(inner) + ")"

    def class_escape(self) -> list[tuple[int, int]]:
        """The ranges of an escape at ``self.i`` (after the backslash; not ``\\D \\W \\S``)."""
        ch = self.peek()
        self.i += 1
        if ch in "dws":
            return {"d": _DIGIT, "w": _WORD, "s": _SPACE}[ch]
        if ch in _CONTROL:
            return [(ord(_CONTROL[ch]),) * 2]
        if ch == "x":
            digits = self.p[self.i:self.i + 2]
            self.i += 2
            return [(int(digits, 16),) * 2]
        if ch in ("u", "U"):
            n = 4 if ch == "u" else 8
            digits = self.p[self.i:self.i + n]
            self.i += n
            return [(int(digits, 16),) * 2]
        if ch == "0":
            return [(0, 0)]
        if ch.isdigit():
            raise self.refuse("a backreference")
        if ch.isalnum():
            raise self.refuse(f"the escape \\{ch}")
        return [(ord(ch),) * 2]

    def escape(self) -> str:
        ch = self.peek()
        if ch in _REFUSED_ESCAPES:
            raise self.refuse(_REFUSED_ESCAPES[ch])
        if ch in "DWS":
            self.i += 1
            return self.emit_class({"D": _DIGIT, "W": _WORD, "S": _SPACE}[ch], negated=True)
        return self.emit_class(self.class_escape())

    def char_class(self) -> str:
        negated = self.peek() == "^"
        if negated:
            self.i += 1
        ranges: list[tuple[int, int]] = []
        first = True
        while True:
            ch = self.peek()
            if ch == "":
                raise self.refuse("an unterminated character class")
            if ch == "]" and not first:
                self.i += 1
                break
            first = False
            if ch == "[" and self.peek(1) in ":=.":
                raise self.refuse("a POSIX class")
            self.i += 1
            if ch == "\\":
                if self.peek() in "DWS":
                    ranges.extend(_negate({"D": _DIGIT, "W": _WORD, "S": _SPACE}[self.peek()]))
                    self.i += 1
                    continue
                if self.peek() == "b":
                    self.i += 1
                    item = [(8, 8)]
                else:
                    item = self.class_escape()
            else:
                item = [(ord(ch), ord(ch))]
            if len(item) == 1 and item[0][0] == item[0][1] and self.peek() == "-" and self.peek(1) not in ("]", ""):
                self.i += 1
                end_ch = self.peek()
                self.i += 1
                if end_ch == "\\":
                    end = self.class_escape()
                    if len(end) != 1 or end[0][0] != end[0][1]:
                        raise self.refuse("a range ending in a class")
                    high = end[0][0]
                else:
                    high = ord(end_ch)
                ranges.append((item[0][0], high))
            else:
                ranges.extend(item)
        return self.emit_class(ranges, negated)


def translate(pattern: str, *, flags: str = "", lowercase: bool = False) -> str:
    """The Lucene regexp (without the ``/`` delimiters) matching a whole value exactly when
    ``re.search(pattern, value)`` finds a match; ``flags`` holds Sigma's regex modifiers
    (``i``, ``s``; ``m`` is refused). ``lowercase``: the field holds lower-cased values, so the
    pattern matches ignoring case and is spelled in lower case."""
    if "m" in flags:
        raise UntranslatableRegex(f"regular expression {pattern!r}: the multiline flag has no exact "
                                  "equivalent in a Lucene regexp")
    translator = _Translator(pattern, "i" in flags, "s" in flags, lowercase)
    try:
        lucene = translator.top()
    except (IndexError, ValueError) as error:
        if isinstance(error, UntranslatableRegex):
            raise
        raise translator.refuse(f"unreadable syntax ({error})") from None
    if len(lucene) > MAX_LENGTH:
        raise UntranslatableRegex(f"regular expression {pattern!r}: its Lucene form has {len(lucene)} characters, "
                                  f"more than the engine's index.max_regex_length ({MAX_LENGTH})")
    return lucene


#: what the engine says when a regexp's automaton is too large to determinize (Lucene's
#: ``TooComplexToDeterminizeException``: more than ``max_determinized_states``, 10,000)
_TOO_COMPLEX = "Determinizing"
#: appended to such an error: raising the engine's limit is no answer (a probe with 1,000,000
#: took the test cluster down with OutOfMemoryError), rewriting the regex is
TOO_COMPLEX_ADVICE = (
    "a |re regular expression of this rule is too complex for the search engine (its automaton "
    "exceeds 10,000 states; typically a bounded repetition such as .{1,64} after an unanchored start, "
    "or .{1000,}): rewrite it -- replace bounded repetitions by .* (matches as much or more, never "
    "less) or anchor a length test with ^ (^.{1000,}) -- or run the rule on the SQLite store")


def explain_engine_error(message: str) -> str:
    """``message`` (a failed search) with :data:`TOO_COMPLEX_ADVICE` appended when the engine
    refused to determinize a regexp; other messages unchanged."""
    if _TOO_COMPLEX in message and TOO_COMPLEX_ADVICE not in message:
        return f"{message} -- {TOO_COMPLEX_ADVICE}"
    return message
