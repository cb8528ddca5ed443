"""The matched-field highlighting of the alert page (:mod:`soc.web.console.highlight`) on rules
written for the test: modifiers, regular expressions, networks, numbers, keywords, exclusions
(``not``) left unmarked, a correlation's keys, and pieces that stay plain text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from soc.detect.compiler import compile_rules
from soc.detect.rules import load_rules
from soc.web.console.highlight import highlight_event, mark_text, rule_tests

RULES = """
title: Web Admin Probe
id: 11111111-1111-4111-8111-111111111111
name: probe
status: test
author: Tester
logsource:
    category: webserver
detection:
    selection:
        url.path|contains: '/admin'
        http.request.method: GET
        source.ip|cidr: 10.0.0.0/8
        http.response.status_code: 403
    agent:
        user_agent.original|re: 'sqlmap/[0-9.]+'
    office:
        host.name: 'web-01'
    condition: selection and agent and not office
level: high
---
title: Many Admin Probes
id: 22222222-2222-4222-8222-222222222222
status: test
author: Tester
correlation:
    type: event_count
    rules:
        - probe
    group-by:
        - source.ip
    timespan: 5m
    condition:
        gte: 3
level: high
---
title: Keyword Rule
id: 33333333-3333-4333-8333-333333333333
status: test
author: Tester
logsource:
    product: linux
    service: auth
detection:
    keywords:
        - 'rm -rf /var/log'
    condition: keywords
level: high
"""

EVENT: dict[str, Any] = {
    "_id": "e1", "url.path": "/portal/ADMIN/login", "http.request.method": "GET", "source.ip": "10.1.2.3",
    "http.response.status_code": 403, "user_agent.original": "sqlmap/1.7.2#stable <script>x</script>",
    "host.name": "web-01", "message": "GET /portal/ADMIN/login 403",
    "event.original": '10.1.2.3 - - "GET /portal/ADMIN/login HTTP/1.1" 403 "sqlmap/1.7.2#stable <script>x</script>"',
}


def detections(tmp_path: Path) -> dict[str, Any]:
    (tmp_path / "rules.yml").write_text(RULES, encoding="utf-8")
    ruleset = compile_rules(load_rules([tmp_path]))
    assert not ruleset.problems
    return ruleset.detections


def marks(row_values: Any) -> list[str]:
    return [p.text for value in row_values for p in value if p.mark]


def test_each_modifier_marks_what_it_matched_and_exclusions_stay_unmarked(tmp_path: Path) -> None:
    found = detections(tmp_path)
    tests = rule_tests("11111111-1111-4111-8111-111111111111", found)
    shown = highlight_event(EVENT, tests)
    rows = {r.name: r for r in shown.rows}
    assert set(shown.matched) == {"url.path", "http.request.method", "source.ip", "http.response.status_code",
                                  "user_agent.original"}
    assert marks(rows["url.path"].values) == ["/ADMIN"]  # the part |contains found, as written in the event
    assert marks(rows["user_agent.original"].values) == ["sqlmap/1.7.2"]  # the regular expression's match
    assert marks(rows["source.ip"].values) == ["10.1.2.3"]  # in the network: the whole value
    assert marks(rows["http.response.status_code"].values) == ["403"]
    assert not rows["host.name"].matched  # only the exclusion (not office) names it
    # the raw line: the matched values found again, as plain pieces (the template escapes them)
    raw = "".join(f"[{p.text}]" if p.mark else p.text for p in shown.raw)
    assert "[10.1.2.3]" in raw and "[/portal/ADMIN/login]" not in raw and "[sqlmap/1.7.2]" in raw
    assert "".join(p.text for p in shown.raw) == EVENT["event.original"]  # nothing added, nothing lost
    outside = highlight_event({**EVENT, "source.ip": "192.0.2.1", "http.response.status_code": "404"}, tests)
    assert "source.ip" not in outside.matched and "http.response.status_code" not in outside.matched


def test_a_correlation_marks_its_rules_fields_and_its_keys(tmp_path: Path) -> None:
    found = detections(tmp_path)
    tests = rule_tests("22222222-2222-4222-8222-222222222222", found)
    rows = {r.name: r for r in highlight_event(EVENT, tests).rows}
    assert rows["source.ip"].key and rows["source.ip"].matched
    assert rows["url.path"].matched and not rows["url.path"].key


def test_keywords_mark_the_message_and_unknown_rules_mark_nothing(tmp_path: Path) -> None:
    found = detections(tmp_path)
    event = {"_id": "e2", "message": "sudo: root : COMMAND=/bin/rm -rf /var/log/secure",
             "event.original": "Dec 1 sudo: root : COMMAND=/bin/rm -rf /var/log/secure"}
    shown = highlight_event(event, rule_tests("33333333-3333-4333-8333-333333333333", found))
    assert [p.text for p in shown.raw if p.mark] == ["rm -rf /var/log"]
    assert highlight_event(event, rule_tests("no-such-rule", found)).matched == ()


def test_mark_text_ignores_short_needles_and_keeps_the_text_whole() -> None:
    pieces = mark_text("user <b>root</b> from 10.0.0.1", ["root", "10.0.0.1", "a"])
    assert "".join(p.text for p in pieces) == "user <b>root</b> from 10.0.0.1"
    assert [p.text for p in pieces if p.mark] == ["root", "10.0.0.1"]
