"""Delivery through the outbox to real local endpoints started by the tests: an HTTPS server
(self-signed certificate made here, first answering 503), an SMTP server, a drop folder."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import http.server
import ipaddress
import json
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from soc.clock import fixed_clock, running_clock
from soc.config import Settings
from soc.export.outbox import (
    OUTBOX,
    RECEIPTS,
    deliver_due,
    enqueue,
    list_entries,
    retry_failed,
    run_until_settled,
)
from soc.export.reports import Reports
from soc.export.sign import verify_bytes
from soc.store import open_store
from soc.store.base import Store
from tests.mail_server import MailServer, make_server_pki
from tests.test_export_fixtures import make_settings, seed

BUILT_AT = dt.datetime(2026, 12, 1, 3, 0, tzinfo=dt.UTC)
SENT_AT = BUILT_AT + dt.timedelta(hours=1)  # within the 5-day deadline of the seeded incident


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(f"sqlite:///{tmp_path / 'soc.db'}")
    yield s
    s.close()


# -- a local HTTPS endpoint ----------------------------------------------------------------------
def server_certificate(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "server.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "server-key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return folder / "server.pem", folder / "server-key.pem"


class Endpoint:
    """An HTTPS server that answers the first ``failures`` POSTs with ``fail_status``."""

    def __init__(self, folder: Path, failures: int = 1, fail_status: int = 503):
        self.cert, key = server_certificate(folder)
        self.requests: list[dict[str, Any]] = []
        self.failures = failures
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                owner.requests.append({"headers": dict(self.headers), "body": json.loads(body)})
                if len(owner.requests) <= owner.failures:
                    status, reply = fail_status, {"error": "busy, try later"}
                else:
                    status, reply = 202, {"receipt_id": f"RX-{len(owner.requests)}", "accepted": True}
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(self.cert), str(key))
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}/api/reports"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint(tmp_path: Path) -> Iterator[Endpoint]:
    e = Endpoint(tmp_path / "tls")
    yield e
    e.close()


def test_https_delivery_retries_after_503_and_stores_the_receipt(tmp_path: Path, store: Store, endpoint: Endpoint,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_A05_TOKEN", "s3cret-token")
    settings = make_settings(tmp_path, recipients=[{
        "name": "a05", "title": "Cục A05", "profile": "vn.mps.a05-2025", "channel": "https",
        "endpoint": endpoint.url, "token_env": "TEST_A05_TOKEN", "ca": str(endpoint.cert)}])
    inc = seed(store)
    built = Reports(store, settings).build_incident(inc.id, "initial", built_at=BUILT_AT)
    clock = running_clock(SENT_AT)
    assert enqueue(store, settings, built.report_no, now=clock()) == [f"{built.report_no}--a05"]
    assert enqueue(store, settings, built.report_no) == [], "create-only: enqueueing twice does nothing"
    first = deliver_due(store, settings, clock)
    assert [(e["status"], e["attempts"]) for e in first] == [("pending", 1)]
    assert "503" in first[0]["last_error"] and first[0]["attempts_log"][0]["receipt"]["status"] == 503
    handled = run_until_settled(store, settings, timeout=20, clock=clock)
    (entry,) = list_entries(store)
    assert entry["status"] == "delivered" and entry["attempts"] == 2, entry
    assert [e["id"] for e in handled] == [entry["id"]]
    assert entry["receipt"]["status"] == 202 and json.loads(entry["receipt"]["body"])["receipt_id"] == "RX-2"
    receipt = store.get(RECEIPTS, entry["id"]).body
    assert receipt["receipt"]["status"] == 202 and receipt["late"] is False
    # what the endpoint got: token, idempotency key, files with their signatures, all verifiable
    request = endpoint.requests[-1]
    assert request["headers"]["Authorization"] == "Bearer s3cret-token"
    assert request["headers"]["Idempotency-Key"] == entry["id"]
    files = {f["name"]: base64.b64decode(f["content_base64"]) for f in request["body"]["files"]}
    assert set(files) == {built.report_no + s for s in (".json", ".docx", ".stix.json", ".json.p7s",
                                                         ".docx.p7s", ".stix.json.p7s")}
    for f in request["body"]["files"]:
        assert hashlib.sha256(files[f["name"]]).hexdigest() == f["sha256"]
    for name in (n for n in files if not n.endswith(".p7s")):
        assert verify_bytes(files[name], files[name + ".p7s"], province_certificate(settings)).ok
    record = next(r for r in store.get("incidents", inc.id).body["reports"] if r["report_no"] == built.report_no)
    assert record["delivered_at"] == entry["delivered_at"]
    assert entry["delivered_at"].startswith("2026-12-01T04:"), "stamped by the clock given, not the machine's"


def test_a_delivery_after_the_deadline_is_recorded_late(tmp_path: Path, store: Store) -> None:
    settings = make_settings(tmp_path, recipients=[{"name": "drop", "channel": "drop", "endpoint": str(tmp_path / "d")}])
    inc = seed(store)
    built = Reports(store, settings).build_incident(inc.id, "initial", built_at=BUILT_AT)
    late = fixed_clock(BUILT_AT + dt.timedelta(days=30))
    enqueue(store, settings, built.report_no, now=late())
    (entry,) = deliver_due(store, settings, late)
    assert entry["status"] == "delivered" and entry["delivered_at"].startswith("2026-12-31T03:00")
    assert store.get(RECEIPTS, entry["id"]).body["late"] is True


def test_https_client_error_fails_at_once_and_can_be_retried(tmp_path: Path, store: Store) -> None:
    endpoint = Endpoint(tmp_path / "tls", failures=1, fail_status=400)
    try:
        settings = make_settings(tmp_path, recipients=[{"name": "a05", "channel": "https", "endpoint": endpoint.url,
                                                        "ca": str(endpoint.cert)}])
        inc = seed(store)
        built = Reports(store, settings).build_incident(inc.id, "initial", built_at=BUILT_AT)
        enqueue(store, settings, built.report_no)
        (entry,) = deliver_due(store, settings)
        assert entry["status"] == "failed" and "400" in entry["last_error"]
        assert deliver_due(store, settings) == []
        assert retry_failed(store, built.report_no) == 1
        (entry,) = deliver_due(store, settings)
        assert entry["status"] == "delivered"
    finally:
        endpoint.close()


def test_untrusted_server_certificate_is_not_sent_to(tmp_path: Path, store: Store, endpoint: Endpoint) -> None:
    settings = make_settings(tmp_path, recipients=[{"name": "a05", "channel": "https", "endpoint": endpoint.url,
                                                    "ca": str(tmp_path / "pki" / "cert.pem")}])
    inc = seed(store)
    built = Reports(store, settings).build_incident(inc.id, "initial", built_at=BUILT_AT)
    enqueue(store, settings, built.report_no)
    (entry,) = deliver_due(store, settings)
    assert entry["status"] == "failed" and "TLS" in entry["last_error"] and endpoint.requests == []


# -- drop folder ---------------------------------------------------------------------------------------
def test_drop_folder_gets_files_then_the_receipt(tmp_path: Path, store: Store) -> None:
    drop = tmp_path / "drop"
    settings = make_settings(tmp_path, recipients=[{"name": "so-tttt", "channel": "drop", "endpoint": str(drop)}])
    inc = seed(store)
    built = Reports(store, settings).build_incident(inc.id, "initial", built_at=BUILT_AT)
    enqueue(store, settings, built.report_no)
    (entry,) = deliver_due(store, settings)
    assert entry["status"] == "delivered"
    folder = drop / built.report_no
    receipt = json.loads((folder / "receipt.json").read_text())
    assert {f["name"] for f in receipt["files"]} == {p.name for p in built.all_files}
    for path in built.all_files:
        assert (folder / path.name).read_bytes() == path.read_bytes()
    assert not list(folder.glob(".*.tmp"))
    assert store.get(OUTBOX, entry["id"]).body["receipt"]["folder"] == str(folder)


# -- e-mail --------------------------------------------------------------------------------------------
def province_certificate(settings: Settings) -> x509.Certificate:
    """The trust anchor the signatures are verified with: the province's (self-signed) certificate."""
    assert settings.reporting.certificate is not None
    return x509.load_pem_x509_certificate(settings.reporting.certificate.read_bytes())


