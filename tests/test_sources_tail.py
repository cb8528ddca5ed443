"""File tail (soc.ingest.sources.tail): growth, partial lines, rotation, truncation, restarts."""

from __future__ import annotations

import os
import random
import shutil
import threading
import time
from pathlib import Path

from soc.ingest import Record
from soc.ingest.sources import Batch, FileTail
from tests.conftest import shared

AUTH_LOG = ("elastic-examples", "suspicious_login_activity", "data", "auth.log")


def drain(tail: FileTail, ack: bool = True) -> list[Record]:
    out: list[Record] = []
    while batches := tail.poll():
        for batch in batches:
            out.extend(batch)
            if ack:
                tail.ack(batch)
    return out


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as fh:
        fh.write(data)


def lines(prefix: str, a: int, b: int) -> bytes:
    return b"".join(f"{prefix} line {i}\n".encode() for i in range(a, b))


def raws(records: list[Record]) -> list[bytes]:
    return [r.raw for r in records]


def expect(prefix: str, a: int, b: int) -> list[bytes]:
    return [f"{prefix} line {i}".encode() for i in range(a, b)]


def test_follows_growth_and_holds_partial_lines(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"one\r\ntwo\n")
    tail = FileTail(log, tmp_path / "state.json", partial_timeout=0.2)
    assert raws(drain(tail)) == [b"one", b"two"]
    append(log, b"three\nfou")
    assert raws(drain(tail)) == [b"three"]
    append(log, b"r\n")
    got = drain(tail)
    assert raws(got) == [b"four"] and got[0].origin == f"{log}:15"
    append(log, b"writer died mid-line")
    assert drain(tail) == []
    time.sleep(0.25)
    assert raws(drain(tail)) == [b"writer died mid-line"]
    assert drain(tail) == []
    tail.close()


def test_real_log_written_in_random_pieces(tmp_path: Path) -> None:
    data = shared(*AUTH_LOG).read_bytes()
    log = tmp_path / "auth.log"
    log.write_bytes(b"")
    tail = FileTail(log, tmp_path / "state.json", batch_size=1000)
    rnd = random.Random(7)
    got: list[Record] = []
    pos = 0
    while pos < len(data):
        step = rnd.randint(1, 60_000)
        append(log, data[pos : pos + step])
        pos += step
        got += drain(tail)
    assert len(got) == 7121
    assert raws(got) == data.rstrip(b"\n").split(b"\n")
    assert len({r.event_id for r in got}) == 7121
    tail.close()


