"""File replay (soc.ingest.sources.files) on real files and edge-case files."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from soc.ingest.sources import SourceCounters, SourceError, read_file, truncated_size
from soc.ingest.sources.lines import LineSplitter
from soc.model import file_event_id, record_event_id
from tests.conftest import shared

AUTH_LOG = ("elastic-examples", "suspicious_login_activity", "data", "auth.log")


def records(path: Path, **kwargs):
    return [r for b in read_file(path, **kwargs) for r in b]


def test_auth_log_replay_is_complete_and_deterministic() -> None:
    path = shared(*AUTH_LOG)
    counters = SourceCounters()
    first = records(path, counters=counters)
    assert len(first) == 7121
    ids = [r.event_id for r in first]
    assert len(set(ids)) == 7121
    second = records(path)
    assert [r.event_id for r in second] == ids
    assert [r.raw for r in second] == [r.raw for r in first]
    # ids and origins point at the line's first byte; raw is the line without its newline
    data = path.read_bytes()
    assert b"".join(r.raw + b"\n" for r in first) == data
    real = str(path.resolve())
    for r in first[:50] + first[-50:]:
        offset = int(r.origin.rsplit(":", 1)[1])
        assert r.event_id == file_event_id(real, offset)
        assert data[offset:].startswith(r.raw + b"\n")
    assert counters.snapshot()["received"] == 7121
    assert counters.bytes == len(data)


def test_batches_and_resume_from_any_position(tmp_path: Path) -> None:
    path = shared(*AUTH_LOG)
    batches = list(read_file(path, batch_size=1000))
    assert [len(b) for b in batches] == [1000] * 7 + [121]
    full = [r.event_id for b in batches for r in b]
    for i, batch in enumerate(batches):
        rest = records(path, start_offset=batch.position)
        assert [r.event_id for r in rest] == full[(i + 1) * 1000 :]


def test_line_endings_nul_invalid_utf8_and_no_final_newline(tmp_path: Path) -> None:
    path = tmp_path / "mixed.log"
    path.write_bytes(b"unix\ncrlf\r\nnul\x00byte\n\xff\xfe bad utf8\n\nlast no newline")
    got = records(path)
    assert [r.raw for r in got] == [
        b"unix", b"crlf", b"nul\x00byte", b"\xff\xfe bad utf8", b"last no newline",
    ]
    assert [int(r.origin.rsplit(":", 1)[1]) for r in got] == [0, 5, 11, 20, 33]


def test_gzip_offsets_are_in_the_decompressed_stream(tmp_path: Path) -> None:
    src = shared(*AUTH_LOG)
    gz = tmp_path / "auth.log.gz"
    with gzip.open(gz, "wb") as fh:
        fh.write(src.read_bytes())
    plain = records(src)
    packed = records(gz)
    assert [r.raw for r in packed] == [r.raw for r in plain]
    assert [r.origin.rsplit(":", 1)[1] for r in packed] == [r.origin.rsplit(":", 1)[1] for r in plain]
    assert packed[3].event_id == file_event_id(str(gz.resolve()), int(plain[3].origin.rsplit(":", 1)[1]))
    batches = list(read_file(gz, batch_size=3000))
    rest = records(gz, start_offset=batches[0].position)
    assert [r.raw for r in rest] == [r.raw for r in plain[3000:]]


def test_truncated_gzip_yields_what_it_can_then_names_the_offset(tmp_path: Path) -> None:
    gz = tmp_path / "cut.log.gz"
    with gzip.open(gz, "wb") as fh:
        fh.write(b"".join(b"line %d\n" % i for i in range(200_000)))
    gz.write_bytes(gz.read_bytes()[: gz.stat().st_size // 2])
    got = []
    with pytest.raises(SourceError, match="decompressed offset"):
        for batch in read_file(gz):
            got.extend(batch)
    assert got and got[0].raw == b"line 0"
    assert [r.raw for r in got] == [b"line %d" % i for i in range(len(got))]


@pytest.mark.parametrize("sample", ["first-org-conf-2015", "honeypot-2018"])
def test_suricata_json_array_one_record_per_element(sample: str) -> None:
    path = shared("suricata", "samples", sample, "alerts-only.json")
    expected = json.loads(path.read_bytes())
    got = records(path, batch_size=50)
    assert [json.loads(r.raw) for r in got] == expected
    assert all(b"\n" not in r.raw and b", " not in r.raw[:40] for r in got)
    real = str(path.resolve())
    assert [r.event_id for r in got] == [record_event_id(real, i) for i in range(len(expected))]
    assert got[5].origin == f"{real}[5]"
    resumed = records(path, start_offset=10)
    assert [r.event_id for r in resumed] == [r.event_id for r in got[10:]]


def test_lines_starting_with_brackets_are_not_json(tmp_path: Path) -> None:
    path = shared("loghub", "Apache", "Apache_2k.log")
    assert path.read_bytes().startswith(b"[")
    assert len(records(path)) == 2000
    fake = tmp_path / "x.log"
    fake.write_bytes(b'[{ "app": starting } says the app\nsecond line\n')
    assert [r.raw for r in records(fake)] == [b'[{ "app": starting } says the app', b"second line"]
    resume = len(b'[{ "app": starting } says the app\n')
    assert [r.raw for r in records(fake, start_offset=resume)] == [b"second line"]


def test_json_array_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(b'[{"a": 1}, {"b": 2}, {"c": ]')
    got = []
    with pytest.raises(SourceError, match="after element 2"):
        for batch in read_file(bad):
            got.extend(batch)
    assert [r.raw for r in got] == [b'{"a":1}', b'{"b":2}']
    gz = tmp_path / "arr.json.gz"
    with gzip.open(gz, "wb") as fh:
        fh.write(b'\xef\xbb\xbf[ {"big": 123456789012345678901234567890, "f": 1.50, "e": 1e400},'
                 b' [1, 2], "s\\u00e9", null ]')
    assert [r.raw for r in records(gz)] == [
        b'{"big":123456789012345678901234567890,"f":1.50,"e":1E+400}', b"[1,2]",
        '"s\u00e9"'.encode(), b"null",
    ]
    assert records(tmp_path / "arr.json.gz", fmt="lines")[0].raw.startswith(b"\xef\xbb\xbf[")


def test_long_lines_are_capped_and_marked(tmp_path: Path) -> None:
    path = tmp_path / "long.log"
    path.write_bytes(b"short\n" + b"x" * 5000 + b"\r\nafter\n" + b"y" * 4000)
    counters = SourceCounters()
    got = records(path, max_line_bytes=1000, counters=counters)
    assert [r.raw for r in got] == [b"short", b"x" * 1000, b"after", b"y" * 1000]
    assert truncated_size(got[1]) == (1000, 5001)
    assert truncated_size(got[3]) == (1000, 4000)
    assert truncated_size(got[0]) is None
    assert int(got[2].origin.rsplit(":", 1)[1]) == 6 + 5002
    assert counters.truncated == {"line_too_long": 2}
    big = tmp_path / "big.json"
    big.write_text(json.dumps([{"k": "v" * 3000, "n": list(range(500))}, {"ok": True}]))
    got = records(big, max_line_bytes=1000)
    assert truncated_size(got[0]) is not None and len(got[0].raw) <= 1000
    assert json.loads(got[0].raw) == {}  # what was parsed up to the cap, still valid JSON
    assert json.loads(got[1].raw) == {"ok": True} and truncated_size(got[1]) is None


def test_constant_memory_batches_close_on_bytes(tmp_path: Path) -> None:
    path = tmp_path / "wide.log"
    path.write_bytes((b"z" * 10_000 + b"\n") * 100)
    sizes = [len(b) for b in read_file(path, batch_bytes=100_000)]
    assert sizes == [10] * 10


def test_not_a_regular_file(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="not a regular file"):
        list(read_file(tmp_path))


def test_empty_file_yields_nothing(tmp_path: Path) -> None:
    (tmp_path / "empty.log").write_bytes(b"")
    assert list(read_file(tmp_path / "empty.log")) == []


def test_symlink_ids_use_the_real_path(tmp_path: Path) -> None:
    src = tmp_path / "a.log"
    src.write_bytes(b"one\ntwo\n")
    link = tmp_path / "link.log"
    link.symlink_to(src)
    copy = tmp_path / "copy.log"
    shutil.copy(src, copy)
    assert [r.event_id for r in records(link)] == [r.event_id for r in records(src)]
    assert [r.event_id for r in records(copy)] != [r.event_id for r in records(src)]


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=400), cuts=st.lists(st.integers(0, 400), max_size=8),
       max_line=st.integers(1, 50))
def test_line_splitter_is_chunking_independent(data: bytes, cuts: list[int], max_line: int) -> None:
    def run(chunks: list[bytes]) -> list:
        sp = LineSplitter(0, max_line)
        out = [line for c in chunks for line in sp.feed(c)]
        last = sp.flush()
        return out + ([last] if last else [])

    points = sorted({min(c, len(data)) for c in cuts})
    chunks = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    whole = run([data])
    assert run(chunks) == whole
    assert run([data[i : i + 1] for i in range(len(data))]) == whole
    for line in whole:  # offsets point at the line, truncated lines are marked
        assert len(line.raw) <= max_line
        assert data[line.offset :].startswith(line.raw)
