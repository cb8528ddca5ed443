"""Real public log samples (../shared/data) through the pipeline: nothing lost, key fields right.

Expected counts are computed from the raw files with independent ``grep``-style regexes in
the tests themselves (never copied from our own output), so a parser regression shows up
as a count mismatch.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from soc.ingest import Record
from soc.ingest.normalize import SourceContext
from soc.ingest.parsers import detect_format, iter_json_records
from soc.ingest.pipeline import IngestPipeline
from soc.model import Event
from tests.conftest import shared

RECEIVED = datetime(2024, 6, 1, 3, 0, tzinfo=UTC)


def _run(path: Path, fmt: str | None = None, array: bool = False) -> tuple[list[bytes], list[Event], dict]:
    data = path.read_bytes()
    raws = [raw for _, raw in iter_json_records(data)] if array else data.splitlines()
    if fmt is None:
        fmt = detect_format(data[:65536].decode("utf-8", "replace").splitlines())
    pipeline = IngestPipeline(SourceContext(source=path.name, agency_id="so-tt", agency_name="Sở TT&TT"), fmt=fmt)
    records = [Record(raw=raw, event_id=f"{path.name}:{i}", received=RECEIVED, origin=f"{path}:{i}") for i, raw in enumerate(raws)]
    events = pipeline.process(records)
    for event in events:
        orjson.dumps(event)
    return raws, events, pipeline.counters.as_dict()


def _text_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8", errors="replace").splitlines()


def test_openssh_2k() -> None:
    path = shared("loghub", "OpenSSH", "OpenSSH_2k.log")
    raws, events, counters = _run(path)
    assert len(raws) == len(events) == 2000 and counters["parsed"] == 2000
    assert {e["event.dataset"] for e in events} == {"linux.sshd"}
    failed_re = re.compile(r"Failed \S+ for (?:invalid user )?.*? from (\d+\.\d+\.\d+\.\d+) port")
    expected_ips = Counter(m.group(1) for line in _text_lines(path) if (m := failed_re.search(line)))
    failures = [e for e in events if e.get("event.action") == "ssh_login" and e["event.outcome"] == "failure"]
    assert len(failures) == sum(expected_ips.values()) > 500
    assert Counter(e["source.ip"] for e in failures) == expected_ips
    brute = {ip for ip, n in expected_ips.items() if n >= 5}
    assert {ip for ip, n in Counter(e["source.ip"] for e in failures).items() if n >= 5} == brute
    assert all(e["user.name"] for e in failures)
    invalid = [e for e in events if e.get("event.action") == "ssh_invalid_user"]
    assert len(invalid) == sum(1 for line in _text_lines(path) if re.search(r"\bInvalid user ", line))
    # loghub lines carry no year: inferred, in the source zone, nearest to the receive time
    assert all(e["soc.time.year"] == "inferred" and e["soc.time.zone"] == "source" for e in events)
    assert events[0]["@timestamp"] == "2023-12-09T23:55:46.000Z"  # Dec 10 06:55:46 +07:00


def test_linux_2k() -> None:
    path = shared("loghub", "Linux", "Linux_2k.log")
    raws, events, counters = _run(path)
    assert len(events) == 2000 and counters["failed"] == 0 and counters["partial"] == 0
    lines = _text_lines(path)
    auth_failures = [e for e in events if e.get("event.action") == "authentication_failure"]
    assert len(auth_failures) == sum(1 for line in lines if "authentication failure;" in line) == 490
    rhost = next(e for e in auth_failures if e.get("pam.rhost") == "218.188.2.4")
    assert rhost["source.ip"] == "218.188.2.4"
    named = next(e for e in auth_failures if "hinet" in e.get("pam.rhost", ""))
    assert "source.ip" not in named and named["source.domain"].endswith("hinet.net")
    opened = [e for e in events if e.get("event.action") == "session_opened"]
    assert len(opened) == sum(1 for line in lines if "session opened for user" in line)
    datasets = Counter(e["event.dataset"] for e in events)
    assert datasets["linux.sshd"] == sum(1 for line in lines if " sshd(pam_unix)[" in line or " sshd[" in line)


def test_apache_error_2k() -> None:
    path = shared("loghub", "Apache", "Apache_2k.log")
    raws, events, counters = _run(path)
    assert detect_format(_text_lines(path)[:50]) == "access"
    assert len(events) == 2000 and counters["parsed"] == 2000
    assert {e["event.dataset"] for e in events} == {"web.error"}
    levels = Counter(e["log.level"] for e in events)
    assert levels["error"] == sum(1 for line in _text_lines(path) if "] [error] " in line)
    assert events[0]["@timestamp"] == "2005-12-03T21:47:44.000Z"


def test_elastic_auth_log() -> None:
    path = shared("elastic-examples", "suspicious_login_activity", "data", "auth.log")
    raws, events, counters = _run(path)
    lines = _text_lines(path)
    assert len(raws) == len(events) == 7121 and counters["failed"] == 0 and counters["partial"] == 0
    actions = Counter(e.get("event.action") for e in events)
    created = [e for e in events if e.get("event.action") == "user_created"]
    assert sum(1 for e in created if e["event.outcome"] == "success") == sum("new user:" in line for line in lines) == 10
    assert sum(1 for e in created if e["event.outcome"] == "failure") == sum("failed adding user" in line for line in lines) == 30
    first = next(e for e in created if e["event.outcome"] == "success")
    assert first["user.target.name"].startswith("elastic_user_") and first["event.category"] == ["iam"]
    assert actions["group_created"] == sum("new group:" in line for line in lines)
    assert actions["sudo_command"] == sum("COMMAND=" in line for line in lines) == 186
    assert actions["password_changed"] == sum("password changed for" in line for line in lines)
    sudo = next(e for e in events if e.get("event.action") == "sudo_command")
    assert (sudo["user.name"], sudo["user.effective.name"]) == ("ubuntu", "root")
    accepted = [e for e in events if e.get("event.action") == "ssh_login" and e["event.outcome"] == "success"]
    assert len(accepted) == sum(" Accepted " in line for line in lines)
    repeated = [e for e in events if "log.syslog.repeat_count" in e]
    assert repeated and all(e["event.action"] == "ssh_login" for e in repeated if "Failed password" in e["message"])
    su = [e for e in events if e.get("event.action") == "su"]
    assert su and all(e["user.target.name"] == "root" for e in su)


def test_elastic_apache_access() -> None:
    path = shared("elastic-examples", "apache_logs", "apache_logs")
    raws, events, counters = _run(path)
    lines = _text_lines(path)
    assert len(events) == 10000 and counters["parsed"] == 10000
    codes = Counter(e["http.response.status_code"] for e in events)
    assert codes[404] == sum(1 for line in lines if re.search(r'" 404 ', line))
    assert sum(1 for e in events if e["event.outcome"] == "failure") == sum(n for code, n in codes.items() if code >= 400)
    first = events[0]
    assert (first["source.ip"], first["http.request.method"], first["http.version"]) == ("83.149.9.216", "GET", "1.1")
    assert first["url.path"].endswith("kibana-search.png") and first["user_agent.original"].startswith("Mozilla/5.0")
    assert first["@timestamp"] == "2015-05-17T10:05:03.000Z" and first["soc.time.zone"] == "in_line"


OTRF = ("otrf", "datasets", "compound", "Log4Shell", "unzipped")


def test_otrf_log4shell_sysmon_for_linux_over_syslog() -> None:
    path = shared(*OTRF, "syslog_sysmon_log4shell_cve2021_44228_jndi_reference_2022-05-11181020.json")
    raws, events, counters = _run(path)
    assert len(events) == len(raws) == 93 and counters["failed"] == 0
    created = [e for e in events if e["event.dataset"] == "linux.sysmon.process_creation"]
    messages = [orjson.loads(line)["SyslogMessage"] for line in raws]
    assert len(created) == sum(1 for m in messages if "<EventID>1</EventID>" in m) == 31
    shell = [e for e in created if "base64" in e.get("winlog.event_data.CommandLine", "")]
    assert shell, "the reverse shell process creation must be found"
    assert shell[0]["winlog.event_data.Image"] == "/bin/bash" and shell[0]["process.executable"] == "/bin/bash"
    assert shell[0]["winlog.event_data.ParentImage"].endswith("/java") and shell[0]["user.name"] == "tomcat"
    assert shell[0]["host.name"] == "UBUNTU5" and shell[0]["host.ip"] == "192.168.2.5"
    network = [e for e in events if e["event.dataset"] == "linux.sysmon.network_connection"]
    assert network and all("destination.port" in e for e in network)


def test_otrf_log4shell_auoms() -> None:
    path = shared(*OTRF, "syslog_auoms_auditd_log4shell_cve2021_44228_jndi_reference_2022-05-11181020.json")
    raws, events, counters = _run(path)
    assert len(events) == 50 and counters["parsed"] == 50
    assert {e["event.dataset"] for e in events} == {"linux.auditd"}
    first = events[0]
    assert (first["auditd.type"], first["user.name"], first["process.pid"], first["process.parent.pid"]) == ("AUOMS_EXECVE", "tomcat", 17790, 1340)
    assert first["process.command_line"].startswith("/usr/lib/jvm/java-1.8.0-openjdk-amd64/bin/java -D")
    assert first["@timestamp"] == "2022-05-11T18:10:21.986Z"


def test_otrf_log4shell_windows() -> None:
    sysmon_path = shared(*OTRF, "sysmon_log4shell_cve2021_44228_java_serialized_object_2022-05-13045800.json")
    raws, events, counters = _run(sysmon_path)
    assert len(events) == 487 and counters["parsed"] == 487
    assert {e["event.dataset"] for e in events} == {"windows.sysmon"}
    ids = Counter(e["winlog.event_id"] for e in events)
    assert ids == Counter(orjson.loads(line)["EventID"] for line in raws)
    conn = next(e for e in events if e["winlog.event_id"] == 3)
    assert conn["source.ip"] == conn["winlog.event_data.SourceIp"] and conn["destination.port"] == int(conn["winlog.event_data.DestinationPort"])
    proc = next(e for e in events if e["winlog.event_id"] == 1)
    assert proc["process.command_line"] == proc["winlog.event_data.CommandLine"]
    security_path = shared(*OTRF, "securityauditing_log4shell_cve2021_44228_java_serialized_object_2022-05-13045400.json")
    raws, events, counters = _run(security_path)
    assert len(events) == 39 and counters["parsed"] == 39
    assert {e["event.dataset"] for e in events} == {"windows.security"}
    wfp = next(e for e in events if e["winlog.event_id"] == 5156)
    assert (wfp["source.ip"], wfp["destination.ip"], wfp["destination.port"]) == ("192.168.3.5", "192.168.2.5", 8080)
    vm_path = shared(*OTRF, "vminsights_vmconnection_log4shell_cve2021_44228_jndi_reference_2022-05-11181020.json")
    raws, events, _ = _run(vm_path)
    assert len(events) == 5 and all(e["event.dataset"] == "generic.json" and "destination.ip" in e for e in events)


def test_otrf_atomic_auditd_logs() -> None:
    dd = shared("otrf", "datasets", "atomic", "linux", "defense_evasion", "host", "sh_binary_padding_dd_2020-11-10081941.log")
    arp = shared("otrf", "datasets", "atomic", "linux", "discovery", "host", "sh_arp_cache_2020-11-10074812.log")
    raws, events, counters = _run(dd)
    assert len(events) == 6 and counters["parsed"] == 6
    execve = next(e for e in events if e["auditd.type"] == "EXECVE")
    assert execve["process.command_line"] == "dd if=/dev/zero bs=1 count=1"
    assert execve["process.args"] == ["dd", "if=/dev/zero", "bs=1", "count=1"]
    title = next(e for e in events if e["auditd.type"] == "PROCTITLE")
    assert title["process.command_line"] == "dd if=/dev/zero bs=1 count=1" and title["auditd.proctitle"].startswith("6464")
    raws, events, counters = _run(arp)
    assert len(events) == 12 and counters["parsed"] == 12
    syscall = next(e for e in events if e["auditd.type"] == "SYSCALL")
    assert (syscall["process.executable"], syscall["process.name"], syscall["user.id"], syscall["auditd.syscall"]) == ("/usr/sbin/arp", "arp", "1000", "59")
    assert syscall["@timestamp"] == "2020-11-10T07:48:16.155Z"


@pytest.mark.parametrize("day,count,conn", [("day1", 2140, 613), ("day2", 5664, 1172)])
def test_otrf_apt29_zeek(day: str, count: int, conn: int) -> None:
    path = shared("otrf", "datasets", "compound", "apt29", day, "zeek", "combined_zeek.log")
    raws, events, counters = _run(path)
    assert len(events) == count and counters["parsed"] == count
    datasets = Counter(e["event.dataset"] for e in events)
    assert datasets["zeek.conn"] == conn
    streams = Counter(orjson.loads(line)["@stream"] for line in raws)
    assert datasets["zeek.dns"] == streams["dns"] and datasets["zeek.http"] == streams["http"]
    c = next(e for e in events if e["event.dataset"] == "zeek.conn")
    assert c["source.ip"] == c["zeek.conn.id.orig_h"] and c["destination.port"] == c["zeek.conn.id.resp_p"]
    assert c["observer.hostname"] == orjson.loads(raws[events.index(c)])["@system"]


@pytest.mark.parametrize("sample", ["wrccdc-2018", "wrccdc-2017", "honeypot-2018", "first-org-conf-2015"])
def test_suricata_eve_arrays(sample: str) -> None:
    path = shared("suricata", "samples", sample, "alerts-only.json")
    expected = orjson.loads(path.read_bytes())
    assert detect_format(path.read_text().splitlines()[:20]) == "json"
    raws, events, counters = _run(path, fmt="json", array=True)
    assert len(events) == len(expected) and counters["parsed"] == len(expected)
    for event, item in zip(events, expected, strict=True):
        assert event["event.dataset"] == "ids.suricata" and event["event.action"] == "alert"
        assert event["rule.name"] == item["alert"]["signature"] and event["rule.id"] == str(item["alert"]["signature_id"])
        assert event["source.ip"] == item["src_ip"] and event["destination.ip"] == item["dest_ip"]
        has_zone = item["timestamp"][-5:-4] in "+-" or item["timestamp"].endswith("Z")
        assert event["soc.time.zone"] == ("in_line" if has_zone else "source")
