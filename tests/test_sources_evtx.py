"""Windows .evtx reading (soc.ingest.sources.evtx) on real files.

The files are the pyevtx-rs project's samples (MIT / Apache-2.0) in ``../shared/data/evtx``:
healthy Security, System, Sysmon, RDP, CAPI2... logs and damaged ones (bad chunk magic, zero
data size, damaged record headers). Nothing is downloaded at test time. Further corrupt files
are made here by damaging a copy of ``Security_short_selected.evtx`` (7 Security records).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
from pathlib import Path

import pytest

from soc.ingest.deadletter import DeadLetterFile
from soc.ingest.normalize import SourceContext
from soc.ingest.reader import FileIngestor
from soc.ingest.sources import EvtxReader, SourceError, read_evtx
from soc.ingest.sources.evtx import declared_ranges
from soc.model import record_event_id
from tests.conftest import SHARED_DATA, shared

SHA256 = "50c87926d2dfed9776906ffbcc77e61577940910a71fb1c1871860a4e2213456"

# file -> (records recovered, dead letters); the healthy files give every record their chunks
# declare and no dead letter
HEALTHY = {
    "2-system-Microsoft-Windows-LiveId%4Operational.evtx": 399,
    "2-vss_7-System.evtx": 1160,
    "Application_no_crc32.evtx": 17,
    "E_ShadowCopy6_windows_system32_winevt_logs_Microsoft-Windows-CAPI2%4Operational.evtx": 459,
    "E_Windows_system32_winevt_logs_Microsoft-Windows-CAPI2%4Operational.evtx": 340,
    "E_Windows_system32_winevt_logs_Microsoft-Windows-Shell-Core%4Operational.evtx": 1146,
    "MSExchange_Management_wec.evtx": 1,
    "Security_short_selected.evtx": 7,
    "Security_with_size_t.evtx": 636,
    "issue_201.evtx": 1,
    "new-user-security.evtx": 4,
    "post-Security.evtx": 126,
    "sample-with-irregular-bool-values.evtx": 3028,
    "security.evtx": 2261,
    "security_bad_string_cache.evtx": 2261,
    "system.evtx": 1881,
}
DAMAGED = {
    "2-vss_0-Microsoft-Windows-RemoteDesktopServices-RdpCoreTS%4Operational.evtx": (1910, 6),
    "2-vss_0-Microsoft-Windows-TerminalServices-RemoteConnectionManager%4Operational.evtx": (1774, 4),
    "Microsoft-Windows-HelloForBusiness%4Operational.evtx": (6, 1),
    "Microsoft-Windows-LanguagePackSetup%4Operational.evtx": (17, 1),
    "sample-with-zero-data-size-event.evtx": (335, 2),
    "sample_with_a_bad_chunk_magic.evtx": (270, 5),
    # every declared record is read, but the slots after the last chunk hold garbage (a file
    # not closed cleanly): reported, since a damaged chunk header looks the same
    "sysmon.evtx": (358, 8),
}


@pytest.fixture(scope="session")
def evtx_sample() -> Path:
    path = shared("evtx", "Security_short_selected.evtx")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == SHA256, "unexpected sample content"
    return path


def test_the_table_names_every_shared_file() -> None:
    folder = shared("evtx")
    assert {p.name for p in folder.glob("*.evtx")} == set(HEALTHY) | set(DAMAGED)


def _ingest(path: Path, tmp_path: Path) -> tuple[list[dict], list[dict]]:
    """Every event and dead letter of one file through the same stages as the inbox."""
    letters = tmp_path / "dead.jsonl"
    ingestor = FileIngestor(SourceContext(source="test"), dead_letter=DeadLetterFile(letters))
    events = [e for batch, _ in ingestor.read(path) for e in batch]
    ingestor.close()
    dead = [json.loads(line) for line in letters.read_text().splitlines()] if letters.exists() else []
    return events, dead


@pytest.mark.parametrize("name", sorted(HEALTHY))
def test_a_healthy_file_gives_all_its_records(name: str, tmp_path: Path) -> None:
    path = SHARED_DATA / "evtx" / name
    shared("evtx", name)
    events, dead = _ingest(path, tmp_path)
    declared = sum(last - first + 1 for first, last in declared_ranges(path))
    assert len(events) == HEALTHY[name] == declared and dead == []
    assert len({e["_id"] for e in events}) == len(events), "one id per record"
    assert all(e.get("event.code") and e.get("winlog.channel") for e in events), \
        "every record parsed as a Windows event"


@pytest.mark.parametrize("name", sorted(DAMAGED))
def test_a_damaged_file_gives_what_can_be_recovered_and_says_why_for_the_rest(name: str, tmp_path: Path) -> None:
    path = SHARED_DATA / "evtx" / name
    shared("evtx", name)
    events, dead = _ingest(path, tmp_path)
    assert (len(events), len(dead)) == DAMAGED[name]
    assert len({e["_id"] for e in events}) == len(events)
    for letter in dead:
        assert letter["reason"].startswith("source: ") and len(letter["reason"]) > 20
        assert letter["origin"].startswith(str(path.resolve()) + "#")
    declared = sum(last - first + 1 for first, last in declared_ranges(path))
    missing = declared - len(events)
    if missing:
        assert any("were not returned" in d["reason"] or "Failed to parse" in d["reason"] for d in dead), \
            f"{missing} declared records are unaccounted for"


def test_reads_every_record_as_json(evtx_sample: Path, tmp_path: Path) -> None:
    reader = EvtxReader(evtx_sample, batch_size=3)
    batches = list(reader.batches())
    assert [len(b) for b in batches] == [3, 3, 1]
    assert [b.position for b in batches] == [3, 6, 7]
    records = [r for b in batches for r in b]
    events = [json.loads(r.raw) for r in records]
    assert all(set(e) == {"Event"} and "System" in e["Event"] for e in events)
    assert {e["Event"]["System"]["Channel"] for e in events} == {"Security"}
    assert events[0]["Event"]["System"]["EventID"] == 5152
    assert events[-1]["Event"]["System"]["EventID"] == 4673
    assert "EventData" in events[0]["Event"]
    real = str(evtx_sample.resolve())
    assert [r.event_id for r in records] == [record_event_id(real, i) for i in range(1, 8)]
    assert records[0].origin == f"{real}#1"
    assert reader.errors == [] and reader.counters.received == 7
    # deterministic, and resumable from a position
    again = [r.event_id for b in read_evtx(evtx_sample) for r in b]
    assert again == [r.event_id for r in records]
    rest = [r.event_id for b in read_evtx(evtx_sample, start=3) for r in b]
    assert rest == [r.event_id for r in records[3:]]


def _records_offsets(data: bytes) -> list[int]:
    offsets, i = [], data.find(b"**\x00\x00", 0x1000)
    while i != -1 and i < 0x11000:
        offsets.append(i)
        i = data.find(b"**\x00\x00", i + 1)
    return offsets


def test_corrupt_records_are_reported_not_fatal(evtx_sample: Path, tmp_path: Path) -> None:
    data = bytearray(evtx_sample.read_bytes())
    first = _records_offsets(bytes(data))
    # record 3: garble its BinXML payload; the parser skips it and goes on
    for k in range(34, 84):
        data[first[2] + k] ^= 0xFF
    broken = tmp_path / "broken.evtx"
    broken.write_bytes(bytes(data))
    reader = EvtxReader(broken)
    records = [r for b in reader.batches() for r in b]
    assert [r.origin.rsplit("#", 1)[1] for r in records] == ["1", "2", "4", "5", "6", "7"]
    assert len(reader.errors) == 1
    origin, reason = reader.errors[0]
    assert origin == f"{broken.resolve()}#record 3" and "record" in reason
    assert reader.counters.errors == {"corrupt_evtx": 1}
    # a zeroed record header ends the chunk for the library without an error: the records
    # the chunk header declares but that never came are still reported
    struct.pack_into("<I", data, first[4], 0)
    broken.write_bytes(bytes(data))
    batches = list(EvtxReader(broken).batches())
    assert sum(len(b) for b in batches) == 3
    errors = [e for b in batches for e in b.errors]
    assert len(errors) == 2
    assert errors[1] == (f"{broken.resolve()}#records 1-7", "3 of the 7 records this chunk "
                         "declares were not returned by the parser (damaged record header?)")


def test_not_an_evtx_file(tmp_path: Path) -> None:
    bogus = tmp_path / "x.evtx"
    bogus.write_bytes(b"hello")
    with pytest.raises(SourceError, match="not a Windows .evtx file"):
        list(read_evtx(bogus))


def test_header_ok_but_chunks_garbage(evtx_sample: Path, tmp_path: Path) -> None:
    data = bytearray(evtx_sample.read_bytes())
    data[0x1000:] = b"\xa5" * (len(data) - 0x1000)
    bad = tmp_path / "garbage.evtx"
    bad.write_bytes(bytes(data))
    shutil.copy(bad, tmp_path / "copy.evtx")
    reader = EvtxReader(bad)
    assert [r for b in reader.batches() for r in b] == []
    assert reader.errors  # reported, nothing raised


def test_inbox_ingests_evtx_files(evtx_sample: Path, tmp_path: Path) -> None:
    from soc.ingest.sources import Inbox

    inbox_dir = tmp_path / "inbox"
    inbox_dir.mkdir()
    shutil.copyfile(evtx_sample, inbox_dir / "Security.evtx")
    inbox = Inbox(inbox_dir, settle_seconds=0)
    records = []
    for batch in inbox.batches():
        records += batch
        inbox.ack(batch)
    assert len(records) == 7
    assert json.loads(records[0].raw)["Event"]["System"]["Channel"] == "Security"
    assert (inbox_dir / "done" / "Security.evtx").exists()
