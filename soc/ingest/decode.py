"""Decode: the raw bytes of one record -> text, plus flags saying what had to be fixed.

- UTF-8 is assumed (RFC 5424 MSGs, JSON, and every modern agent send UTF-8; Vietnamese
  agency text is UTF-8 in practice). Invalid bytes are decoded with U+FFFD replacement and
  the :data:`INVALID_UTF8` flag is set, so the normalizer records ``soc.decode.error`` and
  keeps the exact bytes in ``soc.raw_b64``: nothing is lost and nothing is guessed.
- A leading UTF-8 byte-order mark is removed (Windows tools and RFC 5424's MSG BOM).
- Trailing line terminators (``\\n``, ``\\r\\n``, ``\\r``) and NUL padding (some TCP
  senders terminate frames with NUL) are removed; other whitespace is content.

The common case (valid UTF-8, no BOM) is one ``bytes.decode`` call and a couple of
``endswith`` tests.
"""

from __future__ import annotations

from enum import IntFlag


class DecodeFlags(IntFlag):
    """What :func:`decode` had to do to the bytes. ``0`` means clean UTF-8."""

    NONE = 0
    INVALID_UTF8 = 1
    BOM_STRIPPED = 2


INVALID_UTF8 = int(DecodeFlags.INVALID_UTF8)  # plain ints: IntFlag arithmetic is slow on the hot path
BOM_STRIPPED = int(DecodeFlags.BOM_STRIPPED)
_BOM = b"\xef\xbb\xbf"


def decode(raw: bytes) -> tuple[str, int]:
    """``raw`` -> (text, flags). Never raises; ``flags`` is a :class:`DecodeFlags` value."""
    flags = 0
    if raw[:3] == _BOM:
        raw = raw[3:]
        flags |= BOM_STRIPPED
    end = len(raw)
    while end and raw[end - 1] in (10, 13, 0):
        end -= 1
    if end != len(raw):
        raw = raw[:end]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("utf-8", "replace")
        flags |= INVALID_UTF8
    if text[:1] == "\ufeff":  # a BOM that was not at byte 0 of the frame (after decoding)
        text = text[1:]
        flags |= BOM_STRIPPED
    return text, flags
