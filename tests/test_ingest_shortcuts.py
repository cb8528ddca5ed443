"""Issue #12 (ingest CPU per event): the shortcuts of the ingest stages give exactly what the
long way gives.

- ``soc.ingest.parsers._holds_no_address``: a known product's record whose line holds nothing
  address-like skips the generic extraction; on the shared Windows and Sysmon records the events
  are the same as with the extraction run on every record, and an address the line spells with
  an escape or an entity is still found;
- the time cache of :mod:`soc.ingest.normalize` holds a year-less stamp of the receive month for
  the whole receive day when it is days away from it: the fields are those computed afresh for
  every time of that day, and right at the tolerance the year still follows the receive time.

The whole shared corpus is compared before/after a change with ``benchmarks/ingest_golden.py``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import orjson
import pytest

from soc.ingest import Record
from soc.ingest import normalize as norm
from soc.ingest import parsers as parsers_module
from soc.ingest.normalize import SourceContext, normalize
from soc.ingest.parsers import parse
from tests.conftest import shared

_WAZUH_LOG = re.compile(r"^log \d+ (?:pass|fail) = (.*)$")


def _wazuh_lines(*names: str) -> list[str]:
    out = []
    for name in names:
        for line in shared("wazuh-tests", f"{name}.ini").read_text(encoding="utf-8", errors="replace").splitlines():
            m = _WAZUH_LOG.match(line)
            if m:
                out.append(m.group(1).strip())
    return out


def _records() -> Iterator[str]:
    yield from _wazuh_lines("win_event_channel", "win_security", "sysmon_eid_1", "sysmon_eid_3", "powershell")
    path = shared("otrf", "datasets", "compound", "Log4Shell", "unzipped",
                  "sysmon_log4shell_cve2021_44228_java_serialized_object_2022-05-13045800.json")
    yield from path.read_text(encoding="utf-8").splitlines()[:400]


def test_skipping_the_extraction_changes_no_event(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = list(_records())
    assert len(lines) > 400
    fast = [parse(line, "json") for line in lines]
    skipped = sum(1 for line, p in zip(lines, fast, strict=True) if parsers_module._holds_no_address(line, p.fields))
    monkeypatch.setattr(parsers_module, "_holds_no_address", lambda line, fields: False)
    slow = [parse(line, "json") for line in lines]
    for line, a, b in zip(lines, fast, slow, strict=True):
        assert orjson.dumps(a.fields, option=orjson.OPT_SORT_KEYS, default=str) == \
            orjson.dumps(b.fields, option=orjson.OPT_SORT_KEYS, default=str), line[:300]
        assert (a.status, a.error, a.timestamp) == (b.status, b.error, b.timestamp)
    assert skipped > 100  # the shortcut is taken on most records of these products
    assert any(p.fields.get("soc.parse.generic") for p in slow)  # and the others still get read


def _windows(command_line: str) -> str:
    return orjson.dumps({"win": {"system": {"channel": "Microsoft-Windows-Sysmon/Operational", "eventID": "1",
                                            "providerName": "Microsoft-Windows-Sysmon", "computer": "ws1",
                                            "systemTime": "2024-01-02T03:04:05.000Z"},
                                 "eventdata": {"image": "C:\\\\Windows\\\\System32\\\\cmd.exe",
                                               "commandLine": command_line}}}).decode()


@pytest.mark.parametrize("spelled", [
    "ping 10.1.2.3",
    "ping 10\\u002e1.2.3",  # a JSON escape in the line: the value holds the address
    "ping fe80::1",
    "ping 2001:db8:1:2:3:4:5:6",
])
def test_an_address_in_a_command_line_is_found_however_the_line_spells_it(spelled: str) -> None:
    line = _windows(spelled).replace("\\\\u002e", "\\u002e")
    assert ("\\u002e" in line) == ("\\u002e" in spelled)
    fields = parse(line, "json").fields
    assert fields.get("destination.ip") in ("10.1.2.3", "fe80::1", "2001:db8:1:2:3:4:5:6"), fields
    assert fields.get("soc.parse.generic") is True


def test_a_record_without_addresses_is_not_marked_generic() -> None:
    line = _windows("whoami /all")
    assert parsers_module._holds_no_address(line, {})
    fields = parse(line, "json").fields
    assert "destination.ip" not in fields and "soc.parse.generic" not in fields
    assert fields["event.dataset"] == "windows.sysmon"


def _clear_time_caches() -> None:
    norm._STABLE_TIMES.clear()
    norm._YEAR_CACHE.clear()
    norm._LOCAL_OFFSETS.clear()
    norm._UTC_OFFSETS.clear()
    norm._RECEIVED_STATE = (None, None, datetime.min, "", 0, 0, 0)
    norm._LAST_RECEIVED = (None, None, datetime.min, "", datetime.min)
    norm._TIME_CACHE = (None, None, None, {})


def _event(line: str, received: datetime, ctx: SourceContext) -> dict[str, object]:
    text = line
    return normalize(parse(text, "syslog"), text, Record(raw=text.encode(), event_id="x", received=received, origin="t"), ctx)


@pytest.mark.parametrize("zone", ["Asia/Ho_Chi_Minh", "UTC", "America/New_York"])
def test_a_cached_year_less_time_is_the_one_computed_afresh(zone: str) -> None:
    ctx = SourceContext(source="t", zone=ZoneInfo(zone))
    checked = 0
    for month, day in ((12, 31), (12, 1), (1, 1), (1, 5), (2, 28), (3, 1), (6, 15), (12, 7)):
        local_day = datetime(2026, month, day, tzinfo=ZoneInfo(zone))
        # the first and the last moment of the receive day in the source's zone, and noon
        moments = [local_day + timedelta(seconds=1), local_day + timedelta(hours=12),
                   local_day + timedelta(hours=23, minutes=59, seconds=59)]
        for offset in range(-8, 9):
            stamp = local_day.replace(tzinfo=None) + timedelta(days=offset, hours=offset % 5 * 5, minutes=7)
            line = f"{stamp:%b} {stamp.day:2d} {stamp:%H:%M:%S} host1 sshd[42]: Accepted password for bob from 10.0.0.9 port 22 ssh2"
            for first in moments:
                for second in moments:
                    _clear_time_caches()
                    _event(line, first.astimezone(UTC), ctx)  # fills the caches for this receive day
                    warm = _event(line, second.astimezone(UTC), ctx)
                    _clear_time_caches()
                    cold = _event(line, second.astimezone(UTC), ctx)
                    assert warm == cold, (line, first, second)
                    checked += 1
    assert checked == 8 * 17 * 9
