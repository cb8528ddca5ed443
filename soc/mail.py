"""Sending e-mail through the configured SMTP server (``smtp:`` in the settings): one sender for
playbook notices and for reports to the national centre."""

from __future__ import annotations

import os
import smtplib
import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from soc.config import SmtpSettings

__all__ = ["MailError", "send_mail"]


class MailError(Exception):
    """A message was not sent; ``retryable`` says whether trying again later may help."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


def send_mail(smtp: SmtpSettings, *, sender: str, to: Sequence[str], subject: str, text: str,
              cc: Sequence[str] = (), attachments: Sequence[tuple[str, bytes, str]] = (),
              message_id: str | None = None) -> dict[str, Any]:
    """Send one message; ``attachments`` are ``(file name, bytes, content type)``. Returns a
    receipt (recipients, subject, Message-ID, refused addresses, server reply)."""
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
    password = os.environ.get(smtp.password_env, "") if smtp.password_env else ""
    server = f"{smtp.host}:{smtp.port}"
    try:
        cls = smtplib.SMTP_SSL if smtp.ssl else smtplib.SMTP
        with cls(smtp.host, smtp.port, timeout=smtp.timeout_seconds) as client:
            if smtp.starttls and not smtp.ssl:
                client.starttls(context=ssl.create_default_context())
            if smtp.username:
                client.login(smtp.username, password)
            refused = client.send_message(message, to_addrs=[*to, *cc])
            reply = client.noop()
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
