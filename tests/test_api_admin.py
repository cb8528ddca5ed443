"""The administration routes of the API (issue #10, item 5) on SQLite: detection exceptions with
their audit, rule and source health, the agency tree as each caller may see it, users (a
one-time password shown once) and API tokens (a user's own; ``tokens:admin`` for others')."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from soc.app import App
from soc.model import iso
from tests.api_fixtures import PASSWORD, Api, every_page, make_root
from tests.scope_helpers import A_CHILD, A_MERGED, A, B


@pytest.fixture
def root(tmp_path: Path) -> Iterator[App]:
    app = make_root(tmp_path)
    yield app
    app.close()


@pytest.fixture
def api(root: App) -> Api:
    return Api(root)


# -- exceptions -------------------------------------------------------------------------------------
NEW = {"scope": {"kind": "rule", "value": "ssh-brute-force"}, "owner": "Đội SOC", "reason": "máy quét của sở",
       "conditions": [{"field": "source.ip", "op": "cidr", "value": ["10.0.0.0/8"]}], "expires": "30d"}


def test_exceptions_add_list_read_with_audit_disable(api: Api) -> None:
    analyst = api.as_user("analyst")
    added = analyst.ok("post", "/exceptions", NEW, status=201)
    assert added["status"] == "active" and added["created_by"] == f"{analyst.name} (token api-test)"
    assert added["expires_at"] > iso(datetime.now(UTC)) and "source.ip cidr 10.0.0.0/8" in added["describe"]
    second = analyst.ok("post", "/exceptions", {**NEW, "scope": {"kind": "group", "value": "attack.t1110*"},
                                                "expires": "never"}, status=201)
    assert second["expires_at"] is None
    assert [e["id"] for e in every_page(analyst, "/exceptions", limit=1)] == [added["id"], second["id"]]
    disabled = analyst.ok("post", f"/exceptions/{added['id']}/disable", {"note": "sở đã đổi máy quét"})
    assert disabled["status"] == "disabled" and disabled["disabled_by"] == f"{analyst.name} (token api-test)"
    shown = analyst.ok("get", f"/exceptions/{added['id']}")
    assert [(a["action"], a["note"]) for a in shown["audit"]] == [("add", ""), ("disable", "sở đã đổi máy quét")]
    assert [e["id"] for e in analyst.ok("get", "/exceptions", params={"status": "active"})["items"]] == [second["id"]]
    assert analyst.get("/exceptions/exc-none").status_code == 404
    assert analyst.post("/exceptions/exc-none/disable", {}).status_code == 404


def test_exceptions_refused(api: Api) -> None:
    analyst = api.as_user("analyst")
    no_condition = analyst.post("/exceptions", {**NEW, "scope": {"kind": "all"}, "conditions": []})
    assert no_condition.status_code == 400 and "condition" in no_condition.json()["detail"]
    assert analyst.post("/exceptions", {**NEW, "expires": "soon"}).status_code == 400
    bad_network = {**NEW, "conditions": [{"field": "source.ip", "op": "cidr", "value": "not-a-net"}]}
    assert analyst.post("/exceptions", bad_network).status_code == 422
    added = analyst.ok("post", "/exceptions", NEW, status=201)
    assert api.as_user("agency").get("/exceptions").status_code == 403  # exceptions:read
    assert api.as_user("responder").post("/exceptions", NEW).status_code == 403  # exceptions:write
    scoped = api.as_user("analyst", agency=A)  # exceptions belong to no agency
    assert scoped.ok("get", "/exceptions")["items"] == []
    assert scoped.get(f"/exceptions/{added['id']}").status_code == 404
    assert scoped.post("/exceptions", NEW).status_code == 403


# -- rule and source health -------------------------------------------------------------------------
def test_rule_health(api: Api, root: App) -> None:
    now = time.time()
    root.base_store.put("rule_state", "r-ok", {"rule_id": "r-ok", "title": "A rule", "last_run": now, "runs": 4,
                                                "last_hits": 2, "total_alerts": 9, "covered_until": now - 5,
                                                "last_window": [now - 65, now - 5], "lease_owner": "h:1:x"})
    root.base_store.put("rule_state", "r-bad", {"rule_id": "r-bad", "title": "B rule", "last_run": now,
                                                 "last_error": "timed out", "consecutive_errors": 3})
    analyst = api.as_user("analyst")
    page = analyst.ok("get", "/rules/health")
    assert [r["rule_id"] for r in page["items"]] == ["r-ok", "r-bad"] and page["total"] == 2
    ok = page["items"][0]
    assert ok["last_run"] == iso(datetime.fromtimestamp(now, UTC)) and ok["total_alerts"] == 9 and not ok["failing"]
    assert len(ok["last_window"]) == 2 and "lease_owner" not in ok
    assert [r["rule_id"] for r in analyst.ok("get", "/rules/health", params={"failing": True})["items"]] == ["r-bad"]
    assert api.as_user("analyst", agency=A).ok("get", "/rules/health")["items"] == []  # no agency's
    assert api.as_user("agency", agency=A).get("/rules/health").status_code == 403  # rules:read


def test_source_health_counts_and_silent_sources(api: Api, root: App) -> None:
    stamp = iso(datetime.now(UTC))
    events = [{"_id": f"e-{agency}-{n}", "@timestamp": stamp, "event.dataset": dataset, "soc.source": source,
               **({"organization.id": agency} if agency else {}), "message": "x"}
              for agency, source, dataset, count in ((A_CHILD, "syslog-a", "linux.sshd", 3), (B, "syslog-b", "nginx.access", 2),
                                                     (None, "inbox", "linux.sshd", 1))
              for n in range(count)]
    assert root.base_store.write_events(events).created == 6
    analyst = api.as_user("analyst")
    page = analyst.ok("get", "/sources/health")
    rows = {(r["agency"], r["source"]): r for r in page["items"]}
    assert {k: r["events"] for k, r in rows.items()} == {(A_CHILD, "syslog-a"): 3, (B, "syslog-b"): 2,
                                                         (None, "inbox"): 1}
    assert not any(r["silent"] for r in rows.values()) and rows[(B, "syslog-b")]["last_event_at"] == stamp
    assert rows[(A_CHILD, "syslog-a")]["agency_name"] == "Thôn A" and rows[(B, "syslog-b")]["last_ingested_at"]
    by_dataset = analyst.ok("get", "/sources/health", params={"by": "event.dataset"})
    assert {(r["agency"], r["source"]) for r in by_dataset["items"]} == {
        (A_CHILD, "linux.sshd"), (B, "nginx.access"), (None, "linux.sshd")}
    time.sleep(1.2)
    silent = analyst.ok("get", "/sources/health", params={"silent_minutes": 0.01, "silent_only": True})
    assert silent["total"] == 3 and all(r["silent"] and r["recent_events"] == 0 for r in silent["items"])
    scoped = api.as_user("agency", agency=A)
    assert scoped.get("/sources/health").status_code == 403  # rules:read
    scoped_analyst = api.as_user("analyst", agency=A)
    assert [(r["agency"], r["source"]) for r in scoped_analyst.ok("get", "/sources/health")["items"]] == [
        (A_CHILD, "syslog-a")]
    assert analyst.get("/sources/health", params={"window_hours": 0}).status_code == 422


# -- agencies ---------------------------------------------------------------------------------------
def test_agencies_as_each_caller_may_see_them(api: Api) -> None:
    every = api.as_user("analyst").ok("get", "/agencies", params={"limit": 100})
    ids = [a["id"] for a in every["items"]]
    assert set(ids) == {"tinh", "so-x", A, A_CHILD, "xa-c", A_MERGED, B, "unknown"} and ids[0] == "tinh"
    assert ids.index("so-x") < ids.index(A) < ids.index(A_CHILD), "each after its parent"
    mine = every_page(api.as_user("agency", agency=A), "/agencies", limit=1)
    assert {a["id"] for a in mine} == {A, A_CHILD, A_MERGED}
    top = next(a for a in mine if a["id"] == A)
    assert top["parent"] is None and top["path"] == [A], "nothing above the caller's agency is shown"
    assert next(a for a in mine if a["id"] == A_MERGED)["current"] == A


# -- users ------------------------------------------------------------------------------------------
def test_users_added_with_a_one_time_password_disabled_enabled_and_given_roles(api: Api) -> None:
    admin = api.as_user("admin")
    added = admin.ok("post", "/users", {"name": "Lan", "roles": ["analyst"], "agency": A, "email": "lan@x.vn"},
                     status=201)
    one_time = added.pop("one_time_password")
    assert added["name"] == "lan" and added["must_change_password"] and added["agency"] == A
    assert "password_hash" not in added and "one_time_password" not in admin.ok("get", "/users/lan")
    login = api.client.post("/api/v1/auth/login", json={"name": "lan", "password": one_time})
    assert login.status_code == 200 and login.json()["must_change_password"] is True
    with_password = admin.ok("post", "/users", {"name": "minh", "roles": ["auditor"], "password": PASSWORD},
                             status=201)
    assert "one_time_password" not in with_password and not with_password["must_change_password"]
    assert "lan" in [u["name"] for u in every_page(admin, "/users", limit=2)]
    assert [u["name"] for u in admin.ok("get", "/users", params={"role": "auditor"})["items"]] == ["minh"]
    user = api.as_user("analyst", name="hoa")
    assert user.get("/auth/me").status_code == 200
    assert admin.ok("post", "/users/hoa/disable")["disabled"] is True
    assert user.get("/auth/me").status_code == 401, "a disabled user's tokens stop working"
    assert admin.ok("post", "/users/hoa/enable")["disabled"] is False and user.get("/auth/me").status_code == 200
    changed = admin.ok("put", "/users/hoa/roles", {"roles": ["responder", "reporter"], "agency": B})
    assert changed["roles"] == ["responder", "reporter"] and changed["agency"] == B
    assert admin.ok("put", "/users/hoa/roles", {"clear_agency": True})["agency"] is None
    reset = admin.ok("post", "/users/hoa/password", {})
    assert reset["one_time_password"] and reset["must_change_password"]
    assert admin.post("/users", {"name": "lan", "roles": ["analyst"]}).status_code == 400  # exists
    assert admin.post("/users", {"name": "x1", "roles": ["wizard"]}).status_code == 400
    assert admin.post("/users", {"name": "x2", "roles": ["analyst"], "agency": "nowhere"}).status_code == 400
    assert admin.put("/users/hoa/roles", {}).status_code == 400
    assert admin.post(f"/users/{admin.name}/disable").status_code == 400, "not one's own account"
    for path in ("/users/nobody", "/users/nobody/disable", "/users/nobody/enable"):
        answer = admin.get(path) if path == "/users/nobody" else admin.post(path)
        assert answer.status_code == 404, path
    assert api.as_user("analyst").get("/users").status_code == 403  # users:admin
    assert api.as_user("auditor").post("/users", {"name": "x3", "roles": ["admin"]}).status_code == 403


# -- tokens -----------------------------------------------------------------------------------------
def test_a_user_manages_their_own_tokens(api: Api) -> None:
    me = api.logged_in("analyst")
    made = me.ok("post", "/tokens/mine", {"name": "ci", "scopes": ["alerts:read"], "lifetime": "7d"}, status=201)
    secret = made.pop("secret")
    assert secret.startswith(made["prefix"]) and made["user"] == me.name and made["status"] == "active"
    listed = me.ok("get", "/tokens/mine")
    assert [t["id"] for t in listed["items"]] == [made["id"]] and "secret" not in listed["items"][0]
    bearer = {"Authorization": f"Bearer {secret}"}
    assert api.client.get("/api/v1/auth/me", headers=bearer).json()["permissions"] == ["alerts:read"]
    assert api.client.get("/api/v1/exceptions", headers=bearer).status_code == 403, "only its scopes"
    as_token = api.client.post("/api/v1/tokens/mine", json={"name": "more", "scopes": ["alerts:read"]},
                               headers=bearer)
    assert as_token.status_code == 403, "a token makes no tokens for itself"
    assert me.post("/tokens/mine", {"name": "bad", "scopes": ["alerts:fly"]}).status_code == 400
    assert me.post("/tokens/mine", {"name": "ci", "scopes": ["alerts:read"]}).status_code == 400  # live name
    other = api.as_user("analyst")
    theirs = api.root.identity.tokens.list(other.name)[0]
    assert me.post(f"/tokens/mine/{theirs.id}/revoke").status_code == 404, "another user's token"
    assert me.ok("post", f"/tokens/mine/{made['id']}/revoke")["status"] == "revoked"
    assert api.client.get("/api/v1/auth/me", headers=bearer).status_code == 401
    assert me.get("/tokens").status_code == 403  # tokens:admin
    assert api.client.post("/api/v1/tokens/mine", json={"name": "x", "scopes": ["alerts:read"]}).status_code == 401


def test_an_administrator_manages_anyones_tokens(api: Api) -> None:
    admin, user = api.as_user("admin"), api.as_user("responder")
    made = admin.ok("post", "/tokens", {"user": user.name, "name": "relay", "scopes": ["events:*"]}, status=201)
    assert made["secret"] and made["created_by"] == f"{admin.name} (token api-test)"
    names = {t["name"] for t in admin.ok("get", "/tokens", params={"user": user.name})["items"]}
    assert names == {"api-test", "relay"}
    assert admin.ok("get", "/tokens")["total"] == 3
    assert admin.ok("post", f"/tokens/{made['id']}/revoke")["revoked_at"] is not None
    assert admin.post("/tokens/000000000000/revoke").status_code == 404
    assert admin.post("/tokens", {"user": "nobody", "name": "x", "scopes": ["events:*"]}).status_code == 404
    assert user.post("/tokens", {"user": user.name, "name": "x", "scopes": ["events:*"]}).status_code == 403
