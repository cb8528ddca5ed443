"""Mail server logins: Dovecot (IMAP/POP3) and Postfix SMTP AUTH -> action ``mail_login``.

Agencies run their own mail (Dovecot + Postfix, often behind a webmail portal), and password
guessing against it shows only in these lines; without ``source.ip`` and ``user.name`` the brute
force and spraying rules cannot group them. Spellings (Dovecot 2.2/2.3, Postfix 2.x-3.x)::

    dovecot: imap-login: Disconnected (auth failed, 3 attempts in 15 secs): user=<u>, method=PLAIN, rip=IP, lip=IP, TLS, session=<..>
    dovecot: pop3-login: Aborted login (auth failed, 1 attempts in 2 secs): user=<u>, method=PLAIN, rip=IP, ...
    dovecot: imap-login: Login aborted: Connection closed (auth failed, 1 attempts in 2 secs) (auth_failed): user=<u>, ..., rip=IP, ...
    dovecot: imap-login: Login: user=<u>, method=PLAIN, rip=IP, lip=IP, mpid=1234, TLS, session=<..>
    dovecot: auth-worker(1234): sql(u,IP): Password mismatch           (also passwd-file, pam, ldap)
    postfix/smtpd[123]: warning: unknown[IP]: SASL LOGIN authentication failed: UGFzc3dvcmQ6

Fields: ``user.name`` (empty ``user=<>`` is left out), ``source.ip``, ``destination.ip`` (Dovecot's
``lip``), ``network.protocol`` (imap, pop3, smtp), ``event.outcome``. One line is one event,
whatever number of attempts Dovecot's ``N attempts`` says it summarises (rules count lines).
"""

from __future__ import annotations

import re
from typing import Any

from soc.ingest.values import set_address

from .base import mark

_DOVECOT_LOGIN = re.compile(r"(?P<proto>imap|pop3|managesieve|submission|lmtp)-login: (?P<text>.*)$")
_KV = re.compile(r"\b(user|rip|lip)=<?([^,>\s]*)>?")
_DOVECOT_AUTH = re.compile(r"auth(?:-worker)?(?:\([^)]*\))?: \w+(?:-\w+)?\(([^,()]*),([0-9A-Fa-f:.]+)[,)].*?"
                           r"(Password mismatch|unknown user|pam_authenticate\(\) failed)")
_POSTFIX_SASL = re.compile(r"warning: [^\[\s]*\[([0-9A-Fa-f:.]+)\]: SASL \S+ authentication failed")


def _done(fields: dict[str, Any], outcome: str, protocol: str) -> bool:
    fields["network.protocol"] = protocol
    return mark(fields, "mail_login", outcome, ("authentication",), ("start",))


def extract_dovecot(message: str, fields: dict[str, Any]) -> bool:
    """Dovecot login process and auth process lines."""
    m = _DOVECOT_LOGIN.match(message)
    if m:
        text = m.group("text")
        if text.startswith("Login: "):
            outcome = "success"
        elif "auth failed" in text:
            outcome = "failure"
        else:
            return False  # disconnects without authentication, TLS errors...
        for key, value in _KV.findall(text):
            if key == "user" and value:
                fields["user.name"] = value
            elif key == "rip":
                set_address(fields, "source", value)
            elif key == "lip":
                set_address(fields, "destination", value)
        return _done(fields, outcome, m.group("proto"))
    m = _DOVECOT_AUTH.search(message)
    if m:
        if m.group(1):
            fields["user.name"] = m.group(1)
        set_address(fields, "source", m.group(2))
        return _done(fields, "failure", "imap")
    return False


def extract_postfix(message: str, fields: dict[str, Any]) -> bool:
    """Postfix smtpd SASL failures (the client's address in brackets)."""
    m = _POSTFIX_SASL.match(message)
    if not m:
        return False
    set_address(fields, "source", m.group(1))
    return _done(fields, "failure", "smtp")
