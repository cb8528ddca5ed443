"""JSON recognisers (Windows in every shape, Suricata, Zeek, Azure, generic) and
iter_json_records."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from soc.ingest.parsers import iter_json_records, parse
from soc.ingest.parsers.json import parse_value
from tests.test_sources_evtx import evtx_sample  # noqa: F401  (fixture: a real .evtx sample from the evtx sdist)

LOGON_DATA = {
    "SubjectUserSid": "S-1-5-18", "SubjectUserName": "DC01$", "SubjectDomainName": "CORP", "TargetUserName": "alice",
    "TargetDomainName": "CORP", "LogonType": 3, "IpAddress": "10.1.2.3", "IpPort": "51234", "ProcessName": "-",
}


def _check_logon(p) -> None:
    f = p.fields
    assert p.status == "parsed"
    assert (f["winlog.event_id"], f["event.code"], f["winlog.channel"], f["event.dataset"]) == (4624, "4624", "Security", "windows.security")
    assert (f["winlog.provider_name"], f["winlog.computer_name"], f["host.name"], f["winlog.record_id"]) == (
        "Microsoft-Windows-Security-Auditing", "dc01.corp.local", "dc01.corp.local", 1234)
    assert (f["winlog.event_data.TargetUserName"], f["winlog.event_data.LogonType"]) == ("alice", 3)  # typed in fields.yml
    assert (f["user.name"], f["user.domain"], f["source.ip"], f["source.port"]) == ("alice", "CORP", "10.1.2.3", 51234)
    assert p.timestamp == datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


def test_winlogbeat_ecs_document() -> None:
    doc = {
        "@timestamp": "2024-01-02T03:04:05.678Z",
        "event": {"code": "4624", "kind": "event", "outcome": "success"},
        "host": {"name": "dc01.corp.local"},
        "winlog": {
            "channel": "Security", "event_id": "4624", "provider_name": "Microsoft-Windows-Security-Auditing",
            "computer_name": "dc01.corp.local", "record_id": 1234, "event_data": LOGON_DATA,
            "process": {"pid": 640, "thread": {"id": 700}}, "keywords": ["Audit Success"],
            "user": {"identifier": "S-1-5-18", "name": "SYSTEM", "domain": "NT AUTHORITY"},
        },
        "message": "An account was successfully logged on.",
    }
    p = parse(orjson.dumps(doc).decode())
    _check_logon(p)
    assert p.fields["winlog.user.name"] == "SYSTEM" and p.fields["winlog.process.pid"] == 640 and p.fields["event.outcome"] == "success"


def test_evtx_library_record_shape() -> None:
    record = {
        "Event": {
            "#attributes": {"xmlns": "http://schemas.microsoft.com/win/2004/08/events/event"},
            "System": {
                "Provider": {"#attributes": {"Name": "Microsoft-Windows-Security-Auditing", "Guid": "54849625-5478-4994-A5BA-3E3B0328C30D"}},
                "EventID": 4624, "Version": 2, "Level": 0, "Task": 12544, "Opcode": 0, "Keywords": "0x8020000000000000",
                "TimeCreated": {"#attributes": {"SystemTime": "2024-01-02T03:04:05.678901Z"}},
                "EventRecordID": 1234, "Correlation": None,
                "Execution": {"#attributes": {"ProcessID": 640, "ThreadID": 700}},
                "Channel": "Security", "Computer": "dc01.corp.local", "Security": None,
            },
            "EventData": LOGON_DATA,
        }
    }
    p = parse(orjson.dumps(record).decode())
    p.timestamp = p.timestamp.replace(microsecond=678000)
    _check_logon(p)
    assert p.fields["event.outcome"] == "success" and p.fields["winlog.process.thread.id"] == 700


def test_xmltodict_record_shape_and_qualified_event_id() -> None:
    record = {
        "Event": {
            "System": {
                "Provider": {"@Name": "Service Control Manager"}, "EventID": {"@Qualifiers": "16384", "#text": "7045"},
                "TimeCreated": {"@SystemTime": "2024-01-02T03:04:05Z"}, "EventRecordID": "9", "Channel": "System", "Computer": "ws1",
            },
            "EventData": {"Data": [{"@Name": "ServiceName", "#text": "evil"}, {"@Name": "ImagePath", "#text": "C:\\x.exe"}, {"@Name": "StartType"}]},
        }
    }
    p = parse_value(record)
    f = p.fields
    assert (f["winlog.event_id"], f["event.dataset"], f["winlog.event_data.ServiceName"], f["winlog.event_data.StartType"]) == (7045, "windows.system", "evil", "")


def test_nxlog_flat_json() -> None:
    doc = {
        "EventTime": "2024-01-02 10:04:05", "Hostname": "dc01.corp.local", "Keywords": -9214364837600034816, "EventType": "AUDIT_SUCCESS",
        "SeverityValue": 2, "Severity": "INFO", "EventID": 4624, "SourceName": "Microsoft-Windows-Security-Auditing",
        "ProviderGuid": "{54849625-5478-4994-A5BA-3E3B0328C30D}", "Version": 2, "Task": 12544, "OpcodeValue": 0,
        "RecordNumber": 1234, "ProcessID": 640, "ThreadID": 700, "Channel": "Security", "Message": "An account was successfully logged on.",
        **LOGON_DATA, "EventReceivedTime": "2024-01-02 10:04:06", "SourceModuleName": "eventlog", "SourceModuleType": "im_msvistalog",
    }
    p = parse(orjson.dumps(doc).decode())
    f = p.fields
    assert p.timestamp == datetime(2024, 1, 2, 10, 4, 5) and p.timestamp.tzinfo is None  # host-local: the source zone applies
    p.timestamp = datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    _check_logon(p)
    assert "winlog.event_data.EventReceivedTime" not in f and f["event.outcome"] == "success"


def test_wazuh_agent_json_camel_case_and_double_escapes() -> None:
    doc = {"win": {
        "system": {"providerName": "Microsoft-Windows-Sysmon", "eventID": "1", "channel": "Microsoft-Windows-Sysmon/Operational",
                   "computer": "ws1", "systemTime": "2021-04-28T20:11:55.3643213Z", "eventRecordID": "5", "severityValue": "INFORMATION",
                   "message": "\"Process Create:\""},
        "eventdata": {"image": "C:\\\\Windows\\\\System32\\\\cmd.exe", "commandLine": "\\\"C:\\\\Windows\\\\cmd.exe\\\" /c whoami",
                      "parentImage": "C:\\\\Windows\\\\explorer.exe", "user": "CORP\\\\bob", "processId": "4242", "targetUserName": "x"},
    }}
    p = parse(orjson.dumps(doc).decode())
    f = p.fields
    assert f["winlog.event_data.Image"] == "C:\\Windows\\System32\\cmd.exe"
    assert f["winlog.event_data.CommandLine"] == '"C:\\Windows\\cmd.exe" /c whoami'
    assert (f["process.executable"], f["process.name"], f["process.pid"], f["process.parent.executable"]) == (
        "C:\\Windows\\System32\\cmd.exe", "cmd.exe", 4242, "C:\\Windows\\explorer.exe")
    assert f["winlog.event_data.TargetUserName"] == "x" and f["message"] == "Process Create:"
    assert f["event.dataset"] == "windows.sysmon" and p.timestamp == datetime(2021, 4, 28, 20, 11, 55, 364321, tzinfo=UTC)


@pytest.mark.parametrize(
    "channel,dataset",
    [("Security", "windows.security"), ("System", "windows.system"), ("Application", "windows.application"),
     ("Microsoft-Windows-PowerShell/Operational", "windows.powershell"), ("Windows PowerShell", "windows.powershell"),
     ("Microsoft-Windows-Sysmon/Operational", "windows.sysmon"), ("Microsoft-Windows-TaskScheduler/Operational", "windows.other")],
)
def test_windows_dataset_by_channel(channel: str, dataset: str) -> None:
    p = parse_value({"win": {"system": {"eventID": "1", "channel": channel}}})
    assert p.fields["event.dataset"] == dataset


def test_account_management_user_fields_and_4688() -> None:
    p = parse_value({"Event": {"System": {"EventID": 4720, "Channel": "Security"}, "EventData": {
        "TargetUserName": "newguy", "SubjectUserName": "admin", "SubjectDomainName": "CORP"}}})
    assert (p.fields["user.name"], p.fields["user.target.name"]) == ("admin", "newguy")
    p = parse_value({"Event": {"System": {"EventID": 4688, "Channel": "Security"}, "EventData": {
        "NewProcessId": "0x1a4", "ProcessId": "0x10", "NewProcessName": "C:\\w\\cmd.exe", "ParentProcessName": "C:\\w\\explorer.exe",
        "CommandLine": "cmd /c dir", "SubjectUserName": "bob", "TargetUserName": "-"}}})
    f = p.fields
    assert (f["process.pid"], f["process.parent.pid"], f["process.executable"], f["process.parent.executable"], f["user.name"]) == (
        0x1A4, 0x10, "C:\\w\\cmd.exe", "C:\\w\\explorer.exe", "bob")


def test_azure_security_event_and_windows_event() -> None:
    xml = '<EventData xmlns="x">\r\n  <Data Name="TargetUserName">alice</Data>\r\n  <Data Name="IpAddress">10.9.9.9</Data><Data Name="LogonType">10</Data></EventData>'
    p = parse_value({"TenantId": "t", "SourceSystem": "OpsManager", "TimeGenerated": "2022-05-13T08:54:05.21Z", "Computer": "WS5",
                     "EventSourceName": "Microsoft-Windows-Security-Auditing", "Channel": "Security", "EventID": 4625,
                     "EventData": xml, "Type": "SecurityEvent"})
    f = p.fields
    assert (f["winlog.event_id"], f["user.name"], f["source.ip"], f["winlog.event_data.LogonType"], f["host.name"]) == (4625, "alice", "10.9.9.9", 10, "WS5")
    p = parse_value({"TenantId": "t", "SourceSystem": "OpsManager", "Provider": "Microsoft-Windows-Sysmon", "Channel": "Microsoft-Windows-Sysmon/Operational",
                     "Computer": "WS5", "EventData": '{"Image":"C:\\\\x.exe","ProcessId":"77"}', "EventID": 1, "Type": "WindowsEvent",
                     "TimeGenerated": "2022-05-13T08:54:06.347Z"})
    assert (p.fields["process.executable"], p.fields["process.pid"], p.fields["event.dataset"]) == ("C:\\x.exe", 77, "windows.sysmon")


def test_azure_syslog_with_auditd_and_plain_program() -> None:
    rec = {"TenantId": "t", "SourceSystem": "Linux", "TimeGenerated": "2022-05-11T18:10:21.997Z", "Computer": "U5", "HostName": "U5",
           "Facility": "authpriv", "SeverityLevel": "info", "ProcessName": "sshd", "HostIP": "192.168.2.5",
           "SyslogMessage": "Failed password for root from 1.2.3.4 port 22 ssh2", "Type": "Syslog"}
    p = parse_value(rec)
    f = p.fields
    assert (f["event.dataset"], f["event.action"], f["source.ip"], f["host.ip"], f["log.syslog.facility.name"]) == (
        "linux.sshd", "ssh_login", "1.2.3.4", "192.168.2.5", "authpriv")
    assert p.timestamp == datetime(2022, 5, 11, 18, 10, 21, 997000, tzinfo=UTC)


def test_suricata_non_alert_records() -> None:
    p = parse('{"timestamp":"2025-05-13T11:45:32.789012+0000","flow_id":1,"event_type":"dns","src_ip":"192.168.1.101","src_port":33333,"dest_ip":"8.8.8.8","dest_port":53,"proto":"UDP","dns":{"type":"query","rrname":"evil.example","rrtype":"A"}}')
    f = p.fields
    assert (f["event.dataset"], f["event.action"], f["dns.question.name"], f["network.transport"]) == ("ids.suricata", "dns", "evil.example", "udp")
    p = parse('{"timestamp":"2025-05-13T10:23:45.123456+0000","flow_id":9,"event_type":"http","src_ip":"192.168.1.100","dest_ip":"93.184.216.34","proto":"TCP","http":{"hostname":"example.com","url":"/x","http_method":"GET","status":200,"http_user_agent":"curl"}}')
    f = p.fields
    assert (f["url.domain"], f["url.original"], f["http.request.method"], f["http.response.status_code"]) == ("example.com", "/x", "GET", 200)


def test_zeek_underscore_names_and_guessed_stream() -> None:
    p = parse('{"_path":"conn","ts":1588205199.82437,"uid":"C1","id_orig_h":"10.0.1.6","id_orig_p":54243,"id_resp_h":"10.0.0.4","id_resp_p":53,"proto":"udp","service":"dns","conn_state":"SF"}')
    f = p.fields
    assert f["event.dataset"] == "zeek.conn" and f["zeek.conn.id.orig_h"] == "10.0.1.6" and "zeek.conn.id_orig_h" not in f
    assert (f["source.ip"], f["destination.port"], f["network.protocol"], f["zeek.session_id"]) == ("10.0.1.6", 53, "dns", "C1")
    p = parse('{"ts":1573747600.751717,"uid":"C5","id.orig_h":"10.0.2.15","id.orig_p":48469,"id.resp_h":"10.0.2.3","id.resp_p":53,"proto":"udp","trans_id":44048,"query":"archive.ubuntu.com","rcode":0}')
    assert p.fields["event.dataset"] == "zeek.dns" and p.fields["dns.question.name"] == "archive.ubuntu.com"


def test_generic_json_is_namespaced_flat_and_bounded() -> None:
    p = parse('{"integration":"github","github":{"actor":"user","created_at":1619032221869,"action":"repo.create","tags":[1,"a"],"nested":[{"x":1}]},"message":"hi"}')
    f = p.fields
    assert f["event.dataset"] == "generic.json" and f["json.github.actor"] == "user" and f["message"] == "hi"
    assert f["json.github.tags"] == ["1", "a"] and f["json.github.nested"] == '[{"x":1}]'
    assert p.timestamp == datetime(2021, 4, 21, 19, 10, 21, 869000, tzinfo=UTC)
    deep: dict = {"v": 1}
    for _ in range(30):
        deep = {"k": deep}
    wide = {f"key{i}": i for i in range(2000)}
    p = parse(orjson.dumps({"deep": deep, "wide": wide}).decode())
    assert p.status == "partial" and len(p.fields) <= 520
    assert any(isinstance(v, str) and v.startswith("{") for k, v in p.fields.items() if k.startswith("json.deep"))


def test_ecs_passthrough_and_reserved_keys() -> None:
    p = parse('{"@timestamp":"2024-01-01T00:00:00Z","ecs":{"version":"8.11"},"event":{"dataset":"web.access","kind":"alert"},"source":{"ip":"1.2.3.4"},"_id":"evil","soc":{"x":1}}')
    f = p.fields
    assert f["source.ip"] == "1.2.3.4" and f["event.dataset"] == "web.access"
    assert "_id" not in f and "event.kind" not in f and "soc.x" not in f


def test_invalid_and_concatenated_json() -> None:
    p = parse('{"a": ')
    assert p.status == "failed" and p.error.startswith("invalid JSON")
    p = parse('{"a": 1} {"b": 2}')
    assert p.status == "partial" and p.fields["json.a"] == 1 and "2 concatenated" in p.error
    p = parse("[1, 2, 3]", "json")
    assert p.status == "parsed" and p.fields["json.value"] == [1, 2, 3]


# ---- iter_json_records -------------------------------------------------------------------------


def test_iter_pretty_printed_array() -> None:
    text = '[\n  {\n    "a": "x ] } [ {",\n    "b": [1, {"c": "\\"quoted\\""}]\n  },\n  {"d": 2}, 3, "s,]", null\n]\n'
    items = list(iter_json_records(text))
    assert [i for i, _ in items] == [0, 1, 2, 3, 4]
    assert [orjson.loads(raw) for _, raw in items] == orjson.loads(text)
    assert items[0][1].startswith(b"{\n    \"a\"")  # the element's exact text


def test_iter_json_lines_and_garbage() -> None:
    text = '{"a":1}\n{"b":2}\nnot json at all\n[{"c":3}]\n{"unterminated": '
    items = [raw for _, raw in iter_json_records(text)]
    assert items == [b'{"a":1}', b'{"b":2}', b"not json at all", b'{"c":3}', b'{"unterminated":']


def test_iter_streams_small_chunks_and_bytes() -> None:
    data = ('[{"name": "Nguyễn Văn A", "x": "' + "đ" * 50 + '"}, {"b": "\\u00e9"}]').encode() + b""
    class Trickle(io.RawIOBase):
        def __init__(self, payload: bytes) -> None:
            self.payload, self.pos = payload, 0
        def readable(self) -> bool:
            return True
        def read(self, n: int = -1) -> bytes:
            chunk = self.payload[self.pos : self.pos + 3]
            self.pos += len(chunk)
            return chunk
    items = list(iter_json_records(Trickle(data)))
    assert [orjson.loads(raw) for _, raw in items] == orjson.loads(data)
    bad = b'[{"a": "\xff\xfe"}]'
    assert list(iter_json_records(bad))[0][1] == b'{"a": "\xff\xfe"}'  # exact bytes kept
    assert list(iter_json_records(io.StringIO('[{"a":1},{"b":2}]'))) == [(0, b'{"a":1}'), (1, b'{"b":2}')]
    assert list(iter_json_records("")) == [] and list(iter_json_records("[]")) == []


def test_real_evtx_records_through_the_json_parser(evtx_sample) -> None:  # noqa: F811  (the imported fixture)
    """The ``evtx`` library's own JSON (what the .evtx source sends) for a real Security log."""
    import evtx

    records = list(evtx.PyEvtxParser(str(evtx_sample)).records_json())
    assert records
    for rec in records:
        p = parse(rec["data"], "json")
        f = p.fields
        assert p.status == "parsed" and f["event.dataset"] == "windows.security"
        assert f["winlog.record_id"] == orjson.loads(rec["data"])["Event"]["System"]["EventRecordID"]
        assert isinstance(f["winlog.event_id"], int)
        assert p.timestamp is not None and p.timestamp.tzinfo is not None
        assert all(isinstance(v, str | int) for k, v in f.items() if k.startswith("winlog.event_data."))
    failed_logon = [f for f in (parse(r["data"], "json").fields for r in records) if f["winlog.event_id"] == 4625]
    assert failed_logon and failed_logon[0]["event.outcome"] == "failure" and failed_logon[0]["user.name"]


@given(st.text(alphabet=st.sampled_from(['\\', '"', "a", "C", ":", "\ue000", " "]), max_size=40))
def test_wazuh_unescape_matches_its_definition(text: str) -> None:
    from soc.ingest.parsers.windows import _WAZUH_UNESCAPE, _wazuh_value

    assert _wazuh_value(text) == _WAZUH_UNESCAPE.sub(lambda m: m.group(1), text)
