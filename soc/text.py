"""Text as analysts search it: without case and without diacritics (``dang nhap`` finds
``đăng nhập``), the same way in every front door and on every store (the filters that apply it
run in Python over what the store returned)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any

__all__ = ["alert_text", "fold"]

#: letters NFKD does not split (a stroke is no combining mark)
_EXTRA = (("đ", "d"), ("Đ", "d"), ("ð", "d"), ("Ð", "d"), ("ø", "o"), ("ł", "l"), ("ß", "ss"))
#: the combining marks NFKD splits off letters (Vietnamese tones and vowel marks among them)
_MARKS = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]+")


def fold(text: str) -> str:
    """Lower case without diacritics: ``Đăng nhập THẤT BẠI`` -> ``dang nhap that bai``."""
    if text.isascii():
        return text.casefold()
    for letter, plain in _EXTRA:  # str.replace runs in C; str.translate with a mapping does not
        if letter in text:
            text = text.replace(letter, plain)
    return _MARKS.sub("", unicodedata.normalize("NFKD", text)).casefold()


def alert_text(alert: Mapping[str, Any]) -> str:
    """The folded text an analyst's free-text filter looks in: the alert's id, rule id and title,
    message, agency, assignee, close note and every entity and group value. One definition for
    the console's reading (:class:`soc.alerts.AlertQuery`) and the embedded store's text index
    (which computes it in a trigger, so it must never raise: parts of an unexpected shape -- a
    ``rule`` that is not an object -- are read as far as they go)."""
    rule = alert.get("rule")
    rule = rule if isinstance(rule, Mapping) else {"id": rule}
    parts: list[Any] = [alert.get("id"), rule.get("id"), rule.get("title"), alert.get("message"),
                        alert.get("agency"), alert.get("assignee"), alert.get("close_note")]
    for bag in (alert.get("entities"), alert.get("group")):
        if isinstance(bag, Mapping):
            for value in bag.values():
                parts.extend(value if isinstance(value, list | tuple | set) else [value])
    return fold("\n".join(str(p) for p in parts if p is not None))
