"""Remediation tasks for agencies (issue #10, item 4): the SOC sends, the agency acknowledges
and marks done; overdue by a clock; e-mail to the agency's contacts through a local SMTP server."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from soc.access import Forbidden, Principal
from soc.agencies import UNKNOWN, Agency, AgencyTree
from soc.config import SmtpSettings, TaskSettings
from soc.incidents.remediation import RemediationTasks, TaskError, agency_recipients, mail_notifier
from soc.model import iso
from soc.store.base import Store
from soc.store.scoped import ScopedStore
from soc.store.sqlite import SQLiteStore
from tests.mail_server import MailServer
from tests.test_alert_workflow import T0, any_store

__all__ = ["any_store"]

SOC = Principal("an", roles=frozenset({"analyst"}))
IT_TTTT = Principal("it-tttt", roles=frozenset({"agency"}), agency="so-tttt")
IT_TC = Principal("it-tc", roles=frozenset({"agency"}), agency="so-tc")
TREE = AgencyTree((
    Agency(id="ubnd", name="UBND tỉnh", level="province"),
    Agency(id="so-tttt", name="Sở Thông tin và Truyền thông", parent="ubnd", contact_email=("it@tttt.gov.vn",)),
    Agency(id="so-tc", name="Sở Tài chính", parent="ubnd"),
    Agency(id="so-cu", name="Sở cũ", parent="ubnd", merged_into="so-tttt"),
), Agency(**UNKNOWN))


class Clock:
    """A clock the test moves."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class User:
    agency: str | None
    email: str | None
    disabled: bool = False


USERS = [User("so-tttt", "truong.phong@tttt.gov.vn"), User("so-tttt", None), User("so-tc", "ke.toan@tc.gov.vn"),
         User("so-tttt", "old@tttt.gov.vn", disabled=True)]


def service(store: Store, clock: Clock, smtp: SmtpSettings | None = None, **settings: object) -> RemediationTasks:
    return RemediationTasks(store, TREE, clock=clock, settings=TaskSettings(**settings),  # type: ignore[arg-type]
                            notifier=mail_notifier(smtp) if smtp else None,
                            recipients=agency_recipients(lambda: USERS))


def test_create_acknowledge_done_by_the_agency_with_mail(any_store: Store) -> None:
    clock = Clock(T0)
    with MailServer() as server:
        smtp = SmtpSettings(host="127.0.0.1", port=server.port, sender="soc@tinh.gov.vn", timeout_seconds=5)
        soc = service(any_store, clock, smtp, soc_email=["soc@tinh.gov.vn"])
        task = soc.create(SOC, agency="so-tttt", title="Vá lỗ hổng OpenSSH trên web01",
                          description="Cập nhật OpenSSH lên 9.8p1.", due=T0 + timedelta(days=2))
        assert task["status"] == "open" and task["agency_name"] == "Sở Thông tin và Truyền thông"
        assert task["created_by"] == "an" and task["overdue"] is False
        assert task["notifications"][0]["sent"] is True
        sent = server.messages[0]
        assert sorted(sent.to) == ["it@tttt.gov.vn", "truong.phong@tttt.gov.vn"]  # contact + enabled users
        assert "Vá lỗ hổng OpenSSH" in sent.message["Subject"] and task["id"] in sent.message.get_content()
        assert "+07" in sent.message.get_content()  # the due time in the province's zone

        # the agency's user acts on its own view of the store
        mine = ScopedStore.for_principal(any_store, IT_TTTT, TREE)
        agency = service(mine, clock, smtp, soc_email=["soc@tinh.gov.vn"])  # type: ignore[arg-type]
        assert [t["id"] for t in agency.list(IT_TTTT)] == [task["id"]]
        clock.now = T0 + timedelta(hours=1)
        acked = agency.acknowledge(IT_TTTT, task["id"], note="đã nhận")
        assert acked["status"] == "acknowledged" and acked["acknowledged_by"] == "it-tttt"
        assert agency.acknowledge(IT_TTTT, task["id"])["acknowledged_at"] == iso(T0 + timedelta(hours=1))
        clock.now = T0 + timedelta(hours=5)
        done = agency.done(IT_TTTT, task["id"], note="đã cập nhật OpenSSH 9.8p1")
        assert done["status"] == "done" and done["done_by"] == "it-tttt" and done["done_at"] == iso(clock.now)
        assert [e["action"] for e in done["events"]] == ["created", "acknowledged", "done"]
        with pytest.raises(TaskError, match="done already"):
            agency.done(IT_TTTT, task["id"], note="again")
        assert len(server.messages) == 2
        assert "soc@tinh.gov.vn" in server.messages[1].to and "Done" in server.messages[1].message["Subject"]
        assert "đã cập nhật OpenSSH" in server.messages[1].message.get_content()

        # another agency sees nothing of it and cannot answer it
        theirs = service(ScopedStore.for_principal(any_store, IT_TC, TREE), clock)  # type: ignore[arg-type]
        assert theirs.list(IT_TC) == []
        with pytest.raises(TaskError, match="no remediation task"):
            theirs.acknowledge(IT_TC, task["id"])


