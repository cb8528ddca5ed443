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
import ssl
import urllib.error
import urllib.request
from typing import Any

from soc.mail import MailError, send_mail
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
    """Send an e-mail through the configured SMTP server (``smtp:``), the subject prefixed with
    ``playbooks.email_subject_prefix`` (``[SOC]``)."""
    config, smtp = ctx.runner.config, ctx.runner.settings.smtp
    recipients = [str(a) for a in as_list(to)] or list(config.email_to)
    copies = [str(a) for a in as_list(cc)]
    if not recipients:
        raise ActionError("notify.email: no recipient (set 'to' or playbooks.email_to)", retryable=False)
    prefix = config.email_subject_prefix.strip()
    full_subject = subject if not prefix or subject.startswith(prefix) else f"{prefix} {subject}"
    if ctx.dry_run:
        return {"dry_run": True, "would": f"mail {full_subject!r} to {', '.join(recipients + copies)}"}

    def send() -> dict[str, Any]:
        sender = smtp.sender or "soc@localhost"
        message_id = f"<{digest(ctx.key)}@{sender.rpartition('@')[2] or 'localhost'}>"
        try:
            receipt = send_mail(smtp, sender=sender, to=recipients, cc=copies, subject=full_subject,
                                text=body, message_id=message_id)
        except MailError as error:
            raise ActionError(f"notify.email: {error}", retryable=error.retryable) from None
        return {**receipt, "refused": sorted(receipt["refused"])}

    return ctx.once(f"email {full_subject}", send)
