"""Files read in place (soc.ingest.sources.fileset), the reader of the ``file`` and ``evtx``
source types: a share where Windows admins drop .evtx exports is watched; each new or changed
export is read; a re-export of the same log stores nothing twice, a cleared log gets new ids;
a file that is not what its name says is refused once; progress survives a restart; nothing is
moved."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

from soc.ingest import Record
from soc.ingest.sources import Batch, FileSet
from tests.conftest import shared

SHORT = ("evtx", "Security_short_selected.evtx")  # 7 records
OTHER = ("evtx", "new-user-security.evtx")        # 4 records, another log


def take(files: FileSet) -> tuple[list[Record], list[Batch]]:
    """One pass: every batch, acknowledged."""
    records: list[Record] = []
    batches: list[Batch] = []
    for batch in files.batches():
        records += batch
        batches.append(batch)
        files.ack(batch)
    return records, batches


def test_exports_are_read_once_then_again_when_they_change(tmp_path: Path) -> None:
    share = tmp_path / "share"
    (share / "HOST01").mkdir(parents=True)
    (share / "HOST01" / "notes.txt").write_text("not an event log\n")
    export = share / "HOST01" / "Security.evtx"
    shutil.copyfile(shared(*SHORT), export)
    state = tmp_path / "state.json"

    first, batches = take(FileSet(share, state, suffixes=(".evtx",)))
    assert len(first) == 7 and batches[-1].final and batches[-1].key == str(export.resolve())
    assert take(FileSet(share, state, suffixes=(".evtx",)))[0] == []  # a restart reads nothing again

    # the admin exports the same log again (same records, a newer file): read again, same ids
    shutil.copyfile(shared(*SHORT), export)
    os.utime(export, (time.time() + 5, time.time() + 5))
    again, _ = take(FileSet(share, state, suffixes=(".evtx",)))
    assert [r.event_id for r in again] == [r.event_id for r in first]

    # the log was cleared and exported again: its record numbers start over, its ids are new
    shutil.copyfile(shared(*OTHER), export)
    cleared, _ = take(FileSet(share, state, suffixes=(".evtx",)))
    assert len(cleared) == 4 and not {r.event_id for r in cleared} & {r.event_id for r in first}
    assert sorted(p.name for p in (share / "HOST01").iterdir()) == ["Security.evtx", "notes.txt"]  # nothing moved


def test_a_file_that_is_not_an_evtx_is_refused_once(tmp_path: Path) -> None:
    share = tmp_path / "share"
    share.mkdir()
    bogus = share / "x.evtx"
    bogus.write_bytes(os.urandom(5000))
    state = tmp_path / "state.json"
    records, batches = take(FileSet(share, state, suffixes=(".evtx",)))
    assert records == [] and len(batches) == 1
    assert batches[0].final and "refused: named .evtx but not a Windows event log file" in (batches[0].failed or "")
    assert batches[0].errors == [(f"{bogus.resolve()}:0", batches[0].failed)]
    assert take(FileSet(share, state, suffixes=(".evtx",)))[1] == []  # not again while unchanged
    shutil.copyfile(shared(*SHORT), bogus)  # replaced by a real export: read
    assert len(take(FileSet(share, state, suffixes=(".evtx",)))[0]) == 7


def test_an_interrupted_read_resumes_and_a_grown_log_is_read_from_where_it_stopped(tmp_path: Path) -> None:
    log = tmp_path / "exports" / "app.log"
    log.parent.mkdir()
    log.write_bytes(b"".join(b"line %d\n" % i for i in range(1000)))
    state = tmp_path / "state.json"
    files = FileSet(log, state, batch_size=300)
    got: list[Record] = []
    for batch in files.batches():
        got += batch
        files.ack(batch)
        if len(got) == 600:
            break  # the process dies after two stored batches
    rest, _ = take(FileSet(log, state, batch_size=300))
    assert [r.raw for r in got + rest] == [b"line %d" % i for i in range(1000)]
    with open(log, "ab") as fh:
        fh.write(b"line 1000\nline 1001\n")
    grown, _ = take(FileSet(log, state))
    assert [r.raw for r in grown] == [b"line 1000", b"line 1001"]
    assert len({r.event_id for r in got + rest + grown}) == 1002


def test_follow_waits_for_a_copy_to_settle_and_picks_up_new_exports(tmp_path: Path) -> None:
    share = tmp_path / "share"
    share.mkdir()
    files = FileSet(share, tmp_path / "state.json", suffixes=(".evtx",), follow=True, settle_seconds=0.3,
                    poll_interval=0.05)
    seen: list[Record] = []
    finals: list[str] = []

    def run() -> None:
        for batch in files.batches():
            seen.extend(batch)
            if batch.final:
                finals.append(Path(batch.key).name)
            files.ack(batch)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        shutil.copyfile(shared(*SHORT), share / "a.evtx")
        time.sleep(0.15)
        assert finals == []  # still settling
        deadline = time.monotonic() + 10
        while finals != ["a.evtx"] and time.monotonic() < deadline:
            time.sleep(0.02)
        shutil.copyfile(shared(*OTHER), share / "b.EVTX")
        while finals != ["a.evtx", "b.EVTX"] and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        files.stop()
        thread.join(10)
    assert finals == ["a.evtx", "b.EVTX"] and len(seen) == 11
