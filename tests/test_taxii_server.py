"""The TAXII 2.1 server of ``soc serve`` (issue #13, item 4), driven as the national center would:
the real application served by uvicorn on a loopback port and the real ``taxii2-client``.

Discovery and collections; 5,000 objects added in one instant paged through with ``as_pages``
without loss or duplicates (SQLite and the real OpenSearch), a retried page giving the same
objects, ``limit`` bounded by the server; POST and its status; 401 without a token and 403 with a
token of another collection, as TAXII error messages; exclusive ``added_after``; the match
filters, versions, manifest and an object by id; media types (406, 415)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests
from taxii2client.common import TokenAuth
from taxii2client.v21 import Collection, Server, Status, as_pages

from tests.scope_helpers import STORE_KINDS, A, close_kind, open_kind
from tests.taxii_server_helpers import (
    NATIONAL,
    PEER,
    BearerAuth,
    Served,
    envelope,
    indicator,
    served,
)

TAXII = "application/taxii+json;version=2.1"


@pytest.fixture
def srv(tmp_path: Path) -> Any:
    with served(tmp_path) as s:
        yield s


def taxii_error(answer: requests.Response, status: int) -> dict[str, Any]:
    """The TAXII error message of an answer (never a problem document)."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == TAXII
    body = answer.json()
    assert body["http_status"] == str(status) and body["title"] and "type" not in body
    return body


def test_discovery_collections_and_who_may_read(srv: Served) -> None:
    both = srv.token(f"taxii:{NATIONAL}:read", f"taxii:{NATIONAL}:write", f"taxii:{PEER}:read")
    server = Server(srv.taxii, auth=TokenAuth(both))  # taxii2-client's own token scheme
    assert server.title == "SOC TAXII 2.1" and server.default.url == srv.api_root
    [root] = server.api_roots
    assert root.versions == [TAXII] and root.max_content_length == 10 * 1024 * 1024
    shown = {c.id: c for c in root.collections}
    assert set(shown) == {NATIONAL, PEER}
    assert shown[NATIONAL].can_read and shown[NATIONAL].can_write and shown[NATIONAL].alias == "national"
    assert shown[PEER].can_read and not shown[PEER].can_write  # the collection takes no writes

    peer_only = srv.token(f"taxii:{PEER}:read")
    listed = requests.get(srv.api_root + "collections/", auth=BearerAuth(peer_only), timeout=10).json()
    assert [c["id"] for c in listed["collections"]] == [PEER]
    # a token for another collection: 403; no token or a wrong one: 401 with WWW-Authenticate
    body = taxii_error(requests.get(srv.collection_url(NATIONAL) + "objects/", auth=BearerAuth(peer_only),
                                    timeout=10), 403)
    assert f"taxii:{NATIONAL}:read" in body["description"]
    for auth in (None, BearerAuth("soc_000000000000_" + "x" * 43)):
        answer = requests.get(srv.collection_url(NATIONAL) + "objects/", auth=auth, timeout=10)
        taxii_error(answer, 401)
        assert answer.headers["www-authenticate"].startswith("Bearer")
    taxii_error(requests.get(srv.taxii, timeout=10), 401)
    with pytest.raises(requests.HTTPError) as refused:
        Collection(srv.collection_url(NATIONAL), auth=TokenAuth(peer_only)).get_objects()
    assert refused.value.response.status_code == 403
    # writing needs the write scope
    reader = srv.token(f"taxii:{NATIONAL}:read")
    taxii_error(requests.post(srv.collection_url(NATIONAL) + "objects/", auth=BearerAuth(reader),
                              data=json.dumps(envelope([indicator(1)])),
                              headers={"Content-Type": TAXII, "Accept": TAXII}, timeout=10), 403)
    taxii_error(requests.get(srv.collection_url("no-such") + "objects/", auth=BearerAuth(both), timeout=10), 404)
    # a user limited to some agencies never reads a collection (province-wide content), whatever its token says
    local = srv.token(f"taxii:{NATIONAL}:read", agency=A)
    assert "province-wide" in taxii_error(requests.get(srv.collection_url(NATIONAL) + "objects/",
                                                       auth=BearerAuth(local), timeout=10), 403)["description"]
    assert requests.get(srv.api_root + "collections/", auth=BearerAuth(local), timeout=10).json() == {}
    assert requests.get(srv.collection_url("peer-green"), auth=BearerAuth(both), timeout=10).json()["id"] == PEER


