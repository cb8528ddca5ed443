"""IngestPipeline: counters, empty/oversized records, dead letters, contexts, internal errors."""

from __future__ import annotations

import base64
import threading
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

import soc.ingest.pipeline as pipeline_module
from soc.ingest import Record
from soc.ingest.deadletter import DeadLetterFile, read_dead_letters, reader_stats
from soc.ingest.normalize import SourceContext
from soc.ingest.pipeline import IngestPipeline

RECEIVED = datetime(2024, 6, 1, 3, 0, tzinfo=UTC)
CTX = SourceContext(source="test", agency_id="a1")


def records(*raws: bytes, peer: str | None = None) -> list[Record]:
    return [Record(raw=raw, event_id=f"id-{i}", received=RECEIVED, origin=f"test:{i}", peer=peer) for i, raw in enumerate(raws)]


def test_mixed_batch_counts_and_order() -> None:
    batch = records(
        b"Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 173.234.31.186\n",
        b"",
        b"   \r\n",
        b'{"event_type":"alert","src_ip":"1.2.3.4","dest_ip":"5.6.7.8","flow_id":1,"alert":{"signature":"x"}}',
        b"just some words",
        b'{"broken":',
        b"\xef\xbb\xbfCEF:0|V|P|1|2|name|3|src=1.1.1.1",
        b"caf\xe9 latin-1 text",
    )
    pipe = IngestPipeline(CTX)
    events = pipe.process(batch)
    assert [e["_id"] for e in events] == ["id-0", "id-3", "id-4", "id-5", "id-6", "id-7"]
    c = pipe.counters.as_dict()
    assert (c["records"], c["empty"], c["parsed"], c["partial"], c["failed"], c["decode_errors"]) == (8, 2, 3, 2, 1, 1)
    assert c["per_dataset"]["linux.sshd"] == 1 and c["per_dataset"]["ids.suricata"] == 1 and c["per_dataset"]["network.cef"] == 1
    assert events[3]["event.kind"] == "pipeline_error" and events[3]["event.original"] == '{"broken":'
    assert events[4]["event.original"].startswith("CEF:0")  # BOM removed
    for event in events:
        orjson.dumps(event)


def test_oversized_goes_to_dead_letter_and_replays(tmp_path: Path) -> None:
    dlq = DeadLetterFile(tmp_path / "dl" / "dead.jsonl")
    pipe = IngestPipeline(CTX, max_message_bytes=100, dead_letter=dlq)
    big = b"Feb  1 10:00:00 h app: " + b"A" * 200
    events = pipe.process(records(big, b"Feb  1 10:00:00 h app: small"))
    dlq.close()
    assert len(events) == 1 and pipe.counters.dead_lettered == 1 and pipe.counters.oversized == 1
    letters = list(read_dead_letters(dlq.path))
    assert len(letters) == 1
    letter = letters[0]
    assert letter.reason == f"oversized ({len(big)} bytes > 100)" and letter.raw == big and letter.event_id == "id-0"
    assert letter.raw_preview.startswith("Feb  1 10:00:00 h app: AAA") and len(letter.raw_preview) <= 200
    replayed = IngestPipeline(CTX, max_message_bytes=1000).process([letter.to_record()])
    assert replayed[0]["_id"] == "id-0" and replayed[0]["event.created"] == "2024-06-01T03:00:00.000Z"


def test_oversized_without_dead_letter_is_stored_truncated() -> None:
    pipe = IngestPipeline(CTX, max_message_bytes=50)
    events = pipe.process(records(b"x" * 80))
    assert len(events) == 1
    e = events[0]
    assert e["event.kind"] == "pipeline_error" and "_oversized" in e["tags"] and len(e["event.original"]) == 50
    assert e["soc.parse.error"].startswith("oversized (80 bytes > 50)") and pipe.counters.failed == 1


