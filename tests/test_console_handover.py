"""The shift handover pages (/handover): the outgoing shift's summary in the analyst's scope, a
draft note, the sign-off, the signed record with its integrity, the printable summary, past
handovers -- and nothing of another agency's handovers, also by typing their URLs."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from soc.access import Principal
from soc.app import App
from soc.handover import HANDOVERS
from tests.api_seed_helpers import A, Api, B, api_fixture
from tests.test_console_admin import Console

HOSTILE = "<script>alert(1)</script>\"><img src=x onerror=alert(1)>"


@pytest.fixture(params=["sqlite"])
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    yield from api_fixture(request, tmp_path_factory.mktemp("console-handover"))


def _window(html: str) -> dict[str, str]:
    return {name: re.search(rf'name="{name}" value="([^"]*)"', html).group(1)  # type: ignore[union-attr]
            for name in ("start", "end")}


def _figure(html: str, name: str) -> str:
    found = re.search(rf'id="fig-{name}">([^<]+)<', html)
    assert found, name
    return found.group(1)


def test_an_analyst_writes_a_note_saves_a_draft_signs_off_and_prints(api: Api) -> None:
    app: App = api.app
    app.acting_as(Principal("soc", frozenset({"analyst"}))).alerts.acknowledge(
        Principal("soc", frozenset({"analyst"})), api.seeded["alerts"][B][0])
    nam = Console(app, "nam", ["analyst"])
    page = nam.get("/handover")
    assert page.status_code == 200 and "Giao ca" in page.text and "Những gì ca trực ghi nhận" in page.text
    assert _figure(page.text, "detected") == "14" and _figure(page.text, "ack") == "1"
    assert "Incident of A" in page.text and "Incident of B" in page.text
    saved = nam.post("/handover", {**_window(page.text), "note": f"Theo dõi {HOSTILE}", "incoming": "lan",
                                   "action": "save"}, follow_redirects=False)
    assert saved.status_code == 303 and "done=saved" in saved.headers["location"]
    draft_page = nam.get(saved.headers["location"]).text
    assert "Đã lưu bản nháp" in draft_page and "&lt;script&gt;" in draft_page and "<script>alert" not in draft_page
    draft_id = re.search(r'name="handover_id" value="([^"]+)"', draft_page).group(1)  # type: ignore[union-attr]
    signed = nam.post("/handover", {**_window(draft_page), "note": f"Theo dõi {HOSTILE}\nGọi anh Bình",
                                    "incoming": "lan", "action": "sign", "handover_id": draft_id},
                      follow_redirects=False)
    assert signed.status_code == 303 and signed.headers["location"] == f"/handover/{draft_id}?done=signed"
    record = nam.get(signed.headers["location"]).text
    assert "Đã ký giao ca" in record and "biên bản giữ nguyên như khi ký" in record and "Gọi anh Bình" in record
    assert "<img src=x" not in record
    printed = nam.get(f"/handover/{draft_id}/print")
    assert printed.status_code == 200 and "BIÊN BẢN GIAO CA" in printed.text and 'href="/static/print.css"' in printed.text
    assert "<script" not in printed.text.replace('<script src="/static/console.js" defer></script>', "")
    again = nam.post("/handover", {**_window(draft_page), "note": "sửa", "action": "save", "handover_id": draft_id})
    assert again.status_code == 400 and "never changed" in again.text
    assert app.base_store.get(HANDOVERS, draft_id).body["note"].startswith("Theo dõi")  # type: ignore[union-attr]
    listing = nam.get("/handover").text
    assert f'href="/handover/{draft_id}"' in listing and "tiếp nối biên bản giao ca của nam" in listing
    app.base_store.refresh()
    actions = [(r.actor.label, r.action) for r in app.audit.page(target=f"{HANDOVERS}/{draft_id}").records]
    assert ("nam", "handovers.create") in actions and ("nam", "handovers.update") in actions


def test_an_agency_analyst_sees_only_their_agency_and_not_others_handovers(api: Api) -> None:
    app: App = api.app
    bob = Console(app, "bob2", ["analyst"], agency=B)
    page = bob.get("/handover").text
    assert _figure(page, "detected") == "5" and "Incident of B" in page and "Incident of A" not in page
    bob_id = bob.post("/handover", {**_window(page), "note": "ca của Sở B", "action": "sign"},
                      follow_redirects=False).headers["location"].split("/")[2].split("?")[0]
    ana = Console(app, "ana2", ["analyst"], agency=A)
    for path in (f"/handover/{bob_id}", f"/handover/{bob_id}/print"):
        answer = ana.get(path)
        assert answer.status_code == 404 and "ca của Sở B" not in answer.text, path
    assert bob_id not in ana.get("/handover").text
    forged = ana.post("/handover", {**_window(page), "note": "ghi đè", "action": "save", "handover_id": bob_id})
    assert forged.status_code == 404
    assert app.base_store.get(HANDOVERS, bob_id).body["note"] == "ca của Sở B"  # type: ignore[union-attr]


def test_who_may_see_and_sign(api: Api) -> None:
    app: App = api.app
    reader = Console(app, "doc", ["auditor"])
    page = reader.get("/handover")
    assert page.status_code == 200 and "Vai trò của bạn không cho phép ký giao ca" in page.text
    refused = reader.post("/handover", {**_window(page.text), "note": "x", "action": "sign"})
    assert refused.status_code == 403
    nobody: dict[str, Any] = {"start": "", "end": ""}
    assert Console(app, "nv", ["analyst"]).post("/handover", {**nobody, "note": "x"}).status_code in (400, 422)
    wrong = Console(app, "nv2", ["analyst"]).get("/handover?since=10d")
    assert wrong.status_code == 400 and "at most 7 days" in wrong.text
