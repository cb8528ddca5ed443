"""The console's languages: Vietnamese by default, English on request.

Messages are gettext catalogues kept as ``.po`` files under ``locale/<lang>/LC_MESSAGES/``, one
file per part of the console (``console.po``, ``alerts.po``...; edit them with any PO editor;
``pybabel extract`` over the templates and ``soc/web/console`` lists the message ids). They are
merged and compiled in memory when the console starts -- no build step, no binary file in the
repository. The language of a request is the ``soc_lang`` cookie (set by the switch
in the page header), else Vietnamese.

Numbers, dates and times are written the way each language writes them: ``336.148,95`` and
``07/12/2026 14:05`` in Vietnamese, ``336,148.95`` and ``2026-12-07 14:05`` in English, always in
the user's zone with the zone shown.
"""

from __future__ import annotations

import io
from datetime import datetime, tzinfo
from functools import cache
from pathlib import Path

from babel.dates import format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal, format_percent
from babel.support import Translations

__all__ = ["DEFAULT", "LANGUAGES", "Language", "language"]

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "console"
DEFAULT = "vi"
#: language code -> (Babel locale, its own name)
LANGUAGES = {"vi": ("vi_VN", "Tiếng Việt"), "en": ("en_US", "English")}
DATE_PATTERNS = {"vi": ("dd/MM/yyyy", "dd/MM/yyyy HH:mm", "dd/MM/yyyy HH:mm:ss"),
                 "en": ("yyyy-MM-dd", "yyyy-MM-dd HH:mm", "yyyy-MM-dd HH:mm:ss")}


@cache
def translations(code: str) -> Translations:
    """The compiled catalogue of a language (English: the message ids themselves, plus any
    English catalogue entries)."""
    merged = None
    for path in sorted((LOCALE_DIR / code / "LC_MESSAGES").glob("*.po")):
        with path.open("rb") as handle:
            catalog = read_po(handle, locale=LANGUAGES[code][0], domain=DOMAIN)
        if merged is None:
            merged = catalog
        else:
            for message in catalog:
                if message.id:
                    merged[message.id] = message
    if merged is None:
        return Translations()
    catalog = merged
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer, domain=DOMAIN)


class Language:
    """One request's language: translation and the formats of numbers and times."""

    def __init__(self, code: str) -> None:
        self.code = code if code in LANGUAGES else DEFAULT
        self.locale = LANGUAGES[self.code][0]
        self._t = translations(self.code)

    def gettext(self, message: str, **values: object) -> str:
        text = self._t.gettext(message)
        return text.format(**values) if values else text

    def ngettext(self, singular: str, plural: str, n: int, **values: object) -> str:
        text = self._t.ngettext(singular, plural, n)
        return text.format(n=self.number(n), **values)

    def number(self, value: float | int | None, digits: int | None = None) -> str:
        if value is None:
            return "–"
        pattern = None if digits is None else "#,##0." + "0" * digits if digits else "#,##0"
        return format_decimal(value, format=pattern, locale=self.locale)

    def percent(self, value: float | None) -> str:
        return "–" if value is None else format_percent(value, format="#,##0.0%", locale=self.locale)

    def time(self, value: datetime | str | None, zone: tzinfo, *, seconds: bool = False, date_only: bool = False) -> str:
        """A time in ``zone``, written in this language's way (without the zone: pages show it
        once, next to the times)."""
        if value is None or value == "":
            return "–"
        moment = datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else value
        date, minutes, full = DATE_PATTERNS[self.code]
        pattern = date if date_only else full if seconds else minutes
        return format_datetime(moment.astimezone(zone), pattern, tzinfo=zone, locale=self.locale)


def language(cookie: str | None) -> Language:
    return Language(cookie or DEFAULT)
