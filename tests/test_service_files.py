"""Files through the embedded service (``soc run --once``): a file whose content is not what its
name says is refused (dead letter naming the file and what was expected, ``failed/`` with its
``.error.txt``); a damaged .evtx is reported partial with its counts; every event from a file
carries ``log.file.path``; one line per finished file says what became of its records; a ``file``
source reads once and remembers it across restarts."""

from __future__ import annotations

import gzip
import os
import shutil
import time
from pathlib import Path

import pytest

from soc.app import App
from soc.service import run_service
from tests.conftest import shared
from tests.service_helpers import RULES, dead_letters, stored_events, workspace

AUTH_LOG = ("elastic-examples", "suspicious_login_activity", "data", "auth.log")
AGENCY = {"id": "so-files", "name": "Sở Tệp", "level": "province"}


def once(settings, lines: list[str] | None = None) -> dict:  # noqa: ANN001
    out = lines if lines is not None else []
    with App(settings, rule_dirs=RULES) as app:
        return run_service(app, once=True, out=lambda line: out.append(str(line)))


def drop(inbox: Path, name: str, data: bytes) -> Path:
    inbox.mkdir(parents=True, exist_ok=True)
    target = inbox / name
    target.write_bytes(data)
    old = time.time() - 60
    os.utime(target, (old, old))
    return target


