"""Sending e-mail through the configured SMTP server (``smtp:`` in the settings): one sender for
playbook notices and for reports to the national centre.

The connection is protected and the server authenticated before anything is sent:

* ``smtp.ssl: true`` (SMTPS, usually port 465) wraps the connection in TLS from the start;
  ``smtp.starttls: true`` (usually port 587) upgrades it with STARTTLS. Both verify the server's
  certificate (chain and host name) against the system CAs, or against ``smtp.ca`` (a PEM bundle)
  when set. A certificate that does not verify is a non-retryable error naming the server.
* With ``starttls`` set, a server that does not offer STARTTLS is an error: never a silent
  fallback to plaintext.
* The password (``smtp.username``) is never sent over a connection without TLS, except to a
  loopback host (a local relay); that is refused before connecting.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from soc.config import SmtpSettings
from soc.errors import SocError
from soc.net import is_loopback_host
from soc.secrets import SecretError

__all__ = ["MailError", "check_transport", "send_mail", "tls_context"]


class MailError(SocError):
    """A message was not sent; ``retryable`` says whether trying again later may help."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


def tls_context(smtp: SmtpSettings) -> ssl.SSLContext:
    """The TLS client context for the mail server: certificate and host name checked, against
    ``smtp.ca`` when set, else the system CAs. Raises :class:`MailError` when ``smtp.ca`` cannot
    be read."""
    try:
        return ssl.create_default_context(cafile=str(smtp.ca) if smtp.ca else None)
    except (OSError, ssl.SSLError) as error:
        raise MailError(f"cannot read smtp.ca {smtp.ca}: {error} (a PEM file with the CA certificates "
                        "that issued the mail server's certificate)", retryable=False) from error


def check_transport(smtp: SmtpSettings) -> None:
    """Refuse a configuration that would send the SMTP password in the clear: a login
    (``smtp.username``) without ``ssl`` or ``starttls`` to a host that is not loopback."""
    if smtp.username and not (smtp.ssl or smtp.starttls) and not is_loopback_host(smtp.host):
        raise MailError(f"refusing to send the SMTP password to {smtp.host}:{smtp.port} over a connection "
                        "without TLS: set smtp.starttls: true (port 587) or smtp.ssl: true (port 465)",
                        retryable=False)


def _message(sender: str, to: Sequence[str], cc: Sequence[str], subject: str, text: str,
             attachments: Sequence[tuple[str, bytes, str]], message_id: str | None) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(to)
    if cc:
        message["Cc"] = ", ".join(cc)
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = message_id or make_msgid(domain=sender.rpartition("@")[2] or "localhost")
    message.set_content(text)
    for name, data, content_type in attachments:
        maintype, _, subtype = content_type.partition(";")[0].partition("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return message


def _connect(smtp: SmtpSettings, context: ssl.SSLContext | None) -> smtplib.SMTP:
    """An SMTP session, over TLS when configured (SMTPS, or STARTTLS which must be offered)."""
    server = f"{smtp.host}:{smtp.port}"
    if smtp.ssl:
        return smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=smtp.timeout_seconds, context=context)
    client = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout_seconds)
    if smtp.starttls:
        try:
            client.ehlo()
            if not client.has_extn("starttls"):
                raise MailError(f"mail server {server} does not offer STARTTLS, and smtp.starttls is set: "
                                "not sending in plaintext (check the server, or use smtp.ssl on its SMTPS port)",
                                retryable=False)
            client.starttls(context=context)
        except BaseException:
            client.close()
            raise
    return client


def send_mail(smtp: SmtpSettings, *, sender: str, to: Sequence[str], subject: str, text: str,
              cc: Sequence[str] = (), attachments: Sequence[tuple[str, bytes, str]] = (),
              message_id: str | None = None) -> dict[str, Any]:
    """Send one message; ``attachments`` are ``(file name, bytes, content type)``. Returns a
    receipt (recipients, subject, Message-ID, refused addresses, server reply).

    Raises :class:`MailError` (``retryable`` or not) when the message was not sent."""
    check_transport(smtp)
    context = tls_context(smtp) if smtp.ssl or smtp.starttls else None
    message = _message(sender, to, cc, subject, text, attachments, message_id)
    server = f"{smtp.host}:{smtp.port}"
    try:
        password = smtp.login_password() or ""
    except SecretError as error:
        raise MailError(f"cannot send mail through {server}: {error}", retryable=True) from error
    try:
        with _connect(smtp, context) as client:
            if smtp.username:
                client.login(smtp.username, password)
            refused = client.send_message(message, to_addrs=[*to, *cc])
            reply = client.noop()
    except ssl.SSLCertVerificationError as error:
        raise MailError(f"the certificate of mail server {server} cannot be verified: "
                        f"{error.verify_message or error}; configure smtp.ca with the CA certificate (PEM) "
                        "that issued it (and use the host name the certificate names in smtp.host)",
                        retryable=False) from error
    except ssl.SSLError as error:
        raise MailError(f"TLS with mail server {server} failed: {error} "
                        "(smtp.ssl is for the SMTPS port, usually 465; smtp.starttls for 587)",
                        retryable=True) from error
    except smtplib.SMTPRecipientsRefused as error:
        raise MailError(f"mail server {server} refused {', '.join(error.recipients)}", retryable=False) from error
    except smtplib.SMTPResponseException as error:
        raise MailError(f"mail server {server} answered {error.smtp_code} {error.smtp_error!r}",
                        retryable=400 <= error.smtp_code < 500) from error
    except (smtplib.SMTPException, OSError) as error:
        raise MailError(f"cannot send mail through {server}: {error} (check the smtp settings)",
                        retryable=True) from error
    return {"to": list(to), "cc": list(cc), "subject": subject, "message_id": message["Message-ID"],
            "refused": {k: list(v) for k, v in refused.items()}, "server": server,
            "reply": [reply[0], reply[1].decode("utf-8", "replace") if isinstance(reply[1], bytes) else str(reply[1])]}
