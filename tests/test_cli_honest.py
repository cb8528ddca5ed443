"""An honest CLI (issue #9, item 8): times the analyst types are read or refused, lists say how
many there are in all and show the ids the next command needs, text from logs is printed
literally, ``soc hunt`` fails when its rules did, ``soc rules check`` shows progress, output to
a file is not wrapped.

Every time here is relative to a fixed clock (``soc.cli.timeargs.cli_clock``), never the
machine's.
"""

from __future__ import annotations

import getpass
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from soc.cli import app, timeargs
from soc.clock import fixed_clock
from soc.model import iso
from soc.store.sqlite import SQLiteStore
from soc.ui import alert_line, console, json_text, literal

ROOT = Path(__file__).resolve().parent.parent
#: 12:00 in Asia/Ho_Chi_Minh (UTC+7): local midnight today is 2026-12-06T17:00Z
NOW = datetime(2026, 12, 7, 5, 0, tzinfo=UTC)
ZONE = "Asia/Ho_Chi_Minh"
EVIL_USER = "[/]"
EVIL_MESSAGE = "Failed password for \x1b[31mroot\x1b[0m from 203.0.113.9 \u202etxt.exe [bold]x[/]"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setattr(getpass, "getuser", lambda: "an.nguyen")  # the shell user: local:an.nguyen
    monkeypatch.chdir(tmp_path)  # no soc.yml of the checkout
    monkeypatch.setattr(timeargs, "cli_clock", fixed_clock(NOW))
    return {"SOC_DATA_DIR": str(tmp_path / "data"), "SOC_STORE_URL": "", "SOC_TIMEZONE": ZONE, "COLUMNS": "250"}


