"""The TAXII 2.1 client side against a small real HTTP server started by the test, which behaves
like the servers clients break on: ``added_after`` treated inclusively, 1,200 objects added in
one instant, and (in one mode) paging by ``added_after`` without ``next``.

The poll must take every object once, keep a cursor that the next poll resumes from, skip what
an inclusive server sends again, never loop, and send the feed's bearer token.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from soc.config_intel import FeedSettings
from soc.intel import FeedPoller, IndicatorBook
from soc.intel.taxii_client import poll_collection
from soc.store.sqlite import SQLiteStore

TOKEN = "feed-token-123"
T1 = "2025-12-10T08:00:00.000000Z"
T2 = "2025-12-10T09:30:00.000000Z"
MEDIA = "application/taxii+json;version=2.1"


def indicator(n: int, modified: str = "2025-12-01T00:00:00.000Z") -> dict[str, Any]:
    return {"type": "indicator", "spec_version": "2.1", "id": f"indicator--00000000-0000-4000-8000-{n:012d}",
            "created": "2025-12-01T00:00:00.000Z", "modified": modified, "pattern_type": "stix",
            "pattern": f"[ipv4-addr:value = '10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}']",
            "valid_from": "2025-12-01T00:00:00Z", "confidence": 70,
            "object_marking_refs": ["marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"]}


@dataclass
class Collection:
    """Objects with their date_added; ``inclusive``: added_after compares with >=; ``paged``:
    gives ``next`` tokens (else only more=true, paging left to added_after)."""

    entries: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    inclusive: bool = True
    paged: bool = True
    requests: list[dict[str, list[str]]] = field(default_factory=list)
    unauthorized: int = 0


def serve(collection: Collection) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: Any) -> None:
            pass

        def answer(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", MEDIA)
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 -- http.server's name
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                collection.unauthorized += 1
                self.answer(401, {"title": "unauthorized"})
                return
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            if parts.path == "/api1/collections/c1/":
                self.answer(200, {"id": "c1", "title": "national indicators", "can_read": True, "can_write": False,
                                  "media_types": [MEDIA]})
                return
            if parts.path != "/api1/collections/c1/objects/":
                self.answer(404, {"title": "not found"})
                return
            collection.requests.append(query)
            after = query.get("added_after", [None])[0]
            limit = int(query.get("limit", ["100"])[0])
            offset = int(query.get("next", ["0"])[0]) if collection.paged else 0
            chosen = [(d, o) for d, o in collection.entries
                      if after is None or (d >= after if collection.inclusive else d > after)]
            page = chosen[offset:offset + limit]
            more = offset + limit < len(chosen)
            body: dict[str, Any] = {"more": more, "objects": [o for _, o in page]}
            if more and collection.paged:
                body["next"] = str(offset + limit)
            headers = {"X-TAXII-Date-Added-First": page[0][0], "X-TAXII-Date-Added-Last": page[-1][0]} if page else {}
            self.answer(200, body, headers)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/api1/collections/c1/"


@pytest.fixture
def inclusive() -> Iterator[tuple[Collection, str]]:
    collection = Collection([(T1, indicator(n)) for n in range(1200)])
    server, url = serve(collection)
    yield collection, url
    server.shutdown()
    server.server_close()


def test_poll_takes_many_objects_of_one_instant_once_and_resumes_from_the_cursor(
        inclusive: tuple[Collection, str]) -> None:
    collection, url = inclusive
    first = poll_collection(url, token=TOKEN, page_size=500)
    ids = [o["id"] for o in first.objects]
    assert len(ids) == 1200 and len(set(ids)) == 1200
    assert first.pages == 3 and first.cursor == T1
    assert collection.requests[0].get("added_after") is None
    assert all(r.get("added_after") is None for r in collection.requests[1:3])  # next pages: the same listing

    # the next poll asks from the cursor; the inclusive server sends the 1,200 again: all skipped
    again = poll_collection(url, token=TOKEN, page_size=500, cursor=first.cursor, at_cursor=first.at_cursor)
    assert collection.requests[3]["added_after"] == [T1]
    assert again.objects == [] and again.skipped == 1200 and again.cursor == T1

    # a new version of one indicator and a new indicator, added later: exactly those two
    collection.entries += [(T2, indicator(7, modified="2025-12-10T09:00:00.000Z")), (T2, indicator(5000))]
    later = poll_collection(url, token=TOKEN, page_size=500, cursor=again.cursor, at_cursor=again.at_cursor)
    assert [(o["id"][-4:], o["modified"][:10]) for o in later.objects] == [("0007", "2025-12-10"), ("5000", "2025-12-01")]
    assert later.cursor == T2


def test_a_server_without_next_that_repeats_itself_cannot_make_the_poll_loop() -> None:
    collection = Collection([(T1, indicator(n)) for n in range(1200)], inclusive=True, paged=False)
    server, url = serve(collection)
    try:
        poll = poll_collection(url, token=TOKEN, page_size=500)
    finally:
        server.shutdown()
        server.server_close()
    ids = [o["id"] for o in poll.objects]
    assert len(ids) == len(set(ids)) == 500  # what the server can give by added_after alone, once
    assert poll.pages == 2 and poll.cursor == T1  # the repeated page ended the poll


def test_taxii_feed_polled_into_the_store_with_its_status(inclusive: tuple[Collection, str], tmp_path: Path) -> None:
    collection, url = inclusive
    collection.entries = collection.entries[:30]
    (tmp_path / "token").write_text(TOKEN + "\n")
    store = SQLiteStore(tmp_path / "soc.db")
    try:
        feed = FeedSettings(name="ncsc", kind="taxii", url=url, token_file=tmp_path / "token", page_size=20)
        poller = FeedPoller(store, [feed])
        status = poller.poll("ncsc")
        assert status["last_error"] is None and status["last_taken"] == 30 and status["cursor"] == T1
        book = IndicatorBook(store)
        doc = book.find_one("10.0.0.7")
        assert doc is not None and doc.body["tlp"] == "green" and doc.body["confidence"] == 70
        assert doc.body["feeds"][0]["ref"] == indicator(7)["id"]
        assert poller.poll("ncsc")["last_taken"] == 0  # the same objects again: nothing new
        # without a token the server refuses: the error is in the feed's status, the cursor kept
        poller = FeedPoller(store, [FeedSettings(name="ncsc", kind="taxii", url=url)])
        status = poller.poll("ncsc")
        assert "401" in status["last_error"] and status["consecutive_errors"] == 1 and status["cursor"] == T1
        assert collection.unauthorized >= 1
        assert [s["name"] for s in poller.statuses()] == ["ncsc"]
    finally:
        store.close()
