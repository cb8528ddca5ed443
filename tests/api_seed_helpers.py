"""Helpers for the API tests of events, alerts, incidents, jobs and tasks (tests/test_api_events.py,
_alerts, _incidents, _tasks): the service layer over a given store with the agency tree of
tests/scope_helpers.py, users with API tokens, seed data of two agencies A and B (events,
alerts, incidents, tasks), and a client per user (FastAPI's TestClient over
:func:`soc.web.server.create_app`, authenticated by token).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from soc.access import Principal
from soc.app import App
from soc.config import AuthSettings, Settings, TaskSettings
from soc.model import iso
from soc.store.base import Store
from soc.web.server import create_app
from tests.scope_helpers import A_CHILD, TREE, A, B, close_kind, open_kind, seed_events
from tests.store_contract import DAY1

__all__ = ["A", "A_CHILD", "ALERTS_PER_AGENCY", "B", "DAY1", "NOW", "USERS", "Api", "Ticking", "alert_body",
           "api_fixture", "build_api", "seed_api"]

#: the service's clock starts here (events and alerts are an hour older)
NOW = DAY1 + timedelta(hours=1)
#: user -> (roles, agency)
USERS: dict[str, tuple[tuple[str, ...], str | None]] = {
    "soc": (("analyst",), None),          # the province's SOC: every agency
    "admin": (("admin",), None),
    "ana": (("analyst",), A),             # an analyst of agency A (and A's child)
    "bob": (("analyst",), B),             # an analyst of agency B
    "it-a": (("agency",), A),             # agency A's IT staff: tasks:respond
    "it-b": (("agency",), B),
    "reader": (("auditor",), None),       # reads everything, changes nothing
}
SCOPES = ["events:*", "alerts:*", "incidents:*", "tasks:*"]
#: alerts seeded per agency (None: an alert of no agency)
ALERTS_PER_AGENCY: dict[str | None, int] = {A: 6, A_CHILD: 2, B: 5, None: 1}


class Ticking:
    """A clock that moves one millisecond each time it is read, from ``start``."""

    def __init__(self, start: datetime = NOW) -> None:
        self.now, self.lock = start, threading.Lock()

    def __call__(self) -> datetime:
        with self.lock:
            self.now += timedelta(milliseconds=1)
            return self.now


def alert_body(agency: str | None, i: int) -> dict[str, Any]:
    """An alert as the detection engine records it: two rules, two hosts per agency, user root."""
    rule = ("r-ssh", "SSH brute force", "high") if i % 3 != 2 else ("r-web", "Web shell", "critical")
    first = DAY1 + timedelta(minutes=i, seconds=0 if agency == B else 1)
    name = agency or "none"
    return {"id": f"al-{name}-{i:03d}", "kind": "event", "status": "new", "agency": agency,
            "rule": {"id": rule[0], "title": rule[1], "level": rule[2], "version": 1, "author": "t"},
            "first_seen": iso(first), "last_seen": iso(first + timedelta(seconds=30)),
            "detected_at": iso(first + timedelta(minutes=1)), "@timestamp": iso(first),
            "event_ids": [f"ev-{name}-{i % 2}"], "event_count": 1, "group": {}, "group_key": "",
            "entities": {"host.name": [f"host-{name}" if i % 2 == 0 else f"web-{name}"], "user.name": ["root"],
                         "source.ip": [f"10.0.{i}.1"]},
            "message": f"alert {i} of {name}"}


@dataclass
class Api:
    """The service layer, the web application and a client per user, with the seeded ids."""

    app: App
    clients: dict[str, TestClient]
    seeded: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, user: str) -> TestClient:
        return self.clients[user]

    @property
    def store(self) -> Store:
        return self.app.base_store


def build_api(store: Store, folder: Path, *, clock: Any = None, **settings: Any) -> Api:
    """The service layer over ``store`` (the tree of tests/scope_helpers.py), users with tokens
    (:data:`USERS`), and their clients. ``settings``: overrides of :class:`Settings`."""
    options: dict[str, Any] = {"data_dir": folder, "timezone": "Asia/Ho_Chi_Minh",
                               "auth": AuthSettings(argon2_time_cost=1, argon2_memory_kib=19456, argon2_parallelism=1),
                               "tasks": TaskSettings(notify=False), **settings}
    app = App(Settings(**options), rule_dirs=[folder], clock=clock or Ticking())
    app.__dict__["_base"] = store
    app.__dict__["_agencies"] = TREE
    web = create_app(app)
    local = Principal.local("test")
    clients = {}
    for name, (roles, agency) in USERS.items():
        app.identity.users.add(local, name, roles, agency=agency, password="a long test password 1",
                               must_change_password=False)
        secret = app.identity.tokens.create(local, name, "test", SCOPES).secret
        client = TestClient(web, raise_server_exceptions=False)
        client.headers["Authorization"] = f"Bearer {secret}"
        clients[name] = client
    return Api(app, clients)


def seed_api(api: Api) -> dict[str, Any]:
    """Events of every agency (tests/scope_helpers.py), alerts (:data:`ALERTS_PER_AGENCY`), an
    incident and a task of A and of B. Returns the ids (also in ``api.seeded``)."""
    store, app = api.store, api.app
    result = store.write_events(seed_events())
    assert result.rejected == []
    alerts: dict[str | None, list[dict[str, Any]]] = {}
    for agency, count in ALERTS_PER_AGENCY.items():
        alerts[agency] = [alert_body(agency, i) for i in range(count)]
        for body in alerts[agency]:
            assert store.create("alerts", body["id"], body)
    incident_a = app.incidents.open_from_alerts(alerts[A][:2], actor="seed", title="Incident of A")
    incident_b = app.incidents.open_from_alerts(alerts[B][:2], actor="seed", title="Incident of B")
    system = Principal.local("seed")
    task_a = app.tasks.create(system, agency=A, title="Patch host-xa-a", incident_id=incident_a.id,
                              due=NOW + timedelta(days=2))
    task_b = app.tasks.create(system, agency=B, title="Patch host-so-b", incident_id=incident_b.id,
                              due=NOW + timedelta(days=2))
    store.refresh()
    api.seeded = {"incident_a": incident_a.id, "incident_b": incident_b.id, "task_a": task_a["id"],
                  "task_b": task_b["id"], "alerts": {k: [a["id"] for a in v] for k, v in alerts.items()}}
    return api.seeded


def api_fixture(request: pytest.FixtureRequest, folder: Path, *, seeded: bool = True,
                **settings: Any) -> Iterator[Api]:
    """Body of the fixtures of the API tests over a store of kind ``request.param``."""
    store = open_kind(request.param, request, folder)
    api: Api | None = None
    try:
        api = build_api(store, folder, **settings)
        if seeded:
            seed_api(api)
        yield api
    finally:
        for client in api.clients.values() if api else ():
            client.close()
        close_kind(store)