def test_inbox_refuses_content_that_is_not_what_the_name_says(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = workspace(tmp_path, monkeypatch, {"inbox.yml": {"name": "drop", "type": "inbox", "agency": "so-files"}},
                         [AGENCY])
    auth = shared(*AUTH_LOG).read_bytes()
    whole_gzip = gzip.compress(auth)
    drop(settings.inbox, "x.evtx", os.urandom(70_000))
    drop(settings.inbox, "notes.gz", b"plain text, not gzip\n")
    drop(settings.inbox, "cut.log.gz", whole_gzip[: len(whole_gzip) // 2])
    drop(settings.inbox, "auth.log", auth)
    lines: list[str] = []
    once(settings, lines)

    failed = settings.inbox / "failed"
    assert sorted(p.name for p in failed.iterdir()) == [
        "cut.log.gz", "cut.log.gz.error.txt", "notes.gz", "notes.gz.error.txt", "x.evtx", "x.evtx.error.txt"]
    assert sorted(p.name for p in (settings.inbox / "done").iterdir()) == ["auth.log"]
    assert "expected the EVTX header 'ElfFile'" in (failed / "x.evtx.error.txt").read_text()
    assert "expected the gzip magic bytes 1f 8b" in (failed / "notes.gz.error.txt").read_text()
    assert "corrupt or truncated gzip data" in (failed / "cut.log.gz.error.txt").read_text()

    letters = {Path(d["origin"].rsplit(":", 1)[0]).name: d["reason"] for d in dead_letters(settings)}
    dropped = str(settings.inbox.resolve())
    assert letters["x.evtx"].startswith(f"source: {dropped}/x.evtx: refused: named .evtx but not a Windows event")
    assert letters["notes.gz"].startswith(f"source: {dropped}/notes.gz: refused: named .gz but not gzip data")
    assert "cut.log.gz: corrupt or truncated gzip data after decompressed offset" in letters["cut.log.gz"]

    report = {line.split(": ", 1)[1].split(" ", 1)[0]: line for line in lines if line.startswith("inbox 'drop': ")}
    assert set(report) == {"x.evtx", "notes.gz", "cut.log.gz", "auth.log"}, lines
    assert " failed: " in report["x.evtx"] and "0 stored" in report["x.evtx"]
    assert report["auth.log"] == ("inbox 'drop': auth.log (syslog) done: 7121 stored, 0 already there, "
                                  "0 partially parsed, 0 failed to parse, 0 dead-lettered")
    cut_stored = int(report["cut.log.gz"].split("(gzip, syslog) failed: ")[1].split("(")[1].split(" stored")[0])
    assert 0 < cut_stored < 7121  # what came before the damage is stored, then the file fails

    events = stored_events(settings)
    by_file: dict[str, int] = {}
    for event in events:
        by_file[event["log.file.path"]] = by_file.get(event["log.file.path"], 0) + 1
    # log.file.path: where the file was dropped (it has moved to done/ or failed/ since)
    assert by_file == {f"{dropped}/auth.log": 7121, f"{dropped}/cut.log.gz": cut_stored}
    assert {e["organization.id"] for e in events} == {"so-files"} and {e["soc.source"] for e in events} == {"drop"}


def test_a_damaged_evtx_is_partial_with_its_counts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = workspace(tmp_path, monkeypatch, {"inbox.yml": {"name": "drop", "type": "inbox", "agency": "so-files"}},
                         [AGENCY])
    security = shared("evtx", "security.evtx").read_bytes()
    drop(settings.inbox, "cut.evtx", security[: 0x1000 + 3 * 0x10000])  # a copy cut short at a chunk boundary
    drop(settings.inbox, "bad-chunk.evtx", shared("evtx", "sample_with_a_bad_chunk_magic.evtx").read_bytes())
    lines: list[str] = []
    once(settings, lines)
    report = {line.split(": ", 1)[1].split(" ", 1)[0]: line for line in lines if line.startswith("inbox 'drop': ")}
    assert report["cut.evtx"].startswith(
        "inbox 'drop': cut.evtx (Windows .evtx records (json)) partial: 260 stored, 0 already there")
    assert "1 unreadable part(s) dead-lettered, first: truncated: the file header declares 26 chunks" \
        in report["cut.evtx"]
    assert report["bad-chunk.evtx"].startswith("inbox 'drop': bad-chunk.evtx (Windows .evtx records (json)) "
                                               "partial: 270 stored")
    assert "5 dead-lettered; 5 unreadable part(s)" in report["bad-chunk.evtx"]
    # read to their end: done/ (the unreadable parts are in the dead-letter file)
    assert sorted(p.name for p in (settings.inbox / "done").iterdir()) == ["bad-chunk.evtx", "cut.evtx"]
    assert sum(1 for d in dead_letters(settings) if "cut.evtx" in d["origin"]) == 1
    events = stored_events(settings)
    assert len(events) == 530 and {e["log.file.path"] for e in events} == {
        str(settings.inbox.resolve() / "cut.evtx"), str(settings.inbox.resolve() / "bad-chunk.evtx")}


def test_a_file_source_reads_once_and_remembers_across_restarts(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    replay = tmp_path / "exports"
    (replay / "web").mkdir(parents=True)
    auth = shared(*AUTH_LOG).read_bytes()
    (replay / "auth.log").write_bytes(auth[:100_000])
    (replay / "web" / "old.log.gz").write_bytes(gzip.compress(auth[100_000:200_000]))
    (replay / "bogus.evtx").write_bytes(b"not an event log\n")
    settings = workspace(tmp_path, monkeypatch,
                         {"f.yml": {"name": "exports", "type": "file", "path": str(replay), "agency": "so-files"}},
                         [AGENCY])
    lines: list[str] = []
    first = once(settings, lines)["sources"]["exports"]
    n = len(stored_events(settings))
    assert first["stored"] == n > 0 and first["files_done"] == 2 and first["files_failed"] == 1
    assert [p.name for p in replay.rglob("*")] and (replay / "bogus.evtx").exists()  # nothing is moved
    assert len([d for d in dead_letters(settings) if "bogus.evtx" in d["origin"]]) == 1
    assert {e["log.file.path"] for e in stored_events(settings)} == {
        str((replay / "auth.log").resolve()), str((replay / "web" / "old.log.gz").resolve())}

    lines.clear()  # a restart reads nothing again, and does not refuse the same file twice
    again = once(settings, lines)["sources"]
    assert again.get("exports", {}).get("records", 0) == 0 and len(stored_events(settings)) == n
    assert len([d for d in dead_letters(settings) if "bogus.evtx" in d["origin"]]) == 1
    assert not [line for line in lines if line.startswith("file 'exports': ")]

    with open(replay / "auth.log", "ab") as fh:  # the log grew: only the new lines are read
        fh.write(auth[100_000:].split(b"\n", 1)[1][:5000].rsplit(b"\n", 1)[0] + b"\n")
    lines.clear()
    grown = once(settings, lines)["sources"]["exports"]
    added = len(stored_events(settings)) - n
    assert added > 0 and grown["stored"] == added == grown["records"] and grown["duplicates"] == 0
    assert [line.split(" done:")[0] for line in lines if line.startswith("file 'exports': ")] == [
        "file 'exports': auth.log (syslog)"]


def test_tail_is_read_to_its_end_in_one_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log_file = tmp_path / "app.log"
    shutil.copyfile(shared(*AUTH_LOG), log_file)
    settings = workspace(tmp_path, monkeypatch,
                         {"t.yml": {"name": "app", "type": "tail", "path": str(log_file), "agency": "so-files"},
                          "s.yml": {"name": "sys", "type": "syslog", "agency": "by-network"}}, [AGENCY])
    lines: list[str] = []
    result = once(settings, lines)
    assert result["sources"]["app"]["stored"] == 7121
    assert "source syslog 'sys': not started (a one-pass run reads only the sources that end: inbox, file, " \
           "evtx, tail)" in lines
