"""Every Windows log shape reaches every rule (issue #15, item 2).

The same events are written in each shape a province receives them in -- evtx_dump JSON (what the
``evtx`` library and our EVTX reader produce), Winlogbeat JSON, Elastic Agent JSON (ECS-only: the
ingest pipelines renamed EventData into ``process.*``, ``file.path``, ``powershell.file.*`` and
dropped the original names), NXLog ``im_msvistalog`` JSON (flat) and the Wazuh agent's JSON -- and
run through ``soc hunt``'s path with the project's rules. Each shape must fire the same rules, the
same number of times, and normalise into the same ``winlog.*``/ECS fields.

Two sets: attack events written for the test (a Sysmon process creation of ntdsutil IFM, Sysmon
process access to lsass, 4688 reg save, 4104 Invoke-Mimikatz, 4698 hidden PowerShell task, a 4624
for the field model), and real records from ``../shared/data/evtx`` (``sysmon.evtx``,
``new-user-security.evtx``) read as the binary EVTX file and as each JSON shape converted from it.

The Elastic Agent documents are built here from Elastic's documented renames (the Windows
integration's Sysmon and PowerShell pipelines), written independently of
:mod:`soc.ingest.windows_shapes`, so a wrong reverse table there fails this test.
"""

from __future__ import annotations

import json
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from soc.detect.compiler import RuleSet, compile_rules
from soc.detect.rules import load_rules
from soc.hunt import run_hunt
from soc.ingest.parsers.json import parse
from soc.ingest.sources import read_evtx
from soc.ingest.windows_shapes import event_data_from_ecs, sigma_logsource
from soc.model import PARSED
from soc.regression import SAMPLE_TIMEZONE
from tests.conftest import ROOT, shared

SYSMON = "Microsoft-Windows-Sysmon/Operational"
POWERSHELL = "Microsoft-Windows-PowerShell/Operational"
PROVIDERS = {SYSMON: "Microsoft-Windows-Sysmon", "Security": "Microsoft-Windows-Security-Auditing",
             POWERSHELL: "Microsoft-Windows-PowerShell", "System": "Service Control Manager"}

LSASS = "1964fc7e-01a3-4848-974a-2b1f2b0f0beb"
NTDS_SYSMON = "467ed212-81ac-4f9c-82e6-4017b31c395b"
SCRIPT_BLOCK = "8aeb124a-deff-49cb-84ed-cd45cb9e4055"
TASK = "049929b3-c849-4fb2-b962-e7fd666acbb5"
PRIVILEGED_GROUP = "1ea55c24-df9f-4ba5-b5d8-a553dd6b09df"


@cache
def _ruleset() -> RuleSet:
    return compile_rules(load_rules([ROOT / "detections"]))


# ---- the events (System part + EventData as Windows names them) ------------------------------
def _event(channel: str, eid: int, minute: int, data: dict[str, str], computer: str = "srv-motcua.sotnmt.local") -> dict[str, Any]:
    return {"channel": channel, "event_id": eid, "provider": PROVIDERS[channel], "computer": computer,
            "time": f"2026-12-03T02:{minute:02d}:00.000Z", "record_id": 5000 + minute, "data": data}


