"""The event search of the console (``/events``) without a browser: filters kept in the URL (the
API's ``filter=FIELD:OP:VALUE``), free text ignoring case and diacritics, the histogram and top
values, keyset pages, one event with its neighbours, and exports -- scoped to the user's
agencies, audited under the user's name, with spreadsheet formulas neutralised. (The same data
as tests/test_console_alert_detail.py: auth.log of agency A, recent events of A and B.)"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from tests.scope_helpers import A, B
from tests.test_console_alert_detail import Seeded, login, seed


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    data = seed(tmp_path_factory.mktemp("console-events"))
    yield data
    data.root.close()


@pytest.fixture(scope="module")
def analyst(seeded: Seeded) -> TestClient:
    return login(seeded.root, "an", ["analyst"], A)


def event_ids(html: str) -> list[str]:
    """The events listed in the result table, in order."""
    table = html.split('<table class="data events">', 1)
    return re.findall(r'<td class="nowrap"><a href="/events/([^"]+)">', table[1]) if len(table) == 2 else []


def total(html: str) -> str:
    found = re.search(r'<h2 id="results-h">([^<]+)</h2>', html)
    assert found, "no result heading"
    return found.group(1)


def test_the_default_search_is_the_last_day_and_says_where_older_events_are(seeded: Seeded,
                                                                          analyst: TestClient) -> None:
    html = analyst.get("/events").text
    assert set(event_ids(html)) == set(seeded.extra.values())  # auth.log is months old; B's event is not mine
    assert total(html) == "3 sự kiện"
    assert 'value="24h"' in html
    assert 'href="/events/export?format=csv"' in html  # the export of the same search (the last day)
    exported = analyst.get("/events/export?format=json")
    assert sorted(e["_id"] for e in exported.json()) == sorted(seeded.extra.values())
    empty = analyst.get("/events", params={"text": "Failed password"}).text
    assert "Không có sự kiện nào khớp." in empty and "Tìm trên toàn bộ thời gian" in empty
    everything = analyst.get("/events", params={"since": "", "text": "Failed password"}).text
    assert len(event_ids(everything)) == 50 and "sự kiện" in total(everything)


def test_free_text_ignores_case_and_diacritics(seeded: Seeded, analyst: TestClient) -> None:
    for text in ("dang nhap", "ĐĂNG NHẬP THẤT", "duc", "Dăng nhâp"):
        assert event_ids(analyst.get("/events", params={"text": text}).text) == ["ev-a-vi"], text


def test_filters_live_in_the_url_and_the_form_rows_become_filters(seeded: Seeded, analyst: TestClient) -> None:
    answer = analyst.get("/events", params=[("ff", "user.name"), ("fo", "eq"), ("fv", "ADMIN"), ("ff", ""),
                                            ("fo", "eq"), ("fv", ""), ("text", "accepted"), ("since", "2h")],
                         follow_redirects=False)
    assert answer.status_code == 303
    target = urlsplit(answer.headers["location"])
    assert target.path == "/events"
    assert parse_qs(target.query) == {"filter": ["user.name:eq:ADMIN"], "text": ["accepted"], "since": ["2h"]}
    html = analyst.get(answer.headers["location"]).text
    assert event_ids(html) == ["ev-a-recent"]
    assert "<code>user.name:eq:ADMIN</code>" in html  # the filter is shown, with a link removing it
    cidr = analyst.get("/events", params={"filter": "source.ip:cidr:10.1.0.0/16"}).text
    assert set(event_ids(cidr)) == {"ev-a-recent", "ev-a-formula"}
    bad = analyst.get("/events", params={"filter": "source.ip:cidr:not-a-network"})
    assert bad.status_code == 400 and "Tìm kiếm không hợp lệ" in bad.text and "not an IP network" in bad.text
    assert analyst.get("/events", params={"since": "next tuesday"}).status_code == 400


def test_histogram_and_top_values_count_the_matching_events(seeded: Seeded, analyst: TestClient) -> None:
    html = analyst.get("/events", params={"since": "", "filter": "event.dataset:eq:linux.sshd", "top": "event.action"}).text
    bars = re.findall(r'<rect x="[^"]+" y="[^"]+" width="[^"]+" height="[^"]+"><title>[^<]*: ([\d.]+)</title>', html)
    shown = int(total(html).split()[0].replace(".", ""))
    assert bars and sum(int(b.replace(".", "")) for b in bars) == shown
    top = re.findall(r'<td class="clip"><a href="([^"]+)" title="Chỉ giá trị này">([^<]+)</a></td>\s*'
                     r'<td class="num">([\d.]+)</td>', html)
    assert [name for _, name, _ in top][:1] == ["ssh_login"]
    narrowed = analyst.get(top[0][0].replace("&amp;", "&")).text
    assert int(total(narrowed).split()[0].replace(".", "")) == int(top[0][2].replace(".", ""))


def test_pages_follow_the_store_cursor_without_repeating(seeded: Seeded, analyst: TestClient) -> None:
    seen: list[str] = []
    url = "/events?since=&filter=event.dataset:eq:linux.sudo"
    while url:
        html = analyst.get(url).text
        seen += event_ids(html)
        found = re.search(r'<a class="button" href="([^"]+)" rel="next">', html)
        url = found.group(1).replace("&amp;", "&") if found else ""
    assert len(seen) == len(set(seen)) == int(total(html).split()[0].replace(".", ""))


def test_one_event_with_its_raw_text_and_its_neighbours(seeded: Seeded, analyst: TestClient) -> None:
    page = analyst.get("/events", params={"since": "", "text": "auditctl -D"}).text
    found = event_ids(page)
    assert len(found) == 1
    html = analyst.get(f"/events/{found[0]}").text
    assert "COMMAND=/sbin/auditctl -D</pre>" in html
    rows = re.findall(r'<tr( class="current" aria-current="true")?>\s*<td class="nowrap">', html)
    current = [i for i, (mark,) in enumerate([(r,) for r in rows]) if mark]
    assert len(current) == 1 and 0 < current[0] < len(rows) - 1  # events before and after it, on its host
    assert "host.name:eq:ip-10-77-20-248" in html


def test_another_agency_s_events_are_never_listed_counted_or_exported(seeded: Seeded, analyst: TestClient) -> None:
    html = analyst.get("/events", params={"text": "secret", "top": "organization.id"}).text
    assert event_ids(html) == [] and "host-secret-b" not in html
    top = analyst.get("/events", params={"top": "organization.id"}).text
    assert B not in re.findall(r'title="Chỉ giá trị này">([^<]+)<', top)
    narrowed = analyst.get("/events", params={"agency": B}).text
    assert event_ids(narrowed) == []
    exported = analyst.get("/events/export", params={"format": "json", "since": ""})
    assert exported.status_code == 200
    assert all(e["organization.id"] == A for e in json.loads(exported.text))
    province = login(seeded.root, "tinh", ["analyst"])
    assert "ev-b-1" in event_ids(province.get("/events", params={"text": "secret"}).text)


def test_export_is_audited_under_the_user_and_neutralises_formulas(seeded: Seeded, analyst: TestClient) -> None:
    before = {r.seq for r in seeded.root.audit.records()}
    answer = analyst.get("/events/export", params={"format": "csv", "filter": "source.ip:eq:10.1.2.3"})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in answer.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert {r["_id"] for r in rows} == {"ev-a-formula", "ev-a-recent"}
    formula = next(r for r in rows if r["_id"] == "ev-a-formula")
    assert formula["message"].startswith("'=HYPERLINK(") and formula["user.name"].startswith("'+cmd")
    assert formula["host.name"].startswith("'-2+3") and formula["event.action"] == "'@SUM(A1:A9)"
    assert next(r for r in rows if r["_id"] == "ev-a-recent")["message"].startswith("Accepted")  # others untouched
    records = [r for r in seeded.root.audit.records() if r.seq not in before]
    exports = [r for r in records if r.action == "export.events"]
    assert len(exports) == 1 and exports[0].actor.name == "an"
    assert exports[0].details["filters"] == ["source.ip:eq:10.1.2.3"] and exports[0].details["rows"] == 2
    page = analyst.get("/events", params={"filter": "source.ip:eq:10.1.2.3"}).text
    assert "/events/export?filter=source.ip%3Aeq%3A10.1.2.3&amp;format=csv" in page


def test_export_needs_the_export_permission(seeded: Seeded) -> None:
    reader = login(seeded.root, "doc", ["reporter"], A)
    assert reader.get("/events").status_code == 200
    assert "/events/export" not in reader.get("/events").text
    assert reader.get("/events/export", params={"format": "csv"}).status_code == 403
