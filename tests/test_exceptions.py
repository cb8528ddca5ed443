"""Exceptions as data, applied at detection time, on real rules over real logs.

The brute-force correlation (detections/linux/ssh/ssh_brute_force.yml) runs over loghub's
OpenSSH_2k.log and the new-local-account rule over elastic-examples' auth.log, with the real
detection engine, scheduler and hunt; the exceptions live in the store next to the alerts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from soc.detect.compiler import RuleSet, compile_rules
from soc.detect.engine import ALERTS, DetectionEngine
from soc.detect.rules import load_rules
from soc.detect.scheduler import RULE_STATE, RuleRunner, Timing
from soc.detect.suppressions import (
    AUDIT,
    ActiveExceptions,
    Condition,
    ExceptionError,
    Exceptions,
    parse_expiry,
    parse_where,
    scope_warnings,
)
from soc.hunt import ingest_files, run_hunt
from soc.model import iso
from soc.store.base import Store, Window
from soc.store.sqlite import SQLiteStore
from tests.conftest import ROOT, shared
from tests.search_helpers import drop, open_search_store

BRUTE_FORCE = "0b8e3f4c-2a6d-4e71-8c1f-5d9b7a3e6c21"
BRUTE_FORCE_RULE = ROOT / "detections" / "linux" / "ssh" / "ssh_brute_force.yml"
NEW_ACCOUNT = "0392b0bf-9f5f-4cd6-a54a-c25c576f31fc"
NEW_ACCOUNT_RULE = ROOT / "detections" / "linux" / "accounts" / "local_account_created.yml"
EVERYTHING = Window(None, None, "@timestamp")


class Clock:
    def __init__(self, start: datetime):
        self.now = start

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
def ruleset() -> RuleSet:
    return compile_rules(load_rules([BRUTE_FORCE_RULE, NEW_ACCOUNT_RULE]))


def _ingest(path: Path, target: Path) -> SQLiteStore:
    store = SQLiteStore(target)
    ingest_files(store, [path], fmt="auto", timezone="UTC", agency="so-tttt", progress=False)
    return store


@pytest.fixture
def openssh(tmp_path: Path) -> Iterator[SQLiteStore]:
    store = _ingest(shared("loghub", "OpenSSH", "OpenSSH_2k.log"), tmp_path / "soc.db")
    yield store
    store.close()


@pytest.fixture
def authlog(tmp_path: Path) -> Iterator[SQLiteStore]:
    store = _ingest(shared("elastic-examples", "suspicious_login_activity", "data", "auth.log"), tmp_path / "soc.db")
    yield store
    store.close()


def alerts_of(store: Store, rule_id: str) -> list[dict[str, Any]]:
    return [d.body for d in store.find(ALERTS, {"rule.id": rule_id}, limit=100_000)]


def ips(alerts: list[dict[str, Any]]) -> Counter[str]:
    return Counter(a["group"]["source.ip"] for a in alerts)


def test_exception_for_one_source_removes_exactly_its_alerts(openssh: SQLiteStore, ruleset: RuleSet,
                                                             tmp_path: Path) -> None:
    detection = ruleset.detections[BRUTE_FORCE]
    # without exceptions (a separate copy of the same data)
    baseline_store = _ingest(shared("loghub", "OpenSSH", "OpenSSH_2k.log"), tmp_path / "baseline.db")
    baseline = DetectionEngine(baseline_store, ruleset).run(detection, EVERYTHING)
    expected = ips(alerts_of(baseline_store, BRUTE_FORCE))
    baseline_store.close()
    noisy = max(expected, key=lambda ip: expected[ip])
    assert expected[noisy] >= 2 and len(expected) >= 5 and baseline.suppressed == 0

    book = Exceptions(openssh)
    exception = book.add(scope={"kind": "rule", "value": BRUTE_FORCE},
                         conditions=[{"field": "source.ip", "op": "equals", "value": noisy}],
                         owner="Phòng CNTT Sở TT&TT", reason="the agency's own password audit", actor="lead")
    result = DetectionEngine(openssh, ruleset, suppress=ActiveExceptions(openssh)).run(detection, EVERYTHING)
    assert result.error is None
    assert result.suppressed == expected[noisy]
    assert result.suppressed_by == {exception.id: expected[noisy]}
    assert result.matches == baseline.matches  # found, then held back: counted, not hidden
    got = ips(alerts_of(openssh, BRUTE_FORCE))
    assert noisy not in got
    assert got == Counter({ip: n for ip, n in expected.items() if ip != noisy})


def test_scheduler_and_hunt_apply_exceptions_and_report_them(openssh: SQLiteStore, ruleset: RuleSet,
                                                            tmp_path: Path) -> None:
    book = Exceptions(openssh)
    exception = book.add(scope={"kind": "group", "value": "attack.t1110*"},
                         conditions=[{"field": "source.ip", "op": "cidr", "value": ["103.99.0.0/24"]}],
                         owner="soc", reason="pentest by the provincial SOC", actor="lead")
    engine = DetectionEngine(openssh, ruleset, suppress=ActiveExceptions(openssh))
    runner = RuleRunner(engine, Timing(overlap=0, settle=0, initial_lookback=10 ** 9))
    result = runner.run_once(ruleset.detections[BRUTE_FORCE])
    assert result is not None and result.suppressed == 2
    health = openssh.get(RULE_STATE, BRUTE_FORCE).body
    assert health["last_suppressed"] == 2
    assert health["last_suppressed_by"] == [{"exception": exception.id, "count": 2}]
    assert not any(a["group"]["source.ip"].startswith("103.99.0.") for a in alerts_of(openssh, BRUTE_FORCE))

    # soc hunt: the same exceptions, read from the store, applied to a scratch store
    hunted = run_hunt([shared("loghub", "OpenSSH", "OpenSSH_2k.log")], compile_rules(load_rules([BRUTE_FORCE_RULE])),
                      timezone="UTC",
                      exceptions=ActiveExceptions(openssh))
    assert hunted.suppressed == 2 and "2 more held back by exceptions" in hunted.summary()
    assert "103.99.0.122" not in {a["group"].get("source.ip") for a in hunted.alerts}


def test_episode_is_suppressed_only_when_every_event_is_covered(openssh: SQLiteStore, ruleset: RuleSet) -> None:
    """A condition on a field the correlation does not group by must hold for all its events."""
    detection = ruleset.detections[BRUTE_FORCE]
    book = Exceptions(openssh)
    one_user = book.add(scope={"kind": "rule", "value": BRUTE_FORCE},
                        conditions=[{"field": "user.name", "op": "equals", "value": "root"}],
                        owner="soc", reason="root attempts are blocked by sshd anyway", actor="lead")
    first = DetectionEngine(openssh, ruleset, suppress=ActiveExceptions(openssh)).run(detection, EVERYTHING)
    users_per_alert = [set(a["entities"].get("user.name", [])) for a in alerts_of(openssh, BRUTE_FORCE)]
    assert first.suppressed == first.matches - len(users_per_alert)
    assert all(users != {"root"} for users in users_per_alert)  # only all-root episodes were held back
    book.disable(one_user.id, actor="lead", note="too broad")
    book.add(scope={"kind": "group", "value": "linux/ssh"}, conditions=[{"field": "host.name", "op": "wildcard",
                                                                           "value": "lab*"}],
             owner="soc", reason="lab server", actor="lead")
    again = DetectionEngine(openssh, ruleset, suppress=ActiveExceptions(openssh)).run(detection, EVERYTHING)
    assert again.matches > 0 and again.suppressed == again.matches  # every event is on host LabSZ


def test_single_event_rule_exception_with_in_list(authlog: SQLiteStore, ruleset: RuleSet) -> None:
    detection = ruleset.detections[NEW_ACCOUNT]
    Exceptions(authlog).add(scope={"kind": "rule", "value": NEW_ACCOUNT},
                            conditions=[parse_where("user.target.name in elastic_user_1,ELASTIC_USER_2"),
                                        parse_where("agency=so-tttt")],
                            owner="Sở Nội vụ", reason="accounts created for the e-office rollout", actor="lead")
    result = DetectionEngine(authlog, ruleset, suppress=ActiveExceptions(authlog)).run(detection, EVERYTHING)
    targets = sorted(a["entities"]["user.target.name"][0] for a in alerts_of(authlog, NEW_ACCOUNT))
    assert result.suppressed == 2 and result.matches == 10
    assert "elastic_user_1" not in targets and "elastic_user_2" not in targets and len(targets) == 8


def test_expiry_stops_applying_and_every_change_is_audited(openssh: SQLiteStore, ruleset: RuleSet) -> None:
    detection = ruleset.detections[BRUTE_FORCE]
    clock = Clock(datetime(2026, 12, 1, 8, 0, tzinfo=UTC))
    book = Exceptions(openssh, clock=clock)
    exception = book.add(scope={"kind": "all"}, conditions=[{"field": "source.ip", "op": "cidr", "value": "0.0.0.0/0"}],
                         owner="soc", reason="maintenance window", actor="lead",
                         expires_at=parse_expiry("2h", clock.now))
    book.edit(exception.id, actor="lead", reason="maintenance window (extended)", expires_at=iso(clock.now + timedelta(hours=3)))
    active = ActiveExceptions(openssh, clock=clock, reload_seconds=0)
    engine = DetectionEngine(openssh, ruleset, suppress=active)
    held = engine.run(detection, EVERYTHING)
    assert held.suppressed == held.matches > 0 and not alerts_of(openssh, BRUTE_FORCE)

    clock.now += timedelta(hours=3, seconds=1)
    after = engine.run(detection, EVERYTHING)
    assert after.suppressed == 0 and len(after.created) == after.matches
    engine.run(detection, EVERYTHING)  # a second look records the expiry no second time
    assert [e.id for e in book.list(status="expired")] == [exception.id]
    audit = book.audit(exception.id)
    assert [(e["action"], e["actor"]) for e in audit] == [("add", "lead"), ("edit", "lead"), ("expire", "system")]
    assert audit[1]["before"]["reason"] == "maintenance window"
    assert audit[1]["after"]["reason"] == "maintenance window (extended)"
    assert audit[2]["note"] == f"expired at {iso(clock.now - timedelta(seconds=1))}"
    # audit entries are create-only documents: never rewritten
    assert all(d.version == 1 for d in openssh.iter_all(AUDIT))


@pytest.fixture(params=["sqlite", pytest.param("opensearch", marks=pytest.mark.search)])
def doc_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        store: Any = SQLiteStore(tmp_path / "soc.db")
        yield store
        store.close()
    else:
        store = open_search_store(request.getfixturevalue("opensearch_url"), request.getfixturevalue("unique_name"))
        yield store
        drop(store)


def test_exceptions_book_on_both_stores(doc_store: Store) -> None:
    book = Exceptions(doc_store)
    kept = book.add(scope={"kind": "rule", "value": BRUTE_FORCE}, conditions=[], owner="soc",
                    reason="rule retired while it is rewritten", actor="lead", expires_at=parse_expiry("30d", datetime.now(UTC)))
    other = book.add(scope={"kind": "group", "value": "attack.discovery"},
                     conditions=[Condition(field="source.ip", op="cidr", value=["10.10.0.0/24", "fd00::/8"])],
                     owner="soc", reason="vulnerability scanner", actor="lead", expires_at=None)
    book.disable(other.id, actor="lead2", note="scanner decommissioned")
    assert book.disable(other.id, actor="lead2").disabled_by == "lead2"  # disabling twice changes nothing
    doc_store.refresh()
    assert [e.id for e in book.list(status="active")] == [kept.id]
    assert [e.id for e in book.list(status="disabled")] == [other.id]
    assert [(e["action"], e["actor"]) for e in book.audit(other.id)] == [("add", "lead"), ("disable", "lead2")]
    active = ActiveExceptions(doc_store)
    active.prepare()
    assert [e.id for e in active.active] == [kept.id]


def test_bad_exceptions_are_refused_with_a_reason(openssh: SQLiteStore) -> None:
    book = Exceptions(openssh)
    with pytest.raises(ExceptionError, match="without conditions would silence"):
        book.add(scope={"kind": "all"}, conditions=[], owner="soc", reason="quiet", actor="x")
    with pytest.raises(ExceptionError, match="not an IP network"):
        book.add(scope={"kind": "all"}, conditions=[{"field": "source.ip", "op": "cidr", "value": "10.0.0/33"}],
                 owner="soc", reason="r", actor="x")
    with pytest.raises(ExceptionError, match="owner and a reason"):
        book.add(scope={"kind": "rule", "value": BRUTE_FORCE}, conditions=[], owner=" ", reason="r", actor="x")
    with pytest.raises(ExceptionError, match="needs a value"):
        book.add(scope={"kind": "group"}, conditions=[parse_where("a=b")], owner="o", reason="r", actor="x")
    with pytest.raises(ExceptionError, match="30d"):
        parse_expiry("next tuesday", datetime.now(UTC))
    with pytest.raises(ValueError, match="FIELD=VALUE"):
        parse_where("source.ip")
    assert parse_where("user.name=svc_*") == {"field": "user.name", "op": "wildcard", "value": "svc_*"}
    assert parse_where("source.ip cidr 10.0.0.0/8, 192.168.0.0/16")["value"] == ["10.0.0.0/8", "192.168.0.0/16"]
    assert not list(openssh.iter_all(AUDIT))  # nothing refused was recorded


def test_conditions_on_fields_the_rule_does_not_fetch(openssh: SQLiteStore, authlog: SQLiteStore,
                                                      ruleset: RuleSet) -> None:
    """A condition may name any event field: the event is read when the match lacks it."""
    Exceptions(authlog).add(scope={"kind": "rule", "value": NEW_ACCOUNT},
                            conditions=[parse_where("message=*name=elastic_user_3,*")],
                            owner="soc", reason="test account", actor="lead")
    single = DetectionEngine(authlog, ruleset, suppress=ActiveExceptions(authlog)).run(
        ruleset.detections[NEW_ACCOUNT], EVERYTHING)
    assert (single.matches, single.suppressed) == (10, 1)
    Exceptions(openssh).add(scope={"kind": "rule", "value": BRUTE_FORCE},
                            conditions=[parse_where("log.syslog.appname=sshd")],
                            owner="soc", reason="every event of these episodes is from sshd", actor="lead")
    episodes = DetectionEngine(openssh, ruleset, suppress=ActiveExceptions(openssh)).run(
        ruleset.detections[BRUTE_FORCE], EVERYTHING)
    assert episodes.matches > 0 and episodes.suppressed == episodes.matches


def test_scope_warnings_catch_exceptions_that_could_never_apply(openssh: SQLiteStore, ruleset: RuleSet) -> None:
    book = Exceptions(openssh)

    def warn(scope: dict[str, Any]) -> list[str]:
        exception = book.add(scope=scope, conditions=[parse_where("source.ip=10.0.0.1")], owner="o", reason="r",
                             actor="x")
        return scope_warnings(exception, ruleset)

    assert warn({"kind": "rule", "value": BRUTE_FORCE}) == []
    assert warn({"kind": "group", "value": "linux/ssh"}) == []
    assert "no rule has the id" in warn({"kind": "rule", "value": "0b8e3f4c-typo"})[0]
    base = warn({"kind": "rule", "value": "6f1c2d9e-7d1b-4b8e-9a55-0c3e1f7b2a10"})[0]
    assert "raises no alerts itself" in base and "SSH Brute Force From One Source" in base
    assert "never apply" in warn({"kind": "group", "value": "attack.t1566*"})[0]


def test_expiry_text() -> None:
    from zoneinfo import ZoneInfo

    now = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    hanoi = ZoneInfo("Asia/Ho_Chi_Minh")
    assert parse_expiry("30d", now) == "2026-12-31T08:00:00.000Z"
    assert parse_expiry("12h", now, hanoi) == "2026-12-01T20:00:00.000Z"
    assert parse_expiry("2027-01-31", now, hanoi) == "2027-01-31T17:00:00.000Z"  # through 31/01 in Hà Nội
    assert parse_expiry("2027-01-31T08:00", now, hanoi) == "2027-01-31T01:00:00.000Z"
    assert parse_expiry("2027-01-31T08:00Z", now, hanoi) == "2027-01-31T08:00:00.000Z"
    assert parse_expiry("never", now) is None