ATTACKS: list[tuple[str, dict[str, Any], set[str]]] = [
    ("sysmon 1 ntdsutil ifm", _event(SYSMON, 1, 1, {
        "UtcTime": "2026-12-03 02:01:00.000", "ProcessGuid": "{5770385f-1111-43e0-bf4c-06f5698ffbd9}", "ProcessId": "6120",
        "Image": "C:\\Windows\\System32\\ntdsutil.exe", "OriginalFileName": "ntdsutil.exe",
        "CommandLine": "ntdsutil \"ac i ntds\" \"ifm\" \"create full c:\\temp\\x\" q q",
        "CurrentDirectory": "C:\\Windows\\system32\\", "User": "SOTNMT\\quantri", "IntegrityLevel": "High",
        "ParentProcessGuid": "{5770385f-3333-43e0-bf4c-06f5698ffbd9}", "ParentProcessId": "5508",
        "ParentImage": "C:\\Windows\\System32\\cmd.exe", "ParentCommandLine": "cmd.exe"}), {NTDS_SYSMON}),
    ("sysmon 10 lsass access", _event(SYSMON, 10, 2, {
        "UtcTime": "2026-12-03 02:02:00.000", "SourceProcessGUID": "{5770385f-c22a-43e0-bf4c-06f5698ffbd9}",
        "SourceProcessId": "4412", "SourceThreadId": "5200", "SourceImage": "C:\\Users\\quantri\\Downloads\\m.exe",
        "TargetProcessGUID": "{5770385f-aaaa-43e0-bf4c-06f5698ffbd9}", "TargetProcessId": "712",
        "TargetImage": "C:\\Windows\\system32\\lsass.exe", "GrantedAccess": "0x1010",
        "CallTrace": "C:\\Windows\\SYSTEM32\\ntdll.dll+9d234|UNKNOWN(00000000001A0000)"}), {LSASS}),
    ("4688 reg save", _event("Security", 4688, 3, {
        "SubjectUserSid": "S-1-5-21-1004336348-1177238915-682003330-500", "SubjectUserName": "Administrator",
        "SubjectDomainName": "SOTNMT", "SubjectLogonId": "0x8f12ab", "NewProcessId": "0x1a2c",
        "NewProcessName": "C:\\Windows\\System32\\reg.exe", "TokenElevationType": "%%1937", "ProcessId": "0x158c",
        "CommandLine": "reg save HKLM\\SAM C:\\Windows\\Temp\\sam.save", "ParentProcessName": "C:\\Windows\\System32\\cmd.exe",
        "MandatoryLabel": "S-1-16-12288"}), {NTDS_SYSMON}),  # process_creation reads 4688 too
    ("4104 script block", _event(POWERSHELL, 4104, 4, {
        "MessageNumber": "1", "MessageTotal": "1", "ScriptBlockId": "4f2a1c1e-9d55-4b8e-a0c3-5b1d7f0e2a11",
        "ScriptBlockText": "function Invoke-Mimikatz\n{\n<#\n.SYNOPSIS\nMimikatz 2.0", "Path": "C:\\Users\\quantri\\m.ps1"}),
     {SCRIPT_BLOCK}),
    ("4698 hidden powershell task", _event("Security", 4698, 5, {
        "SubjectUserSid": "S-1-5-21-1004336348-1177238915-682003330-1105", "SubjectUserName": "quantri",
        "SubjectDomainName": "SOTNMT", "SubjectLogonId": "0x5a3c2f", "TaskName": "\\UpdateCheck",
        "TaskContent": "<Task><Actions Context=\"Author\"><Exec><Command>powershell.exe</Command>"
                       "<Arguments>-nop -w hidden -enc JABjAGwA</Arguments></Exec></Actions></Task>"}), {TASK}),
    ("4624 network logon", _event("Security", 4624, 6, {
        "SubjectUserSid": "S-1-0-0", "SubjectUserName": "-", "SubjectDomainName": "-", "SubjectLogonId": "0x0",
        "TargetUserSid": "S-1-5-21-1004336348-1177238915-682003330-1105", "TargetUserName": "quantri",
        "TargetDomainName": "SOTNMT", "TargetLogonId": "0x5a3c2f", "LogonType": "3", "LogonProcessName": "NtLmSsp ",
        "AuthenticationPackageName": "NTLM", "WorkstationName": "WS01", "IpAddress": "10.20.3.45", "IpPort": "49712"}),
     set()),
]


# ---- the shapes --------------------------------------------------------------------------------
def evtx_dump(ev: dict[str, Any]) -> dict[str, Any]:
    """evtx_dump -o json / the ``evtx`` library (what our EVTX reader yields)."""
    return {"Event": {"#attributes": {"xmlns": "http://schemas.microsoft.com/win/2004/08/events/event"}, "System": {
        "Provider": {"#attributes": {"Name": ev["provider"]}}, "EventID": ev["event_id"], "Version": 5, "Level": 4,
        "Task": 1, "Opcode": 0, "Keywords": "0x8020000000000000" if ev["channel"] == "Security" else "0x8000000000000000",
        "TimeCreated": {"#attributes": {"SystemTime": ev["time"].replace(".000Z", ".000000Z")}},
        "EventRecordID": ev["record_id"], "Correlation": None,
        "Execution": {"#attributes": {"ProcessID": 2284, "ThreadID": 5252}}, "Channel": ev["channel"],
        "Computer": ev["computer"], "Security": {"#attributes": {"UserID": "S-1-5-18"}}},
        "EventData": dict(ev["data"])}}


