"""Syslog header forms, payload embedding, and dataset selection (soc.ingest.parsers.syslog)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from soc.ingest.parsers import parse, syslog
from soc.ingest.parsers._time import PROVISIONAL_YEAR


def test_rfc5424_with_structured_data() -> None:
    line = (
        '<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog 4321 ID47 '
        '[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high" note="a \\"q\\" \\] b"] '
        "\ufeffAn application event log entry"
    )
    p = parse(line, "syslog")
    f = p.fields
    assert p.status == "parsed"
    assert p.timestamp == datetime(2003, 10, 11, 22, 14, 15, 3000, tzinfo=UTC)
    assert (f["log.syslog.priority"], f["log.syslog.facility.name"], f["log.syslog.severity.name"]) == (165, "local4", "notice")
    assert (f["log.syslog.version"], f["host.name"], f["log.syslog.appname"], f["process.pid"], f["log.syslog.msgid"]) == (
        "1", "mymachine.example.com", "evntslog", 4321, "ID47")
    assert f["log.syslog.structured_data.exampleSDID@32473.eventID"] == "1011"
    assert f["log.syslog.structured_data.examplePriority@32473.note"] == 'a "q" ] b'
    assert f["message"] == "An application event log entry"


def test_rfc5424_nil_values_and_no_pri() -> None:
    p = parse("<14>1 - - - - - - just text", "syslog")
    assert p.timestamp is None and p.fields["message"] == "just text" and "host.name" not in p.fields
    p = parse("1 2019-05-15T16:25:50Z HOSTNAME CheckPoint 19710 - [action:\"Drop\"; flags:\"400644\"]", "syslog")
    assert p.status == "parsed" and p.fields["host.name"] == "HOSTNAME" and p.fields["process.name"] == "CheckPoint"
    assert p.fields["message"].startswith("[action:")  # not RFC 5424 SD: kept as the message


@pytest.mark.parametrize(
    "line,host,program,pid,ts,year_missing",
    [
        ("Dec 10 06:55:46 LabSZ sshd[24200]: x", "LabSZ", "sshd", 24200, datetime(PROVISIONAL_YEAR, 12, 10, 6, 55, 46), True),
        ("<38>Feb  5 13:07:52 plugh rsyslogd-2177: imuxsock", "plugh", "rsyslogd-2177", None, datetime(PROVISIONAL_YEAR, 2, 5, 13, 7, 52), True),
        ("Jul 19 07:28:02 systemd: Failed to mark", None, "systemd", None, datetime(PROVISIONAL_YEAR, 7, 19, 7, 28, 2), True),
        ("Jun 15 02:04:59 combo sshd(pam_unix)[20882]: x", "combo", "sshd", 20882, datetime(PROVISIONAL_YEAR, 6, 15, 2, 4, 59), True),
        ("Feb 29 12:00:00 h cron[1]: leap", "h", "cron", 1, datetime(PROVISIONAL_YEAR, 2, 29, 12), True),
        ("Mar  4 2021 13:34:59.123 host app: x", "host", "app", None, datetime(2021, 3, 4, 13, 34, 59, 123000), False),
        ("2015 Nov 13 13:40:01 ether rsyslogd: x", "ether", "rsyslogd", None, datetime(2015, 11, 13, 13, 40, 1), False),
        ("2014/12/30 06:07:37 host prog: x", "host", "prog", None, datetime(2014, 12, 30, 6, 7, 37), False),
        ("2020-03-23 06:47:42.801612-0700  localhost sshd[3186]: x", "localhost", "sshd", 3186,
         datetime(2020, 3, 23, 6, 47, 42, 801612, tzinfo=timezone(timedelta(hours=-7))), False),
        ("2013-10-30T14:51:21.901728+01:00 srv sshd[12664]: x", "srv", "sshd", 12664,
         datetime(2013, 10, 30, 14, 51, 21, 901728, tzinfo=timezone(timedelta(hours=1))), False),
        ("2024-01-02T03:04:05Z fe80::1 ntpd[7]: x", "fe80::1", "ntpd", 7, datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), False),
    ],
)
def test_rfc3164_variants(line, host, program, pid, ts, year_missing) -> None:
    p = parse(line, "syslog")
    assert p.status == "parsed", p.error
    assert p.fields.get("host.name") == host
    assert p.fields.get("process.name") == program
    assert p.fields.get("process.pid") == pid
    assert p.timestamp == ts and p.year_missing is year_missing
    assert p.fields["message"] in ("x", "imuxsock", "Failed to mark", "leap")


def test_host_ip_and_priority_names() -> None:
    p = parse("<0>Sep  1 10:25:29 10.10.10.1 kernel: boom", "syslog")
    f = p.fields
    assert (f["host.name"], f["host.ip"]) == ("10.10.10.1", "10.10.10.1")
    assert (f["log.syslog.facility.name"], f["log.syslog.severity.name"], f["log.syslog.severity.code"]) == ("kern", "emergency", 0)
    p = parse("<999>Sep  1 10:25:29 host kernel: x", "syslog")  # not a valid PRI
    assert "log.syslog.priority" not in p.fields


def test_message_only_is_partial_but_kept() -> None:
    p = parse("this is just some text", "syslog")
    assert p.status == "partial" and "no syslog header" in p.error
    assert p.fields["message"] == "this is just some text" and p.fields["event.dataset"] == "linux.syslog"
    p = parse("oscap: ERROR: OpenSCAP not installed.", "syslog")
    assert p.status == "partial" and p.fields["process.name"] == "oscap"


def test_invalid_timestamp_degrades() -> None:
    p = parse("Feb 30 10:00:00 host sshd[1]: Accepted password for a from 1.2.3.4 port 1 ssh2", "syslog")
    assert p.status == "partial" and p.timestamp is None and "invalid timestamp" in p.error
    assert p.fields["event.action"] == "ssh_login"  # the rest is still understood


def test_relayed_message_keeps_the_original_header() -> None:
    line = "<134>Feb  1 10:00:05 relay1 <38>Feb  1 10:00:00 origin sshd[42]: Accepted password for bob from 10.0.0.1 port 22 ssh2"
    p = parse(line, "syslog")
    f = p.fields
    assert (f["host.name"], f["log.syslog.relay.hostname"], f["log.syslog.priority"]) == ("origin", "relay1", 38)
    assert p.timestamp == datetime(PROVISIONAL_YEAR, 2, 1, 10, 0, 0) and f["event.action"] == "ssh_login"
    p = parse("2019 May 06 09:28:12 vm->10.0.0.16 May 6 07:28:11 vm fortinet Apr 30 15:10:58: %DOT1X-5-FAIL: Authentication failed", "syslog")
    assert p.fields["log.syslog.relay.hostname"] == "vm->10.0.0.16" and p.fields["cisco.mnemonic"] == "FAIL"


def test_program_message_starting_with_a_date_is_not_a_relay() -> None:
    p = parse("Jul 18 10:51:43 localhost firewalld: 2014-07-18 10:51:43 ERROR: ZONE_ALREADY_SET", "syslog")
    assert p.fields["process.name"] == "firewalld" and p.fields["message"].startswith("2014-07-18")


@pytest.mark.parametrize(
    "line,code,extra",
    [
        ("Sep  1 10:25:29 10.10.10.1 %SEC-6-IPACCESSLOGP: list 102 denied tcp 10.0.6.56(3067) -> 172.36.4.7(139), 1 packet",
         "SEC-6-IPACCESSLOGP", {"source.ip": "10.0.6.56", "destination.port": 139, "rule.name": "102"}),
        ("3924923: *Oct  6 03:32:04.114 gmt: %SEC-6-IPACCESSLOGP: list bcv_out denied tcp 10.0.3.100(50150) -> 192.168.216.1(443), 1 packet",
         "SEC-6-IPACCESSLOGP", {"cisco.sequence": "3924923", "source.port": 50150}),
        ("00:00:46: %LINK-3-UPDOWN: Interface Port-channel1, changed state to up", "LINK-3-UPDOWN", {"cisco.uptime": "00:00:46"}),
        ("<189>4425: Aug 23 00:17:55.356: %SSH-5-SSH2_USERAUTH: User 'admin' authentication for SSH2 Session from 10.1.1.1 (tty = 0) Succeeded",
         "SSH-5-SSH2_USERAUTH", {"user.name": "admin", "event.outcome": "success"}),
        ("%ASA-4-106023: Deny tcp src outside:1.2.3.4/5555 dst inside:10.0.0.5/22 by access-group \"OUTSIDE\"", "ASA-4-106023",
         {"source.ip": "1.2.3.4", "destination.ip": "10.0.0.5", "destination.port": 22, "observer.product": "ASA"}),
        ("%PIX-4-400013 IDS:2003 ICMP redirect from 10.4.1.2 to 10.2.1.1 on interface dmz", "PIX-4-400013", {"source.ip": "10.4.1.2"}),
    ],
)
def test_cisco(line, code, extra) -> None:
    p = parse(line, "auto")
    assert p.status == "parsed" and p.fields["event.code"] == code and p.fields["event.dataset"] == "network.cisco"
    for key, value in extra.items():
        assert p.fields[key] == value


def test_cisco_timestamp_with_utc_zone() -> None:
    p = parse("3924923: *Oct  6 03:32:04.114 gmt: %SEC-6-IPACCESSLOGP: list x denied tcp 1.1.1.1(1) -> 2.2.2.2(2), 1 packet", "syslog")
    assert p.timestamp == datetime(PROVISIONAL_YEAR, 10, 6, 3, 32, 4, 114000, tzinfo=UTC) and p.year_missing


def test_embedded_cef_keeps_syslog_header() -> None:
    line = "<134>Feb  1 10:00:00 fw1 CEF:0|Security|threatmanager|1.0|100|worm stopped|10|src=10.0.0.1 dst=2.1.2.2 spt=1232 act=blocked"
    p = parse(line)
    f = p.fields
    assert f["event.dataset"] == "network.cef" and f["soc.parse.parser"] == "syslog+cef"
    assert (f["host.name"], f["log.syslog.priority"], f["source.ip"], f["source.port"], f["event.action"]) == ("fw1", 134, "10.0.0.1", 1232, "blocked")


def test_embedded_fortigate_kv_with_pri_only() -> None:
    line = '<189>date=2019-05-15 time=18:03:36 devname="FG1" devid="FGT60E" logid="0000000013" type="traffic" subtype="forward" srcip=10.1.100.22 srcport=50798 dstip=195.8.215.136 dstport=443 action="deny" policyid=1 tz="+0700"'
    p = parse(line)
    f = p.fields
    assert f["event.dataset"] == "firewall.fortigate" and f["log.syslog.priority"] == 189
    assert (f["source.ip"], f["destination.port"], f["event.action"], f["rule.id"]) == ("10.1.100.22", 443, "deny", "1")
    assert p.timestamp == datetime(2019, 5, 15, 18, 3, 36, tzinfo=timezone(timedelta(hours=7)))


def test_embedded_json_suricata_and_invalid_json() -> None:
    line = '<13>Feb  1 10:00:00 ids1 suricata[123]: {"timestamp":"2024-02-01T10:00:00.1+0700","event_type":"alert","src_ip":"1.2.3.4","dest_ip":"5.6.7.8","alert":{"signature":"X","signature_id":1}}'
    p = parse(line)
    assert p.fields["event.dataset"] == "ids.suricata" and p.fields["host.name"] == "ids1" and p.fields["rule.name"] == "X"
    assert p.timestamp.utcoffset() == timedelta(hours=7)  # the payload's zone-aware time wins
    p = parse('<13>Feb  1 10:00:00 app1 myapp: {"broken": ')
    assert p.status == "partial" and "embedded payload not understood" in p.error
    assert p.fields["process.name"] == "myapp" and p.fields["event.dataset"] == "linux.syslog"


def test_embedded_auditd_and_sysmon_xml() -> None:
    line = 'Mar  1 10:00:00 host audispd: node=host type=USER_LOGIN msg=audit(1604994496.155:9): pid=1 uid=0 auid=1000 msg=\'op=login acct="bob" exe="/usr/sbin/sshd" hostname=? addr=10.1.2.3 terminal=ssh res=failed\''
    p = parse(line)
    f = p.fields
    assert f["event.dataset"] == "linux.auditd" and f["auditd.type"] == "USER_LOGIN"
    assert (f["user.name"], f["source.ip"], f["event.outcome"]) == ("bob", "10.1.2.3", "failure")
    assert p.timestamp == datetime(2020, 11, 10, 7, 48, 16, 155000, tzinfo=UTC)
    xml = (
        '<Event><System><Provider Name="Linux-Sysmon" Guid="{ff032593}"/><EventID>3</EventID><Version>5</Version>'
        '<TimeCreated SystemTime="2022-05-11T18:10:20.465735000Z"/><EventRecordID>245754</EventRecordID>'
        "<Channel>Linux-Sysmon/Operational</Channel><Computer>UBUNTU5</Computer><Security UserId=\"0\"/></System>"
        '<EventData><Data Name="Image">/usr/bin/curl</Data><Data Name="User">root</Data><Data Name="Protocol">tcp</Data>'
        '<Data Name="SourceIp">192.168.2.5</Data><Data Name="DestinationIp">192.168.2.6</Data><Data Name="DestinationPort">443</Data>'
        "<Data Name=\"CommandLine\">curl -d &quot;a&amp;b&quot;</Data></EventData></Event>"
    )
    p = parse(f"<14>May 11 18:10:20 UBUNTU5 sysmon: {xml}")
    f = p.fields
    assert f["event.dataset"] == "linux.sysmon.network_connection" and f["winlog.event_id"] == 3
    assert (f["source.ip"], f["destination.ip"], f["destination.port"], f["network.transport"]) == ("192.168.2.5", "192.168.2.6", 443, "tcp")
    assert f["winlog.event_data.CommandLine"] == 'curl -d "a&b"' and f["user.name"] == "root"


def test_web_access_over_syslog() -> None:
    p = parse('Jan 11 10:13:05 web01 nginx: 10.10.10.11 - - [10/Apr/2017:13:18:05 -0700] "GET /x HTTP/1.1" 404 271 "-" "curl/7"')
    f = p.fields
    assert f["event.dataset"] == "web.access" and f["host.name"] == "web01"
    assert (f["source.ip"], f["http.response.status_code"], f["url.path"]) == ("10.10.10.11", 404, "/x")


def test_message_repeated_and_solaris_id() -> None:
    p = parse("Mar 27 13:39:12 h sshd[2203]: message repeated 2 times: [ Failed password for root from 116.31.116.38 port 31540 ssh2]")
    assert p.fields["log.syslog.repeat_count"] == 2 and p.fields["event.action"] == "ssh_login"
    assert p.fields["message"].startswith("message repeated 2 times")


@pytest.mark.parametrize(
    "program,dataset",
    [("sshd", "linux.sshd"), ("CRON", "linux.cron"), ("sudo", "linux.sudo"), ("su(pam_unix)", "linux.auth"),
     ("useradd", "linux.auth"), ("vsftpd", "linux.vsftpd"), ("audispd", "linux.auditd"), ("postfix/smtpd", "linux.syslog"),
     ("totally-unknown", "linux.syslog")],
)
def test_dataset_from_program(program: str, dataset: str) -> None:
    p = parse(f"Mar 27 13:06:56 host {program}[1]: hello world", "syslog")
    assert p.fields["event.dataset"] == dataset


def test_fast_path_and_general_path_agree() -> None:
    line = "Mar 27 13:06:56 ip-10-77-20-248 sshd[1291]: Failed password for root from 116.31.116.38 port 31540 ssh2"
    syslog._BSD_CACHE.clear()
    slow = syslog.parse(line)  # fills the timestamp cache through the general path
    fast = syslog.parse(line)
    assert slow.fields == fast.fields and slow.timestamp == fast.timestamp and slow.year_missing == fast.year_missing


def test_tag_forms_agree_on_both_paths() -> None:
    lines = [
        "Dec 19 17:20:08 ubuntu test_osregex_3[12345]:test_action action_example_1*",
        "Feb  1 10:00:00 fw1 CEF:0|Security|threatmanager|1.0|100|worm stopped|10|src=10.0.0.1",
        "Feb  1 10:00:00 fw1 http://example.com/ is down",
    ]
    for line in lines:
        syslog._BSD_CACHE.clear()
        first, second = syslog.parse(line), syslog.parse(line)
        assert first.fields == second.fields
    assert syslog.parse(lines[0]).fields["process.name"] == "test_osregex_3"
    assert syslog.parse(lines[1]).fields["event.dataset"] == "network.cef"
    assert "process.name" not in syslog.parse(lines[2]).fields
