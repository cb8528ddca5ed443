"""Drop folder (soc.ingest.sources.inbox): ingest once, move to done/ or failed/, resume."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path

from soc.ingest import Record
from soc.ingest.sources import Batch, Inbox
from tests.conftest import shared

AUTH_LOG = ("elastic-examples", "suspicious_login_activity", "data", "auth.log")
ALERTS = ("suricata", "samples", "honeypot-2018", "alerts-only.json")


def run(inbox: Inbox, ack: bool = True, **kwargs) -> tuple[list[Record], list[Batch]]:
    records: list[Record] = []
    batches: list[Batch] = []
    for batch in inbox.batches(**kwargs):
        records += batch
        batches.append(batch)
        if ack:
            inbox.ack(batch)
    return records, batches


def drop(src: Path, inbox: Path, name: str | None = None) -> Path:
    inbox.mkdir(parents=True, exist_ok=True)
    target = inbox / (name or src.name)
    shutil.copyfile(src, target)
    old = time.time() - 60
    os.utime(target, (old, old))
    return target


def test_lifecycle_done_and_failed(tmp_path: Path) -> None:
    inbox_dir = tmp_path / "inbox"
    drop(shared(*AUTH_LOG), inbox_dir)
    drop(shared(*ALERTS), inbox_dir)
    bad = inbox_dir / "broken.json"
    bad.write_bytes(b'[{"ok": 1}, {"ok": 2}, {"broken": ')
    os.utime(bad, (time.time() - 60, time.time() - 60))
    (inbox_dir / ".hidden").write_bytes(b"skip me\n")
    (inbox_dir / "copying.log.part").write_bytes(b"skip me too\n")
    inbox = Inbox(inbox_dir, settle_seconds=0, batch_size=2000)
    records, batches = run(inbox)
    finals = [b for b in batches if b.final]
    assert len(finals) == 3
    assert len(records) == 7121 + 44 + 2
    assert len({r.event_id for r in records}) == len(records)
    assert sorted(p.name for p in (inbox_dir / "done").iterdir()) == ["alerts-only.json", "auth.log"]
    assert sorted(p.name for p in (inbox_dir / "failed").iterdir()) == [
        "broken.json", "broken.json.error.txt"]
    note = (inbox_dir / "failed" / "broken.json.error.txt").read_text()
    assert "after element 2" in note and "move it back" in note
    broken_final = next(b for b in finals if b.key.endswith("broken.json"))
    assert broken_final.errors and "after element 2" in broken_final.errors[0][1]
    assert sorted(p.name for p in inbox_dir.iterdir()) == [
        ".hidden", ".state.json", "copying.log.part", "done", "failed"]
    assert json.loads((inbox_dir / ".state.json").read_text()) == {}
    assert inbox.counters.errors == {"failed_file": 1}
    assert run(Inbox(inbox_dir, settle_seconds=0))[0] == []  # nothing left to do


def test_partial_ingest_resumes_after_restart_without_duplicates(tmp_path: Path) -> None:
    inbox_dir = tmp_path / "inbox"
    drop(shared(*AUTH_LOG), inbox_dir)
    first = Inbox(inbox_dir, settle_seconds=0, batch_size=1000)
    stored: list[Record] = []
    for i, batch in enumerate(first.batches()):
        stored += batch
        first.ack(batch)
        if i == 2:
            break  # the process dies after three stored batches
    assert len(stored) == 3000
    assert (inbox_dir / "auth.log").exists()

    second = Inbox(inbox_dir, settle_seconds=0, batch_size=1000)
    rest, _ = run(second)
    assert len(rest) == 7121 - 3000
    all_ids = [r.event_id for r in stored + rest]
    assert len(set(all_ids)) == 7121
    # the same file dropped again later gives the same ids (a store keeps one copy) ...
    drop(inbox_dir / "done" / "auth.log", inbox_dir)
    again, _ = run(Inbox(inbox_dir, settle_seconds=0))
    assert [r.event_id for r in again] == all_ids
    assert sorted(p.name for p in (inbox_dir / "done").iterdir()) == ["auth.log", "auth.log.1"]
    # ... while different content under the same name gets its own ids
    other = tmp_path / "other.log"
    other.write_bytes(b"a different first line\n" + shared(*AUTH_LOG).read_bytes())
    drop(other, inbox_dir, name="auth.log")
    different, _ = run(Inbox(inbox_dir, settle_seconds=0))
    assert len(different) == 7122
    assert not {r.event_id for r in different} & set(all_ids)


def test_unacknowledged_final_batch_is_offered_again_after_restart(tmp_path: Path) -> None:
    inbox_dir = tmp_path / "inbox"
    drop(shared(*ALERTS), inbox_dir)
    inbox = Inbox(inbox_dir, settle_seconds=0)
    first, batches = run(inbox, ack=False)
    assert len(first) == 44 and batches[-1].final
    assert run(inbox, ack=False)[0] == []  # not twice in one run
    assert (inbox_dir / "alerts-only.json").exists()
    again, _ = run(Inbox(inbox_dir, settle_seconds=0))
    assert [r.event_id for r in again] == [r.event_id for r in first]
    assert not (inbox_dir / "alerts-only.json").exists()


def test_files_still_being_written_wait_for_settle(tmp_path: Path) -> None:
    inbox_dir = tmp_path / "inbox"
    inbox_dir.mkdir()
    fresh = inbox_dir / "fresh.log"
    fresh.write_bytes(b"just written\n")
    inbox = Inbox(inbox_dir, settle_seconds=0.6, poll_interval=0.05)
    assert inbox.pending() == []
    time.sleep(0.4)
    with open(fresh, "ab") as handle:  # still being written: the wait starts again when seen
        handle.write(b"and more\n")
    assert inbox.pending() == []
    time.sleep(0.4)
    assert inbox.pending() == [], "changed 0.4 s ago: not settled"
    time.sleep(0.3)
    assert inbox.pending() == [fresh]
    # the file's own time does not matter (a share whose clock is ahead or behind)
    for when in (time.time() - 86400 * 365, time.time() + 86400 * 365):
        other = inbox_dir / f"other-{int(when)}.log"
        other.write_bytes(b"x\n")
        os.utime(other, (when, when))
        assert other not in Inbox(inbox_dir, settle_seconds=30).pending()
    # a one-pass read waits for what is there to settle, then reads it
    empty = inbox_dir / "empty.log"
    empty.write_bytes(b"")
    for path in inbox_dir.glob("other-*"):
        path.unlink()
    started = time.monotonic()
    records, batches = run(Inbox(inbox_dir, settle_seconds=0.3, poll_interval=0.05))
    assert time.monotonic() - started >= 0.3
    assert [r.raw for r in records] == [b"just written", b"and more"]
    assert [b.final for b in batches] == [True, True]
    assert (inbox_dir / "done" / "empty.log").exists() and (inbox_dir / "done" / "fresh.log").exists()


def test_follow_mode_picks_up_new_files_until_stopped(tmp_path: Path) -> None:
    inbox_dir = tmp_path / "inbox"
    inbox = Inbox(inbox_dir, settle_seconds=0, poll_interval=0.05)
    got: list[Record] = []

    def producer() -> None:
        for i in range(3):
            time.sleep(0.05)
            tmp = inbox_dir / f".f{i}.log"
            tmp.write_bytes(b"file %d line\n" % i)
            tmp.rename(inbox_dir / f"f{i}.log")
        time.sleep(0.3)
        inbox.stop()

    inbox_dir.mkdir()
    t = threading.Thread(target=producer)
    t.start()
    for batch in inbox.batches(follow=True):
        got += batch
        inbox.ack(batch)
    t.join()
    assert sorted(r.raw for r in got) == [b"file 0 line", b"file 1 line", b"file 2 line"]
    assert len(list((inbox_dir / "done").iterdir())) == 3
