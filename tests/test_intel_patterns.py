"""Indicator values, STIX patterns and the in-memory matcher (no store)."""

from __future__ import annotations

import pytest

from soc.intel import IndicatorError, Matcher, guess_type, normalize, parse_pattern

SHA256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


@pytest.mark.parametrize(("pattern", "expected"), [
    ("[ipv4-addr:value = '198.51.100.7']", [("ipv4", "198.51.100.7", False)]),
    ("[ipv4-addr:value = '198.51.100.7' OR domain-name:value = 'Evil.EXAMPLE.']",
     [("ipv4", "198.51.100.7", False), ("domain", "evil.example", False)]),
    ("[ipv4-addr:value = '10.1.2.3'] OR [url:value = 'HTTP://Bad.Example:80/x?a=B']",
     [("ipv4", "10.1.2.3", False), ("url", "http://bad.example/x?a=B", False)]),
    (f"[file:hashes.'SHA-256' = '{SHA256.upper()}']", [("sha256", SHA256, False)]),
    ("[file:hashes.MD5 = 'D41D8CD98F00B204E9800998ECF8427E']", [("md5", "d41d8cd98f00b204e9800998ecf8427e", False)]),
    ("[email-message:from_ref.value = 'Boss@Phish.example']", [("email", "boss@phish.example", False)]),
    ("[email-addr:value = 'x@y.example']", [("email", "x@y.example", False)]),
    ("[ipv4-addr:value ISSUBSET '203.0.113.0/24']", [("ipv4", "203.0.113.0/24", True)]),
    ("[ipv6-addr:value = '2001:DB8::1']", [("ipv6", "2001:db8::1", False)]),
    ("[ipv4-addr:value IN ('192.0.2.1', '192.0.2.2')]", [("ipv4", "192.0.2.1", False), ("ipv4", "192.0.2.2", False)]),
])
def test_simple_patterns_give_their_values(pattern: str, expected: list[tuple[str, str, bool]]) -> None:
    parsed = parse_pattern(pattern)
    assert parsed.matchable, parsed.unmatchable
    assert [(o.type, o.value, o.cidr) for o in parsed.observables] == expected
    assert all(o.pattern == pattern for o in parsed.observables)


@pytest.mark.parametrize(("pattern", "why"), [
    ("[ipv4-addr:value = '1.2.3.4' AND ipv4-addr:value = '5.6.7.8']", "AND"),
    ("[url:value = 'http://x.example/'] WITHIN 10 SECONDS", "qualifier"),
    ("[ipv4-addr:value = '1.2.3.4'] FOLLOWEDBY [domain-name:value = 'x.example']", "FOLLOWEDBY"),
    ("[process:name = 'evil.exe']", "process:name"),
    ("[domain-name:value LIKE '%.evil.example']", "only = and IN"),
    ("[ipv4-addr:value != '1.2.3.4']", "negated"),
    ("[ipv4-addr:value = '1.2.3.4'", "not a valid STIX 2.1 pattern"),
    ("[ipv4-addr:value = 'not-an-address']", "no IP address"),
])
def test_other_patterns_are_kept_as_unmatchable_with_the_reason(pattern: str, why: str) -> None:
    parsed = parse_pattern(pattern)
    assert not parsed.matchable
    assert parsed.observables == []
    assert why in (parsed.unmatchable or "")


def test_values_are_normalized_and_typed() -> None:
    assert normalize("ip", "10.0.0.1/32").value == "10.0.0.1"  # a one-address network is an address
    assert normalize("ip", "10.1.2.3/8").value == "10.0.0.0/8"
    assert normalize("ip", "::ffff:192.0.2.9").value == "192.0.2.9"
    assert normalize("url", "https://A.example:443/").value == "https://a.example"
    assert guess_type("D41D8CD98F00B204E9800998ECF8427E").type == "md5"
    assert guess_type("a" * 40).type == "sha1"
    assert guess_type("mail@x.example").type == "email"
    assert guess_type("2001:db8::/32").cidr
    assert guess_type("xn--bcher-kva.example").type == "domain"
    with pytest.raises(IndicatorError):
        normalize("sha256", "abc")
    with pytest.raises(IndicatorError):
        guess_type("not a value at all")


def test_matcher_exact_values_networks_parents_and_validity() -> None:
    m = Matcher()
    m.add("ipv4", "198.51.100.7")
    m.add("ipv4", "10.0.0.0/8", cidr=True)
    m.add("ipv4", "10.20.0.0/16", cidr=True)
    m.add("ipv6", "2001:db8::/32", cidr=True)
    m.add("domain", "evil.example")
    m.add("url", "http://bad.example/x")
    m.add("sha256", SHA256)
    m.add("email", "boss@phish.example", valid_from=100.0, valid_until=200.0)
    event = {"source.ip": "198.51.100.7", "destination.ip": "10.20.3.4", "related.ip": ["2001:db8::5", "8.8.8.8"],
             "dns.question.name": "cdn.EVIL.example.", "url.full": "HTTP://Bad.Example:80/x",
             "file.hash.sha256": SHA256.upper(), "email.from.address": "Boss@Phish.example"}
    found = {(h.field, h.indicator) for h in m.match(event, 150.0)}
    assert found == {("source.ip", "198.51.100.7"), ("destination.ip", "10.20.0.0/16"),
                     ("destination.ip", "10.0.0.0/8"), ("related.ip", "2001:db8::/32"),
                     ("dns.question.name", "evil.example"), ("url.full", "http://bad.example/x"),
                     ("file.hash.sha256", SHA256), ("email.from.address", "boss@phish.example")}
    # validity at match time: the e-mail indicator is not yet / no longer valid
    assert "email.from.address" not in {h.field for h in m.match(event, 99.0)}
    assert "email.from.address" not in {h.field for h in m.match(event, 200.0)}
    # nothing else hits: a sibling domain, an address outside the networks, a domain-shaped value
    assert m.match({"dns.question.name": "notevil.example", "source.ip": "11.0.0.1",
                    "url.domain": "example"}, 150.0) == []
    # removing and re-adding networks rebuilds the intervals
    m.remove("ipv4", "10.20.0.0/16", cidr=True)
    assert [h.indicator for h in m.match({"source.ip": "10.20.3.4"}, 150.0)] == ["10.0.0.0/8"]
    m.load([{"type": "ipv4", "value": "198.51.100.7", "revoked": True, "matchable": True}])
    assert m.match({"source.ip": "198.51.100.7"}, 150.0) == []
    assert m.size == 6
