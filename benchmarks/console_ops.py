"""The operations benchmarks/console.py times, each with other filters or ids on every
repetition, as an analyst and as an agency user: the console page itself over HTTP where the
console has it (``GET`` with a logged-in session through ``fastapi.testclient``), else the
service calls the page would make (``App.acting_as``, the helpers of ``soc/web/api``)."""

from __future__ import annotations

import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from console_seed import KINDS, Plan, alert_id, generate, incident_id
from fastapi.testclient import TestClient
from starlette.routing import Match

from soc.access import Principal
from soc.alerts import AlertQuery
from soc.app import App
from soc.model import iso
from soc.store.base import DocQuery, EventQuery
from soc.web.api.alert_filters import doc_list, group_alerts
from soc.web.api.doclist import doc_page
from soc.web.api.timeline import timeline
from soc.web.server import API_PREFIX, create_app

GOALS_MS = {"queue first page": 300, "filtered page": 300, "host/user/IP": 300, "free text": 300,
            "alert detail": 300,
            "group-by 2 fields": 1000, "group-by rule, host": 1000,
            "dashboard": 1000, "incident timeline": None, "event search": None}
WARMUP = 3
#: operations of many seconds on the search engine (it reads the alerts): fewer repetitions there
FEWER = {"group-by rule, host": 5}
PAGE = 50
PASSWORD = "mật khẩu đo tốc độ 2026"
ANALYST = Principal(name="bench-analyst", roles=frozenset({"analyst", "reporter"}))
#: the fields of the group-by repetitions (the store counts these)
PAIRS = (("agency", "rule.id"), ("rule.id", "status"), ("rule.level", "agency"), ("status", "rule.level"))
SHELL = Principal.local("bench")


