"""``soc events search`` on the configured (SQLite) store: filters, free text, times in the
analyst's zone, "N of TOTAL" with ids, the next cursor, JSON lines, histogram and top values,
log text printed literally, and bad input refused with exit 2 and a message."""

from __future__ import annotations

import json
from datetime import UTC, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner, Result

from soc.cli import app, timeargs
from soc.cli.events import parse_filters
from soc.clock import fixed_clock
from soc.model import iso
from soc.store.base import FieldFilter
from tests.event_search_data import T0, open_sqlite, order, seed_events

ZONE = "Asia/Ho_Chi_Minh"
NOW = T0 + timedelta(days=2)
EVIL = "Failed password for \x1b[31mroot\x1b[0m [bold]x[/] \u202etxt.exe"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(timeargs, "cli_clock", fixed_clock(NOW))
    env = {"SOC_DATA_DIR": str(tmp_path / "data"), "SOC_STORE_URL": "", "SOC_TIMEZONE": ZONE, "COLUMNS": "400"}
    store = open_sqlite(Path(env["SOC_DATA_DIR"]) / "soc.db")
    evil = {"_id": "evil-1", "@timestamp": iso(T0 + timedelta(hours=40)), "organization.id": "so-a",
            "user.name": "[/]", "message": EVIL}
    assert store.write_events([*seed_events(), evil]).created == len(seed_events()) + 1
    store.close()
    return env


def run(env: dict[str, str], *args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(app, ["events", "search", *args], env=env)
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    return result


def test_filters_page_and_cursor(env: dict[str, str]) -> None:
    first = run(env, "user.name=ROOT", "--limit", "5")
    want = order([e for e in seed_events() if str(e.get("user.name")).lower() == "root"])
    assert f"5 of {len(want)} events (newest first)" in first.stdout
    assert all(i in first.stdout for i in want[:5]) and want[5] not in first.stdout
    assert "times in Asia/Ho_Chi_Minh" in first.stdout
    cursor = first.stdout.split("more: --cursor ")[1].split()[0]
    second = run(env, "user.name=ROOT", "--limit", "5", "--cursor", cursor)
    assert all(i in second.stdout for i in want[5:10]) and want[4] not in second.stdout


def test_times_are_shown_in_the_analysts_zone(env: dict[str, str]) -> None:
    out = run(env, "_id=e-00-00").stdout
    local = T0.astimezone(ZoneInfo(ZONE))
    assert local.strftime("%Y-%m-%d %H:%M:%S") in out and "1 of 1 events" in out


def test_operators_text_agency_and_time(env: dict[str, str]) -> None:
    out = run(env, "source.ip=10.0.0.0/16", "host.name^=WEB", "source.port>=40010", "source.port<40040",
              "--agency", "so-a", "--format", "jsonl").stdout
    events = [json.loads(line) for line in out.splitlines()]
    assert events and all(e["organization.id"] == "so-a" and e["host.name"].lower().startswith("web")
                          and 40010 <= e["source.port"] < 40040 for e in events)
    out = run(env, "--text", "x*y", "--format", "jsonl").stdout
    assert [json.loads(line)["_id"] for line in out.splitlines()] == ["s-03"]
    since = (T0 + timedelta(hours=30)).astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")
    out = run(env, "--since", since, "--format", "jsonl", "--limit", "1000").stdout
    assert {json.loads(line)["_id"] for line in out.splitlines()} == {
        e["_id"] for e in seed_events() if e["@timestamp"] >= iso(T0 + timedelta(hours=30))} | {"evil-1"}


def test_log_text_is_printed_literally(env: dict[str, str]) -> None:
    out = run(env, "_id=evil-1").stdout
    assert "\x1b" not in out and "\u202e" not in out
    assert "\\x1b[31mroot\\x1b[0m [bold]x[/] \\u202etxt.exe" in out and "[/]" in out


def test_histogram_and_top(env: dict[str, str]) -> None:
    out = run(env, "--histogram", "1d", "--format", "jsonl").stdout
    days = [json.loads(line) for line in out.splitlines()]
    assert sum(d["count"] for d in days) == len(seed_events()) + 1
    assert days[0]["start"] == "2025-02-28T17:00:00.000Z"  # 1 March, midnight in Ho Chi Minh City
    out = run(env, "--top", "organization.id").stdout
    assert "top 2 values of organization.id" in out and "so-a" in out
    out = run(env, "--top", "user.name", "--top-size", "1", "--format", "jsonl").stdout
    assert [json.loads(line)["value"] for line in out.splitlines()] == ["root"]  # root and Root


@pytest.mark.parametrize(("args", "message"), [
    (["user.name"], "filter 'user.name'"),
    (["user.name' OR 1=1 --=x"], "field"),
    (["source.ip=not-an-ip"], "not an IP address"),
    (["--histogram", "2h"], "interval"),
    (["--cursor", "' OR 1=1 --"], "invalid cursor"),
    (["--text", "x" * 300], "searchable"),
    (["--format", "xml"], "table or jsonl"),
    (["--top", "@timestamp"], "time field"),
])
def test_bad_input_exits_2_with_a_message(env: dict[str, str], args: list[str], message: str) -> None:
    result = run(env, *args, code=2)
    assert message in result.stderr and "Traceback" not in result.stderr


def test_parse_filters() -> None:
    got = parse_filters(["user.name=a", "user.name=B", "source.ip=10.0.0.0/8", "host.name!=x", "url.path^=/adm",
                         "source.port>=10", "source.port<20", "message=a=b"], ["tags"], ["kv.action"])
    assert got == [FieldFilter("source.ip", "cidr", "10.0.0.0/8"), FieldFilter("host.name", "not_equals", "x"),
                   FieldFilter("url.path", "prefix", "/adm"), FieldFilter("user.name", "in", ["a", "B"]),
                   FieldFilter("message", "equals", "a=b"), FieldFilter("source.port", "range", (10, 20)),
                   FieldFilter("tags", "exists", True), FieldFilter("kv.action", "exists", False)]
