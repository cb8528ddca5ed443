"""Windows .evtx reading (soc.ingest.sources.evtx) on a real sample.

The sample is ``samples/Security_short_selected.evtx`` (68 KiB, 7 Security-log records, MIT /
Apache-2.0) from the source distribution of ``evtx`` 0.8.0 on PyPI (pyevtx-rs, the library this
project uses). It is not committed: the test downloads that sdist with pip into a cache folder
(``$SOC_TEST_CACHE`` or ``~/.cache/soc-tests``) the first time, checks its SHA-256 and extracts
the sample. Corrupt files are made at test time by damaging a copy.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from soc.ingest.sources import EvtxReader, SourceError, read_evtx
from soc.model import record_event_id

SDIST = "evtx==0.8.0"
MEMBER = "evtx-0.8.0/samples/Security_short_selected.evtx"
SHA256 = "50c87926d2dfed9776906ffbcc77e61577940910a71fb1c1871860a4e2213456"


def _cache_dir() -> Path:
    return Path(os.environ.get("SOC_TEST_CACHE", Path.home() / ".cache" / "soc-tests"))


@pytest.fixture(scope="session")
def evtx_sample() -> Path:
    target = _cache_dir() / "evtx-samples" / "Security_short_selected.evtx"
    if target.is_file() and hashlib.sha256(target.read_bytes()).hexdigest() == SHA256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    download = target.parent / "sdist"
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
           "--disable-pip-version-check", "-q", "-d", str(download), SDIST]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    tarballs = sorted(download.glob("evtx-0.8.0.tar.gz"))
    if proc.returncode != 0 or not tarballs:
        pytest.skip(f"could not download the {SDIST} sdist holding the .evtx sample "
                    f"(needs PyPI): {proc.stderr.strip()[-300:]}")
    with tarfile.open(tarballs[0]) as tar:
        member = tar.extractfile(MEMBER)
        assert member is not None, f"{MEMBER} missing from {tarballs[0]}"
        data = member.read()
    assert hashlib.sha256(data).hexdigest() == SHA256, "unexpected sample content"
    target.write_bytes(data)
    return target


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
