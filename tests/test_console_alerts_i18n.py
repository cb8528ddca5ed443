"""Every message of the alert queue (its templates and page modules) has a Vietnamese translation
in its own catalogue (``locale/vi/LC_MESSAGES/alerts.po``), with the same placeholders and
written with Vietnamese diacritics; the page itself comes out in Vietnamese, and in English when
the user switches."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po

from tests.conftest import ROOT

CONSOLE = ROOT / "soc" / "web" / "console"
TEMPLATES = sorted((CONSOLE / "templates" / "alerts").glob("*.html"))
MODULES = [CONSOLE / "pages" / name for name in ("alerts.py", "alert_actions.py", "alert_exception.py")] + [
    CONSOLE / "saved_views.py"]
CATALOGUE = CONSOLE / "locale" / "vi" / "LC_MESSAGES" / "alerts.po"
#: gettext-like calls of the page modules: refuse(request, MESSAGE, ...), ViewError(MESSAGE, ...)
PY_KEYWORDS = {"gettext": None, "ngettext": (1, 2), "refuse": (2,), "ViewError": (1,)}
PLACEHOLDER = re.compile(r"\{[a-z_]+\}")
VIETNAMESE = re.compile(r"[àáảãạăằắẳẵặâầấẩẫậđèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵ]", re.I)


def used_messages() -> set[tuple[str, ...]]:
    """(msgid,) or (singular, plural) of every translatable message of the alert queue."""
    found: set[tuple[str, ...]] = set()
    for path in TEMPLATES:
        for _, message, _, _ in extract_from_file("jinja2", path, keywords={"_": None, "ngettext": (1, 2)},
                                                  options={"trim_blocks": "1", "lstrip_blocks": "1"}):
            found.add(tuple(m for m in (message if isinstance(message, tuple) else (message,)) if m))
    for path in MODULES:
        for _, message, _, _ in extract_from_file("python", path, keywords=PY_KEYWORDS):
            found.add(tuple(m for m in (message if isinstance(message, tuple) else (message,)) if m))
    return found


def test_every_message_of_the_queue_has_a_vietnamese_translation() -> None:
    with CATALOGUE.open("rb") as handle:
        catalogue = read_po(handle, locale="vi_VN")
    used = used_messages()
    assert len(used) > 150  # the extraction found the queue's messages
    missing, wrong = [], []
    for message in sorted(used):
        entry = catalogue.get(message[0])
        if entry is None or not entry.string or not all(entry.string if isinstance(entry.string, str)
                                                         else entry.string):
            missing.append(message[0])
            continue
        text = entry.string if isinstance(entry.string, str) else entry.string[0]
        if set(PLACEHOLDER.findall(text)) != set(PLACEHOLDER.findall(message[0])):
            wrong.append(f"{message[0]!r}: placeholders differ in {text!r}")
        if len(message) == 2 and not entry.pluralizable:
            wrong.append(f"{message[0]!r}: used with a plural, translated without")
    assert missing == [], f"messages without a Vietnamese translation in {CATALOGUE.name}: {missing}"
    assert wrong == []
    # written with diacritics (a few short ones legitimately have none: "Lọc" has, "Email" would not)
    plain = [m.id for m in catalogue if m.id and not VIETNAMESE.search(str(m.string)) and len(str(m.string)) > 12]
    assert plain == [], f"translations without any Vietnamese diacritic: {plain}"


def test_the_catalogue_is_in_step_with_the_pages() -> None:
    """No stale entry: every message of alerts.po is used by the queue."""
    with CATALOGUE.open("rb") as handle:
        catalogue = read_po(handle, locale="vi_VN")
    used = {m[0] for m in used_messages()}
    ids = [m.id[0] if isinstance(m.id, tuple) else m.id for m in catalogue if m.id]
    stale = [i for i in ids if i not in used]
    assert stale == []


def test_the_queue_page_speaks_the_users_language(tmp_path: Path) -> None:
    from tests.api_fixtures import PASSWORD, SHELL, make_root
    from tests.test_console_pages import TestClient, create_app

    root = make_root(tmp_path)
    root.identity.users.add(SHELL, "minh", ["analyst"], password=PASSWORD, must_change_password=False)
    client = TestClient(create_app(root))
    client.post("/login", data={"name": "minh", "password": PASSWORD, "next": "/alerts"})
    page = client.get("/alerts").text
    assert "Hàng đợi cảnh báo" in page and "Chọn tất cả 0 cảnh báo khớp" in page and "Phím tắt" in page
    client.get("/lang/en?next=/alerts")
    english = client.get("/alerts").text
    assert "Alert queue" in english and "Select all 0 matching alerts" in english and "Keyboard" in english