def _page_through(collection: Collection, per_request: int, fetch: str = "get_objects") -> list[dict[str, Any]]:
    pages = list(as_pages(getattr(collection, fetch), per_request=per_request))
    for page in pages[:-1]:
        assert page["more"] is True and page["next"]
    assert pages[-1]["more"] is False and "next" not in pages[-1]
    return [item for page in pages for item in page.get("objects", [])]


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_five_thousand_objects_of_one_instant_page_without_loss_or_duplicates(
        kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    store = open_kind(kind, request, tmp_path)
    try:
        with served(tmp_path, store=store) as srv:
            token = srv.token(f"taxii:{NATIONAL}:read", f"taxii:{NATIONAL}:write")
            collection = Collection(srv.collection_url(NATIONAL), auth=BearerAuth(token))
            objects = [indicator(n) for n in range(5000)]
            status = collection.add_objects(envelope(objects), wait_for_completion=False)
            assert status.status == "complete" and status.success_count == 5000 and status.failure_count == 0

            got = _page_through(collection, 700)
            ids = [o["id"] for o in got]
            assert len(ids) == 5000 and set(ids) == {o["id"] for o in objects}  # no loss, no duplicates
            assert ids == [o["id"] for o in objects]  # (date_added, seq): the order they were posted in

            # the server bounds limit (max_limit 1000): as_pages follows the page size it is given
            assert len(collection.get_objects(limit=5000)["objects"]) == 1000
            assert len(collection.get_objects()["objects"]) == 100  # default_limit
            assert len(_page_through(collection, 5000)) == 5000
            manifest = _page_through(collection, 900, "get_manifest")
            assert [m["id"] for m in manifest] == ids and len({m["date_added"] for m in manifest}) == 1

            # a retried page is the same page
            first = collection.get_objects(limit=700)
            second = collection.get_objects(limit=700, next=first["next"])
            again = collection.get_objects(limit=700, next=first["next"])
            assert [o["id"] for o in second["objects"]] == [o["id"] for o in again["objects"]] == ids[700:1400]
            assert second["next"] == again["next"]
            # objects added while a listing runs do not shift it; they come with added_after
            added = collection.add_objects(envelope([indicator(9000)]), wait_for_completion=False)
            assert added.success_count == 1
            assert [o["id"] for o in collection.get_objects(limit=700, next=first["next"])["objects"]] == ids[700:1400]
            tail = requests.get(srv.collection_url(NATIONAL) + "objects/", auth=BearerAuth(token), timeout=30,
                                params={"added_after": manifest[-1]["date_added"]}).json()
            assert [o["id"] for o in tail["objects"]] == [indicator(9000)["id"]]
    finally:
        close_kind(store)


def _raw(srv: Served, token: str, path: str, **params: Any) -> requests.Response:
    return requests.get(srv.collection_url(NATIONAL) + path, params=params, auth=BearerAuth(token),
                        headers={"Accept": TAXII}, timeout=10)


def test_post_status_added_after_and_filters(srv: Served) -> None:
    token = srv.token(f"taxii:{NATIONAL}:read", f"taxii:{NATIONAL}:write", name="center")
    collection = Collection(srv.collection_url(NATIONAL), auth=BearerAuth(token))
    first = [indicator(1), indicator(2), {"type": "malware", "spec_version": "2.1",
                                          "id": "malware--0c7b5b88-8ff7-4a4d-aa9d-feb398cd0061",
                                          "created": "2026-11-01T00:00:00.000Z", "modified": "2026-11-01T00:00:00.000Z",
                                          "name": "<script>alert(1)</script>", "is_family": False}]
    bad = [{"type": "indicator", "id": "not-an-id"}, {"type": "indicator", "spec_version": "2.0",
                                                       "id": "indicator--0c7b5b88-8ff7-4a4d-aa9d-feb398cd0062"}]
    status = collection.add_objects(envelope(first + bad), wait_for_completion=False)
    assert (status.status, status.total_count, status.success_count, status.failure_count) == ("complete", 5, 3, 2)
    assert {f["message"] for f in status.failures} >= {"id is missing or is not '<type>--<UUID>'"}
    followed = Status(f"{srv.api_root}status/{status.id}/", auth=BearerAuth(token))
    assert followed.status == "complete" and followed.success_count == 3
    assert {s["id"] for s in followed.successes} == {o["id"] for o in first}
    stranger = srv.token(f"taxii:{PEER}:read")
    taxii_error(requests.get(f"{srv.api_root}status/{status.id}/", auth=BearerAuth(stranger), timeout=10), 404)
    # every POST is audited under the token's user
    srv.root.base_store.refresh()
    [record] = [r for r in srv.root.audit.records() if r.action == "taxii.objects.add"]
    assert record.actor.name == "center" and record.details["added"] == 3 and record.details["refused"] == 2

    a = _raw(srv, token, "objects/")
    a_last = a.headers["X-TAXII-Date-Added-Last"]
    assert a.headers["X-TAXII-Date-Added-First"] == a_last and len(a.json()["objects"]) == 3
    newer = indicator(1, modified="2026-12-05T00:00:00.000Z")  # a second version of indicator 1
    collection.add_objects(envelope([newer, indicator(3)]), wait_for_completion=False)
    b = _raw(srv, token, "objects/", added_after=a_last)  # exclusive: only what came after
    assert [o["id"] for o in b.json()["objects"]] == [newer["id"], indicator(3)["id"]]
    assert b.headers["X-TAXII-Date-Added-First"] > a_last
    assert "objects" not in _raw(srv, token, "objects/", added_after=b.headers["X-TAXII-Date-Added-Last"]).json()

    def ids(**params: Any) -> list[str]:
        return [o["id"] for o in _raw(srv, token, "objects/", **params).json().get("objects", [])]

    assert ids(**{"match[type]": "malware"}) == [first[2]["id"]]
    assert ids(**{"match[id]": f"{indicator(2)['id']},{first[2]['id']}"}) == [indicator(2)["id"], first[2]["id"]]
    assert ids(**{"match[spec_version]": "2.0"}) == []
    # versions: last by default, first, all, a timestamp
    one = indicator(1)["id"]
    versions = [o["modified"] for o in _raw(srv, token, "objects/", **{"match[id]": one, "match[version]": "all"})
                .json()["objects"]]
    assert versions == ["2026-12-01T00:00:00.000Z", "2026-12-05T00:00:00.000Z"]
    assert [o["modified"] for o in _raw(srv, token, f"objects/{one}/").json()["objects"]] == versions[1:]
    assert [o["modified"] for o in _raw(srv, token, f"objects/{one}/", **{"match[version]": "first"})
            .json()["objects"]] == versions[:1]
    assert len(_raw(srv, token, f"objects/{one}/", **{"match[version]": "2026-12-01T00:00:00Z"})
               .json()["objects"]) == 1
    assert _raw(srv, token, f"objects/{one}/versions/").json()["versions"] == versions
    manifest = _raw(srv, token, "manifest/", **{"match[id]": one, "match[version]": "all"}).json()["objects"]
    assert [m["version"] for m in manifest] == versions
    assert manifest[0]["media_type"] == "application/stix+json;version=2.1"
    taxii_error(_raw(srv, token, "objects/indicator--00000000-0000-4000-8000-000000000000/"), 404)
    assert "first" in taxii_error(_raw(srv, token, "objects/", **{"match[version]": "lately"}), 400)["description"]
    taxii_error(_raw(srv, token, "objects/", added_after="yesterday"), 400)
    taxii_error(_raw(srv, token, "objects/", next="t1.garbage"), 400)
    # a posted object comes back as it was posted: text from outside is data
    assert collection.get_object(first[2]["id"])["objects"][0]["name"] == "<script>alert(1)</script>"
    # posting the same bundle again adds nothing new
    newest = _raw(srv, token, "objects/", **{"match[version]": "all"}).headers["X-TAXII-Date-Added-Last"]
    again = collection.add_objects(envelope(first), wait_for_completion=False)
    assert again.success_count == 3
    assert len(ids(**{"match[version]": "all"})) == 5
    assert _raw(srv, token, "objects/", **{"match[version]": "all"}).headers["X-TAXII-Date-Added-Last"] == newest


def test_media_types_and_errors_are_taxii(srv: Served) -> None:
    token = srv.token(f"taxii:{NATIONAL}:read", f"taxii:{NATIONAL}:write")
    auth = BearerAuth(token)
    url = srv.collection_url(NATIONAL) + "objects/"
    taxii_error(requests.get(url, auth=auth, headers={"Accept": "text/html"}, timeout=10), 406)
    taxii_error(requests.get(url, auth=auth, headers={"Accept": "application/taxii+json;version=2.0"},
                             timeout=10), 406)
    stix = requests.get(url, auth=auth, headers={"Accept": "application/stix+json;version=2.1"}, timeout=10)
    assert stix.status_code == 200 and stix.headers["content-type"] == "application/stix+json;version=2.1"
    assert requests.get(url, auth=auth, headers={"Accept": "*/*"}, timeout=10).headers["content-type"] == TAXII
    body = json.dumps(envelope([indicator(1)]))
    taxii_error(requests.post(url, auth=auth, data=body, headers={"Content-Type": "application/json"},
                              timeout=10), 415)
    taxii_error(requests.post(url, auth=auth, data="{not json", headers={"Content-Type": TAXII}, timeout=10), 400)
    taxii_error(requests.post(url, auth=auth, data="[]", headers={"Content-Type": TAXII}, timeout=10), 400)
    # errors the application would answer with problem documents are TAXII error messages here
    taxii_error(requests.get(srv.api_root + "nothing/here/", auth=auth, timeout=10), 404)
    taxii_error(requests.delete(url, auth=auth, timeout=10), 405)
    taxii_error(requests.get(srv.url + "/taxii2/other-root/", auth=auth, timeout=10), 404)
    taxii_error(requests.get(url, auth=auth, params={"limit": "0"}, timeout=10), 400)
    # the API keeps its problem documents
    assert requests.get(srv.url + "/api/v1/alerts", timeout=10).headers["content-type"] == "application/problem+json"


def test_post_larger_than_max_content_length_is_refused(tmp_path: Path) -> None:
    with served(tmp_path, max_content_length=4096) as srv:
        token = srv.token(f"taxii:{NATIONAL}:write")
        big = json.dumps(envelope([indicator(n) for n in range(40)]))
        taxii_error(requests.post(srv.collection_url(NATIONAL) + "objects/", auth=BearerAuth(token), data=big,
                                  headers={"Content-Type": TAXII}, timeout=10), 413)
