"""CEF/LEEF, key=value, web server, audit record parsers, and format detection."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from soc.ingest.parsers import PARSERS, detect_format, parse, sniff
from soc.ingest.parsers.cef import parse_extension

# ---- CEF / LEEF ------------------------------------------------------------------------------


def test_cef_header_extension_and_escapes() -> None:
    line = (
        r"CEF:0|Vendor\|X|Prod\\uct|2.1|4000|Login fail|High|src=10.0.0.1 dst=10.0.0.2 spt=5000 dpt=22 proto=TCP "
        r"suser=alice duser=root act=blocked request=http://x/y?a=b&c=d msg=line1\nline2 a\=b cs1Label=Policy Name cs1=Default Deny "
        r"rt=1700000000000 outcome=failure"
    )
    p = parse(line)
    f = p.fields
    assert p.status == "parsed" and f["event.dataset"] == "network.cef"
    assert (f["observer.vendor"], f["observer.product"], f["observer.version"]) == ("Vendor|X", "Prod\\uct", "2.1")
    assert (f["event.code"], f["rule.name"], f["event.severity"], f["cef.severity"]) == ("4000", "Login fail", 8, "High")
    assert (f["source.ip"], f["destination.ip"], f["source.port"], f["destination.port"], f["network.transport"]) == (
        "10.0.0.1", "10.0.0.2", 5000, 22, "tcp")
    assert (f["user.name"], f["source.user.name"], f["destination.user.name"], f["event.action"]) == ("alice", "alice", "root", "blocked")
    assert f["url.original"] == "http://x/y?a=b&c=d"
    assert f["message"] == "line1\nline2 a=b" and f["cef.extensions.msg"] == "line1\nline2 a=b"
    assert f["cef.custom.Policy_Name"] == "Default Deny" and f["cef.extensions.cs1Label"] == "Policy Name"
    assert f["event.outcome"] == "failure"
    assert p.timestamp == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)


def test_cef_time_text_and_broken_header() -> None:
    p = parse("CEF:0|FireEye|MPS|7.9|MC|malware-callback|7|rt=Sep 09 2017 00:31:23 UTC src=192.168.1.2")
    assert p.timestamp == datetime(2017, 9, 9, 0, 31, 23, tzinfo=UTC)
    p = parse("CEF:0|only|three|fields")
    assert p.status == "failed" and "header incomplete" in p.error and p.fields["message"].startswith("CEF:0")


def test_cef_extension_values_with_spaces_and_equals() -> None:
    assert parse_extension("a=1 b=two words c=x=y d=") == {"a": "1", "b": "two words", "c": "x=y", "d": ""}


def test_leef_v1_and_v2() -> None:
    p = parse("LEEF:1.0|Panda Security|paps|02.47|registrym|sev=5\tdevTime=2019-05-09 22:03:58.692466\tusrName=SYSTEM\tsrc=192.168.0.8")
    f = p.fields
    assert (f["observer.vendor"], f["event.code"], f["event.severity"], f["user.name"], f["source.ip"]) == (
        "Panda Security", "registrym", 5, "SYSTEM", "192.168.0.8")
    assert f["leef.usrName"] == "SYSTEM" and p.timestamp == datetime(2019, 5, 9, 22, 3, 58, 692466)
    p = parse("LEEF:2.0|Lancope|StealthWatch|1.0|41|^|src=10.0.1.8^dst=10.0.0.5^sev=5")
    assert p.fields["destination.ip"] == "10.0.0.5" and p.fields["event.severity"] == 5


# ---- key=value ---------------------------------------------------------------------------------


def test_fortigate_time_zone_and_mapping() -> None:
    line = (
        'date=2020-01-02 time=03:04:05 devname="FGT-HQ" devid="FGT60E123" logid="0000000013" type="traffic" subtype="forward" '
        'level="notice" vd="root" eventtime=1577934245 tz="+0700" srcip=10.0.0.9 srcport=5000 srcintf="port1" dstip=8.8.8.8 '
        'dstport=53 dstintf="wan1" proto=17 action="accept" policyid=7 service="DNS" sentbyte=60 rcvdbyte=120 user="bob"'
    )
    p = parse(line)
    f = p.fields
    assert f["event.dataset"] == "firewall.fortigate" and p.timestamp == datetime(2020, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=7)))
    assert (f["source.ip"], f["source.port"], f["destination.ip"], f["destination.port"], f["network.transport"]) == (
        "10.0.0.9", 5000, "8.8.8.8", 53, "udp")
    assert (f["event.action"], f["rule.id"], f["user.name"], f["observer.name"], f["observer.serial_number"]) == (
        "accept", "7", "bob", "FGT-HQ", "FGT60E123")
    assert (f["source.bytes"], f["destination.bytes"], f["observer.ingress.interface.name"]) == (60, 120, "port1")
    assert f["event.type"] == ["connection", "allowed"] and f["fortigate.service"] == "DNS"


def test_fortigate_epoch_wins_without_tz_and_naive_otherwise() -> None:
    p = parse('date=2019-05-13 time=11:45:04 logid="0000000013" type="traffic" subtype="forward" vd="vdom1" eventtime=1557773104815101919 srcip=1.1.1.1 dstip=2.2.2.2')
    assert p.timestamp == datetime(2019, 5, 13, 18, 45, 4, 815101, tzinfo=UTC)
    p = parse('date=2016-06-16 time=10:19:23 devname=D devid=FGT1 logid=0000000013 type=traffic subtype=forward srcip=1.1.1.1 dstip=2.2.2.2')
    assert p.timestamp == datetime(2016, 6, 16, 10, 19, 23) and p.timestamp.tzinfo is None


def test_generic_kv_and_sonicwall_endpoints() -> None:
    p = parse('id=firewall sn=00301E0526B1 time="2004-04-01 10:39:35" fw=67.32.44.2 pri=5 msg="TCP connection dropped" src=67.101.200.27:4507:WAN dst=67.32.44.2:445:LAN rule=0')
    f = p.fields
    assert f["event.dataset"] == "firewall.kv" and f["kv.msg"] == "TCP connection dropped" and f["message"] == "TCP connection dropped"
    assert (f["source.ip"], f["source.port"], f["destination.port"], f["observer.ingress.interface.name"]) == ("67.101.200.27", 4507, 445, "WAN")
    assert p.timestamp == datetime(2004, 4, 1, 10, 39, 35)
    assert parse("no pairs here at all", "kv").status == "failed"


# ---- web ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line,expected",
    [
        ('1.2.3.4 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326',
         {"user.name": "frank", "http.response.status_code": 200, "http.response.body.bytes": 2326, "http.version": "1.0"}),
        ('::1 - - [31/Jul/2019:16:58:43 +0000] "OPTIONS * HTTP/1.0" 200 - "-" "Apache/2.4.6 (internal dummy connection)"',
         {"source.ip": "::1", "url.original": "*", "user_agent.original": "Apache/2.4.6 (internal dummy connection)"}),
        ('www.example.com:443 10.0.0.1 - - [12/Mar/2019:10:09:09 +0000] "POST /login?next=%2F HTTP/2.0" 401 10 "https://ref/" "UA" 0.042',
         {"url.domain": "www.example.com", "destination.port": 443, "url.path": "/login", "url.query": "next=%2F", "event.outcome": "failure", "access.extra": "0.042"}),
        ('10.11.12.13 - - - [27/Mar/2017:13:40:40 -0700] "GET / HTTP/1.1" 200 5 "-" "-"', {"source.ip": "10.11.12.13"}),
    ],
)
def test_access_lines(line: str, expected: dict) -> None:
    p = parse(line)
    assert p.status == "parsed" and p.fields["event.dataset"] == "web.access"
    for key, value in expected.items():
        assert p.fields[key] == value


def test_access_time_and_junk_request() -> None:
    p = parse('1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 1')
    assert p.timestamp == datetime(2000, 10, 10, 13, 55, 36, tzinfo=timezone(timedelta(hours=-7)))
    p = parse('1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "\\x16\\x03\\x01" 400 0 "-" "-"')
    assert p.status == "partial" and p.fields["http.request.line"] == "\\x16\\x03\\x01"
    assert parse("not a web line", "access").status == "failed"


def test_error_logs_and_iis() -> None:
    p = parse("[Wed Jul 31 16:44:52.906254 2019] [proxy:error] [pid 8575:tid 140] [client 10.0.0.5:51234] AH00957: failed")
    f = p.fields
    assert (f["event.dataset"], f["log.level"], f["apache.error.module"], f["process.pid"], f["source.ip"], f["source.port"], f["error.code"]) == (
        "web.error", "error", "proxy", 8575, "10.0.0.5", 51234, "AH00957")
    p = parse('2024/01/02 03:04:05 [error] 123#0: *9 open() "/x" failed, client: 1.2.3.4, server: a.vn, request: "GET /x HTTP/1.1", host: "a.vn"')
    f = p.fields
    assert (f["source.ip"], f["url.original"], f["url.domain"], f["process.pid"]) == ("1.2.3.4", "/x", "a.vn", 123)
    p = parse("2015-07-28 15:07:26 1.2.3.4 GET /QOsa/Default.aspx id=1 80 - 31.3.3.7 Mozilla/5.0+(X11) - 302 0 0 624")
    f = p.fields
    assert f["event.dataset"] == "web.access" and p.timestamp == datetime(2015, 7, 28, 15, 7, 26, tzinfo=UTC)
    assert (f["source.ip"], f["destination.ip"], f["url.original"], f["http.response.status_code"], f["user_agent.original"]) == (
        "31.3.3.7", "1.2.3.4", "/QOsa/Default.aspx?id=1", 302, "Mozilla/5.0 (X11)")


# ---- auditd ------------------------------------------------------------------------------------


def test_auditd_records() -> None:
    p = parse('node=web1 type=USER_AUTH msg=audit(1630937849.448:891): pid=4171 uid=0 auid=1000 ses=3 msg=\'op=PAM:authentication acct="bob" exe="/usr/sbin/sshd" hostname=1.2.3.4 addr=1.2.3.4 terminal=ssh res=failed\'')
    f = p.fields
    assert (f["auditd.type"], f["auditd.node"], f["host.name"], f["user.name"], f["source.ip"], f["event.outcome"]) == (
        "USER_AUTH", "web1", "web1", "bob", "1.2.3.4", "failure")
    assert f["auditd.op"] == "PAM:authentication" and f["auditd.sequence"] == 891
    assert parse("type=BROKEN no audit header", "auditd").status == "failed"


# ---- detection ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line,fmt",
    [
        ('{"a": 1}', "json"), ("<13>Feb  1 10:00:00 h p: x", "syslog"), ("Feb  1 10:00:00 h p: x", "syslog"),
        ("CEF:0|a|b|c|d|e|1|", "cef"), ("LEEF:1.0|a|b|c|d|", "leef"), ("type=SYSCALL msg=audit(1.2:3): a=b", "auditd"),
        ('1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 1', "access"),
        ("[Sun Dec 04 04:47:44 2005] [error] x", "access"), ("2014/12/30 06:07:37 [error] 1#0: x", "access"),
        ('date=2020-01-01 time=00:00:00 devid=FG1 srcip=1.1.1.1', "kv"), ("<Event><System></System></Event>", "xml"),
        ("%ASA-6-302013: Built", "syslog"), ("2015-07-28 15:07:26 1.2.3.4 GET / - 80 - 5.6.7.8 UA - 200 0 0 1", "access"),
    ],
)
def test_sniff(line: str, fmt: str) -> None:
    assert sniff(line) == fmt


def test_detect_format() -> None:
    assert detect_format(["[", '  {', '    "timestamp": "x",']) == "json"
    assert detect_format(["\ufeff[{\"a\": 1},", "{\"a\": 2}]"]) == "json"
    assert detect_format(["Feb  1 10:00:00 h p: x"] * 10) == "syslog"
    assert detect_format(["Feb  1 10:00:00 h p: x", '{"a": 1}'] * 5) == "auto"
    assert detect_format(["", "  "]) == "auto"
    assert set(PARSERS) >= {"syslog", "cef", "kv", "access", "json", "auditd", "xml", "text"}


def test_unknown_format_and_text_format() -> None:
    p = parse("hello", "nope")
    assert p.status == "failed" and "unknown format" in p.error
    p = parse("hello", "text")
    assert p.status == "parsed" and p.fields["event.dataset"] == "generic.text" and p.fields["message"] == "hello"


def test_parser_exceptions_become_failed_results(monkeypatch) -> None:
    def boom(line: str):
        raise RuntimeError("bug " * 200)

    monkeypatch.setitem(PARSERS, "syslog", boom)
    p = parse("Feb  1 10:00:00 h p: x")
    assert p.status == "failed" and p.error.startswith("syslog parser error: RuntimeError") and len(p.error) < 400
    assert p.fields["message"] == "Feb  1 10:00:00 h p: x"
