"""Delivery channels: HTTPS POST, e-mail (SMTP) and a drop folder. Each returns a receipt (a
JSON-able dict) or raises :class:`DeliveryError` saying whether a retry can help.

* **https**: one POST of a JSON envelope (report number, profile, every file base64-encoded with
  its SHA-256, signatures included) with ``Idempotency-Key`` = the outbox entry id; bearer token
  (``token_env``/``token``) or a client certificate; the server verified against ``ca`` (or the
  system CAs). 2xx = delivered (status, headers and body are the receipt); 408, 425, 429, 5xx and
  network errors are retried; other 4xx fail at once.
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
import ssl
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from soc.config import ReportRecipient, SmtpSettings
from soc.export.render import content_type
from soc.mail import MailError, send_mail
from soc.model import iso

RETRY_STATUSES = {408, 425, 429, 500, 502, 503, 504}
MAX_RECEIPT_BODY = 64 * 1024


class DeliveryError(Exception):
    def __init__(self, message: str, *, retryable: bool, receipt: dict[str, Any] | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.receipt = receipt or {}


def _now() -> str:
    return iso(datetime.now(UTC))


def _files(paths: list[Path]) -> list[tuple[str, bytes]]:
    return [(p.name, p.read_bytes()) for p in paths]


def envelope(meta: dict[str, Any], paths: list[Path]) -> dict[str, Any]:
    return {**meta, "files": [{"name": name, "content_type": content_type(name),
                               "sha256": hashlib.sha256(data).hexdigest(),
                               "content_base64": base64.b64encode(data).decode()}
                              for name, data in _files(paths)]}


def send_https(recipient: ReportRecipient, meta: dict[str, Any], paths: list[Path], idempotency_key: str) -> dict[str, Any]:
    context = ssl.create_default_context(cafile=str(recipient.ca) if recipient.ca else None)
    if recipient.client_cert:
        context.load_cert_chain(str(recipient.client_cert), str(recipient.client_key) if recipient.client_key else None)
    headers = {"Content-Type": "application/json; charset=utf-8", "Idempotency-Key": idempotency_key,
               "X-Report-No": meta["report_no"], "User-Agent": "soc-export/1"}
    token = os.environ.get(recipient.token_env) if recipient.token_env else recipient.token
    if recipient.token_env and not token:
        raise DeliveryError(f"recipient {recipient.name}: environment variable {recipient.token_env} "
                            "(the bearer token) is not set", retryable=True)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    body = json.dumps(envelope(meta, paths), ensure_ascii=False).encode("utf-8")
    request = urllib.request.Request(recipient.endpoint, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, context=context, timeout=recipient.timeout_seconds) as response:
            text = response.read(MAX_RECEIPT_BODY).decode("utf-8", "replace")
            return {"channel": "https", "url": recipient.endpoint, "status": response.status,
                    "headers": {k: v for k, v in response.headers.items() if k.lower() in
                                ("date", "content-type", "location", "x-request-id", "x-receipt-id")},
                    "body": text, "at": _now()}
    except urllib.error.HTTPError as error:
        text = error.read(MAX_RECEIPT_BODY).decode("utf-8", "replace") if error.fp else ""
        receipt = {"channel": "https", "url": recipient.endpoint, "status": error.code, "body": text, "at": _now()}
        raise DeliveryError(f"{recipient.endpoint} answered {error.code} {error.reason}",
                            retryable=error.code in RETRY_STATUSES, receipt=receipt) from error
    except ssl.SSLError as error:
        raise DeliveryError(f"TLS with {recipient.endpoint} failed: {error} (check recipients[].ca / client_cert)",
                            retryable=False) from error
    except (urllib.error.URLError, OSError, TimeoutError) as error:
        reason = getattr(error, "reason", error)
        if isinstance(reason, ssl.SSLError):
            raise DeliveryError(f"TLS with {recipient.endpoint} failed: {reason} "
                                "(check recipients[].ca / client_cert)", retryable=False) from error
        raise DeliveryError(f"cannot reach {recipient.endpoint}: {reason}", retryable=True) from error


def send_email(recipient: ReportRecipient, smtp: SmtpSettings, sender: str, subject: str, text: str,
               paths: list[Path]) -> dict[str, Any]:
    attachments = [(name, data, content_type(name)) for name, data in _files(paths)]
    try:
        receipt = send_mail(smtp, sender=sender, to=[recipient.endpoint], subject=subject, text=text,
                            attachments=attachments)
    except MailError as error:
        raise DeliveryError(str(error), retryable=error.retryable) from error
    return {"channel": "email", **receipt, "to": recipient.endpoint, "at": _now()}


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def send_drop(recipient: ReportRecipient, meta: dict[str, Any], paths: list[Path]) -> dict[str, Any]:
    folder = Path(recipient.endpoint) / meta["report_no"]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        files = []
        for name, data in _files(paths):
            _atomic_write(folder / name, data)
            files.append({"name": name, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)})
        receipt = {"channel": "drop", "folder": str(folder), "files": files, "at": _now(), **meta}
        _atomic_write(folder / "receipt.json",
                      (json.dumps(receipt, ensure_ascii=False, sort_keys=True, indent=2) + "\n").encode())
    except OSError as error:
        raise DeliveryError(f"cannot write to the drop folder {folder}: {error}", retryable=True) from error
    return receipt
