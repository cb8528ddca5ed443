"""The event search, event and alert pages of the console on both stores (SQLite and the real
OpenSearch): free text ignores case and diacritics (``dang nhap`` finds ``Đăng nhập``), the
histogram and top values count what the page lists, neighbours are found, the export is the
user's agencies only, and another agency's alert and event are not found."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from soc.app import App
from soc.model import iso
from soc.store.base import EventQuery
from soc.store.search_mappings import FOLDING_NORMALIZER, events_template, unfolded
from tests.api_fixtures import make_root
from tests.scope_helpers import STORE_KINDS, A, B, close_kind, open_kind
from tests.test_console_alert_detail import event, login
from tests.test_console_events import event_ids, total

MESSAGES = {"ev-1": "Đăng nhập thất bại cho người dùng Đức", "ev-2": "ĐĂNG NHẬP thành công", "ev-3": "dang nhap OK (ascii)",
            "ev-4": "Failed password for root", "ev-5": "Accepted password for đức"}


@pytest.fixture(scope="module", params=STORE_KINDS)
def root(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    folder = tmp_path_factory.mktemp("console-stores")
    store = open_kind(request.param, request, folder)
    app = make_root(folder, store=store)
    now = app.clock()
    events = [event(eid, A, 50 - i * 5, now, host="web-01", message=m, **{"event.original": f"<38>app: {m}"})
              for i, (eid, m) in enumerate(MESSAGES.items())]
    events.append(event("ev-b", B, 12, now, host="web-01", message="Đăng nhập của cơ quan B"))
    assert not store.write_events(events).rejected
    rule = next(d.info for d in app.rules.detections.values() if d.kind == "event" and d.output)
    for agency, event_id in ((A, "ev-1"), (B, "ev-b")):
        body = {"id": f"alert-{agency}", "kind": "event", "status": "new", "agency": agency,
                "rule": {k: v for k, v in rule.as_dict().items() if k != "path"}, "event_ids": [event_id],
                "event_count": 1, "first_seen": iso(now - timedelta(minutes=50)), "group": {}, "group_key": "",
                "last_seen": iso(now - timedelta(minutes=50)), "detected_at": iso(now), "@timestamp": iso(now),
                "entities": {"host.name": ["web-01"]}}
        assert store.create("alerts", body["id"], body)
    store.refresh()
    yield app
    close_kind(store)


@pytest.fixture(scope="module")
def client(root: App) -> TestClient:
    return login(root, "an", ["analyst"], A)


@pytest.mark.parametrize("text", ["dang nhap", "DANG NHAP", "Đăng Nhập", "đang nhap"])
def test_free_text_ignores_case_and_diacritics_on_both_stores(client: TestClient, text: str) -> None:
    assert sorted(event_ids(client.get("/events", params={"text": text}).text)) == ["ev-1", "ev-2", "ev-3"]


def test_diacritics_in_the_search_still_find_plain_text(client: TestClient) -> None:
    assert sorted(event_ids(client.get("/events", params={"text": "ĐỨC"}).text)) == ["ev-1", "ev-5"]
    assert event_ids(client.get("/events", params={"text": "thành"}).text) == ["ev-2"]


def test_histogram_top_values_and_neighbours_on_both_stores(client: TestClient) -> None:
    html = client.get("/events", params={"since": "2h", "top": "host.name"}).text
    assert total(html) == "5 sự kiện"
    bars = re.findall(r"<title>[^<]*: (\d+)</title></rect>", html)
    assert sum(int(b) for b in bars) == 5
    assert re.search(r'title="Chỉ giá trị này">web-01</a></td>\s*<td class="num">5</td>', html)
    page = client.get("/events/ev-3").text
    listed = re.findall(r'<a href="/events/(ev-[^"]+)">', page.split('class="data compact neighbour-table"')[1])
    assert listed == ["ev-1", "ev-2", "ev-4", "ev-5"]  # the others of the host, in time order; never B's


def test_export_and_pages_keep_to_the_agency_on_both_stores(root: App, client: TestClient) -> None:
    exported = json.loads(client.get("/events/export", params={"format": "json"}).text)
    assert sorted(e["_id"] for e in exported) == sorted(MESSAGES)
    assert client.get("/events/ev-b").status_code == 404
    assert client.get("/alerts/alert-so-b").status_code == 404
    mine = client.get("/alerts/alert-xa-a")
    assert mine.status_code == 200 and "Đăng nhập thất bại" in mine.text and "cơ quan B" not in mine.text


def test_the_store_finds_folded_text_and_keeps_the_event_as_written(root: App) -> None:
    page = root.base_store.search_events(EventQuery(text="nguoi dung duc", size=10))
    assert [e["_id"] for e in page.events] == ["ev-1"]
    assert page.events[0]["message"] == MESSAGES["ev-1"]


def test_existing_event_indices_are_not_given_the_folded_copy() -> None:
    """An index made before the folded copy existed lacks its normalizer: the mapping update sent
    to existing indices leaves the sub-field out (new day indices get it from the template)."""
    template = events_template("t")
    props = template["template"]["mappings"]["properties"]
    assert props["message"]["fields"]["folded"]["normalizer"] == FOLDING_NORMALIZER
    assert FOLDING_NORMALIZER in template["template"]["settings"]["index"]["analysis"]["normalizer"]
    update = unfolded(props)
    assert "fields" not in update["message"] and "fields" not in update["event"]["properties"]["original"]
    assert update["user"] == props["user"] and "fields" in props["message"]  # the template is left whole