def winlogbeat(ev: dict[str, Any]) -> dict[str, Any]:
    return {"@timestamp": ev["time"], "agent": {"type": "winlogbeat", "version": "8.15.3"},
            "event": {"code": str(ev["event_id"]), "kind": "event", "provider": ev["provider"]},
            "host": {"name": ev["computer"].split(".")[0]},
            "winlog": {"channel": ev["channel"], "event_id": str(ev["event_id"]), "provider_name": ev["provider"],
                       "computer_name": ev["computer"], "record_id": str(ev["record_id"]), "api": "wineventlog",
                       "event_data": dict(ev["data"])}}


def _split_user(value: str) -> dict[str, str]:
    domain, _, name = value.rpartition("\\")
    return {"name": name, "domain": domain} if domain else {"name": name}


def _put(doc: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    node = doc
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value


#: Elastic Agent (Windows integration) renames, per (channel, event id): EventData name -> ECS field
ELASTIC_RENAMES: dict[tuple[str, int], dict[str, str]] = {
    (SYSMON, 1): {"ProcessGuid": "process.entity_id", "ProcessId": "process.pid", "Image": "process.executable",
                  "CommandLine": "process.command_line", "CurrentDirectory": "process.working_directory",
                  "OriginalFileName": "process.pe.original_file_name", "ParentProcessGuid": "process.parent.entity_id",
                  "ParentProcessId": "process.parent.pid", "ParentImage": "process.parent.executable",
                  "ParentCommandLine": "process.parent.command_line", "FileVersion": "process.pe.file_version",
                  "Description": "process.pe.description", "Product": "process.pe.product", "Company": "process.pe.company"},
    (SYSMON, 3): {"ProcessGuid": "process.entity_id", "ProcessId": "process.pid", "Image": "process.executable",
                  "SourceIp": "source.ip", "SourcePort": "source.port", "DestinationIp": "destination.ip",
                  "DestinationPort": "destination.port", "Protocol": "network.transport",
                  "DestinationHostname": "destination.domain", "SourceHostname": "source.domain"},
    (SYSMON, 10): {"SourceProcessGUID": "process.entity_id", "SourceProcessId": "process.pid",
                   "SourceThreadId": "process.thread.id", "SourceImage": "process.executable"},
    (SYSMON, 11): {"ProcessGuid": "process.entity_id", "ProcessId": "process.pid", "Image": "process.executable",
                   "TargetFilename": "file.path"},
    **{(SYSMON, eid): {"ProcessGuid": "process.entity_id", "ProcessId": "process.pid", "Image": "process.executable",
                       "TargetObject": "registry.path"} for eid in (12, 13, 14)},
    (SYSMON, 15): {"ProcessGuid": "process.entity_id", "ProcessId": "process.pid", "Image": "process.executable",
                   "TargetFilename": "file.path"},
    (POWERSHELL, 4104): {"ScriptBlockText": "powershell.file.script_block_text", "ScriptBlockId": "powershell.file.script_block_id",
                         "MessageNumber": "powershell.sequence", "MessageTotal": "powershell.total", "Path": "file.path"},
    # Elastic keeps 4688's EventData; an agent that ships only ECS (the case this shape tests) has:
    ("Security", 4688): {"NewProcessName": "process.executable", "CommandLine": "process.command_line",
                         "ParentProcessName": "process.parent.executable"},
}
_NUMERIC_ECS = {"process.pid", "process.parent.pid", "process.thread.id", "source.port", "destination.port",
                "powershell.sequence", "powershell.total"}


def elastic_agent(ev: dict[str, Any]) -> dict[str, Any]:
    """Elastic Agent: EventData renamed into ECS and removed; ``winlog.event_data`` absent when nothing is left."""
    doc = winlogbeat(ev)
    doc["agent"] = {"type": "filebeat", "version": "8.15.3"}
    doc["data_stream"] = {"dataset": "windows.sysmon_operational" if ev["channel"] == SYSMON else "system.security"}
    data = dict(ev["data"])
    for name, ecs in ELASTIC_RENAMES.get((ev["channel"], ev["event_id"]), {}).items():
        if name in data:
            value: Any = data.pop(name)
            if ecs in _NUMERIC_ECS and str(value).isdigit():
                value = int(value)
            _put(doc, ecs, value)
    if ev["channel"] == SYSMON and "User" in data:
        doc["user"] = _split_user(data.pop("User"))
    if ev["channel"] == SYSMON and "Details" in data and ev["event_id"] in (12, 13, 14):
        _put(doc, "registry.data.strings", [data.pop("Details")])
    if data:
        doc["winlog"]["event_data"] = data
    else:
        del doc["winlog"]["event_data"]
    return doc


def nxlog(ev: dict[str, Any]) -> dict[str, Any]:
    """NXLog im_msvistalog + to_json(): System keys and EventData names side by side."""
    local = ev["time"].replace("T", " ")[:19]
    doc: dict[str, Any] = {"EventTime": local, "Hostname": ev["computer"], "Keywords": -9223372036854775808,
                           "EventType": "AUDIT_SUCCESS" if ev["channel"] == "Security" else "INFO",
                           "SeverityValue": 2, "Severity": "INFO", "EventID": ev["event_id"],
                           "SourceName": ev["provider"], "RecordNumber": ev["record_id"], "ProcessID": 2284,
                           "ThreadID": 5252, "Channel": ev["channel"], "EventReceivedTime": local,
                           "SourceModuleName": "eventlog", "SourceModuleType": "im_msvistalog"}
    doc.update(ev["data"])
    return doc


def wazuh(ev: dict[str, Any]) -> dict[str, Any]:
    """The Wazuh agent's eventchannel JSON: camelCase names, backslashes escaped once more."""
    def camel(name: str) -> str:
        return name[:1].lower() + name[1:]

    def esc(value: str) -> str:
        return str(value).replace("\\", "\\\\").replace('"', '\\"')
    return {"win": {"system": {"providerName": ev["provider"], "eventID": str(ev["event_id"]), "channel": ev["channel"],
                               "computer": ev["computer"], "systemTime": ev["time"].replace(".000Z", ".0000000Z"),
                               "eventRecordID": str(ev["record_id"]), "severityValue": "INFORMATION"},
                    "eventdata": {camel(k): esc(v) for k, v in ev["data"].items()}}}


SHAPES = {"evtx_dump": evtx_dump, "winlogbeat": winlogbeat, "elastic_agent": elastic_agent, "nxlog": nxlog, "wazuh": wazuh}


def _hunt_jsonl(tmp_path: Path, name: str, docs: list[dict[str, Any]]) -> Counter[str]:
    path = tmp_path / f"{name}.json"
    path.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs), encoding="utf-8")
    return _rule_counts(path)