def run(env: dict[str, str], *args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(app, list(args), env=env)
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    return result


def flat(text: str) -> str:
    """Output with the box drawing and line breaks of rich panels removed."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


def alert(alert_id: str, first_seen: datetime, *, user: str = "an", event_ids: list[str] | None = None) -> dict[str, Any]:
    moment = iso(first_seen)
    return {"id": alert_id, "kind": "correlation", "agency": "so-tttt", "status": "new",
            "rule": {"id": "0b8e3f4c-2a6d-4e71-8c1f-5d9b7a3e6c21", "title": "SSH Brute Force From One Source",
                     "level": "high", "author": "SOC project", "tags": ["attack.t1110.001"]},
            "first_seen": moment, "last_seen": moment, "detected_at": moment, "event_count": 7,
            "event_ids": event_ids or [], "group": {"user.name": user},
            "entities": {"user.name": [user], "host.name": ["combo"]}}


#: alert id -> first seen; NOW is 2026-12-07 12:00 +07
TIMES = {
    "a-30min": NOW - timedelta(minutes=30),                  # 11:30 today
    "a-3h": NOW - timedelta(hours=3),                        # 09:00 today
    "a-yesterday": datetime(2026, 12, 6, 10, 0, tzinfo=UTC),  # 17:00 yesterday
    "a-yday-0030": datetime(2026, 12, 5, 17, 30, tzinfo=UTC),  # 00:30 yesterday (UTC: the day before)
    "a-2days": datetime(2026, 12, 5, 16, 30, tzinfo=UTC),     # 23:30 two days ago
}


@pytest.fixture
def seeded(env: dict[str, str]) -> dict[str, str]:
    store = SQLiteStore(Path(env["SOC_DATA_DIR"]) / "soc.db")
    for alert_id, moment in TIMES.items():
        store.create("alerts", alert_id, alert(alert_id, moment))
    store.write_events([{"_id": "evil-event", "@timestamp": iso(NOW - timedelta(hours=5)),
                         "event.dataset": "linux.auth", "host.name": "combo", "user.name": EVIL_USER,
                         "message": EVIL_MESSAGE}])
    store.create("alerts", "a-evil", alert("a-evil", NOW - timedelta(hours=5), user=EVIL_USER,
                                           event_ids=["evil-event"]))
    store.close()
    return env


def listed(result: Result) -> set[str]:
    return set(re.findall(r"\ba-[\w-]+", result.stdout)) - {"a-evil"}


# -- --since / --until / --limit -----------------------------------------------------------------
@pytest.mark.parametrize("bad", ["zzz", "2026-02-30", "2026-13-01T00:00", "-5m", "yesterday-ish"])
def test_a_time_that_is_not_one_exits_2_listing_the_forms(seeded: dict[str, str], bad: str) -> None:
    result = run(seeded, "alerts", "list", "--since", bad, code=2)
    text = flat(result.stderr + result.stdout)
    assert "--since" in text and repr(bad) in text
    for form in ("ISO 8601", "2026-12-07T08:30+07:00", "15m", "2h", "7d", "today", "yesterday"):
        assert form in text, form


@pytest.mark.parametrize(("args", "expected"), [
    (["--since", "2h"], {"a-30min"}),
    (["--since", "today"], {"a-30min", "a-3h"}),
    (["--since", "yesterday"], {"a-30min", "a-3h", "a-yesterday", "a-yday-0030"}),
    (["--since", "yesterday", "--until", "today"], {"a-yesterday", "a-yday-0030"}),
    (["--since", "2026-12-06"], {"a-30min", "a-3h", "a-yesterday", "a-yday-0030"}),  # midnight +07
    (["--until", "2026-12-06"], {"a-2days"}),
    (["--since", "2026-12-06T09:00:00Z", "--until", "2026-12-07T03:00+00:00"], {"a-yesterday", "a-3h"}),
    (["--since", "2026-12-06 00:00"], {"a-30min", "a-3h", "a-yesterday", "a-yday-0030"}),  # no zone: +07
    (["--since", "2026-12-06T00:00+00:00"], {"a-30min", "a-3h", "a-yesterday"}),
    (["--since", "3d"], set(TIMES)),
])
def test_since_and_until_select_in_the_analysts_zone(seeded: dict[str, str], args: list[str],
                                                      expected: set[str]) -> None:
    result = run(seeded, "alerts", "list", *args)
    assert listed(result) == expected
    assert listed(run(seeded, "alerts", "list", "--json", *args)) == expected


def test_since_after_until_and_a_bad_limit_exit_2(seeded: dict[str, str]) -> None:
    result = run(seeded, "alerts", "list", "--since", "today", "--until", "yesterday", code=2)
    assert "is not before --until" in flat(result.stderr)
    for limit in ("-5", "0"):
        bad = run(seeded, "alerts", "list", "--limit", limit, code=2)
        assert "--limit" in flat(bad.stderr + bad.stdout)


def test_every_time_filtering_list_takes_the_same_forms(seeded: dict[str, str]) -> None:
    for command in (["incidents", "list"], ["playbook", "runs"], ["exceptions", "list"], ["report", "outbox"]):
        assert "yesterday" in flat(run(seeded, *command, "--since", "zzz", code=2).stderr), command
        run(seeded, *command, "--limit", "0", code=2)
        run(seeded, *command, "--since", "yesterday", "--until", "1h")


# -- N of TOTAL and ids --------------------------------------------------------------------------
def test_lists_say_how_many_there_are_in_all_and_show_ids(seeded: dict[str, str]) -> None:
    result = run(seeded, "alerts", "list", "--limit", "2")
    assert "2 of 6 alerts" in result.stdout
    assert listed(result) == {"a-30min", "a-3h"}  # newest first, with their ids
    filtered = run(seeded, "alerts", "list", "--since", "yesterday", "--limit", "3")
    assert "3 of 5 alerts" in filtered.stdout  # the total counts the same filters
    assert "6 of 6 alerts" in run(seeded, "alerts", "list").stdout
    alert_id = "a-yday-0030"
    assert alert_id in run(seeded, "alerts", "show", alert_id).stdout

    opened = run(seeded, "incidents", "open", "a-30min", "a-3h").stdout
    incident_id = re.search(r"inc-[0-9a-f]{16}", opened).group()  # type: ignore[union-attr]
    incidents = run(seeded, "incidents", "list", "--limit", "1").stdout
    assert "1 of 1 incidents" in incidents and incident_id in incidents
    assert "0 of 0 incidents" in run(seeded, "incidents", "list", "--since", "1h").stdout  # discovered 3 h ago
    assert "1 of 1 incidents" in run(seeded, "incidents", "list", "--since", "4h").stdout

    for number in (1, 2, 3):
        run(seeded, "exceptions", "add", "--rule", "0b8e3f4c-2a6d-4e71-8c1f-5d9b7a3e6c21", "--where",
            f"source.ip=10.0.0.{number}", "--owner", "soc", "--reason", "scanner", "--expires", "never", "--no-check")
    exceptions = run(seeded, "exceptions", "list", "--limit", "2").stdout
    assert "2 of 3 exceptions in force" in exceptions
    assert len(re.findall(r"\bexc-[0-9a-f]+", exceptions)) == 2

    runs = run(seeded, "playbook", "runs", "--limit", "1").stdout
    assert "0 of 0 playbook runs" in runs
    assert "0 of 0 outbox entries" in run(seeded, "report", "outbox").stdout


def test_playbook_runs_count_all_and_show_run_ids(seeded: dict[str, str]) -> None:
    store = SQLiteStore(Path(seeded["SOC_DATA_DIR"]) / "soc.db")
    for number in range(5):
        created = iso(NOW - timedelta(hours=number))
        store.create("playbook_runs", f"run-{number}", {
            "id": f"run-{number}", "playbook_id": "ssh-brute-force", "status": "succeeded", "created_at": created,
            "started_at": created, "finished_at": created, "actor": "system", "trigger_type": "alerts"})
    store.close()
    runs = run(seeded, "playbook", "runs", "--limit", "2").stdout
    assert "2 of 5 playbook runs" in runs and "run-0" in runs and "run-1" in runs and "run-4" not in runs
    assert "2 of 2 playbook runs" in run(seeded, "playbook", "runs", "--since", "90m").stdout


# -- text from logs ------------------------------------------------------------------------------
def test_literal_escapes_controls_and_bidi_and_keeps_the_rest() -> None:
    assert literal("a\x1b[31mb\x7f\x85\u202e\u2066\n\tc") == "a\\x1b[31mb\\x7f\\x85\\u202e\\u2066\\n\\tc"
    assert literal("[/] Nguyễn Văn A C:\\Windows") == "[/] Nguyễn Văn A C:\\Windows"
    text = json_text({"m": EVIL_MESSAGE + "\x85\u2069", "u": "Nguyễn"})
    assert not re.search("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", text)
    assert "Nguyễn" in text and json.loads(text) == {"m": EVIL_MESSAGE + "\x85\u2069", "u": "Nguyễn"}


def test_log_text_is_printed_literally(seeded: dict[str, str]) -> None:
    listed_out = run(seeded, "alerts", "list").stdout
    assert "user.name=[/]" in listed_out
    shown = run(seeded, "alerts", "show", "a-evil").stdout
    assert "\x1b" not in shown and "\u202e" not in shown
    assert "\\x1b[31mroot\\x1b[0m" in shown and "\\u202etxt.exe [bold]x[/]" in shown
    as_json = run(seeded, "alerts", "list", "--json").stdout
    assert "\x1b" not in as_json and "\u202e" not in as_json
    assert {json.loads(line)["group"]["user.name"] for line in as_json.splitlines()} >= {EVIL_USER}

    opened = run(seeded, "incidents", "open", "a-evil").stdout
    incident_id = re.search(r"inc-[0-9a-f]{16}", opened).group()  # type: ignore[union-attr]
    run(seeded, "incidents", "note", incident_id, "seen \x1b]0;owned\x07 [red]x[/]")
    incident = run(seeded, "incidents", "show", incident_id).stdout
    assert "\x1b" not in incident and "\\x1b]0;owned\\x07 [red]x[/]" in incident and "user.name=[/]" in incident
    assert incident_id in run(seeded, "incidents", "list").stdout


def test_service_announcements_are_literal_and_not_wrapped(monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    from zoneinfo import ZoneInfo

    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    out = console()
    body = alert("a-evil", NOW, user=EVIL_USER)
    body["group"] = {"user.name": EVIL_USER + "\x1b[2J" + "x" * 300}
    out.print(alert_line(body, ZoneInfo(ZONE)))
    out.print("stored 123 events; " + "y" * 400)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2  # one line per message: not wrapped at 80 columns
    assert lines[0].startswith("ALERT high 2026-12-07 12:00:00 +07 SSH Brute Force")
    assert "user.name=[/]\\x1b[2J" in lines[0] and "id a-evil" in lines[0]


def test_tables_are_not_folded_when_not_a_terminal(seeded: dict[str, str]) -> None:
    env = {k: v for k, v in seeded.items() if k != "COLUMNS"}
    store = SQLiteStore(Path(env["SOC_DATA_DIR"]) / "soc.db")
    store.create("alerts", "a-wide", alert("a-wide", NOW, user="u" * 200))
    store.close()
    out = CliRunner().invoke(app, ["alerts", "list", "--since", "1m"], env={**env, "COLUMNS": None}).stdout
    assert "u" * 200 in out


# -- soc hunt ------------------------------------------------------------------------------------
ROOT_LOGIN = ROOT / "detections" / "linux" / "ssh" / "ssh_root_login.yml"
SAMPLE = ROOT / "detections" / "regression_data" / "linux" / "ssh" / "ssh_root_login" / \
    "183c3d62-c87c-4bf8-9fe2-a9883a1e5c50.log"
WINDOWS_RULE = """title: Failed Windows Logon
id: 5b0c2ae8-7d2f-4f43-9b57-0a4fd2a8a001
status: test
logsource:
    product: windows
    service: security
detection:
    selection:
        EventID: 4625
    condition: selection
level: low
"""


def hunt(env: dict[str, str], rules: list[Path], *extra: str, code: int) -> Result:
    args = ["hunt", str(SAMPLE), "--no-progress", "--timezone", "UTC"]
    for path in rules:
        args += ["--rules", str(path)]
    return run(env, *args, *extra, code=code)


def test_hunt_jsonl_puts_the_summary_on_stderr(env: dict[str, str]) -> None:
    result = hunt(env, [ROOT_LOGIN], "--format", "jsonl", code=0)
    alerts = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(alerts) == 2 and all(a["rule"]["title"] == "Direct Root Login Over SSH" for a in alerts)
    assert "1 of 1 rules applied to these logs; 2 alerts" in result.stderr
    table = hunt(env, [ROOT_LOGIN], code=0)
    assert "2 of 2 alerts" in table.stdout and "2 alerts; ingest" in table.stdout


def test_hunt_fails_when_a_rule_failed_to_load(env: dict[str, str], tmp_path: Path) -> None:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "root.yml").write_text(ROOT_LOGIN.read_text(encoding="utf-8"), encoding="utf-8")
    (folder / "broken.yml").write_text("title: [unclosed\ndetection: {", encoding="utf-8")
    result = hunt(env, [folder], "--format", "jsonl", code=1)
    assert len(result.stdout.splitlines()) == 2  # the alerts are still printed
    assert "broken.yml" in result.stderr and "--allow-rule-errors" in result.stderr
    hunt(env, [folder], "--format", "jsonl", "--allow-rule-errors", code=0)


def test_hunt_fails_when_no_rule_applies(env: dict[str, str], tmp_path: Path) -> None:
    rule = tmp_path / "windows.yml"
    rule.write_text(WINDOWS_RULE, encoding="utf-8")
    result = hunt(env, [rule], code=1)
    assert "none of the 1 rules applies" in flat(result.stderr) and "--allow-no-rules" in result.stderr
    assert "0 of 1 rules applied" in result.stdout
    hunt(env, [rule], "--allow-no-rules", code=0)


# -- soc rules check -----------------------------------------------------------------------------
def test_rules_check_shows_progress_on_stderr(env: dict[str, str], tmp_path: Path) -> None:
    """CliRunner's stderr is not a terminal: progress is a line per tenth of each phase."""
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "root.yml").write_text(ROOT_LOGIN.read_text(encoding="utf-8"), encoding="utf-8")
    (folder / "windows.yml").write_text(WINDOWS_RULE, encoding="utf-8")
    result = run(env, "rules", "check", "--rules", str(folder))
    for line in ("loading rule files: 0/2", "loading rule files: 2/2", "compiling rules: 0/2",
                 "compiling rules: 2/2"):
        assert line in result.stderr, result.stderr
    assert "loading" not in result.stdout and "2 rules:" in result.stdout
    quiet = run(env, "rules", "check", "--rules", str(folder), "--no-progress")
    assert "loading rule files" not in quiet.stderr


