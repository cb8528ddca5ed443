"""Text as analysts search it: without case and without diacritics (``dang nhap`` finds
``đăng nhập``), the same way in every front door and on every store (the filters that apply it
run in Python over what the store returned)."""

from __future__ import annotations

import re
import unicodedata

__all__ = ["fold"]

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
