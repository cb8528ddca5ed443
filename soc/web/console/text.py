"""Text helpers of the console: diacritics-insensitive matching (``dang nhap`` finds
``đăng nhập``) and the zone label shown next to times."""

from __future__ import annotations

from datetime import datetime, tzinfo

from soc.text import fold

__all__ = ["fold", "zone_label"]


def zone_label(zone: tzinfo, at: datetime | None = None) -> str:
    """``Asia/Ho_Chi_Minh (UTC+07:00)``."""
    offset = (at or datetime.now(zone)).astimezone(zone).strftime("%z")
    return f"{getattr(zone, 'key', str(zone))} (UTC{offset[:3]}:{offset[3:]})"