def _rule_counts(path: Path) -> Counter[str]:
    result = run_hunt([path], _ruleset(), timezone=SAMPLE_TIMEZONE)
    assert not result.counters["failed"], result.summary()
    return Counter(str(alert["rule"]["id"]) for alert in result.alerts)


# ---- attack events in every shape ---------------------------------------------------------------
def test_the_elastic_agent_shape_really_lacks_event_data() -> None:
    """The shape under test is ECS-only: no Image/CommandLine/ScriptBlockText left under winlog."""
    by_name = {name: ev for name, ev, _ in ATTACKS}
    sysmon_1 = elastic_agent(by_name["sysmon 1 ntdsutil ifm"])
    assert "Image" not in sysmon_1["winlog"].get("event_data", {})
    assert sysmon_1["process"]["command_line"].startswith("ntdsutil")
    script = elastic_agent(by_name["4104 script block"])
    assert "event_data" not in script["winlog"]
    assert "Invoke-Mimikatz" in script["powershell"]["file"]["script_block_text"]


@pytest.mark.parametrize("shape", list(SHAPES))
def test_attack_events_fire_the_same_rules_in_every_shape(tmp_path: Path, shape: str) -> None:
    counts = _hunt_jsonl(tmp_path, shape, [SHAPES[shape](ev) for _, ev, _ in ATTACKS])
    expected = Counter(rule for _, _, rules in ATTACKS for rule in rules)
    assert {r: counts[r] for r in expected} == dict(expected), f"{shape}: {dict(counts)}"
    # nothing else fires on these events, in any shape (the shapes agree on the whole set)
    assert set(counts) == set(expected), f"{shape}: unexpected rules {set(counts) - set(expected)}"


#: the fields the model promises for every shape (what rules, grouping and searches read)
MODEL_FIELDS = ("winlog.channel", "winlog.event_id", "winlog.provider_name", "event.code", "event.dataset",
                "host.name", "process.executable", "process.name", "process.command_line", "process.parent.executable",
                "process.pid", "user.name", "source.ip")