# -- incident titles -----------------------------------------------------------------------------
def brute(alert_id: str, source: str, detected: datetime, host: str = "combo") -> dict[str, Any]:
    body = alert(alert_id, detected)
    body["group"] = {"source.ip": source}
    body["entities"] = {"source.ip": [source], "host.name": [host], "user.name": ["root"]}
    return body


def test_incident_titles_tell_incidents_apart(tmp_path: Path) -> None:
    from zoneinfo import ZoneInfo

    from soc.incidents.service import Incidents

    store = SQLiteStore(tmp_path / "soc.db")
    service = Incidents(store, zone=ZoneInfo(ZONE), group_fields=("host.name",))
    late_evening = datetime(2026, 12, 6, 18, 0, tzinfo=UTC)  # 01:00 on 2026-12-07 in +07
    first = service.open_from_alerts([brute("b-1", "203.0.113.7", late_evening)], actor="pb")
    second = service.open_from_alerts([brute("b-2", "198.51.100.3", late_evening + timedelta(days=10))], actor="pb")
    assert first.id != second.id
    assert first.title == "SSH Brute Force From One Source against combo from 203.0.113.7, 2026-12-07"
    assert second.title == "SSH Brute Force From One Source against combo from 198.51.100.3, 2026-12-17"

    # the campaign grows: the title follows the incident
    more = [brute(f"b-1{n}", f"203.0.113.{n}", late_evening + timedelta(hours=n)) for n in (20, 21)]
    grown = service.open_from_alerts(more, actor="pb")
    assert grown.id == first.id
    assert grown.title == "SSH Brute Force From One Source against combo from 3 sources, 2026-12-07"

    # a playbook's title with placeholders (playbooks/ssh-brute-force.yml) is filled the same way
    template = "Dò mật khẩu SSH vào {target} / SSH brute force against {target} — {source}, {date}"
    other = service.open_from_alerts([brute("b-3", "192.0.2.1", late_evening + timedelta(days=30), host="mail")],
                                     actor="pb", title=template)
    assert other.title == "Dò mật khẩu SSH vào mail / SSH brute force against mail — 192.0.2.1, 2027-01-06"

    # a title set by hand is kept as written
    service.update(first.id, actor="an", title="Chiến dịch dò mật khẩu tháng 12")
    kept = service.open_from_alerts([brute("b-14", "203.0.113.99", late_evening + timedelta(hours=4))], actor="pb")
    assert kept.id == first.id and kept.title == "Chiến dịch dò mật khẩu tháng 12"
    store.close()


def test_incidents_opened_from_the_cli_have_distinct_titles(env: dict[str, str]) -> None:
    store = SQLiteStore(Path(env["SOC_DATA_DIR"]) / "soc.db")
    store.create("alerts", "c-1", brute("c-1", "203.0.113.7", NOW - timedelta(days=20)))
    store.create("alerts", "c-2", brute("c-2", "198.51.100.3", NOW - timedelta(hours=2)))
    store.close()
    run(env, "incidents", "open", "c-1")
    run(env, "incidents", "open", "c-2")
    listed_out = run(env, "incidents", "list", "--json").stdout
    titles = sorted(json.loads(line)["title"] for line in listed_out.splitlines())
    assert titles == ["SSH Brute Force From One Source against combo from 198.51.100.3, 2026-12-07",
                      "SSH Brute Force From One Source against combo from 203.0.113.7, 2026-11-17"]