def test_overdue_by_the_clock(any_store: Store) -> None:
    clock = Clock(T0)
    soc = service(any_store, clock)
    late = soc.create(SOC, agency="so-tttt", title="A", due=T0 + timedelta(days=1))
    later = soc.create(SOC, agency="so-tc", title="B", due=T0 + timedelta(days=3))
    soc.create(SOC, agency="so-tc", title="no due time")
    assert soc.list(SOC, overdue=True) == []
    clock.now = T0 + timedelta(days=2)
    assert soc.get(SOC, late["id"])["overdue"] is True and soc.get(SOC, later["id"])["overdue"] is False
    assert [t["id"] for t in soc.list(SOC, overdue=True)] == [late["id"]]
    respond = Principal("it", roles=frozenset({"agency"}))
    soc.done(respond, late["id"], note="xong")
    assert soc.get(SOC, late["id"])["overdue"] is False  # done: never overdue
    clock.now = T0 + timedelta(days=4)
    assert [t["id"] for t in soc.list(SOC, overdue=True)] == [later["id"]]
    assert [t["title"] for t in soc.list(SOC, agency="so-tc")] and len(soc.list(SOC, status="done")) == 1


def test_a_mail_failure_never_fails_the_task(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "soc.db")
    with MailServer() as server:
        port = server.port  # a port nobody listens on after the block
    soc = service(store, Clock(T0), SmtpSettings(host="127.0.0.1", port=port, timeout_seconds=2))
    task = soc.create(SOC, agency="so-tttt", title="A")
    assert task["status"] == "open" and task["notifications"][0]["sent"] is False
    assert "cannot send mail" in task["notifications"][0]["error"]
    nobody = soc.create(SOC, agency="so-tc", title="B")  # no contact_email; its user has one
    assert nobody["notifications"][0]["to"] == ["ke.toan@tc.gov.vn"]
    quiet = service(store, Clock(T0), SmtpSettings(host="127.0.0.1", port=port), notify=False)
    assert quiet.create(SOC, agency="so-tttt", title="C")["notifications"] == []
    store.close()


def test_what_is_refused(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "soc.db")
    soc = service(store, Clock(T0))
    for kwargs, message in [
        ({"agency": "so-xyz", "title": "A"}, "unknown agency 'so-xyz'"),
        ({"agency": "so-cu", "title": "A"}, "merged into 'so-tttt'"),
        ({"agency": "so-tttt", "title": "  "}, "needs a title"),
        ({"agency": "so-tttt", "title": "A", "due": T0 - timedelta(hours=1)}, "after now"),
        ({"agency": "so-tttt", "title": "A", "incident_id": "inc-nope"}, "no incident 'inc-nope'"),
    ]:
        with pytest.raises(TaskError, match=message):
            soc.create(SOC, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(Forbidden, match="tasks:write"):
        soc.create(IT_TTTT, agency="so-tttt", title="A")
    task = soc.create(SOC, agency="so-tttt", title="A\nSubject: injected")
    assert task["title"] == "A Subject: injected"
    with pytest.raises(Forbidden, match="tasks:respond"):
        soc.acknowledge(SOC, task["id"])
    with pytest.raises(TaskError, match="needs a note"):
        soc.done(IT_TTTT, task["id"], note=" ")
    with pytest.raises(TaskError, match="no remediation task"):
        soc.get(SOC, "task-nope")
    store.create("tasks", "pb-1", {"id": "pb-1", "title": "playbook task", "status": "open"})
    assert [t["id"] for t in soc.list(SOC)] == [task["id"]]  # the playbooks' tasks are not remediation tasks
    store.close()