def test_context_per_record_and_fixed_format() -> None:
    def ctx_for(rec: Record) -> SourceContext:
        return SourceContext(source=f"udp:{rec.peer}", agency_id=(rec.peer or "").replace(".", "-"))

    pipe = IngestPipeline(ctx_for, fmt="kv")
    events = pipe.process(records(b"srcip=1.1.1.1 dstip=2.2.2.2 action=deny", peer="10.0.0.7"))
    assert events[0]["organization.id"] == "10-0-0-7" and events[0]["soc.source"] == "udp:10.0.0.7"
    assert events[0]["event.dataset"] == "firewall.kv"


def test_internal_errors_never_escape(monkeypatch, tmp_path: Path) -> None:
    def explode(*args, **kwargs):
        raise KeyError("stage bug")

    monkeypatch.setattr(pipeline_module, "normalize", explode)
    pipe = IngestPipeline(CTX)
    events = pipe.process(records(b"Feb  1 10:00:00 h app: x"))
    assert len(events) == 1 and events[0]["event.kind"] == "pipeline_error" and "_internal_error" in events[0]["tags"]
    assert pipe.counters.internal_errors == 1
    dlq = DeadLetterFile(tmp_path / "dead.jsonl")
    pipe = IngestPipeline(CTX, dead_letter=dlq)
    assert pipe.process(records(b"Feb  1 10:00:00 h app: x")) == []
    dlq.close()
    assert next(read_dead_letters(dlq.path)).reason.startswith("internal error: KeyError")


def test_broken_context_callable_is_contained() -> None:
    def bad(rec: Record) -> SourceContext:
        raise RuntimeError("no agency table")

    events = IngestPipeline(bad).process(records(b"hello"))
    assert len(events) == 1 and events[0]["event.kind"] == "pipeline_error"


def test_dead_letter_file_is_thread_safe_and_tolerates_a_torn_line(tmp_path: Path) -> None:
    dlq = DeadLetterFile(tmp_path / "dead.jsonl")

    def worker(n: int) -> None:
        for i in range(200):
            dlq.write("test", Record(raw=f"{n}-{i}-".encode() * 50, event_id=f"{n}-{i}", received=RECEIVED, origin="t"))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    dlq.flush()
    with open(dlq.path, "ab") as fh:
        fh.write(b'{"reason": "torn')  # a crash mid-write
    dlq.close()
    stats = reader_stats()
    letters = list(read_dead_letters(dlq.path, stats))
    assert len(letters) == 1600 == dlq.count and stats.skipped == 1
    assert {letter.event_id for letter in letters} == {f"{n}-{i}" for n in range(8) for i in range(200)}
    assert all(letter.raw == f"{letter.event_id}-".encode() * 50 for letter in letters)


def test_dead_letter_json_fields(tmp_path: Path) -> None:
    with DeadLetterFile(tmp_path / "d.jsonl") as dlq:
        dlq.write("why", Record(raw=b"\xff\x00bytes", event_id="e1", received=RECEIVED, origin="udp 1.2.3.4:514", peer="1.2.3.4"))
    item = orjson.loads((tmp_path / "d.jsonl").read_bytes())
    assert set(item) == {"reason", "origin", "event_id", "received", "peer", "raw_b64", "raw_preview"}
    assert base64.b64decode(item["raw_b64"]) == b"\xff\x00bytes" and item["received"] == "2024-06-01T03:00:00.000Z"


@pytest.mark.parametrize("fmt", ["auto", "syslog", "json", "kv", "cef", "access", "auditd", "xml", "text", "no-such-format"])
def test_every_format_stores_one_event_per_record(fmt: str) -> None:
    raws = [b"Feb  1 10:00:00 h app: x", b'{"a":1}', b"a=1 b=2 c=3", b"CEF:0|a|b|c|d|e|1|x=1", b"garbage \x00\x01"]
    pipe = IngestPipeline(CTX, fmt=fmt)
    events = pipe.process(records(*raws))
    assert len(events) == len(raws)
