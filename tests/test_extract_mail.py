"""Mail server logins (Dovecot, Postfix SMTP AUTH) -> ``event.action: mail_login`` with the
source address and user, so the mail brute-force and spraying rules can group them (issue #15).
The real Wazuh test line (Dovecot auth-worker ``Password mismatch``) is read from ../shared/data."""

from __future__ import annotations

import re

import pytest

from soc.ingest.parsers import syslog
from tests.conftest import shared

DOVECOT = "dovecot: imap-login: "


@pytest.mark.parametrize(("line", "expected"), [
    ("Dec  3 09:01:00 mail01 dovecot: imap-login: Disconnected (auth failed, 3 attempts in 15 secs): "
     "user=<nguyenvana@sotc.gov.vn>, method=PLAIN, rip=203.0.113.45, lip=10.30.1.5, TLS, session=<Qm9n>",
     {"event.outcome": "failure", "user.name": "nguyenvana@sotc.gov.vn", "source.ip": "203.0.113.45",
      "destination.ip": "10.30.1.5", "network.protocol": "imap"}),
    ("Dec  3 09:01:00 mail01 dovecot: pop3-login: Aborted login (auth failed, 1 attempts in 2 secs): "
     "user=<>, method=PLAIN, rip=2001:db8::7, lip=10.30.1.5, session=<x>",
     {"event.outcome": "failure", "source.ip": "2001:db8::7", "network.protocol": "pop3"}),
    ("Dec  3 09:01:00 mail01 dovecot: imap-login: Login aborted: Connection closed (auth failed, 1 attempts in 2 secs) "
     "(auth_failed): user=<admin>, method=PLAIN, rip=203.0.113.46, lip=10.30.1.5, TLS, session=<x>",
     {"event.outcome": "failure", "user.name": "admin", "source.ip": "203.0.113.46"}),
    ("Dec  3 09:01:00 mail01 dovecot: imap-login: Login: user=<ketoan@sotc.gov.vn>, method=PLAIN, rip=10.30.2.7, "
     "lip=10.30.1.5, mpid=4412, TLS, session=<y>",
     {"event.outcome": "success", "user.name": "ketoan@sotc.gov.vn", "source.ip": "10.30.2.7"}),
    ("Dec  3 09:02:00 mail01 postfix/smtpd[2211]: warning: unknown[203.0.113.45]: SASL LOGIN authentication failed: "
     "UGFzc3dvcmQ6", {"event.outcome": "failure", "source.ip": "203.0.113.45", "network.protocol": "smtp"}),
    ("Dec  3 09:02:00 mail01 postfix/submission/smtpd[2211]: warning: host.example.net[198.51.100.3]: SASL PLAIN "
     "authentication failed: authentication failure", {"event.outcome": "failure", "source.ip": "198.51.100.3"}),
])
def test_mail_login_lines(line: str, expected: dict[str, str]) -> None:
    fields = syslog.parse(line).fields
    assert fields["event.action"] == "mail_login"
    assert {k: fields.get(k) for k in expected} == expected
    if "user=<>" in line:
        assert "user.name" not in fields


@pytest.mark.parametrize("line", [
    "Dec  3 09:01:00 mail01 dovecot: imap-login: Disconnected (no auth attempts in 0 secs): user=<>, rip=203.0.113.9, "
    "lip=10.30.1.5, session=<z>",
    "Dec  3 09:01:00 mail01 dovecot: imap(ketoan@sotc.gov.vn)<4412><y>: Logged out in=120 out=4410",
    "Dec  3 09:02:00 mail01 postfix/smtpd[2211]: connect from unknown[203.0.113.45]",
    "Dec  3 09:02:00 mail01 postfix/smtpd[2211]: NOQUEUE: reject: RCPT from unknown[203.0.113.45]: 554 5.7.1 Relay access denied",
])
def test_other_mail_lines_are_not_logins(line: str) -> None:
    assert syslog.parse(line).fields.get("event.action") != "mail_login"


def test_real_wazuh_dovecot_password_mismatch() -> None:
    lines = [m.group(1) for path in sorted(shared("wazuh-tests").glob("*.ini"))
             for m in re.finditer(r"log \d+ pass = (.*dovecot: auth-worker.*Password mismatch.*)", path.read_text(errors="replace"))]
    assert lines, "the Wazuh tests hold a Dovecot 'Password mismatch' line"
    fields = syslog.parse(lines[0]).fields
    assert (fields["event.action"], fields["event.outcome"]) == ("mail_login", "failure")
    assert fields["source.ip"] == "218.92.0.222" and fields["user.name"] == "user@example.com"