def test_email_with_the_tbsc_subject_and_signed_attachments(tmp_path: Path, store: Store) -> None:
    """Through the outbox to a STARTTLS mail server whose certificate is checked against smtp.ca."""
    pki = make_server_pki(tmp_path / "mail-pki")
    with MailServer("starttls", pki) as smtp:
        settings = make_settings(tmp_path, recipients=[{"name": "vncert", "channel": "email",
                                                        "endpoint": "ir@vncert.example"}],
                                 smtp={"host": "127.0.0.1", "port": smtp.port, "starttls": True, "ca": str(pki.ca)})
        inc = seed(store)
        built = Reports(store, settings).build_incident(inc.id, "initial", built_at=BUILT_AT)
        enqueue(store, settings, built.report_no)
        (entry,) = deliver_due(store, settings)
        assert entry["status"] == "delivered", entry
    (received,) = smtp.messages
    assert received.to == ["ir@vncert.example"] and received.sender == "soc@congan.nghean.gov.vn" and received.tls
    message = received.message
    assert message["Subject"].startswith("[TBSC] Báo cáo ban đầu sự cố mạng " + built.report_no)
    attachments = {part.get_filename(): part.get_content() for part in message.iter_attachments()}
    assert set(attachments) == {p.name for p in built.all_files}
    for path in built.files:
        assert attachments[path.name] == path.read_bytes()
        assert verify_bytes(attachments[path.name], attachments[path.name + ".p7s"],
                            province_certificate(settings)).ok, path.name
    assert "Kính gửi" in message.get_body(("plain",)).get_content()
    assert entry["receipt"]["message_id"] == message["Message-ID"]


def test_email_to_a_server_with_an_untrusted_certificate_fails_at_once(tmp_path: Path, store: Store) -> None:
    """No smtp.ca and a certificate from a private CA: not sent, not retried, the error says why."""
    with MailServer("ssl", make_server_pki(tmp_path / "mail-pki")) as smtp:
        settings = make_settings(tmp_path, recipients=[{"name": "vncert", "channel": "email",
                                                        "endpoint": "ir@vncert.example"}],
                                 smtp={"host": "127.0.0.1", "port": smtp.port, "ssl": True, "timeout_seconds": 5})
        built = Reports(store, settings).build_incident(seed(store).id, "initial", built_at=BUILT_AT)
        enqueue(store, settings, built.report_no)
        (entry,) = deliver_due(store, settings)
    assert entry["status"] == "failed" and entry["attempts"] == 1, entry
    assert "cannot be verified" in entry["last_error"] and "smtp.ca" in entry["last_error"]
    assert smtp.messages == []
