"""The time model and the stored-event fields (soc.ingest.normalize)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import orjson
from hypothesis import given
from hypothesis import strategies as st

from soc.ingest import Record
from soc.ingest.decode import INVALID_UTF8, decode
from soc.ingest.normalize import SourceContext, format_utc, infer_year, normalize
from soc.ingest.parsers import parse
from soc.model import FAILED, Parsed, iso, parse_iso

CTX = SourceContext(source="test", agency_id="so-tt", agency_name="Sở Thông tin và Truyền thông")


def record(raw: str | bytes = "x", received: datetime | None = None, peer: str | None = None) -> Record:
    data = raw.encode() if isinstance(raw, str) else raw
    return Record(raw=data, event_id="id-1", received=received or datetime(2024, 6, 1, 3, 0, tzinfo=UTC), origin="test:0", peer=peer)


def norm(line: str, received: datetime, ctx: SourceContext = CTX) -> dict:
    return normalize(parse(line), line, record(line, received), ctx, 0)


# ---- RFC 3164 year inference -------------------------------------------------------------------


def test_new_year_line_received_after_midnight_belongs_to_previous_year() -> None:
    # Dec 31 23:59:50 in Hanoi, received 00:00:30 on Jan 1 Hanoi time (= Dec 31 17:00:30 UTC)
    e = norm("Dec 31 23:59:50 h sshd[1]: x", datetime(2024, 12, 31, 17, 0, 30, tzinfo=UTC))
    assert e["@timestamp"] == "2024-12-31T16:59:50.000Z" and e["soc.time.year"] == "inferred"
    e = norm("Dec 31 23:59:50 h sshd[1]: x", datetime(2025, 1, 1, 0, 0, 30, tzinfo=UTC))  # 07:00:30 local on Jan 1
    assert e["@timestamp"] == "2024-12-31T16:59:50.000Z"
    assert "soc.time.future" not in e


def test_jan_1_line_received_just_before_new_year_is_next_year() -> None:
    # a sender whose clock is a little ahead: Jan 1 00:00:10 received Dec 31 23:59:50 local
    e = norm("Jan  1 00:00:10 h sshd[1]: x", datetime(2024, 12, 31, 16, 59, 50, tzinfo=UTC))
    assert e["@timestamp"] == "2024-12-31T17:00:10.000Z" and "soc.time.future" not in e


def test_year_inference_uses_the_source_zone_not_utc() -> None:
    # 03:00 on Jan 1 in Hanoi is still Dec 31 in UTC: the line's year follows Hanoi's calendar
    e = norm("Jan  1 02:59:00 h cron[1]: x", datetime(2024, 12, 31, 20, 0, tzinfo=UTC))
    assert e["@timestamp"] == "2024-12-31T19:59:00.000Z"


def test_feb_29_only_lands_on_leap_years() -> None:
    stamp = datetime(2000, 2, 29, 12, 0)
    assert infer_year(stamp, datetime(2024, 3, 1, 0, 0)).year == 2024
    assert infer_year(stamp, datetime(2025, 3, 1, 0, 0)).year == 2024
    assert infer_year(stamp, datetime(2023, 12, 1, 0, 0)).year == 2020  # Feb 29 2024 is still ahead
    assert infer_year(stamp, datetime(2022, 3, 1, 0, 0)).year == 2020  # no leap year within one year
    e = norm("Feb 29 12:00:00 h cron[1]: x", datetime(2025, 3, 1, tzinfo=UTC))
    assert e["@timestamp"] == "2024-02-29T05:00:00.000Z"


def test_year_inference_prefers_the_past() -> None:
    # logs describe the past: the most recent year that does not put the line in the future
    assert infer_year(datetime(2000, 7, 5), datetime(2024, 1, 1)).year == 2023
    assert infer_year(datetime(2000, 7, 1), datetime(2024, 1, 1)).year == 2023
    assert infer_year(datetime(2000, 8, 1), datetime(2024, 12, 31)).year == 2024
    assert infer_year(datetime(2000, 6, 20), datetime(2024, 12, 31)).year == 2024
    assert infer_year(datetime(2000, 12, 1), datetime(2024, 6, 1)).year == 2023
    assert infer_year(datetime(2000, 1, 5, tzinfo=UTC), datetime(2024, 12, 30)).year == 2024  # 6 days ahead: too far
    assert infer_year(datetime(2000, 1, 1, 0, 5), datetime(2024, 12, 31, 23, 0)).year == 2025  # skew across New Year
    assert infer_year(datetime(2000, 3, 27, 13, 6), datetime(2026, 11, 25)).year == 2026


# ---- zones -------------------------------------------------------------------------------------


def test_naive_time_uses_the_source_zone() -> None:
    e = norm("2024-03-01 10:00:00 h app: x", datetime(2024, 3, 1, 4, tzinfo=UTC))
    assert e["@timestamp"] == "2024-03-01T03:00:00.000Z"
    assert (e["soc.time.zone"], e["soc.time.year"], e["event.timezone"], e["soc.time.raw"]) == (
        "source", "in_line", "Asia/Ho_Chi_Minh", "2024-03-01 10:00:00")
    berlin = SourceContext(source="b", zone=ZoneInfo("Europe/Berlin"))
    e = norm("2024-07-01 10:00:00 h app: x", datetime(2024, 7, 1, 9, tzinfo=UTC), berlin)
    assert e["@timestamp"] == "2024-07-01T08:00:00.000Z" and e["event.timezone"] == "Europe/Berlin"
    e = norm("2024-01-15 10:00:00 h app: x", datetime(2024, 1, 15, 10, tzinfo=UTC), berlin)
    assert e["@timestamp"] == "2024-01-15T09:00:00.000Z"
    e = norm("2024-03-31 02:30:00 h app: x", datetime(2024, 3, 31, 3, tzinfo=UTC), berlin)  # inside the DST gap
    assert e["@timestamp"] == "2024-03-31T01:30:00.000Z"


def test_offsets_in_the_line_are_kept() -> None:
    e = norm("2013-10-30T14:51:21.901728+01:00 srv sshd[1]: x", datetime(2013, 10, 30, 14, tzinfo=UTC))
    assert e["@timestamp"] == "2013-10-30T13:51:21.901Z" and e["soc.time.zone"] == "in_line" and "event.timezone" not in e
    e = norm("2020-03-23 06:47:42.801612-0700  localhost sshd[1]: x", datetime(2020, 3, 23, 14, tzinfo=UTC))
    assert e["@timestamp"] == "2020-03-23T13:47:42.801Z"


def test_no_time_in_the_line_uses_the_receive_time() -> None:
    received = datetime(2024, 6, 1, 3, 0, 0, 123456, tzinfo=UTC)
    e = normalize(parse("just text"), "just text", record("just text", received), CTX, 0)
    assert e["@timestamp"] == e["event.created"] == "2024-06-01T03:00:00.123Z"
    assert (e["soc.time.zone"], e["soc.time.year"]) == ("received", "received") and "soc.time.raw" not in e


def test_received_in_another_zone_or_naive() -> None:
    received = datetime(2024, 6, 1, 10, 0, tzinfo=timezone(timedelta(hours=7)))
    e = normalize(parse("x y z"), "x y z", record("x", received), CTX, 0)
    assert e["event.created"] == "2024-06-01T03:00:00.000Z"
    e = normalize(parse("x y z"), "x y z", record("x", datetime(2024, 6, 1, 3, 0)), CTX, 0)
    assert e["event.created"] == "2024-06-01T03:00:00.000Z"


def test_future_events_are_flagged_not_changed() -> None:
    received = datetime(2024, 6, 1, 3, 0, tzinfo=UTC)
    e = norm("2024-06-01T04:00:01Z h app: x", received)
    assert e["soc.time.future"] is True and "_time_future" in e["tags"] and e["@timestamp"] == "2024-06-01T04:00:01.000Z"
    e = norm("2024-06-01T03:59:59Z h app: x", received)
    assert "soc.time.future" not in e and "tags" not in e
    strict = SourceContext(source="s", max_future_skew=timedelta(minutes=5))
    assert norm("2024-06-01T03:06:00Z h app: x", received, strict)["soc.time.future"] is True


def test_unrepresentable_time_falls_back_to_receive_time() -> None:
    parsed = Parsed(fields={"message": "x"}, timestamp=datetime(1, 1, 1, 0, 0, tzinfo=timezone(timedelta(hours=5))))
    e = normalize(parsed, "x", record(), CTX, 0)
    assert "_time_invalid" in e["tags"] and e["@timestamp"] == e["event.created"] and e["soc.time.zone"] == "received"


# ---- the rest of the event ---------------------------------------------------------------------


def test_event_fields_and_agency() -> None:
    line = "Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 173.234.31.186"
    e = normalize(parse(line), line, record(line, peer="10.0.0.5"), CTX, 0)
    assert (e["_id"], e["event.original"], e["event.kind"], e["event.dataset"]) == ("id-1", line, "event", "linux.sshd")
    assert (e["organization.id"], e["organization.name"], e["soc.source"], e["log.source.address"]) == (
        "so-tt", "Sở Thông tin và Truyền thông", "test", "10.0.0.5")
    assert (e["soc.parse.status"], e["soc.parse.parser"]) == ("parsed", "syslog") and "soc.parse.error" not in e
    orjson.dumps(e)


def test_agency_resolver_and_forced_dataset() -> None:
    agencies = {"10.1.0.1": ("ubnd-hh", "UBND huyện Hoà Hải")}

    def resolve(peer: str | None):
        return agencies.get((peer or "").split(":")[0])

    def broken(peer: str | None):
        raise RuntimeError("db down")

    ctx = SourceContext(source="udp", agency_id="unknown", agency_resolver=resolve, dataset="linux.syslog")
    e = normalize(parse('{"a": 1}'), '{"a": 1}', record(peer="10.1.0.1:514"), ctx, 0)
    assert (e["organization.id"], e["organization.name"], e["event.dataset"]) == ("ubnd-hh", "UBND huyện Hoà Hải", "linux.syslog")
    e = normalize(parse("x"), "x", record(peer="10.9.9.9"), ctx, 0)
    assert e["organization.id"] == "unknown" and "organization.name" not in e
    e = normalize(parse("x"), "x", record(peer="10.1.0.1"), SourceContext(source="s", agency_id="fallback", agency_resolver=broken), 0)
    assert e["organization.id"] == "fallback"


def test_failed_and_partial_events() -> None:
    parsed = Parsed(fields={"soc.parse.parser": "json"}, status=FAILED, error="invalid JSON: x")
    e = normalize(parsed, '{"a":', record('{"a":'), CTX, 0)
    assert (e["event.kind"], e["soc.parse.status"], e["soc.parse.error"], e["message"], e["tags"]) == (
        "pipeline_error", "failed", "invalid JSON: x", '{"a":', ["_parse_failed"])
    assert e["event.dataset"] == "generic.text"
    e = norm("plain words only", datetime(2024, 1, 1, tzinfo=UTC))
    assert e["soc.parse.status"] == "partial" and e["tags"] == ["_parse_partial"] and e["event.kind"] == "event"


def test_decode_errors_keep_the_exact_bytes() -> None:
    raw = b"Feb  1 10:00:00 h app: caf\xe9 \xff"
    text, flags = decode(raw)
    assert flags & INVALID_UTF8 and "\ufffd" in text
    e = normalize(parse(text), text, record(raw), CTX, flags)
    assert e["soc.decode.error"] is True and "_decode_error" in e["tags"]
    import base64

    assert base64.b64decode(e["soc.raw_b64"]) == raw


def test_decode_strips_bom_and_line_ends() -> None:
    assert decode(b"\xef\xbb\xbfhello\r\n") == ("hello", 2)
    assert decode(b"hello\n\x00") == ("hello", 0)
    assert decode(b"  keep inner  spaces \r") == ("  keep inner  spaces ", 0)
    assert decode(b"") == ("", 0)


@given(st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)))
def test_format_utc_matches_model_iso(dt: datetime) -> None:
    text = format_utc(dt)
    assert text == iso(dt.replace(tzinfo=UTC))
    assert parse_iso(text) == dt.replace(microsecond=dt.microsecond // 1000 * 1000, tzinfo=UTC)