def test_rename_rotation_reads_old_file_to_its_end(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    log.write_bytes(lines("old", 0, 10))
    tail = FileTail(log, tmp_path / "state.json")
    got = drain(tail)
    append(log, lines("old", 10, 20))           # not read yet when rotation happens
    os.rename(log, tmp_path / "auth.log.1")
    log.write_bytes(lines("new", 0, 5))
    append(tmp_path / "auth.log.1", lines("old", 20, 25))  # writer not yet reopened
    got += drain(tail)
    append(log, lines("new", 5, 8))
    got += drain(tail)
    assert raws(got) == expect("old", 0, 25) + expect("new", 0, 8)
    assert len({r.event_id for r in got}) == len(got)
    tail.close()


def test_copytruncate_reads_the_copy_then_restarts_at_zero(tmp_path: Path) -> None:
    log = tmp_path / "syslog"
    log.write_bytes(lines("first", 0, 10))
    tail = FileTail(log, tmp_path / "state.json")
    got = drain(tail)
    append(log, lines("first", 10, 15) + b"first partial")  # unread when copied
    shutil.copyfile(log, tmp_path / "syslog.1")
    with open(log, "r+b") as fh:
        fh.truncate(0)
    append(log, lines("second", 0, 12))  # same offsets as before, different lines
    got += drain(tail)
    assert raws(got) == expect("first", 0, 15) + [b"first partial"] + expect("second", 0, 12)
    assert len({r.event_id for r in got}) == len(got)
    assert not tail.counters.errors
    tail.close()


def test_copytruncate_without_copy_and_regrown_file(tmp_path: Path) -> None:
    log = tmp_path / "syslog"
    log.write_bytes(lines("first", 0, 10))
    tail = FileTail(log, tmp_path / "state.json")
    got = drain(tail)
    # truncated and refilled beyond the read position before the next poll, no copy around
    log.write_bytes(lines("second", 0, 30))
    got += drain(tail)
    assert raws(got) == expect("first", 0, 10) + expect("second", 0, 30)
    assert len({r.event_id for r in got}) == 40
    assert tail.counters.errors == {"truncated_unread": 1}
    tail.close()


def test_restart_resumes_at_last_ack_without_loss_or_new_ids(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    state = tmp_path / "state.json"
    log.write_bytes(lines("x", 0, 100))
    tail = FileTail(log, state, batch_size=30)
    batches: list[Batch] = []
    while got := tail.poll():
        batches += got
    assert [len(b) for b in batches] == [30, 30, 30, 10]
    tail.ack(batches[0])  # only the first batch reached the store; then the process dies
    tail.close()
    append(log, lines("x", 100, 120))
    again = FileTail(log, state, batch_size=30)
    resumed = drain(again)
    assert raws(resumed) == expect("x", 30, 120)
    before = {r.raw: r.event_id for b in batches for r in b}
    assert all(before[r.raw] == r.event_id for r in resumed if r.raw in before)
    again.close()
    third = FileTail(log, state)
    assert drain(third) == []  # everything acknowledged
    third.close()


def test_restart_after_rotation_while_down(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    state = tmp_path / "state.json"
    log.write_bytes(lines("old", 0, 10))
    tail = FileTail(log, state)
    first = drain(tail)
    tail.close()
    append(log, lines("old", 10, 14))
    os.rename(log, tmp_path / "auth.log.1")
    log.write_bytes(lines("new", 0, 6))
    again = FileTail(log, state)
    rest = drain(again)
    assert raws(first + rest) == expect("old", 0, 14) + expect("new", 0, 6)
    assert len({r.event_id for r in first + rest}) == 20
    again.close()
    # a new file reusing the name (and maybe the inode) never reuses ids
    os.remove(tmp_path / "auth.log.1")
    os.remove(log)
    log.write_bytes(lines("newer", 0, 6))
    third = FileTail(log, state)
    newer = drain(third)
    assert raws(newer) == expect("newer", 0, 6)
    assert not {r.event_id for r in newer} & {r.event_id for r in first + rest}
    third.close()


def test_crash_before_first_ack_gives_the_same_ids(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(lines("a", 0, 5))
    one = FileTail(log, tmp_path / "state.json")
    ids = [r.event_id for r in drain(one, ack=False)]
    one.close()
    two = FileTail(log, tmp_path / "state.json")
    assert [r.event_id for r in drain(two, ack=False)] == ids
    two.close()


def test_file_appearing_later_and_from_end(tmp_path: Path) -> None:
    log = tmp_path / "late.log"
    tail = FileTail(log, tmp_path / "state.json")
    assert drain(tail) == []
    log.write_bytes(b"hello\n")
    assert raws(drain(tail)) == [b"hello"]
    tail.close()
    other = tmp_path / "big.log"
    other.write_bytes(lines("past", 0, 50) + b"half a li")
    end = FileTail(other, tmp_path / "state2.json", from_end=True)
    assert drain(end) == []  # starts after the last complete line
    append(other, b"ne\n" + lines("future", 0, 2))
    assert raws(drain(end)) == [b"half a line"] + expect("future", 0, 2)
    end.close()


def test_batches_generator_stops_from_another_thread(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(lines("g", 0, 3))
    tail = FileTail(log, tmp_path / "state.json", poll_interval=0.02)
    got: list[Record] = []

    def writer() -> None:
        for i in range(3, 10):
            time.sleep(0.02)
            append(log, lines("g", i, i + 1))
        time.sleep(0.2)
        tail.stop()

    t = threading.Thread(target=writer)
    t.start()
    for batch in tail.batches():
        got += batch
        tail.ack(batch)
    t.join()
    assert raws(got) == expect("g", 0, 10)
