"""The search store's least-privilege roles (``soc store role``, :mod:`soc.store.search_roles`):
the printed roles grant something on every index the store's code touches, and only there.

The index names are not copied here: they are recorded from what the store really sends to the
session's OpenSearch while it does each process's work (open and install its templates and
retention policy, write events, read them, read and write documents, purge), and each request is
checked against the role of that process (the index patterns, and coarsely the kind of access).
The patterns also come from the store's own index templates. (The test OpenSearch runs without
the security plugin, so the roles themselves are checked by configuration only.)
"""

from __future__ import annotations

import fnmatch
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import pytest
from typer.testing import CliRunner

from soc.model import iso
from soc.store.base import DocWrite, Window
from soc.store.search import OpenSearchStore
from soc.store.search_client import parse_url
from soc.store.search_roles import PROCESSES, StoreRole, index_patterns, render_role, store_role
from tests.search_helpers import drop, store_url

Request = tuple[str, str, Any]

#: what a request does -> OpenSearch actions / Elasticsearch privileges that allow it (any of)
ALLOWS: dict[str, tuple[set[str], set[str]]] = {
    "add": ({"indices:data/write/index", "indices:data/write/bulk*", "crud", "write"}, {"create_doc", "write"}),
    "create": ({"create_index"}, {"create_index"}),
    "mapping": ({"indices:admin/mapping/put"}, set()),  # Elasticsearch: skipped with a warning (module doc)
    "ism": ({"indices:admin/opensearch/ism/managedindex"}, set()),
    "read": ({"read", "crud"}, {"read"}),
    "pit": ({"indices:data/read/point_in_time/create", "indices:data/read/point_in_time/delete"}, {"read"}),
    "refresh": ({"indices:admin/refresh*"}, {"maintenance"}),
    "write": ({"crud", "write"}, {"write"}),
    "list": ({"indices_monitor"}, {"monitor"}),
    "delete": ({"delete", "indices:admin/delete"}, {"delete", "delete_index"}),
}


def classify(method: str, path: str, body: Any) -> list[tuple[str, str]]:
    """``(index expression, kind)`` pairs a request needs (cluster-level requests: none)."""
    parts = [unquote(p) for p in path.strip("/").split("/")]
    if parts[0] == "_bulk":
        lines = body.decode().splitlines() if isinstance(body, bytes) else str(body).splitlines()
        actions = [json.loads(line) for line in lines[0::2]]  # action, document, action, ...
        return [(a["create"]["_index"], "add" if "-events-" in a["create"]["_index"] else "write") if "create" in a
                else (a["index"]["_index"], "write") for a in actions]
    if parts[0] == "_cat":
        return [(parts[2], "list")]
    if parts[0] == "_plugins" and parts[1] == "_ism" and parts[2] == "add":
        return [(parts[3], "ism")]
    if not parts[0] or parts[0].startswith("_"):  # GET /, templates, ISM policies, closing a point in time
        return []
    index, rest = parts[0], parts[1:]
    if not rest:
        return [(index, {"PUT": "create", "DELETE": "delete"}[method])]
    verb = rest[0]
    kinds = {"_search": "pit" if rest[1:] == ["point_in_time"] else "read", "_count": "read", "_refresh": "refresh",
             "_mapping": "mapping", "_delete_by_query": "delete", "_create": "add" if "-events-" in index else "write",
             "_doc": "read" if method == "GET" else "write"}
    return [(index, kinds[verb])]


def covered(role: StoreRole, index: str, kind: str) -> list[str]:
    """What is missing for ``kind`` on every index of ``index`` (a comma-separated expression)."""
    os_ok, es_ok = ALLOWS[kind]
    missing = []
    for name in index.split(","):
        grants = [g for g in role.grants if any(fnmatch.fnmatchcase(name, p) for p in g.patterns)]
        if not grants:
            missing.append(f"{name}: no grant matches it")
            continue
        if not any(os_ok & set(g.opensearch) for g in grants):
            missing.append(f"{name}: OpenSearch needs one of {sorted(os_ok)} for {kind}")
        if es_ok and not any(es_ok & set(g.elasticsearch) for g in grants):
            missing.append(f"{name}: Elasticsearch needs one of {sorted(es_ok)} for {kind}")
    return missing


class Recorded:
    """Wraps a store's transport and keeps every request it sends."""

    def __init__(self, store: OpenSearchStore) -> None:
        self.requests: list[Request] = []
        inner = store.transport.request

        def request(method: str, path: str, **kwargs: Any) -> Any:
            self.requests.append((method, path, kwargs.get("body")))
            return inner(method, path, **kwargs)

        store.transport.request = request  # type: ignore[method-assign]


def _open(url: str, prefix: str, recorded: list[Recorded]) -> OpenSearchStore:
    store = OpenSearchStore(OpenSearchStore.make_transport(parse_url(url), 30), prefix=prefix, replicas=0)
    recorded.append(Recorded(store))
    store.bootstrap()
    return store


