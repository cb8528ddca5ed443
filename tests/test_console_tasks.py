"""The remediation tasks page of the console (issue #11): an agency's contact sees the tasks of
its agencies (filters in the URL: status, overdue), acknowledges them and marks them done with a
note; the agency's contacts are told when a task is sent; text from the SOC is shown as text;
another agency's tasks are neither listed nor answerable."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from soc.access import Principal
from soc.agencies import Agency, AgencyTree
from soc.app import App
from soc.config import Settings
from tests.api_fixtures import app_settings, make_root
from tests.console_helpers import console_user

TREE = AgencyTree((
    Agency(id="tinh", name="Tỉnh", level="province"),
    Agency(id="so-a", name="Sở A", level="department", parent="tinh", contact_email=("it@so-a.example",)),
    Agency(id="so-b", name="Sở B", level="department", parent="tinh"),
), Agency(id="unknown", name="Chưa xác định"))


@pytest.fixture
def root(tmp_path: Path) -> Iterator[App]:
    settings = Settings(data_dir=tmp_path / "data", smtp={"host": "127.0.0.1", "port": 9, "timeout_seconds": 1})
    app = make_root(tmp_path, app_settings(tmp_path, settings), tree=TREE)
    soc = Principal(name="soc", roles=frozenset({"analyst"}))
    tasks = app.acting_as(soc).tasks
    now = app.clock()
    tasks.create(soc, agency="so-a", title="Vá máy chủ <script>alert(1)</script>", due=now + timedelta(days=2))
    late = tasks.create(soc, agency="so-a", title="Đổi mật khẩu quản trị", due=now + timedelta(seconds=1))
    tasks.create(soc, agency="so-b", title="Việc của sở B")
    app.base_store.refresh()
    app.__dict__["late_task"] = late["id"]
    yield app
    app.close()


def test_the_contact_sees_filters_and_answers_the_tasks_of_its_agency(root: App) -> None:
    contact = console_user(root, "agency", agency="so-a", name="it-a")
    page = contact.get("/tasks")
    assert page.status_code == 200
    assert "Vá máy chủ &lt;script&gt;alert(1)&lt;/script&gt;" in page.text and "<script>alert(1)" not in page.text
    assert "Đổi mật khẩu quản trị" in page.text and "Việc của sở B" not in page.text
    assert "Sở A" in page.text
    time.sleep(1.1)  # the second task is now past its due time
    overdue = contact.get("/tasks?overdue=true").text
    assert "Đổi mật khẩu quản trị" in overdue and "Vá máy chủ" not in overdue
    task_id = root.__dict__["late_task"]
    assert contact.post(f"/tasks/{task_id}/acknowledge", {"back": "/tasks?overdue=true"}).headers[
        "location"] == f"/tasks?overdue=true&done=acknowledged#task-{task_id}"
    assert contact.post(f"/tasks/{task_id}/done", {"note": "Đã đổi mật khẩu", "back": "//evil.example"}).headers[
        "location"] == f"/tasks?done=done#task-{task_id}"  # only back to the tasks page
    done = contact.get("/tasks?status=done")
    assert "Đổi mật khẩu quản trị" in done.text and "Đã đổi mật khẩu" in done.text and "Vá máy chủ" not in done.text
    stored = root.base_store.get("tasks", task_id).body  # type: ignore[union-attr]
    assert stored["done_by"] == "it-a" and stored["status"] == "done"
    again = contact.post(f"/tasks/{task_id}/done", {"note": "lần nữa"})
    assert again.status_code == 400 and "done already" in again.text
    assert contact.get("/tasks?status=nonsense").status_code == 400


def test_the_agency_contact_is_told_and_other_agencies_see_nothing(root: App) -> None:
    task = next(d.body for d in root.base_store.iter_all("tasks") if d.body["title"].startswith("Vá"))
    notice = task["notifications"][0]
    assert notice["to"] == ["it@so-a.example"] and notice["sent"] is False  # no mail server here: recorded
    other = console_user(root, "agency", agency="so-b")
    page = other.get("/tasks")
    assert "Việc của sở B" in page.text and "Vá máy chủ" not in page.text
    assert other.post(f"/tasks/{task['id']}/acknowledge", {}).status_code == 404
    soc = console_user(root, "analyst")
    assert "Việc của sở B" in soc.get("/tasks").text and "Vá máy chủ" in soc.get("/tasks").text
    assert "Tiếp nhận" not in soc.get("/tasks").text  # the SOC does not answer for the agency