@pytest.mark.parametrize(("name", "event"), [(n, e) for n, e, _ in ATTACKS], ids=[n for n, _, _ in ATTACKS])
def test_every_shape_normalises_into_the_same_fields(name: str, event: dict[str, Any]) -> None:
    parsed = {shape: parse(json.dumps(make(event))) for shape, make in SHAPES.items()}
    reference = parsed["evtx_dump"].fields
    event_data = {k: v for k, v in reference.items() if k.startswith("winlog.event_data.")}
    assert event_data, "the reference shape carries EventData"
    for shape, result in parsed.items():
        fields = result.fields
        assert result.status == PARSED, (shape, result.error)
        for key in MODEL_FIELDS:
            if shape == "wazuh" and key == "host.name":
                continue
            assert fields.get(key) == reference.get(key), f"{name}/{shape}: {key} {fields.get(key)!r} != {reference.get(key)!r}"
        for key, value in event_data.items():
            assert fields.get(key) == value, f"{name}/{shape}: {key} {fields.get(key)!r} != {value!r}"


# ---- real EVTX records in every shape --------------------------------------------------------
def _records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(record.raw) for batch in read_evtx(path) for record in batch]


def _from_evtx(obj: dict[str, Any]) -> dict[str, Any]:
    """The canonical event of a real record as the EVTX reader gives it (evtx library JSON)."""
    system, data = obj["Event"]["System"], obj["Event"].get("EventData") or {}
    eid = system["EventID"]
    eid = eid["#text"] if isinstance(eid, dict) else eid
    return {"channel": system["Channel"], "event_id": int(eid), "provider": system["Provider"]["#attributes"]["Name"],
            "computer": system["Computer"], "time": system["TimeCreated"]["#attributes"]["SystemTime"],
            "record_id": system["EventRecordID"],
            "data": {k: "" if v is None else str(v) for k, v in data.items() if not k.startswith("#")}}


@pytest.mark.parametrize("name", ["sysmon.evtx", "new-user-security.evtx"])
def test_real_evtx_records_fire_the_same_rules_in_every_shape(tmp_path: Path, name: str) -> None:
    path = shared("evtx", name)
    events = [_from_evtx(obj) for obj in _records(path)]
    assert events
    binary = _rule_counts(path)
    for shape in ("winlogbeat", "elastic_agent", "nxlog", "wazuh"):
        counts = _hunt_jsonl(tmp_path, f"{name}-{shape}", [SHAPES[shape](ev) for ev in events])
        assert counts == binary, f"{name} as {shape}: {dict(counts)} != EVTX {dict(binary)}"
    if name == "new-user-security.evtx":  # a real 4732 to Administrators: the rule fires in all shapes
        assert binary[PRIVILEGED_GROUP] >= 1


# ---- the helpers themselves -------------------------------------------------------------------
def test_ecs_names_never_override_event_data() -> None:
    doc = {"process": {"executable": "C:\\ecs.exe", "command_line": "ecs"}}
    kept = {"Image": "C:\\Windows\\System32\\cmd.exe"}
    assert event_data_from_ecs(doc, SYSMON, 1, kept) == {"CommandLine": "ecs"}
    assert event_data_from_ecs(doc, "Application", 1000, {}) == {}
    assert event_data_from_ecs({"process.executable": "C:\\flat.exe"}, SYSMON, 1, {}) == {"Image": "C:\\flat.exe"}


def test_powershell_4103_payload_rebuilt_from_ecs() -> None:
    doc = {"process": {"command_line": "powershell.exe -nop"},
           "powershell": {"command": {"name": "Invoke-WebRequest", "type": "Cmdlet", "invocation_details": [
               {"type": "ParameterBinding", "related_command": "Invoke-WebRequest", "name": "Uri", "value": "http://203.0.113.7/a"}]}}}
    out = event_data_from_ecs(doc, POWERSHELL, 4103, {})
    assert 'ParameterBinding(Invoke-WebRequest): "Uri"="http://203.0.113.7/a"' in out["Payload"]
    assert "Host Application = powershell.exe -nop" in out["ContextInfo"]
    assert "Command Name = Invoke-WebRequest" in out["ContextInfo"]


