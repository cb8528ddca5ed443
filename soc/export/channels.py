"""Delivery channels: HTTPS POST, e-mail (SMTP) and a drop folder. Each returns a receipt (a
JSON-able dict) or raises :class:`DeliveryError` saying whether a retry can help.

* **https**: one POST of a JSON envelope (report number, profile, every file base64-encoded with
  its SHA-256, signatures included) with ``Idempotency-Key`` = the outbox entry id; bearer token
  (``token_env``/``token``) or a client certificate; the server verified against ``ca`` (or the
  system CAs). Sent through :mod:`soc.outgoing`: https only (http to loopback, or with
  ``allow_http``), certificates always verified, redirects never followed, separate connect and
  read timeouts. 2xx = delivered (status, headers and body are the receipt); 408, 425, 429, 5xx
  and network errors are retried; a 3xx (named with its ``Location``), other 4xx, TLS failures
  and a refused URL fail at once.
* **email**: ``smtplib``; subject ``[TBSC] <form> <report number>: <title>`` (Circular 20's
  footnote), the files and their ``.p7s`` attached; the receipt holds the Message-ID and the
  server's reply.
* **drop**: ``<folder>/<report number>/`` gets the files (each written to a temporary name and
  renamed), then ``receipt.json`` last, so a reader that sees the receipt sees complete files.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import httpx

from soc.config import ReportRecipient, SmtpSettings
from soc.errors import SocError
from soc.export.render import content_type
from soc.mail import MailError, send_mail
from soc.outgoing import (
    CONNECT_TIMEOUT,
    Destination,
    OutgoingRefused,
    is_tls_failure,
    open_client,
    read_text,
)
from soc.secrets import SecretError

RETRY_STATUSES = {408, 425, 429, 500, 502, 503, 504}
MAX_RECEIPT_BODY = 64 * 1024


class DeliveryError(SocError):
    def __init__(self, message: str, *, retryable: bool, receipt: dict[str, Any] | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.receipt = receipt or {}


def _files(paths: list[Path]) -> list[tuple[str, bytes]]:
    return [(p.name, p.read_bytes()) for p in paths]


def envelope(meta: dict[str, Any], paths: list[Path]) -> dict[str, Any]:
    return {**meta, "files": [{"name": name, "content_type": content_type(name),
                               "sha256": hashlib.sha256(data).hexdigest(),
                               "content_base64": base64.b64encode(data).decode()}
                              for name, data in _files(paths)]}


RECEIPT_HEADERS = ("date", "content-type", "location", "x-request-id", "x-receipt-id")


def _receipt_headers(headers: httpx.Headers) -> dict[str, str]:
    """The receipt's headers, their names spelt as the server sent them."""
    return {name.decode(headers.encoding): value.decode(headers.encoding) for name, value in headers.raw
            if name.decode(headers.encoding).lower() in RECEIPT_HEADERS}


def https_destination(recipient: ReportRecipient) -> Destination:
    """Where and how an https recipient is reached (:mod:`soc.outgoing` applies the rules)."""
    read = recipient.read_timeout_seconds or recipient.timeout_seconds
    connect = recipient.connect_timeout_seconds or min(CONNECT_TIMEOUT, recipient.timeout_seconds)
    return Destination(recipient.endpoint, ca=recipient.ca, client_cert=recipient.client_cert,
                       client_key=recipient.client_key, allow_http=recipient.allow_http,
                       http_setting=f"reporting.recipients[{recipient.name}].allow_http",
                       connect_timeout=connect, read_timeout=read)


def send_https(recipient: ReportRecipient, meta: dict[str, Any], paths: list[Path], idempotency_key: str) -> dict[str, Any]:
    """POST the envelope to ``recipient.endpoint``; the receipt on 2xx, else :class:`DeliveryError`."""
    url = recipient.endpoint
    headers = {"Content-Type": "application/json; charset=utf-8", "Idempotency-Key": idempotency_key,
               "X-Report-No": meta["report_no"], "User-Agent": "soc-export/1"}
    try:
        token = recipient.bearer_token()
    except SecretError as error:  # the operator can fix it without a new report: retry
        raise DeliveryError(f"recipient {recipient.name}: {error}", retryable=True) from error
    if token:
        headers["Authorization"] = f"Bearer {token}"
    body = json.dumps(envelope(meta, paths), ensure_ascii=False).encode("utf-8")
    try:
        client = open_client(https_destination(recipient))
    except OutgoingRefused as error:  # a refused URL or an unreadable CA bundle / client certificate
        raise DeliveryError(f"recipient {recipient.name}: {error}", retryable=False) from error
    try:
        with client, client.stream("POST", url, content=body, headers=headers) as response:
            text = read_text(response, MAX_RECEIPT_BODY)
    except OutgoingRefused as error:  # a redirect (RedirectRefused) or a refused URL
        status = getattr(error, "status", None)
        receipt = {"channel": "https", "url": url, "status": status, "body": "",
                   "headers": {"location": getattr(error, "location", None)}} if status else None
        raise DeliveryError(str(error), retryable=False, receipt=receipt) from error
    except httpx.HTTPError as error:
        if is_tls_failure(error):
            raise DeliveryError(f"TLS with {url} failed: {error} (check recipients[].ca / client_cert)",
                                retryable=False) from error
        raise DeliveryError(f"cannot reach {url}: {type(error).__name__}: {error}", retryable=True) from error
    if 200 <= response.status_code < 300:
        return {"channel": "https", "url": url, "status": response.status_code,
                "headers": _receipt_headers(response.headers), "body": text}
    receipt = {"channel": "https", "url": url, "status": response.status_code, "body": text}
    raise DeliveryError(f"{url} answered {response.status_code} {response.reason_phrase}",
                        retryable=response.status_code in RETRY_STATUSES, receipt=receipt)


def send_email(recipient: ReportRecipient, smtp: SmtpSettings, sender: str, subject: str, text: str,
               paths: list[Path]) -> dict[str, Any]:
    attachments = [(name, data, content_type(name)) for name, data in _files(paths)]
    try:
        receipt = send_mail(smtp, sender=sender, to=[recipient.endpoint], subject=subject, text=text,
                            attachments=attachments)
    except MailError as error:
        raise DeliveryError(str(error), retryable=error.retryable) from error
    return {"channel": "email", **receipt, "to": recipient.endpoint}


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def send_drop(recipient: ReportRecipient, meta: dict[str, Any], paths: list[Path], at: str) -> dict[str, Any]:
    """Write the files, then ``receipt.json`` stamped ``at`` (the outbox's clock)."""
    folder = Path(recipient.endpoint) / meta["report_no"]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        files = []
        for name, data in _files(paths):
            _atomic_write(folder / name, data)
            files.append({"name": name, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)})
        receipt = {"channel": "drop", "folder": str(folder), "files": files, "at": at, **meta}
        _atomic_write(folder / "receipt.json",
                      (json.dumps(receipt, ensure_ascii=False, sort_keys=True, indent=2) + "\n").encode())
    except OSError as error:
        raise DeliveryError(f"cannot write to the drop folder {folder}: {error}", retryable=True) from error
    return receipt
