"""Every ``log N pass/fail = <line>`` of the Wazuh ruleset tests through the ingest pipeline.

The Wazuh test corpus (``../shared/data/wazuh-tests``, ~90 products) is real log text. Each
line must come out as exactly one stored event; the products whose formats we claim to
support must be fully parsed; and for a sample of real lines the important fields must be
right. The per-product table is printed (run with ``-s`` to see it in the console).
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
from soc.ingest.pipeline import IngestPipeline
from soc.model import Event
from tests.conftest import shared

_LOG = re.compile(r"^log \d+ (?:pass|fail) = (.*)$")
RECEIVED = datetime(2024, 6, 1, 3, 0, tzinfo=UTC)

FULLY_PARSED = (
    "sshd", "sudo", "su", "pam", "doas", "dropbear", "syslog", "systemd", "user",
    "fortigate", "fortiddos", "fortiauth", "SonicWall",
    "apache", "nginx", "php", "web_appsec", "glpi",
    "iptables", "auditd", "audit_scp", "apparmor", "kernel_usb",
    "win_event_channel", "win_security", "win-generic_rules", "windows_baseline_intrusion_detection",
    "powershell", "sysmon", "sysmon_eid_1", "sysmon_eid_3", "sysmon_eid_7", "sysmon_eid_8",
    "sysmon_eid_10", "sysmon_eid_11", "sysmon_eid_13", "sysmon_eid_20",
    "cisco_ios", "cisco_ftd", "pix", "netscreen", "checkpoint_smart1", "fireeye", "panda_paps",
    "owlh", "eset", "github", "office365", "gcp", "cloudflare-waf", "docker_integration",
)


def _ini_lines(path: Path) -> list[str]:
    out = []
    for raw in path.read_text(encoding="utf-8", errors="surrogateescape").splitlines():
        m = _LOG.match(raw)
        if m:
            out.append(m.group(1))
    return out


@pytest.fixture(scope="module")
def wazuh() -> dict[str, tuple[list[str], list[Event], dict]]:
    """{product: (lines, events, counters)} for every .ini file."""
    folder = shared("wazuh-tests")
    results = {}
    for path in sorted(folder.glob("*.ini")):
        lines = _ini_lines(path)
        pipeline = IngestPipeline(SourceContext(source="wazuh-tests", agency_id="test"), fmt="auto")
        records = [
            Record(raw=line.encode("utf-8", "surrogateescape"), event_id=f"{path.stem}:{i}", received=RECEIVED, origin=f"{path.name}:{i}")
            for i, line in enumerate(lines)
        ]
        events = pipeline.process(records)
        results[path.stem] = (lines, events, pipeline.counters.as_dict())
    return results


def test_every_line_is_stored_once(wazuh) -> None:
    total = 0
    for product, (lines, events, counters) in wazuh.items():
        assert len(events) == len(lines), f"{product}: {len(lines)} lines but {len(events)} events"
        assert counters["parsed"] + counters["partial"] + counters["failed"] == len(lines)
        assert len({e["_id"] for e in events}) == len(events)
        for event in events:
            orjson.dumps(event)
        total += len(lines)
    assert total >= 1850, f"only {total} wazuh test lines found"


def test_summary_table(wazuh, capsys) -> None:
    """Print parsed/partial/failed per product; the totals must hold no failures."""
    totals: Counter[str] = Counter()
    rows = []
    for product, (lines, _events, counters) in wazuh.items():
        rows.append(f"{product:40s} {len(lines):5d} {counters['parsed']:7d} {counters['partial']:8d} {counters['failed']:7d}")
        totals.update(lines=len(lines), parsed=counters["parsed"], partial=counters["partial"], failed=counters["failed"])
    with capsys.disabled():
        print(f"\n{'product':40s} {'lines':>5s} {'parsed':>7s} {'partial':>8s} {'failed':>7s}")
        print("\n".join(rows))
        print(f"{'TOTAL':40s} {totals['lines']:5d} {totals['parsed']:7d} {totals['partial']:8d} {totals['failed']:7d}")
    assert totals["failed"] == 0
    assert totals["parsed"] >= 0.95 * totals["lines"]


@pytest.mark.parametrize("product", FULLY_PARSED)
def test_known_formats_fully_parsed(wazuh, product: str) -> None:
    lines, events, counters = wazuh[product]
    bad = [(e["soc.parse.status"], e.get("soc.parse.error"), e["event.original"][:120]) for e in events if e["soc.parse.status"] != "parsed"]
    assert not bad, f"{product}: {bad[:3]}"


def _event(wazuh, product: str, contains: str) -> Event:
    lines, events, _ = wazuh[product]
    for line, event in zip(lines, events, strict=True):
        if contains in line:
            return event
    raise AssertionError(f"{product}: no line containing {contains!r}")


def test_datasets_per_product(wazuh) -> None:
    expected = {
        "sshd": "linux.sshd", "sudo": "linux.sudo", "su": "linux.auth", "doas": "linux.sudo",
        "fortigate": "firewall.fortigate", "iptables": "firewall.iptables", "auditd": "linux.auditd",
        "cisco_ios": "network.cisco", "cisco_ftd": "network.cisco", "win_security": "windows.security",
        "sysmon_eid_1": "windows.sysmon", "powershell": "windows.powershell", "nginx": "web.error",
        "web_appsec": "web.access", "fireeye": "network.cef",
    }
    for product, dataset in expected.items():
        _, events, _ = wazuh[product]
        found = Counter(e["event.dataset"] for e in events)
        assert found[dataset] == len(events), f"{product}: {dict(found)}"


def test_sshd_fields(wazuh) -> None:
    e = _event(wazuh, "sshd", "Failed password for invalid user sammy")
    assert (e["event.action"], e["event.outcome"], e["user.name"], e["source.ip"], e["source.port"]) == (
        "ssh_login", "failure", "sammy", "82.202.219.155", 51676)
    assert e["sshd.invalid_user"] is True
    e = _event(wazuh, "sshd", "Invalid user opcione from 192.241.237.101")
    assert (e["event.action"], e["user.name"], e["source.ip"]) == ("ssh_invalid_user", "opcione", "192.241.237.101")
    e = _event(wazuh, "sshd", "maximum authentication attempts exceeded for invalid user badguy")
    assert (e["event.action"], e["user.name"], e["source.ip"]) == ("ssh_max_auth_attempts", "badguy", "192.168.33.1")
    e = _event(wazuh, "sshd", "POSSIBLE BREAK-IN ATTEMPT")
    assert e["event.action"] == "ssh_possible_break_in" and e["source.ip"] == "192.168.18.54"
    e = _event(wazuh, "sshd", "Did not receive identification string")
    assert (e["event.action"], e["source.ip"], e["source.port"]) == ("ssh_no_identification", "172.18.1.1", 45824)
    e = _event(wazuh, "sshd", "Connection closed by 10.0.2.2 port 55462 [preauth]")
    assert e["event.action"] == "ssh_disconnect" and e["sshd.preauth"] is True
    e = _event(wazuh, "sshd", "[ID 800047 auth.notice] Failed none for root")
    assert (e["event.action"], e["user.name"], e["log.syslog.msgid"], e["host.ip"]) == ("ssh_login", "root", "800047", "192.168.1.5")
    e = _event(wazuh, "malicious-ioc", "Accepted none for root from 218.92.0.222")
    assert (e["event.action"], e["event.outcome"], e["source.ip"]) == ("ssh_login", "success", "218.92.0.222")


def test_sudo_su_pam_fields(wazuh) -> None:
    e = _event(wazuh, "sudo", "cplummer : TTY=pts/2")
    assert (e["event.action"], e["event.outcome"], e["user.name"], e["user.target.name"], e["process.command_line"]) == (
        "sudo_command", "success", "cplummer", "root", "/bin/bash")
    e = _event(wazuh, "sudo", "3 incorrect password attempts")
    assert (e["event.action"], e["event.outcome"], e["user.name"]) == ("sudo_auth_failure", "failure", "mike")
    e = _event(wazuh, "sudo", "NOT in sudoers")
    assert (e["event.action"], e["user.name"]) == ("sudo_not_in_sudoers", "ddp2")
    e = _event(wazuh, "su", "dcid to root on /dev/ttyp1")
    assert (e["event.action"], e["event.outcome"], e["user.name"], e["user.target.name"]) == ("su", "success", "dcid", "root")
    e = _event(wazuh, "su", "BAD SU ger to fwmaster")
    assert (e["event.action"], e["event.outcome"], e["user.name"], e["user.target.name"]) == ("su", "failure", "ger", "fwmaster")
    e = _event(wazuh, "pam", "session opened for user news by (uid=0)")
    assert (e["event.action"], e["user.name"], e["process.name"], e["log.syslog.appname"]) == ("session_opened", "news", "su", "su(pam_unix)")
    e = _event(wazuh, "pam", "2 more authentication failures")
    assert (e["event.action"], e["user.name"], e["source.ip"]) == ("authentication_failures_repeated", "root", "10.0.3.1")


def test_fortigate_fields(wazuh) -> None:
    e = _event(wazuh, "fortigate", "srcip=7.3.8.5 srcport=57727")
    assert (e["source.ip"], e["source.port"], e["destination.ip"], e["destination.port"], e["event.action"], e["rule.id"]) == (
        "7.3.8.5", 57727, "7.8.9.81", 80, "deny", "8")
    assert e["event.type"] == ["connection", "denied"] and e["network.transport"] == "tcp"
    assert e["observer.name"] == "Device_Name" and e["fortigate.logid"] == "0000000013"
    assert e["@timestamp"] == "2016-06-16T03:19:23.000Z"  # 10:19:23 in the source zone (UTC+7)
    e = _event(wazuh, "fortigate", 'logdesc="Admin login failed" sn=0 user="gfedhf"')
    assert (e["user.name"], e["event.outcome"], e["source.ip"]) == ("gfedhf", "failure", "4.3.5.253")
    e = _event(wazuh, "fortigate", "inwazuhmgr->172.24.0.253")
    assert e["event.dataset"] == "firewall.fortigate" and e["source.ip"] == "172.24.42.175"


def test_windows_fields(wazuh) -> None:
    e = _event(wazuh, "win_event_channel", '"ipAddress":"192.168.0.218"')
    assert (e["winlog.event_id"], e["event.code"], e["winlog.channel"]) == (4624, "4624", "Security")
    assert (e["winlog.event_data.TargetUserName"], e["user.name"], e["source.ip"]) == ("Administrator", "Administrator", "192.168.0.218")
    assert e["winlog.event_data.LogonType"] == 3 and e["event.outcome"] == "success"
    assert e["host.name"] == "bankdc.ExchangeTest.com"
    e = _event(wazuh, "sysmon_eid_1", "Java-Update.exe")
    assert e["winlog.event_data.Image"] == "C:\\Users\\Public\\Java-Update.exe"  # Wazuh's double escaping undone
    assert e["process.executable"] == "C:\\Users\\Public\\Java-Update.exe"
    assert e["event.dataset"] == "windows.sysmon" and e["winlog.event_id"] == 1
    e = _event(wazuh, "win_security", '"eventID": "4722"')
    assert (e["user.name"], e["user.target.name"]) == ("itadmin", "toby")
    e = _event(wazuh, "sysmon", "WinEvtLog: Microsoft-Windows-Sysmon/Operational")
    assert e["winlog.event_id"] == 1 and e["winlog.event_data.Image"] == "C:\\Windows\\system32\\svchost.exe"


def test_network_device_fields(wazuh) -> None:
    e = _event(wazuh, "iptables", "[UFW BLOCK]")
    assert (e["source.ip"], e["destination.ip"], e["network.transport"], e["iptables.prefix"]) == (
        "254.253.252.251", "191.192.193.194", "udp", "[UFW BLOCK]")
    e = _event(wazuh, "cisco_ios", "list 102 denied tcp 10.0.6.56(3067)")
    assert (e["source.ip"], e["source.port"], e["destination.ip"], e["destination.port"], e["event.code"]) == (
        "10.0.6.56", 3067, "172.36.4.7", 139, "SEC-6-IPACCESSLOGP")
    e = _event(wazuh, "cisco_ftd", "Deny tcp src inside:111.11.11.1/2143")
    assert (e["source.ip"], e["destination.ip"], e["destination.port"]) == ("111.11.11.1", "172.11.1.11", 139)
    e = _event(wazuh, "fireeye", "malware-callback")
    assert (e["observer.vendor"], e["rule.name"], e["event.severity"], e["cef.custom.cncPort"]) == ("FireEye", "malware-callback", 7, "1080")


def test_auditd_and_web_fields(wazuh) -> None:
    e = _event(wazuh, "audit_scp", 'exe="/usr/bin/scp"')
    assert (e["auditd.type"], e["process.executable"], e["process.pid"], e["user.id"]) == ("SYSCALL", "/usr/bin/scp", 7909, "1198400500")
    assert e["@timestamp"] == "2021-05-13T20:23:25.872Z"
    e = _event(wazuh, "web_appsec", "/wp-comments-post.php")
    assert (e["source.ip"], e["http.request.method"], e["http.response.status_code"], e["event.outcome"]) == ("10.0.0.5", "POST", 403, "failure")
    e = _event(wazuh, "apache", "[client 64.94.163.159]")
    assert e["source.ip"] == "64.94.163.159" and e["log.level"] == "error"


def test_field_types_match_the_catalog(wazuh) -> None:
    """Every field declared in ingest/fields.yml has a value of that type (the stores map them)."""
    import ipaddress

    from soc.catalog import default_catalog

    types = default_catalog().field_types
    checks = {
        "long": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "float": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "ip": lambda v: isinstance(v, str) and bool(ipaddress.ip_address(v)),
        "date": lambda v: isinstance(v, str) and v.endswith("Z"),
        "boolean": lambda v: isinstance(v, bool),
        "keyword": lambda v: isinstance(v, str),
        "text": lambda v: isinstance(v, str),
    }
    for product, (_lines, events, _c) in wazuh.items():
        for event in events:
            for key, value in event.items():
                kind = types.get(key)
                if kind is None:
                    continue
                values = value if isinstance(value, list) else [value]
                assert all(checks[kind](v) for v in values), f"{product}: {key}={value!r} is not {kind}"
