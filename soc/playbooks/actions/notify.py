"""Notifications: webhook (HTTP POST) and e-mail (SMTP).

Both are effects performed at most once per step (:meth:`ActionContext.once`): a retried or
resumed step whose message already went out does not send it again. The webhook carries an
``Idempotency-Key`` header (the step key) and the mail a ``Message-ID`` derived from it, so a
receiver can drop the duplicate of a send whose outcome was unknown (the process died during
it). Retries are the step's ``retry`` policy: connection errors, timeouts, 429 and 5xx are
retried; other 4xx are not (another attempt cannot fix them).
"""

from __future__ import annotations

import json
import smtplib
import ssl
import urllib.error
import urllib.request
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

from soc.playbooks.actions._util import as_list, digest
from soc.playbooks.registry import ActionContext, ActionError, action


@action("notify.webhook")
def webhook(ctx: ActionContext, url: str, payload: Any = None, text: str | None = None,
            headers: dict[str, str] | None = None, method: str = "POST", timeout: float | None = None,
            verify_tls: bool = True) -> dict[str, Any]:
    """POST a JSON document (``payload``) or text to a URL (chat bot, ticketing, SOAR)."""
    if not url:
        raise ActionError("notify.webhook: no url given", retryable=False)
    data = json.dumps(payload, ensure_ascii=False, default=str).encode() if text is None \
        else str(text).encode()
    if ctx.dry_run:
        return {"dry_run": True, "would": f"{method} {url} ({len(data)} bytes)", "url": url}

    def send() -> dict[str, Any]:
        request = urllib.request.Request(url, data=data, method=method.upper())
        request.add_header("Content-Type", "application/json; charset=utf-8" if text is None
                           else "text/plain; charset=utf-8")
        request.add_header("Idempotency-Key", ctx.key)
        request.add_header("User-Agent", "soc-playbooks/1")
        for name, value in {**ctx.runner.config.webhook_headers, **(headers or {})}.items():
            request.add_header(name, str(value))
        context = None
        if url.startswith("https") and not verify_tls:
            context = ssl._create_unverified_context()  # noqa: S323 -- opted in per step
        try:
            with urllib.request.urlopen(request, timeout=timeout or ctx.runner.config.webhook_timeout,
                                        context=context) as response:
                body = response.read(4096).decode("utf-8", "replace")
                return {"status": response.status, "url": url, "response": body[:2000]}
        except urllib.error.HTTPError as error:
            retry = error.code == 429 or error.code >= 500
            raise ActionError(f"{url}: HTTP {error.code} {error.reason}", retryable=retry) from None
        except (urllib.error.URLError, TimeoutError, OSError) as error:
            raise ActionError(f"{url}: {getattr(error, 'reason', error)}", retryable=True) from None

    return ctx.once(f"webhook {url}", send)


@action("notify.email")
def email(ctx: ActionContext, subject: str, body: str, to: Any = None, cc: Any = None) -> dict[str, Any]:
    """Send an e-mail through the configured SMTP server, subject prefixed (``[SOC]``)."""
    smtp = ctx.runner.config.smtp
    recipients = [str(a) for a in as_list(to)] or list(smtp.default_to)
    copies = [str(a) for a in as_list(cc)]
    if not recipients:
        raise ActionError("notify.email: no recipient (set 'to' or playbooks.smtp.default_to)", retryable=False)
    prefix = smtp.subject_prefix.strip()
    full_subject = subject if not prefix or subject.startswith(prefix) else f"{prefix} {subject}"
    if ctx.dry_run:
        return {"dry_run": True, "would": f"mail {full_subject!r} to {', '.join(recipients + copies)}"}

    def send() -> dict[str, Any]:
        message = EmailMessage()
        message["From"] = smtp.sender
        message["To"] = ", ".join(recipients)
        if copies:
            message["Cc"] = ", ".join(copies)
        message["Subject"] = full_subject
        message["Date"] = formatdate(localtime=False)
        domain = smtp.sender.rpartition("@")[2] or "localhost"
        message["Message-ID"] = f"<{digest(ctx.key)}@{domain}>"
        message.set_content(body)
        try:
            if smtp.ssl:
                client: smtplib.SMTP = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=smtp.timeout)
            else:
                client = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout)
            with client:
                if smtp.starttls and not smtp.ssl:
                    client.starttls()
                if smtp.username:
                    client.login(smtp.username, smtp.password or "")
                refused = client.send_message(message, to_addrs=recipients + copies)
        except smtplib.SMTPResponseException as error:
            raise ActionError(f"SMTP {smtp.host}:{smtp.port}: {error.smtp_code} {error.smtp_error!r}",
                              retryable=error.smtp_code >= 400 and error.smtp_code < 500) from None
        except (smtplib.SMTPException, OSError) as error:
            raise ActionError(f"SMTP {smtp.host}:{smtp.port}: {error}", retryable=True) from None
        return {"to": recipients, "cc": copies, "subject": full_subject, "message_id": message["Message-ID"],
                "refused": sorted(refused)}

    return ctx.once(f"email {full_subject}", send)