@pytest.fixture(scope="module")
def work(opensearch_url: str) -> Iterator[tuple[str, dict[str, list[Request]]]]:
    """The prefix and the requests of each process's work on it (a fresh prefix), in the order a
    deployment runs them."""
    unique_name = f"t-roles-{uuid.uuid4().hex[:8]}"
    url, recorded, stores = store_url(opensearch_url), [], []
    days = [datetime(2025, 3, 1, 10, tzinfo=UTC), datetime(2025, 3, 2, 10, tzinfo=UTC)]
    events = [{"_id": f"e{i}", "@timestamp": iso(day), "event.dataset": "linux.auth", "message": f"event {i}",
               "event.ingested": iso(day)} for i, day in enumerate(days)]
    out: dict[str, list[Request]] = {}
    try:
        worker = _open(url, unique_name, recorded)  # the first process: installs templates and the policy
        stores.append(worker)
        assert worker.write_events(events).created == 2
        out["worker"] = recorded[-1].requests

        detect = _open(url, unique_name, recorded)
        stores.append(detect)
        detect.refresh()
        assert len(detect.find_matches({"match_all": {}}, None, Window(), [], 10)) == 2
        assert detect.count_events(Window(field="@timestamp"))[""] == 2
        assert [e["_id"] for e in detect.get_events(["e1"])] == ["e1"]
        assert detect.create("alerts", "a1", {"rule": "r", "status": "new"})
        doc = detect.get("alerts", "a1")
        assert doc is not None
        detect.put("alerts", "a1", {"rule": "r", "status": "closed"}, expected_version=doc.version)
        detect.refresh()
        assert [d.id for d in detect.find("alerts", {"status": "closed"})] == ["a1"]
        assert [d.id for d in detect.iter_all("alerts")] == ["a1"]
        assert detect.delete("alerts", "a1")
        assert detect.create_documents("intel_indicators", [("i1", {"value": "x"})]) == [True]  # bulk writes
        assert isinstance(detect.put_documents("intel_indicators", [DocWrite("i1", {"value": "y"})])[0], int)
        out["detect"] = recorded[-1].requests

        service = _open(url, unique_name, recorded)
        stores.append(service)
        assert service.write_events([{**events[0], "_id": "s1"}]).created == 1
        assert service.purge_events(days[1].timestamp()) >= 1  # the whole first day, then part of the second
        out["service"] = out["worker"] + out["detect"] + recorded[-1].requests  # soc run does it all
        yield unique_name, out
    finally:
        for store in stores[1:]:
            store.close()
        if stores:
            drop(stores[0])


pytestmark = pytest.mark.search


@pytest.mark.parametrize("process", list(PROCESSES))
def test_each_role_covers_what_its_process_sends(work: tuple[str, dict[str, list[Request]]], process: str) -> None:
    prefix, requests = work
    role = store_role(process, prefix)
    needed = [(method, path, index, kind) for method, path, body in requests[process]
              for index, kind in classify(method, path, body)]
    assert needed, "the process touched no index?"
    problems = [f"{method} {path}: {gap}" for method, path, index, kind in needed for gap in covered(role, index, kind)]
    assert not problems, f"the {process} role misses:\n" + "\n".join(problems)
    touched = {name for _, _, index, _ in needed for name in index.split(",")}
    granted = set(role.patterns())
    unused = {p for p in granted if not any(fnmatch.fnmatchcase(n, p) for n in touched)}
    assert not unused, f"the {process} role grants patterns its process never uses: {unused}"


def test_the_roles_are_limited_to_the_prefix_and_derived_from_the_templates() -> None:
    from soc.store import search_mappings as maps

    patterns = index_patterns("acme")
    assert patterns == {"events": maps.events_template("acme")["index_patterns"][0],
                        "docs": maps.docs_template("acme")["index_patterns"][0]}
    for process in PROCESSES:
        role = store_role(process, "acme")
        assert set(role.patterns()) <= set(patterns.values())
        assert all("*" != p and p.startswith("acme-") for g in role.grants for p in g.patterns)
        body = role.opensearch()
        assert not any(a in ("unlimited", "indices_all", "cluster_all", "*") for a in body["cluster_permissions"])
        es = role.elasticsearch()
        assert not {"all", "manage", "manage_security"} & set(es["cluster"])
        assert all(not {"all", "manage"} & set(i["privileges"]) for i in es["indices"])
    assert store_role("worker", "acme").patterns() == ["acme-events-*"]  # the worker never touches documents
    assert "read" not in store_role("worker", "acme").grants[0].opensearch
    assert "delete_index" not in store_role("detect", "acme").grants[0].elasticsearch
    with pytest.raises(ValueError, match="unknown process 'admin'"):
        store_role("admin")
    with pytest.raises(ValueError, match="index prefix 'Bad'"):
        store_role("worker", "Bad")


def test_soc_store_role_prints_the_requests(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    from soc.cli.main import app

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SOC_CONFIG", raising=False)
    monkeypatch.setenv("SOC_STORE_URL", "opensearch://127.0.0.1:9200")
    result = CliRunner().invoke(app, ["store", "role", "--for", "detect"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("# opensearch: soc detect on indices soc-events-*, soc-docs-*")
    assert "PUT _plugins/_security/api/roles/soc_detect\n" in result.output and "_security/role/" not in result.output
    body = json.loads(result.output.split("soc_detect\n", 1)[1])
    assert body == store_role("detect").opensearch()
    result = CliRunner().invoke(app, ["store", "role", "--for", "worker", "--engine", "elasticsearch",
                                      "--index-prefix", "prov-na", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"role": "prov-na_worker",
                                         "elasticsearch": store_role("worker", "prov-na").elasticsearch()}
    assert render_role(store_role("service"), "elasticsearch").startswith("PUT _security/role/soc_service\n{")
    monkeypatch.delenv("SOC_STORE_URL")
    both = CliRunner().invoke(app, ["store", "role", "--for", "service"])
    assert "_plugins/_security/api/roles/soc_service" in both.output and "PUT _security/role/soc_service" in both.output
    bad = CliRunner().invoke(app, ["store", "role", "--for", "root"])
    assert bad.exit_code == 2 and "unknown process 'root'" in bad.output
