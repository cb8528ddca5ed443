"""Every message of the incident, report builder, playbook and task pages has a Vietnamese
translation in the console's catalogues (the literal ``_()``/``ngettext()`` calls of their
templates and the message ids their modules hand to the templates), and a Vietnamese translation
that carries diacritics where Vietnamese words need them."""

from __future__ import annotations

import re
from pathlib import Path

from jinja2.ext import extract_from_ast

from soc.web.console.i18n import translations
from soc.web.console.pages import incidents, playbooks, report_layout, tasks
from soc.web.console.render import TEMPLATES, env

FOLDERS = ("incidents", "playbooks", "tasks")
OWN = Path(__file__).resolve().parent.parent / "soc/web/console/locale/vi/LC_MESSAGES/incidents.po"


def message_ids() -> dict[str | tuple[str, str], str]:
    """msgid (a pair for a plural message) -> where it is used."""
    found: dict[str | tuple[str, str], str] = {}
    for folder in FOLDERS:
        for path in sorted((TEMPLATES / folder).glob("*.html")):
            tree = env.parse(path.read_text(encoding="utf-8"), path.name)
            for line, func, message in extract_from_ast(tree, gettext_functions=("_", "ngettext")):
                parts = message if isinstance(message, tuple) else (message,)
                key = (parts[0], parts[1]) if func == "ngettext" else parts[0]
                if key:
                    found.setdefault(key, f"{folder}/{path.name}:{line}")
    for module in (incidents, tasks, playbooks):
        for text in module.DONE.values():
            found.setdefault(text, f"{module.__name__}.DONE")
    for sections in report_layout.SECTIONS.values():
        for title, rows in sections:
            found.setdefault(title, "report_layout.SECTIONS")
            for label, _path in rows:
                found.setdefault(label, "report_layout.SECTIONS")
    for text in report_layout.CHOICES.values():
        found.setdefault(text, "report_layout.CHOICES")
    return found


def test_every_message_has_a_vietnamese_translation() -> None:
    catalogue = translations("vi")
    ids = message_ids()
    assert len(ids) > 300
    def translated(key: str | tuple[str, str]) -> bool:
        if isinstance(key, tuple):
            return catalogue.ngettext(key[0], key[1], 1) != key[0] and catalogue.ngettext(key[0], key[1], 5) != key[1]
        return catalogue.gettext(key) != key or key == "Mẫu 04"  # the form's name in both languages

    missing = {str(key): where for key, where in ids.items() if not translated(key)}
    assert missing == {}


def test_the_own_catalogue_is_vietnamese_with_diacritics() -> None:
    text = OWN.read_text(encoding="utf-8")
    translated = re.findall(r'^msgstr(?:\[0\])? "(.+)"$', text, re.M)
    assert len(translated) > 300
    marks = re.compile(r"[àáảãạăằắẳẵặâầấẩẫậèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵđ]", re.I)
    bare = [t for t in translated if re.search(r"[a-z]{2}", t, re.I) and not marks.search(t)
            and not re.fullmatch(r"[\w .@{}()/,:–-]*(Mẫu|IDS|ISP|CMS|TT|NĐ|QĐ|Log File)?[\w .@{}()/,:–-]*", t)]
    assert bare == [], "translations without any Vietnamese diacritic: check them"
