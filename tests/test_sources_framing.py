"""RFC 6587 framing (soc.ingest.sources.framing): unit cases and properties."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from soc.ingest.sources.framing import Frame, SyslogFramer


def frames(data: bytes, max_message: int = 65536, chunk: int | None = None) -> list[Frame]:
    framer = SyslogFramer(max_message)
    out: list[Frame] = []
    step = chunk or max(1, len(data))
    for i in range(0, len(data), step):
        out += framer.feed(data[i : i + step])
    return out + framer.close()


def raws(data: bytes, **kw) -> list[bytes]:
    return [f.raw for f in frames(data, **kw)]


def test_octet_counting_and_newline_framing_mixed() -> None:
    stream = b"<13>plain one\n11 <13>counted<14>plain two\r\n12 <15>counted\n\n<13>end"
    assert raws(stream) == [b"<13>plain one", b"<13>counted", b"<14>plain two",
                            b"<15>counted", b"<13>end"]
    assert raws(stream, chunk=1) == raws(stream)


def test_counted_frames_may_hold_newlines_and_framing_chars() -> None:
    msg = b"<13>multi\nline 12 <not a frame>"
    stream = b"%d " % len(msg) + msg + b"<14>next\n"
    assert raws(stream) == [msg, b"<14>next"]


def test_digits_that_are_not_a_count_start_a_line() -> None:
    assert raws(b"2024-01-01 host app: hi\n1234567890123 x\n") == [
        b"2024-01-01 host app: hi", b"1234567890123 x"]
    assert raws(b"123") == [b"123"]


def test_too_long_messages_are_cut_and_marked() -> None:
    line = b"<13>" + b"a" * 100
    got = frames(line + b"\n" + b"104 " + line + b"<14>ok\n", max_message=10)
    assert got == [Frame(line[:10], 104, "too_long"), Frame(line[:10], 104, "too_long"),
                   Frame(b"<14>ok")]
    assert frames(line + b"\n" + b"104 " + line + b"<14>ok\n", max_message=10, chunk=3) == got


def test_incomplete_counted_frame_at_close() -> None:
    assert frames(b"20 <13>short") == [Frame(b"<13>short", 20, "incomplete")]


def test_empty_frames_are_counted_not_returned() -> None:
    framer = SyslogFramer()
    assert framer.feed(b"\n\r\n0 <13>x\n") == [Frame(b"<13>x")]
    assert framer.empty == 3


def test_memory_is_bounded() -> None:
    framer = SyslogFramer(max_message=1000)
    for _ in range(1000):
        framer.feed(b"x" * 10_000)
        assert framer.pending <= 1000
    framer2 = SyslogFramer(max_message=1000)
    framer2.feed(b"99999999 ")
    for _ in range(100):
        framer2.feed(b"y" * 10_000)
        assert framer2.pending <= 1000


alphabet = st.sampled_from([b"<", b"1", b"3", b"0", b" ", b"\n", b"\r", b"a", b">", b"9", b"\x00"])
tokens = st.lists(st.one_of(alphabet, st.binary(max_size=20)), max_size=60).map(b"".join)


@settings(max_examples=400, deadline=None)
@given(stream=tokens, cuts=st.lists(st.integers(0, 2000), max_size=12),
       max_message=st.integers(1, 40))
def test_any_stream_any_split_same_frames(stream: bytes, cuts: list[int], max_message: int) -> None:
    points = sorted({min(c, len(stream)) for c in cuts})
    chunks = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    whole = SyslogFramer(max_message)
    expected = whole.feed(stream) + whole.close()
    split = SyslogFramer(max_message)
    got: list[Frame] = []
    for chunk in chunks:
        got += split.feed(chunk)
    got += split.close()
    assert got == expected
    assert split.empty == whole.empty
    assert all(len(f.raw) <= max_message for f in got)
    assert all((f.truncated_from is None) == (f.reason is None) for f in got)
    assert frames(stream, max_message=max_message, chunk=1) == expected


@settings(max_examples=200, deadline=None)
@given(messages=st.lists(st.binary(min_size=1, max_size=50).filter(
    lambda m: not m.endswith(b"\n")), max_size=20), chunk=st.integers(1, 64))
def test_octet_counted_messages_roundtrip(messages: list[bytes], chunk: int) -> None:
    stream = b"".join(b"%d %s" % (len(m), m) for m in messages)
    assert raws(stream, chunk=chunk) == messages