@pytest.mark.parametrize(("channel", "eid", "expected"), [
    (SYSMON, 1, {"product": "windows", "service": "sysmon", "category": "process_creation"}),
    (SYSMON, 10, {"product": "windows", "service": "sysmon", "category": "process_access"}),
    (SYSMON, 13, {"product": "windows", "service": "sysmon", "category": "registry_set"}),
    (SYSMON, 18, {"product": "windows", "service": "sysmon", "category": "pipe_created"}),
    (SYSMON, 20, {"product": "windows", "service": "sysmon", "category": "wmi_event"}),
    (SYSMON, 22, {"product": "windows", "service": "sysmon", "category": "dns_query"}),
    (POWERSHELL, 4104, {"product": "windows", "service": "powershell", "category": "ps_script"}),
    (POWERSHELL, 4103, {"product": "windows", "service": "powershell", "category": "ps_module"}),
    ("Security", 4688, {"product": "windows", "service": "security", "category": "process_creation"}),
    ("Security", 4698, {"product": "windows", "service": "security"}),
    ("Microsoft-Windows-Windows Defender/Operational", 5001, {"product": "windows", "service": "windefend"}),
    ("Microsoft-Windows-TaskScheduler/Operational", 106, {"product": "windows", "service": "taskscheduler"}),
    ("System", 7045, {"product": "windows", "service": "system"}),
    ("Some-Vendor/Admin", 1, {"product": "windows"}),
])
def test_sigma_logsource_of_windows_events(channel: str, eid: int, expected: dict[str, str]) -> None:
    assert sigma_logsource(channel, eid) == expected


# ---- real attack recordings (OTRF): atomic Windows datasets (flat JSON, NXLog-like), Log4Shell on Linux ----
OTRF = {
    # (tactic folder, archive stem): {rule id: alerts}
    # process_creation rules read Security 4688 as well as Sysmon 1 (tests/test_windows_4688.py): these
    # recordings hold both events of each process start, so the one rule alerts on each
    ("credential_access", "empire_shell_reg_dump_sam"): {NTDS_SYSMON: 2},
    ("credential_access", "psh_lsass_memory_dump_comsvcs"): {LSASS: 2},
    ("credential_access", "rdp_interactive_taskmanager_lsass_dump"): {LSASS: 2},
    ("credential_access", "cmd_psexec_lsa_secrets_dump"): {NTDS_SYSMON: 2,
                                                           "5b933f5e-7136-46f0-86ad-e91958f6dcb3": 8,
                                                           "89910e06-8248-458b-bf75-658f6a475ff4": 1},
    ("persistence", "empire_persistence_registry_modification_run_keys_elevated_user"): {
        "0c390f99-f8aa-47f0-877a-246ef4f2e48d": 1},
    ("persistence", "empire_schtasks_creation_standard_user"): {TASK: 1},
    ("lateral_movement", "empire_wmi_dcerpc_wmi_IWbemServices_ExecMethod"): {"52cbc2cf-6af8-444e-be27-9365c9c5215c": 2},
}


@pytest.mark.parametrize(("folder", "stem"), list(OTRF), ids=[s for _, s in OTRF])
def test_real_attack_recordings_fire_the_new_rules(tmp_path: Path, folder: str, stem: str) -> None:
    """Real Sysmon/Security/PowerShell events of simulated attacks (OTRF Security-Datasets, flat
    ``SourceName``/``Channel``/``Hostname``/``EventID`` JSON with EventData at the top level)."""
    import zipfile

    archives = sorted(shared("otrf", "datasets", "atomic", "windows", folder, "host").glob(f"{stem}*.zip"))
    assert archives, stem
    with zipfile.ZipFile(archives[0]) as archive:
        names = [n for n in archive.namelist() if n.endswith(".json") and not n.startswith("__MACOSX")]
        path = tmp_path / "events.json"
        path.write_bytes(archive.read(names[0]))
    counts = _rule_counts(path)
    assert {rule: counts[rule] for rule in OTRF[(folder, stem)]} == OTRF[(folder, stem)], dict(counts)


def test_real_log4shell_recording_fires_the_linux_web_server_shell_rule() -> None:
    """OTRF's Log4Shell recording on Linux (Sysmon for Linux over syslog, Azure Monitor shape):
    java started bash with a base64 reverse shell; the Linux twin of the Windows rule fires once."""
    path = shared("otrf", "datasets", "compound", "Log4Shell", "unzipped",
                  "syslog_sysmon_log4shell_cve2021_44228_jndi_reference_2022-05-11181020.json")
    assert _rule_counts(path)["5c8e2a71-9b3d-4f06-a4e2-7d1c9b0f6e38"] == 1
