"""Text helpers of the console: diacritics-insensitive matching (``dang nhap`` finds
``đăng nhập``) and the zone label shown next to times."""

from __future__ import annotations

import unicodedata
from datetime import datetime, tzinfo

__all__ = ["fold", "zone_label"]

_EXTRA = str.maketrans({"đ": "d", "Đ": "d", "ð": "d", "ø": "o", "ł": "l", "ß": "ss"})


def fold(text: str) -> str:
    """Lower case without diacritics: ``Đăng nhập THẤT BẠI`` -> ``dang nhap that bai``."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_EXTRA))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def zone_label(zone: tzinfo, at: datetime | None = None) -> str:
    """``Asia/Ho_Chi_Minh (UTC+07:00)``."""
    offset = (at or datetime.now(zone)).astimezone(zone).strftime("%z")
    return f"{getattr(zone, 'key', str(zone))} (UTC{offset[:3]}:{offset[3:]})"
