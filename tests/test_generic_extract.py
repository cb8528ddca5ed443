"""The generic extraction (:mod:`soc.ingest.generic`): lines no parser, extractor or decoder
claims still give their addresses a role, and nothing ever raises."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from soc.ingest import generic
from soc.ingest.parsers import parse


@pytest.mark.parametrize(("text", "expected"), [
    ("connect from 10.1.1.1", {"source.ip": "10.1.1.1"}),
    ("logged from 10.1.1.1:8 to 10.2.2.2:20", {"source.ip": "10.1.1.1", "source.port": 8, "destination.ip": "10.2.2.2",
                                                 "destination.port": 20}),
    ("connect to 8.8.8.8 from 94.80.188.102", {"destination.ip": "8.8.8.8", "source.ip": "94.80.188.102"}),
    ("IN=eth0 OUT= SRC=192.0.2.1 DST=198.51.100.2 LEN=40 PROTO=TCP", {"source.ip": "192.0.2.1", "destination.ip": "198.51.100.2"}),
    ("Deny tcp src outside:203.0.113.9/4000 dst inside:10.0.0.8/3389", {"source.ip": "203.0.113.9", "source.port": 4000,
                                                                         "destination.ip": "10.0.0.8", "destination.port": 3389}),
    ("list 102 denied tcp 10.0.6.56(3067) -> 172.36.4.7(139)", {"source.ip": "10.0.6.56", "source.port": 3067,
                                                                 "destination.ip": "172.36.4.7", "destination.port": 139}),
    ("client=mail[198.51.100.7] server=10.0.0.25", {"source.ip": "198.51.100.7", "destination.ip": "10.0.0.25"}),
    ("pam: rhost=10.0.3.1 user=root", {"source.ip": "10.0.3.1", "user.name": "root"}),
    ("ACCEPT from IP=10.10.248.27:33957 (IP=10.10.241.77:389)", {"source.ip": "10.10.248.27", "destination.ip": "10.10.241.77"}),
    ("fw=2.228.169.242 msg=x", {"observer.ip": "2.228.169.242"}),
    ("session nat translated 10.0.0.5 to 203.0.113.10 src 10.0.0.5", {"source.nat.ip": "10.0.0.5"}),
    ("remote [2001:db8::1]:443 local 2001:db8::2", {"source.ip": "2001:db8::1", "source.port": 443,
                                                     "destination.ip": "2001:db8::2"}),
    ("agent123@192.168.0.2:31415 HTTPS 192.168.0.1:9264", {"source.ip": "192.168.0.2", "destination.ip": "192.168.0.1"}),
    ("host-deny.sh add - 172.16.0.1", {"source.ip": "172.16.0.1"}),
    ("firewall-drop.sh add - 172.16.0.1", {"source.ip": "172.16.0.1"}),
    ("update from http://10.11.12.13/x failed", {"destination.ip": "10.11.12.13", "url.original": "http://10.11.12.13/x",
                                                 "event.outcome": "failure"}),
    ("Read error from remote host 192.168.1.1: Connection reset", {"source.ip": "192.168.1.1"}),
    ("packet dropped from 203.0.113.5", {"event.action": "drop", "event.type": ["connection", "denied"]}),
    ("User Name: macos :: Viewer Address: 192.168.56.128 :: Type: DH", {"source.ip": "192.168.56.128", "user.name": "macos"}),
])
def test_roles_from_the_words_around_the_address(text: str, expected: dict) -> None:
    fields: dict = {}
    assert generic.extract_text(text, fields)
    for key, value in expected.items():
        assert fields.get(key) == value, f"{key}: {fields.get(key)!r} in {fields}"


@pytest.mark.parametrize("text", [
    "FileVersion: 2.2.2.2", "Syntax (OID): 2.5.5.12", "Windows Workflow Foundation 4.0.0.0\\Linkage",
    "Policy (5, Trust->Untrust, 10.10.10.0/24->172.16.19.0/24, ANY)", "at 10:33:18 :: done",
])
def test_dotted_numbers_that_are_not_addresses_get_no_role(text: str) -> None:
    fields: dict = {}
    generic.extract_text(text, fields)
    assert not any(key in fields for key in generic.ROLE_FIELDS), fields


def test_a_command_line_names_the_host_it_reaches() -> None:
    fields: dict = {}
    generic.extract_mapping({"process.command_line": "psexec.py administrator@corp.local@192.168.0.218 cmd"}, fields)
    assert fields["destination.ip"] == "192.168.0.218" and "source.ip" not in fields
    fields = {}
    generic.extract_mapping({"ps.scriptBlockText": "Invoke-Command -ComputerName 192.168.0.95 -ScriptBlock {x}"}, fields)
    assert fields["destination.ip"] == "192.168.0.95"


def test_json_keys_decide_roles() -> None:
    parsed = generic.parse('{"ClientIP":"54.76.123.133","OriginIP":"99.83.222.19","fw":{"FileVersion":"1.2.3.4"},'
                           '"conn":{"src_ip":"10.0.0.1","src_port":4444,"dest_ip":"10.0.0.2","dest_port":"22"}}')
    f = parsed.fields
    assert (f["source.ip"], f["destination.ip"]) == ("54.76.123.133", "99.83.222.19")
    assert f["soc.parse.generic"] is True and parsed.status == "parsed"
    f = generic.parse('{"e":{"destinationIp":"10.0.0.9","sourceIp":"10.0.0.8","resourceIp":"10.0.0.7"}}').fields
    assert (f["source.ip"], f["destination.ip"]) == ("10.0.0.8", "10.0.0.9")  # "destiNATion" is no NAT
    assert "destination.nat.ip" not in f
    f = generic.parse('{"a":{"src_ip":"10.0.0.1","src_port":4444,"dest_ip":"10.0.0.2","dest_port":"22"}}').fields
    assert (f["source.ip"], f["source.port"], f["destination.ip"], f["destination.port"]) == ("10.0.0.1", 4444, "10.0.0.2", 22)


def test_the_generic_reading_of_a_whole_line_keeps_the_header_host() -> None:
    f = generic.parse("<13>Dec 19 17:20:08 10.0.0.9 weird[1]: connection from 203.0.113.7 port 5555").fields
    assert (f["host.ip"], f["process.name"], f["source.ip"], f["source.port"]) == ("10.0.0.9", "weird", "203.0.113.7", 5555)


def test_the_ingest_marks_what_the_generic_extraction_found() -> None:
    fields = parse("Dec 19 17:20:08 gw unknownbox[12]: session from 203.0.113.7:5555 to 10.0.0.1:22 blocked").fields
    assert fields["soc.parse.generic"] is True and fields["soc.parse.parser"] == "syslog"
    assert (fields["source.ip"], fields["destination.ip"], fields["event.action"]) == ("203.0.113.7", "10.0.0.1", "block")
    known = parse("Dec 19 17:20:08 gw sshd[12]: Failed password for root from 203.0.113.7 port 5555 ssh2").fields
    assert "soc.parse.generic" not in known and known["source.ip"] == "203.0.113.7"  # the sshd extractor claimed it


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=400) | st.from_regex(r"(?:[a-z_]{1,8}[=: ]{1,2})?(?:\d{1,3}\.){3}\d{1,3}(?:[:/(]\d{1,6})?[ ,;]*", fullmatch=False))
def test_never_raises(text: str) -> None:
    fields: dict = {}
    generic.extract_text(text, fields)
    generic.extract_mapping({"k": text, "src_ip": text, "a1": text, "x.port": text}, fields)
    generic.enrich({"message": text, "json.key": text}, text)
    parsed = generic.parse(text)
    assert parsed.status in ("parsed", "partial")
    for key in ("source.ip", "destination.ip", "observer.ip", "host.ip"):
        value = parsed.fields.get(key)
        assert value is None or isinstance(value, str)
