"""The console's translations are complete: every message of every template and of the console's
code has a Vietnamese translation (the console is Vietnamese by default), no catalogue entry is
fuzzy, placeholders survive translation, and two parts of the console do not translate the same
message differently (the catalogues are merged: one would silently win).

Messages are found the way ``pybabel extract`` finds them: Jinja2's extractor over every
template under ``soc/web/console/templates`` (``_("...")``, ``ngettext``), Babel's Python
extractor over ``soc/web/console/**/*.py`` (``_``, ``gettext``, ``ngettext``, ``N_`` -- a
no-op marker for messages translated later, ``lang.gettext`` included), plus the error titles
and advice that error pages translate indirectly (:mod:`soc.web.console.render`) and the
permission descriptions the roles page shows (:data:`soc.access.PERMISSIONS`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po

from soc.access import PERMISSIONS
from soc.web.console import i18n
from soc.web.console.render import ERROR_ADVICE, ERROR_TITLES

CONSOLE = Path(i18n.__file__).resolve().parent
TEMPLATES = CONSOLE / "templates"
LOCALE = CONSOLE / "locale"
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}
JINJA_OPTIONS = {"trim_blocks": "true", "lstrip_blocks": "true"}
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)[^{}]*\}")
#: Vietnamese translations that may rightly be written without a diacritic
PLAIN_VIETNAMESE = frozenset()

Message = tuple[str, str | None, str]  # singular, plural, where


def _where(path: Path, line: int) -> str:
    root = CONSOLE.parent.parent.parent
    return f"{path.relative_to(root) if path.is_relative_to(root) else path}:{line}"


def _messages(method: str, path: Path, options: dict[str, str] | None = None) -> Iterator[Message]:
    for line, message, _comments, _context in extract_from_file(method, str(path), keywords=KEYWORDS,
                                                                options=options or {}):
        if isinstance(message, tuple):
            singular, plural = message[0], message[1] if len(message) > 1 else None
        else:
            singular, plural = message, None
        if singular:  # None: the message is a variable (``_(title)``), not a literal
            yield singular, plural, _where(path, line)


def used_messages() -> list[Message]:
    """Every message the console can show, with where it is used."""
    found: list[Message] = []
    for path in sorted(TEMPLATES.rglob("*.html")):
        found += _messages("jinja2.ext:babel_extract", path, JINJA_OPTIONS)
    for path in sorted(CONSOLE.rglob("*.py")):
        found += _messages("python", path)
    render = CONSOLE / "render.py"
    found += [(text, None, f"{_where(render, 0)} (error pages)") for text in
              [*ERROR_TITLES.values(), *ERROR_ADVICE.values()]]
    found += [(text, None, "soc/access.py PERMISSIONS (admin/roles.html)") for text in PERMISSIONS.values()]
    return found


def catalogue(code: str) -> dict[str, list[tuple[Path, object]]]:
    """msgid -> [(the .po file, its message)] over every part of a language."""
    entries: dict[str, list[tuple[Path, object]]] = {}
    for path in sorted((LOCALE / code / "LC_MESSAGES").glob("*.po")):
        with path.open("rb") as handle:
            for message in read_po(handle, locale=i18n.LANGUAGES[code][0], domain=i18n.DOMAIN):
                if message.id:
                    key = message.id if isinstance(message.id, str) else message.id[0]
                    entries.setdefault(key, []).append((path, message))
    return entries


def _strings(message: object) -> list[str]:
    text = getattr(message, "string", "")
    return list(text) if isinstance(text, (tuple, list)) else [text or ""]


def _placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text))


def test_every_console_message_has_a_vietnamese_translation() -> None:
    entries = catalogue("vi")
    compiled = i18n.translations("vi")
    missing: dict[str, list[str]] = {}
    for singular, _plural, where in used_messages():
        found = entries.get(singular)
        last = found[-1][1] if found else None  # the merge keeps the last part's entry
        if last is None or not all(s.strip() for s in _strings(last)) or not compiled.gettext(singular):
            missing.setdefault(singular, []).append(where)
    report = "\n".join(f"  {msgid!r}  ({', '.join(places[:3])}{' ...' if len(places) > 3 else ''})"
                       for msgid, places in sorted(missing.items()))
    assert not missing, f"{len(missing)} console messages have no Vietnamese translation:\n{report}"


def test_the_merged_catalogue_translates() -> None:
    """The catalogues are compiled and merged when the console starts: a known message comes out
    in Vietnamese, and an unknown one is shown as written (never an error)."""
    vi = i18n.Language("vi")
    assert vi.gettext("Alerts") == "Cảnh báo"
    assert vi.gettext("no such message {x}") == "no such message {x}"
    assert i18n.Language("en").gettext("Alerts") == "Alerts"


@pytest.mark.parametrize("code", sorted(i18n.LANGUAGES))
def test_no_catalogue_entry_is_fuzzy(code: str) -> None:
    fuzzy = [f"{path.name}: {msgid!r}" for msgid, found in catalogue(code).items()
             for path, message in found if getattr(message, "fuzzy", False)]
    assert not fuzzy, "fuzzy entries are not used by the console; review and unmark them:\n" + "\n".join(fuzzy)


def test_translations_keep_the_placeholders() -> None:
    """``_("{n} alerts", n=...)`` formats the translation: a placeholder lost, renamed or added
    in a translation would raise or show the wrong value."""
    wrong = []
    for msgid, found in catalogue("vi").items():
        for path, message in found:
            ids = message.id if isinstance(message.id, (tuple, list)) else (message.id,)  # type: ignore[attr-defined]
            wanted = set().union(*(_placeholders(i) for i in ids))
            for text in _strings(message):
                if text and _placeholders(text) != wanted:
                    wrong.append(f"{path.name}: {msgid!r} -> {text!r} (placeholders {sorted(_placeholders(text))}, "
                                 f"expected {sorted(wanted)})")
    assert not wrong, "\n".join(wrong)


def test_parts_do_not_translate_the_same_message_differently() -> None:
    clashes = []
    for msgid, found in catalogue("vi").items():
        texts = {tuple(_strings(message)) for _path, message in found}
        if len(texts) > 1:
            clashes.append(f"{msgid!r}: " + "; ".join(f"{path.name}: {_strings(message)[0]!r}"
                                                      for path, message in found))
    assert not clashes, "the same message is translated differently (the last file wins):\n" + "\n".join(clashes)


def test_vietnamese_translations_have_their_diacritics() -> None:
    """A Vietnamese sentence of three words or more without a single diacritic is almost always
    written without its accents (``Nguoi dung`` for ``Người dùng``) or left in English."""
    plain = []
    for msgid, found in catalogue("vi").items():
        for path, message in found:
            for text in _strings(message):
                words = [w for w in re.findall(r"[^\W\d_]+", PLACEHOLDER.sub(" ", text)) if not w.isupper()]
                if len(words) >= 3 and all(w.isascii() for w in words) and text not in PLAIN_VIETNAMESE:
                    plain.append(f"{path.name}: {msgid!r} -> {text!r}")
    assert not plain, "translations without any Vietnamese diacritic:\n" + "\n".join(plain)


def test_the_extraction_finds_messages_of_templates_and_code(tmp_path: Path) -> None:
    """The test above is only as good as the extraction: it sees template calls with
    placeholders, plural forms, ``lang.gettext`` in code and the ``N_`` marker."""
    template = tmp_path / "t.html"
    template.write_text('{{ _("Hello {name}", name=who) }} {{ ngettext("{n} alert", "{n} alerts", 2) }} {{ _(var) }}',
                        encoding="utf-8")
    code = tmp_path / "c.py"
    code.write_text('x = lang.gettext("Too many {m}", m=1)\ny = N_("Marked")\nz = _(name)\n', encoding="utf-8")
    assert [m[:2] for m in _messages("jinja2.ext:babel_extract", template, JINJA_OPTIONS)] == [
        ("Hello {name}", None), ("{n} alert", "{n} alerts")]
    assert [m[:2] for m in _messages("python", code)] == [("Too many {m}", None), ("Marked", None)]
    assert any(m[0] == "Log in" for m in used_messages())