class Persona:
    """Who acts: the analyst (every agency) or agency users of five agencies of different sizes
    (one per repetition, in turn)."""

    def __init__(self, plan: Plan, name: str):
        self.plan, self.name = plan, name
        counts: dict[int, int] = {}
        for a in plan.agency:
            counts[a] = counts.get(a, 0) + 1
        ranked = [a for a in sorted(counts, key=lambda a: -counts[a]) if plan.agency_ids[a] != "tinh"]
        picks = [ranked[0], ranked[1], ranked[len(ranked) // 4], ranked[len(ranked) // 2], ranked[3 * len(ranked) // 4]]
        self.agencies: list[int | None] = list(picks) if name == "agency" else [None]
        self.alerts: dict[int | None, Any] = {a: [] for a in self.agencies}
        for i, a in enumerate(plan.agency):
            if a in self.alerts:
                self.alerts[a].append(i)
        self.alerts[None] = range(plan.n)
        by_agency: dict[int, list[int]] = {}
        for j, group in enumerate(plan.incidents):
            by_agency.setdefault(plan.agency[group[0]], []).append(j)
        biggest = max(by_agency, key=lambda a: len(by_agency[a]))
        #: the incidents of each agency (one without any: those of the agency with most)
        self.incidents: dict[int | None, list[int]] = {
            a: list(range(len(plan.incidents))) if a is None else by_agency.get(a) or by_agency[biggest]
            for a in self.agencies}
        self.incident_agency = {a: a if a is None or by_agency.get(a) else biggest for a in self.agencies}

    def principal(self, a: int | None) -> Principal:
        if a is None:
            return ANALYST
        agency = self.plan.agency_ids[a]
        return Principal(name=f"bench-{agency}", roles=frozenset({"agency"}), agency=agency)


def sample(plan: Plan, i: int) -> dict[str, Any]:
    """Alert ``i`` as seeded (its host, user, source address...)."""
    return next(generate(plan, [i]))[0]


class Case:
    """One repetition: the service calls (``run(view)``) and the console URL that shows the same."""

    def __init__(self, url: str, run: Callable[[App], Any]):
        self.url, self.run = url, run


def _q(**params: Any) -> str:
    return urlencode([(k, v) for k, values in params.items() for v in (values if isinstance(values, list) else [values])])


# -- the operations: (plan, view's clock, rng, k, pool) -> Case -----------------------------------------
def queue_first(plan: Plan, now: Any, rng: random.Random, k: int, pool: Any) -> Case:
    status, sort = ((["open"], "-first_seen"), (["open", "acknowledged"], "-first_seen"), (["open"], "-risk"))[k % 3]
    query = AlertQuery(status=status).check()

    def run(view: App) -> Any:
        return doc_page(view.store, doc_list(query, True), limit=PAGE, cursor=None)
    return Case(f"/alerts?{_q(status=status, sort=sort)}", run)


def filtered(plan: Plan, now: Any, rng: random.Random, k: int, pool: Any) -> Case:
    alert = sample(plan, rng.choice(pool))
    choices: list[tuple[dict[str, Any], dict[str, Any]]] = [  # (AlertQuery, URL parameters)
        ({"level": ["high", "critical"], "since": iso(now - timedelta(days=7))}, {"level": ["high", "critical"], "since": "7d"}),
        ({"rule": alert["rule"]["id"]}, {"rule": alert["rule"]["id"]}),
        ({"status": ["open"], "agency": alert["agency"]}, {"status": "open", "agency": alert["agency"]}),
        ({"since": iso(now - timedelta(hours=(h := rng.choice((1, 6, 24))))), "status": ["open"]},
         {"since": f"{h}h", "status": "open"}),
        ({"criticality": [4, 5], "status": ["open"]}, {"criticality": "4", "status": "open", "sort": "-risk"}),
    ]
    filters, params = choices[k % len(choices)]
    return _queue_case(filters, params)


def entity_filter(plan: Plan, now: Any, rng: random.Random, k: int, pool: Any) -> Case:
    """An entity in either of its places (``entities``, ``group``): one store query per place,
    merged (``soc.web.api.doc_union``)."""
    entities = sample(plan, rng.choice(pool))["entities"]
    choices: list[tuple[dict[str, Any], dict[str, Any]]] = [
        ({"host": entities["host.name"][0]}, {"host": entities["host.name"][0]}),
        ({"user": entities["user.name"][0], "status": ["open", "acknowledged"]},
         {"user": entities["user.name"][0], "status": ["open", "acknowledged"]}),
        ({"source_ip": entities["source.ip"][0]}, {"source_ip": entities["source.ip"][0]}),
    ]
    filters, params = choices[k % len(choices)]
    return _queue_case(filters, params)


def free_text(plan: Plan, now: Any, rng: random.Random, k: int, pool: Any) -> Case:
    """Free text, without case and diacritics: SQLite looks it up in the alerts' folded text (FTS5,
    ``soc.store.sqlite_doc_text``); elsewhere tested on each alert read (``soc.web.api.doclist``: ``keep``)."""
    entities = sample(plan, rng.choice(pool))["entities"]
    text = ("dò mật khẩu", "powershell", entities["host.name"][0])[k % 3]
    return _queue_case({"text": text}, {"text": text})


def _queue_case(filters: dict[str, Any], params: dict[str, Any]) -> Case:
    query = AlertQuery(**filters).check()

    def run(view: App) -> Any:
        return doc_page(view.store, doc_list(query, True), limit=PAGE, cursor=None)
    return Case(f"/alerts?{_q(**params)}", run)


def group_by(plan: Plan, now: Any, rng: random.Random, k: int, pool: Any) -> Case:
    filters, params = (({}, {}), ({"status": ["open"]}, {"status": "open"}),
                       ({"since": iso(now - timedelta(days=7))}, {"since": "7d"}))[k % 3]
    fields = list(PAIRS[k % len(PAIRS)])
    query = AlertQuery(**filters).check()

    def run(view: App) -> Any:
        return group_alerts(view.store, query, fields, size=100)
    return Case(f"/alerts?{_q(**params, group=fields)}", run)


def group_by_host(plan: Plan, now: Any, rng: random.Random, k: int, pool: Any) -> Case:
    """The issue's example (rule, then host): an alert's hosts are in ``entities`` and in its
    correlation ``group``, compared ignoring case; SQLite counts them from its host table
    (``soc.store.sqlite_doc_text``), elsewhere the API reads the alerts (up to 100,000)."""
    filters, params = (({"status": ["open"]}, {"status": "open"}), ({"since": iso(now - timedelta(days=1))}, {"since": "24h"}),
                       ({}, {}))[k % 3]
    query = AlertQuery(**filters).check()

    def run(view: App) -> Any:
        return group_alerts(view.store, query, ["rule.id", "host.name"], size=100)
    return Case(f"/alerts?{_q(**params, group=['rule.id', 'host.name'])}", run)


def detail(plan: Plan, now: Any, rng: random.Random, k: int, pool: Any) -> Case:
    wanted = alert_id(rng.choice(pool))

    def run(view: App) -> Any:
        assert view.principal is not None
        alert = view.alerts.get(view.principal, wanted)
        history = view.alerts.history(view.principal, wanted)
        events = view.store.get_events(list(alert.get("event_ids") or [])[:100])
        assert events, f"alert {wanted} has no events"
        return alert, history, events
    return Case(f"/alerts/{wanted}", run)


def incident(plan: Plan, now: Any, rng: random.Random, k: int, pool: Any) -> Case:
    wanted = incident_id(rng.choice(pool))

    def run(view: App) -> Any:
        found = view.incidents.get(wanted)
        assert found is not None, f"incident {wanted} not visible"
        return timeline(view.store, found)
    return Case(f"/incidents/{wanted}", run)


def dashboard(plan: Plan, now: Any, rng: random.Random, k: int, pool: Any) -> Case:
    """The oversight figures of 30 days: per day and level, per agency, top rules, open incidents
    per agency (the counts the dashboard shows)."""
    end = now.replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=30)

    def run(view: App) -> Any:
        store = view.store
        month = DocQuery("alerts", filters=(("first_seen", "range", (start, end)),), size=1)
        per_day = [store.count_documents(DocQuery("alerts", filters=(
            ("first_seen", "range", (start + timedelta(days=d), start + timedelta(days=d + 1))),), size=1),
            ["rule.level"], size=10) for d in range(30)]
        agencies = store.count_documents(month, ["agency"], size=100)
        top = store.count_documents(month, ["rule.id"], size=10)
        open_incidents = store.count_documents(DocQuery("incidents", filters=(
            ("status", "in", ["new", "triage", "contained"]),), size=1), ["agency"], size=100)
        return per_day, agencies, top, open_incidents
    return Case(f"/dashboard?since={('30d', '7d', '48h')[k % 3]}", run)


def event_search(plan: Plan, now: Any, rng: random.Random, k: int, pool: Any) -> Case:
    entities = sample(plan, rng.choice(pool))["entities"]
    hours = (1, 24, 24 * 7)[k % 3]
    end = now.timestamp()
    text = rng.choice(("đăng nhập", "dang nhap", "Failed password", "tường lửa chặn"))
    dataset = KINDS[k % len(KINDS)][0]
    choices: list[tuple[dict[str, Any], dict[str, Any]]] = [
        ({"filters": (("host.name", "equals", entities["host.name"][0]),)},
         {"filter": f"host.name:eq:{entities['host.name'][0]}"}),
        ({"filters": (("source.ip", "equals", entities["source.ip"][0]),)},
         {"filter": f"source.ip:eq:{entities['source.ip'][0]}"}),
        ({"filters": (("user.name", "equals", entities["user.name"][0]),)},
         {"filter": f"user.name:eq:{entities['user.name'][0]}"}),
        ({"filters": (("event.outcome", "equals", "failure"), ("event.dataset", "equals", dataset))},
         {"filter": ["event.outcome:eq:failure", f"event.dataset:eq:{dataset}"]}),
        ({"text": text}, {"text": text}),
    ]
    filters, params = choices[k % len(choices)]
    query = EventQuery(start=end - hours * 3600, end=end, size=PAGE, **filters)

    def run(view: App) -> Any:
        page = view.store.search_events(query)
        chart = view.store.event_histogram(query, "1h" if hours <= 24 else "1d", zone=view.settings.timezone)
        top = view.store.top_values(query, "host.name", 10)
        return page, chart, top
    return Case(f"/events?{_q(**params, since=f'{hours}h')}", run)


OPERATIONS: dict[str, tuple[Callable[..., Case], str]] = {  # name -> (case maker, pool of ids it draws from)
    "queue first page": (queue_first, "alerts"),
    "filtered page": (filtered, "alerts"),
    "host/user/IP": (entity_filter, "alerts"),
    "free text": (free_text, "alerts"),
    "group-by 2 fields": (group_by, "alerts"),
    "group-by rule, host": (group_by_host, "alerts"),
    "alert detail": (detail, "alerts"),
    "incident timeline": (incident, "incidents"),
    "dashboard": (dashboard, "alerts"),
    "event search": (event_search, "alerts"),
}


# -- pages ----------------------------------------------------------------------------------------
class Pages:
    """The console app over ``root`` and a logged-in client per user (made when missing)."""

    def __init__(self, root: App):
        self.root = root
        self.app = create_app(root)
        self.clients: dict[str, TestClient] = {}

    def has(self, url: str) -> bool:
        path = url.partition("?")[0]
        scope = {"type": "http", "path": path, "method": "GET", "root_path": ""}
        return any(route.matches(scope)[0] == Match.FULL and not getattr(route, "path", "").startswith(API_PREFIX)
                   for route in self.app.routes if getattr(route, "path", "") not in ("/{path:path}",))

    def client(self, principal: Principal) -> TestClient:
        if principal.name not in self.clients:
            users = self.root.identity.users
            if users.get(principal.name) is None:
                users.add(SHELL, principal.name, sorted(principal.roles), agency=principal.agency, password=PASSWORD,
                          must_change_password=False)
            client = TestClient(self.app, base_url="http://127.0.0.1", raise_server_exceptions=False)
            answer = client.post(f"{API_PREFIX}/auth/login", json={"name": principal.name, "password": PASSWORD})
            assert answer.status_code == 200, answer.text
            self.clients[principal.name] = client
        return self.clients[principal.name]

    def get(self, principal: Principal, url: str) -> Any:
        answer = self.client(principal).get(url, follow_redirects=False)
        if answer.status_code != 200:
            raise AssertionError(f"GET {url} as {principal.name}: {answer.status_code} {answer.text[:300]}")
        return answer


# -- timing ------------------------------------------------------------------------------------
def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, -int(-len(ordered) * q // 1) - 1))]


def measure(root: App, plan: Plan, store: str, reps: int, only: set[str], via: str = "auto") -> list[dict[str, Any]]:
    """Every operation as each persona: p50, p95, max and every time (ms)."""
    pages = Pages(root)
    now = root.clock()
    rows = []
    for name in ("analyst", "agency"):
        persona = Persona(plan, name)
        for op, (make, pool_name) in OPERATIONS.items():
            if only and not any(op.startswith(wanted) for wanted in only):  # a name or its start
                continue
            use_page = via == "page" or via == "auto" and pages.has(make(plan, now, random.Random(0), 0,
                                                                         persona.alerts[persona.agencies[0]]).url)
            note = ""
            times = []
            for k in range(-WARMUP, min(reps, FEWER.get(op, reps) if store != "sqlite" else reps)):
                a = persona.agencies[k % len(persona.agencies)]
                if pool_name == "incidents":
                    a = persona.incident_agency[a]
                principal = persona.principal(a)
                pool = persona.incidents[a] if pool_name == "incidents" else persona.alerts[a]
                case = make(plan, now, random.Random(k * 7919 + 17), k, pool)
                t0 = time.perf_counter()
                if use_page and k < 0 and via == "auto":
                    try:  # a page that fails (the console is being built): its service calls instead
                        pages.get(principal, case.url)
                    except AssertionError as error:
                        use_page, note = False, f"page failed: {str(error)[:160]}"
                        print(f"  {op}: {note}", file=sys.stderr)
                elif use_page:
                    pages.get(principal, case.url)
                else:
                    case.run(root.acting_as(principal))
                if k >= 0:
                    times.append((time.perf_counter() - t0) * 1000)
            row = {"op": op, "as": name, "store": store, "via": "page" if use_page else "service",
                   "p50": percentile(times, 0.5), "p95": percentile(times, 0.95), "max": max(times),
                   "mean": statistics.fmean(times), "goal_ms": GOALS_MS[op], "times": [round(t, 2) for t in times],
                   "load": list(os.getloadavg()), "note": note}
            print(f"  {op:<20} {name:<8} {row['via']:<8} p50 {row['p50']:8.1f} ms  p95 {row['p95']:8.1f} ms  "
                  f"max {row['max']:8.1f} ms", file=sys.stderr)
            rows.append(row)
    return rows
