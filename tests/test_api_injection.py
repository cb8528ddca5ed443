"""Hostile filter values through every API filter, on SQLite and the real OpenSearch (issue #10,
"Trust", Done when): a fixed list of payloads -- SQL quotes and comments, Lucene and query-DSL
operators, wildcards, JSON where a string is expected, overlong values, Unicode look-alikes, NUL
-- sent as every query parameter (and every path parameter) of every GET route the OpenAPI
description lists, by a user of agency A who may do everything but only in A.

Agency B's rows carry a marker in their text fields (event message, host and user; alert title
and entities; incident title; task title; a note in the alert history and the audit trail; a
report's incident). No answer may be a 5xx, and none may hold the marker. An administrator who
sees every agency does find the marker (the check is not vacuous), and the A user finds A's rows.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from soc.access import Principal
from soc.app import App
from soc.export import snapshot as snapshots
from soc.model import iso
from tests.api_helpers import (
    ALL_SCOPES,
    ROOT,
    A,
    B,
    add_user,
    app_fixture,
    bearer,
    client,
    cookie_header,
    session_of,
    token_of,
)
from tests.scope_helpers import STORE_KINDS

MARKER = "zzqxbleak"
#: what may travel in a filter; none contains the marker
PAYLOADS = [
    "' OR '1'='1", "'; DROP TABLE events; --", '" OR ""="', "1) OR (1=1", "x' UNION SELECT * FROM docs --",
    "/* comment */ 1", "admin'--", "%", "_", "%' OR organization.id LIKE '%",
    "*", "?", "*:*", f"organization.id:{B}", f"a OR organization.id:{B}", f"NOT {A}", f"+{B} -{A}", "[* TO *]",
    "message:/.*/", "_exists_:message", "\\", "(", ")", f"{B}~2", "a AND (b OR c",
    '{"match_all": {}}', '{"bool": {"should": [{"match_all": {}}]}}', '{"$ne": null}', '["so-tc"]', "null",
    B, "so-*", "*tc", "so-t?",
    "A" * 5000, "(" * 2000, "9" * 400, "-1", "1e309", "NaN", "2026-13-45T99:99", "true",
    "ѕо-тс", "so\u2010tc", "ｓｏ－ｔｃ", "so-tc\u200b", "\u202eso-tc", "so-tc\x00", "\x00", "é\u0301" * 50,
    "../../../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "$(id)", "{{7*7}}", "<script>alert(1)</script>",
]
#: extra forms for the filters that take FIELD:OP:VALUE (events ``filter``) and FIELD=VALUE (alerts ``field``)
FIELD_FORMS = [
    f"organization.id:eq:{B}", f"organization.id:ne:{A}", "organization.id:prefix:so", "organization.id:prefix:",
    f'organization.id:in:["{B}", "{A}"]', "organization.id:exists:false", "organization.id:gte:a",
    "organization.id:lt:zzzz", "source.ip:cidr:0.0.0.0/0", "source.ip:cidr:::/0", "message:eq:*", "message:in:[]",
    "message:in:{}", "message:in:[1, null, {}]", ":eq:x", "a:b:c:d", "_id:eq:ev-b-0", "_index:eq:x",
    f"agency={B}", "agency=*", "rule.title=*", "entities.host.name=*", "=", "==", "a=b=c", "__proto__=x",
    *(f"{name}:{p}" for name in ("message:eq", "organization.id:in", "host.name:prefix") for p in PAYLOADS[:24]),
    *(f"{name}={p}" for name in ("agency", "entities.host.name") for p in PAYLOADS[:24]),
]
#: path values: payloads and the ids of B's own rows
B_IDS = ["ev-b-0", "al-b-0", "inc-b", "task-b", "R-B-1"]


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _events(now: datetime) -> list[dict[str, Any]]:
    events = []
    for agency, tag in ((A, "a"), (B, "b")):
        for i in range(6):
            mark = MARKER if agency == B else "plain"
            events.append({"_id": f"ev-{tag}-{i}", "@timestamp": iso(now - timedelta(minutes=30 - i)),
                           "event.dataset": "linux.sshd", "organization.id": agency,
                           "host.name": f"{mark}-host-{tag}", "user.name": f"{mark}-user", "source.ip": "10.2.0.5",
                           "message": f"Failed password for {mark}-user from 10.2.0.5 ({tag} {i})"})
    return events


def _alert(agency: str, tag: str, i: int, now: datetime) -> dict[str, Any]:
    mark = MARKER if agency == B else "plain"
    moment = iso(now - timedelta(minutes=20 - i))
    return {"id": f"al-{tag}-{i}", "kind": "correlation", "status": "new", "agency": agency,
            "rule": {"id": "ssh_brute_force", "title": f"SSH brute force {mark}", "level": "high", "version": "1"},
            "@timestamp": moment, "first_seen": moment, "last_seen": moment, "detected_at": moment,
            "event_count": 1, "event_ids": [f"ev-{tag}-{i}"], "group": {"source.ip": "10.2.0.5"},
            "group_key": f"agency={agency}|source.ip=10.2.0.5",
            "entities": {"host.name": [f"{mark}-host-{tag}"], "user.name": [f"{mark}-user"],
                         "source.ip": ["10.2.0.5"]}}


def seed(root: App) -> None:
    now = _now()
    store = root.base_store
    assert store.write_events(_events(now)).created == 12
    for agency, tag in ((A, "a"), (B, "b")):
        for i in range(3):
            assert store.create("alerts", f"al-{tag}-{i}", _alert(agency, tag, i, now))
    store.refresh()
    system = Principal.system("test-seed")
    for agency, tag in ((A, "a"), (B, "b")):
        mark = MARKER if agency == B else "plain"
        alert = store.get("alerts", f"al-{tag}-0")
        assert alert is not None
        incident = root.incidents.open_from_alerts([alert.body], actor="test", title=f"Incident {mark} {tag}")
        store.put("id_alias", f"inc-{tag}", {"id": incident.id})  # where the test finds it
        root.tasks.create(system, agency=agency, title=f"Patch {mark} {tag}", incident_id=incident.id)
        snapshots.save(store, {"report_no": f"R-{tag.upper()}-1", "document": "incident_report", "kind": "initial",
                               "built_at": iso(now), "incident": {"id": incident.id, "title": f"Incident {mark}",
                                                                   "agencies": [agency], "agency": agency}})
    add_user(root, "b-analyst", ["analyst"], agency=B)
    b_user = root.identity.users.require("b-analyst").principal()
    root.acting_as(b_user).alerts.acknowledge(b_user, "al-b-1", note=f"seen by {MARKER}")
    store.refresh()


@pytest.fixture(scope="module", params=STORE_KINDS)
def root(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    for app in app_fixture(request.param, request, tmp_path_factory.mktemp("api-inject")):
        add_user(app, "a-admin", ["admin"], agency=A)
        add_user(app, "boss", ["admin"])
        seed(app)
        yield app


@pytest.fixture(scope="module")
def http(root: App) -> TestClient:
    return client(root)


@pytest.fixture(scope="module")
def as_a(root: App, http: TestClient) -> dict[str, str]:
    return cookie_header(http.app, session_of(root, "a-admin"))  # type: ignore[arg-type]


def get_routes(http: TestClient) -> list[tuple[str, list[dict[str, Any]]]]:
    """``(path, parameters)`` of every GET operation of the description."""
    paths = http.get("/api/openapi.json").json()["paths"]
    return [(path, ops["get"].get("parameters", [])) for path, ops in sorted(paths.items())
            if "get" in ops and path.startswith("/api/v1/")]


#: the few payloads for a parameter FastAPI validates itself (a number, a boolean, one of a list)
TYPED = ["' OR '1'='1", "*", '{"$ne": null}', "9" * 400, "-1", "NaN", "so-tc\x00", "ｓｏ"]


def validated(parameter: dict[str, Any]) -> bool:
    """Whether the description types the parameter narrowly (number, boolean, enum)."""
    schema = parameter.get("schema", {})
    kinds = [schema, schema.get("items", {})] + list(schema.get("anyOf", []))
    kinds += [k.get("items", {}) for k in schema.get("anyOf", [])]
    narrow = [k for k in kinds if k.get("type") in ("integer", "number", "boolean") or "enum" in k or "const" in k]
    free = [k for k in kinds if k.get("type") == "string" and "enum" not in k and "const" not in k]
    return bool(narrow) and not free


def leaks(text: str) -> bool:
    return MARKER in text.lower()


def check(answer: Any, what: str, wrong: list[str]) -> None:
    if answer.status_code >= 500:
        wrong.append(f"{what}: {answer.status_code} {answer.text[:300]}")
    elif leaks(answer.text):
        wrong.append(f"{what}: agency B's marker in the answer ({answer.status_code}): "
                     f"{answer.text[answer.text.lower().index(MARKER) - 200:][:400]}")


def filled(path: str, value: str = "x") -> str:
    return re.sub(r"\{[^}]+\}", quote(value, safe=""), path)


def test_the_marker_is_there_for_who_may_see_it(root: App, http: TestClient, as_a: dict[str, str]) -> None:
    boss = bearer(token_of(root, "boss", ALL_SCOPES))
    for path in ("/api/v1/alerts", "/api/v1/events", "/api/v1/incidents", "/api/v1/tasks"):
        seen = http.get(path, headers=boss)
        assert seen.status_code == 200 and leaks(seen.text), (path, seen.status_code, seen.text[:300])
        mine = http.get(path, headers=as_a)
        assert mine.status_code == 200 and "plain" in mine.text and not leaks(mine.text), (path, mine.text[:300])


@pytest.mark.timeout(900)
def test_no_filter_value_breaks_a_query_or_reaches_another_agency(http: TestClient, as_a: dict[str, str]) -> None:
    wrong: list[str] = []
    routes = get_routes(http)
    assert any(path == "/api/v1/events" for path, _ in routes)
    for path, parameters in routes:
        query = [p["name"] for p in parameters if p["in"] == "query"]
        for parameter in (p for p in parameters if p["in"] == "query"):
            name = parameter["name"]
            values = TYPED if validated(parameter) else PAYLOADS + (FIELD_FORMS if name in ("filter", "field") else [])
            for value in values:
                answer = http.get(filled(path), params={name: value}, headers=as_a)
                check(answer, f"GET {path}?{name}={json.dumps(value)[:60]}", wrong)
        if "{" in path:
            for value in PAYLOADS + B_IDS:
                check(http.get(filled(path, value), headers=as_a), f"GET {filled(path, value)[:120]}", wrong)
        if len(query) > 1:  # every filter at once
            answer = http.get(filled(path), params=dict.fromkeys(query, PAYLOADS[0]), headers=as_a)
            check(answer, f"GET {path} with every parameter {PAYLOADS[0]!r}", wrong)
    assert not wrong, f"{len(wrong)} bad answers:\n" + "\n".join(wrong[:40])


def test_another_agencys_objects_are_not_found(root: App, http: TestClient, as_a: dict[str, str]) -> None:
    incident_b = root.base_store.get("id_alias", "inc-b")
    assert incident_b is not None
    task_b = [d.id for d in root.base_store.find("tasks", limit=100) if d.body.get("agency") == B]
    for path in ("/api/v1/events/ev-b-0", "/api/v1/alerts/al-b-0", f"/api/v1/incidents/{incident_b.body['id']}",
                 f"/api/v1/incidents/{incident_b.body['id']}/timeline", f"/api/v1/tasks/{task_b[0]}",
                 "/api/v1/reports/R-B-1"):
        answer = http.get(path, headers=as_a)
        assert answer.status_code == 404, (path, answer.status_code, answer.text[:300])
        assert not leaks(answer.text)
        assert http.get(path.replace("-b", "-a").replace("R-B", "R-A"), headers=as_a).status_code != 500
    # changes to them: 404 too, and nothing changes
    for path, body in (("/api/v1/alerts/al-b-2/acknowledge", {}), ("/api/v1/alerts/al-b-2/close",
                                                                     {"reason": "false_positive", "note": "x"})):
        session = session_of(root, "a-admin")
        answer = http.post(path, json=body, headers=cookie_header(http.app, session, csrf=session.csrf))  # type: ignore[arg-type]
        assert answer.status_code == 404, (path, answer.status_code, answer.text)
    assert root.base_store.get("alerts", "al-b-2").body["status"] == "new"  # type: ignore[union-attr]
    assert ROOT.can("alerts:write")
