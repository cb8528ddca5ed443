"""Property tests: no input makes the ingest stages raise or lose a record.

For arbitrary bytes, arbitrary text, and real log lines mutated at random:
every non-empty record yields exactly one event or one dead letter, every event serialises
with orjson, and no parser needs the safety net in ``parsers.parse`` (a parser that raised
would show up as a ``... parser error`` result, which is a bug even though ingest goes on).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from soc.ingest import Record
from soc.ingest.deadletter import DeadLetterFile, read_dead_letters
from soc.ingest.decode import decode
from soc.ingest.normalize import SourceContext
from soc.ingest.parsers import PARSERS, iter_json_records, parse
from soc.ingest.pipeline import IngestPipeline
from tests.conftest import SHARED_DATA

RECEIVED = datetime(2024, 6, 1, 3, 0, tzinfo=UTC)
CTX = SourceContext(source="hypothesis")
FORMATS = [*PARSERS, "auto"]
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def _records(raws: list[bytes]) -> list[Record]:
    return [Record(raw=raw, event_id=f"h{i}", received=RECEIVED, origin=f"h:{i}") for i, raw in enumerate(raws)]


def _non_empty(raw: bytes) -> bool:
    text, _ = decode(raw)
    return bool(text) and not text.isspace()


def _check_pipeline(raws: list[bytes], fmt: str, tmp_path: Path, max_bytes: int = 65536) -> None:
    dlq_path = tmp_path / f"dlq-{fmt}.jsonl"
    dlq_path.unlink(missing_ok=True)
    dlq = DeadLetterFile(dlq_path)
    pipe = IngestPipeline(CTX, fmt=fmt, max_message_bytes=max_bytes, dead_letter=dlq)
    events = pipe.process(_records(raws))
    dlq.close()
    letters = list(read_dead_letters(dlq_path)) if dlq_path.exists() else []
    expected_ids = {f"h{i}" for i, raw in enumerate(raws) if _non_empty(raw) or len(raw) > max_bytes}
    got_ids = [e["_id"] for e in events] + [letter.event_id for letter in letters]
    assert sorted(got_ids) == sorted(expected_ids)
    for event in events:
        orjson.dumps(event)
        assert "parser error" not in event.get("soc.parse.error", ""), event["soc.parse.error"]
        assert isinstance(event["@timestamp"], str) and event["@timestamp"].endswith("Z")


@PROPERTY
@given(raws=st.lists(st.binary(max_size=300), max_size=8), fmt=st.sampled_from(FORMATS))
def test_arbitrary_bytes(raws: list[bytes], fmt: str, tmp_path: Path) -> None:
    _check_pipeline(raws, fmt, tmp_path, max_bytes=200)


@PROPERTY
@given(texts=st.lists(st.text(max_size=300), max_size=8), fmt=st.sampled_from(FORMATS))
def test_arbitrary_text(texts: list[str], fmt: str, tmp_path: Path) -> None:
    _check_pipeline([t.encode("utf-8", "surrogatepass") for t in texts], fmt, tmp_path)


_STRUCTURED = st.sampled_from([
    "<", "<13>", "<134>1 ", "Feb 29 ", "2024-01-01T00:00:00Z ", "CEF:0|", "LEEF:2.0|", "type=SYSCALL msg=audit(1:2): ",
    '{"win":{"system":', '{"Event":{"System":', '{"@stream":"conn",', "[", "%ASA-6-", "date=", " [", '"', "\\", "=", "|",
    "<Event><System>", "<Data Name=\"x\">", "pam_unix(sshd:auth): ", "Accepted password for ", " from ", " port ", "\x00", "\ufeff",
])


@PROPERTY
@given(parts=st.lists(st.one_of(_STRUCTURED, st.text(max_size=20)), max_size=12), fmt=st.sampled_from(FORMATS))
def test_structured_fragments(parts: list[str], fmt: str) -> None:
    line = "".join(parts)
    result = parse(line, fmt)
    assert "parser error" not in (result.error or ""), result.error
    for parser in PARSERS.values():
        parser(line.lstrip(" \t"))  # the parsers themselves must not raise either


_LOG = re.compile(r"^log \d+ (?:pass|fail) = (.*)$")


@cache
def _real_lines() -> tuple[str, ...]:
    lines: list[str] = []
    folder = SHARED_DATA / "wazuh-tests"
    if folder.is_dir():
        for path in sorted(folder.glob("*.ini")):
            for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
                m = _LOG.match(raw)
                if m:
                    lines.append(m.group(1))
    for rel in ("loghub/OpenSSH/OpenSSH_2k.log", "loghub/Linux/Linux_2k.log", "elastic-examples/apache_logs/apache_logs"):
        path = SHARED_DATA / rel
        if path.is_file():
            lines.extend(path.read_text(encoding="utf-8", errors="replace").splitlines()[:200])
    return tuple(lines)


@st.composite
def mutated_line(draw: st.DrawFn) -> str:
    lines = _real_lines()
    line = draw(st.sampled_from(lines or ("",)))  # no data: the test skips itself
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(["cut", "insert", "delete", "replace", "duplicate"]))
        pos = draw(st.integers(0, len(line)))
        if op == "cut":
            line = line[:pos]
        elif op == "insert":
            line = line[:pos] + draw(st.one_of(_STRUCTURED, st.text(max_size=5))) + line[pos:]
        elif op == "delete":
            line = line[:pos] + line[pos + draw(st.integers(1, 10)) :]
        elif op == "replace" and line:
            line = line[:pos] + draw(st.characters()) + line[pos + 1 :]
        else:
            line = line + line[pos:]
    return line


@PROPERTY
@given(lines=st.lists(mutated_line(), min_size=1, max_size=6), fmt=st.sampled_from(["auto", "auto", "syslog", "json", "kv", "cef"]))
def test_mutated_real_lines(lines: list[str], fmt: str, tmp_path: Path) -> None:
    if not _real_lines():
        pytest.skip(f"real test data not found at {SHARED_DATA}")
    _check_pipeline([line.encode("utf-8", "surrogatepass") for line in lines], fmt, tmp_path)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@PROPERTY
@given(items=st.lists(_JSON, max_size=6), indent=st.booleans())
def test_iter_json_records_returns_each_array_element(items: list, indent: bool) -> None:
    data = orjson.dumps(items, option=orjson.OPT_INDENT_2 if indent else 0)
    got = list(iter_json_records(data))
    assert [index for index, _ in got] == list(range(len(items)))
    assert [orjson.loads(raw) for _, raw in got] == orjson.loads(data)


@PROPERTY
@given(text=st.text(max_size=400))
def test_iter_json_records_never_raises_or_drops_text(text: str) -> None:
    records = [raw.decode("utf-8", "surrogateescape") for _, raw in iter_json_records(text)]
    assert len("".join(records)) <= len(text)
    assert all(raw.strip() for raw in records)
    if text.strip(" \t\r\n\ufeff")[:1] in ("{", '"'):
        assert records  # something that starts a value is never silently skipped


@PROPERTY
@given(host=st.sampled_from(["h", "10.0.0.1", "fe80::1", "host.example.vn", "a=b"]),
       parts=st.lists(st.one_of(_STRUCTURED, st.text(max_size=12)), max_size=8))
def test_syslog_fast_path_equals_general_path(host: str, parts: list[str]) -> None:
    from soc.ingest.parsers import syslog

    line = f"Mar  7 09:10:11 {host} " + "".join(parts)
    syslog._BSD_CACHE.clear()
    general = syslog.parse(line)  # cache miss: the general path (and it fills the cache)
    fast = syslog.parse(line)  # cache hit: the one-regex fast path when the line fits it
    assert (general.fields, general.timestamp, general.status, general.error) == (fast.fields, fast.timestamp, fast.status, fast.error)
