"""Notifications: webhook (HTTP POST) and e-mail (SMTP).

Both are effects performed at most once per step (:meth:`ActionContext.once`): a retried or
resumed step whose message already went out does not send it again. The webhook carries an
``Idempotency-Key`` header (the step key) and the mail a ``Message-ID`` derived from it, so a
receiver can drop the duplicate of a send whose outcome was unknown (the process died during
it). Retries are the step's ``retry`` policy: connection errors, timeouts, 429 and 5xx are
retried; other 4xx are not (another attempt cannot fix them).

The webhook goes through :mod:`soc.outgoing`, like report delivery: https only (plain http only
to a loopback address; ``file:``, ``ftp:`` ... refused before anything is opened), the server's
certificate always verified -- against the step's ``ca`` or ``playbooks.webhook_ca`` for a
private CA, there is no switch to turn it off -- and redirects never followed (a 3xx fails the
step, naming the status and ``Location``). These failures are not retried.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from soc.mail import MailError, send_mail
from soc.outgoing import (
    Destination,
    OutgoingRefused,
    check_url,
    is_tls_failure,
    open_client,
    read_text,
)
from soc.playbooks.actions._util import as_list, digest
from soc.playbooks.registry import REGISTRY, Action, ActionContext, ActionError, action

VERIFY_TLS_REMOVED = ("notify.webhook: verify_tls is not supported: the server's TLS certificate is always "
                      "verified. For a server with a self-signed or private-CA certificate, give its CA "
                      "bundle (PEM): the step's 'ca' argument or the setting playbooks.webhook_ca")


@action("notify.webhook")
def webhook(ctx: ActionContext, url: str, payload: Any = None, text: str | None = None,
            headers: dict[str, str] | None = None, method: str = "POST", timeout: float | None = None,
            ca: str | None = None) -> dict[str, Any]:
    """POST a JSON document (``payload``) or text to an https URL (chat bot, ticketing, SOAR).

    ``timeout`` (seconds to wait for the server once connected) defaults to
    ``playbooks.webhook_timeout``; ``ca`` (a PEM CA bundle to verify the server) to
    ``playbooks.webhook_ca``, else the system CAs."""
    if not url:
        raise ActionError("notify.webhook: no url given", retryable=False)
    try:
        check_url(url)
    except OutgoingRefused as error:
        raise ActionError(f"notify.webhook: {error}", retryable=False) from None
    data = json.dumps(payload, ensure_ascii=False, default=str).encode() if text is None \
        else str(text).encode()
    if ctx.dry_run:
        return {"dry_run": True, "would": f"{method} {url} ({len(data)} bytes)", "url": url}
    config = ctx.runner.config
    bundle = Path(ca) if ca else config.webhook_ca
    destination = Destination(url, ca=bundle, connect_timeout=config.webhook_connect_timeout,
                              read_timeout=float(timeout or config.webhook_timeout))
    request_headers = {"Content-Type": "application/json; charset=utf-8" if text is None
                       else "text/plain; charset=utf-8",
                       "Idempotency-Key": ctx.key, "User-Agent": "soc-playbooks/1"}
    request_headers.update({name: str(value) for name, value in {**config.webhook_headers, **(headers or {})}.items()})

    def send() -> dict[str, Any]:
        try:
            with open_client(destination) as client, \
                    client.stream(method.upper(), url, content=data, headers=request_headers) as response:
                body = read_text(response, 4096)
        except OutgoingRefused as error:  # a redirect, or an unreadable CA bundle
            raise ActionError(f"notify.webhook: {error}", retryable=False) from None
        except httpx.HTTPError as error:
            if is_tls_failure(error):
                raise ActionError(f"{url}: TLS failed: {error} (the step's 'ca' or playbooks.webhook_ca "
                                  "must name the CA bundle of the server)", retryable=False) from None
            raise ActionError(f"{url}: {type(error).__name__}: {error}", retryable=True) from None
        if not 200 <= response.status_code < 300:
            retry = response.status_code == 429 or response.status_code >= 500
            raise ActionError(f"{url}: HTTP {response.status_code} {response.reason_phrase}",
                              retryable=retry) from None
        return {"status": response.status_code, "url": url, "response": body[:2000]}

    return ctx.once(f"webhook {url}", send)


class _WebhookAction(Action):
    """``notify.webhook`` with a clear error for the removed ``verify_tls`` argument, when the
    playbook is loaded (:meth:`check_args`) and, should a step reach the runner unchecked, when
    it runs (not retried)."""

    def check_args(self, args: dict[str, Any]) -> list[str]:
        if "verify_tls" not in args:
            return super().check_args(args)
        return [VERIFY_TLS_REMOVED, *super().check_args({k: v for k, v in args.items() if k != "verify_tls"})]

    def __call__(self, ctx: ActionContext, args: dict[str, Any]) -> dict[str, Any]:
        if "verify_tls" in args:
            raise ActionError(VERIFY_TLS_REMOVED, retryable=False)
        return super().__call__(ctx, args)


REGISTRY["notify.webhook"] = _WebhookAction(**vars(REGISTRY["notify.webhook"]))


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
