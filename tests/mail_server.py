"""A local SMTP server for the tests (``aiosmtpd``): plain, SMTPS (implicit TLS) or STARTTLS,
optionally with AUTH, keeping what it receives; and a throwaway CA with a server certificate
for ``127.0.0.1`` / ``localhost`` made with ``cryptography``."""

from __future__ import annotations

import datetime as dt
import email
import ipaddress
import socket
import ssl
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class ServerPki:
    """A CA certificate (``ca``) and the server certificate and key it issued (PEM files)."""

    ca: Path
    cert: Path
    key: Path


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def make_server_pki(folder: Path, name: str = "Test mail CA",
                    hosts: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")) -> ServerPki:
    """A throwaway CA and a server certificate for ``hosts`` (names or IP addresses), valid from
    a few minutes before now for a day."""
    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([_general_name(host) for host in hosts]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pki = ServerPki(folder / "ca.pem", folder / "server.pem", folder / "server-key.pem")
    pki.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    pki.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pki.key.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return pki


@dataclass
class Received:
    """One message as the server got it: envelope sender, recipients, raw bytes, parsed."""

    sender: str
    to: list[str]
    data: bytes
    tls: bool
    login: str | None

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.data, policy=policy.default)  # type: ignore[return-value]


@dataclass
class _Handler:
    messages: list[Received] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        login = session.auth_data.decode() if isinstance(session.auth_data, bytes) else session.auth_data
        self.messages.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos),
                                      bytes(envelope.original_content or b""),
                                      tls=server.transport.get_extra_info("ssl_object") is not None,
                                      login=login))
        return "250 OK queued as 42"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class MailServer:
    """``aiosmtpd`` on 127.0.0.1 (a free port): ``mode`` plain, ``ssl`` (implicit TLS) or
    ``starttls`` (offered; required before MAIL when ``require_starttls``). With ``users``
    ({name: password}) it offers AUTH, also without TLS. ``messages`` holds what it received;
    ``logins`` the user names that logged in. Use as a context manager."""

    def __init__(self, mode: Literal["plain", "ssl", "starttls"] = "plain", pki: ServerPki | None = None,
                 users: dict[str, str] | None = None, require_starttls: bool = True) -> None:
        self.handler = _Handler()
        self.logins: list[str] = []
        self.port = _free_port()
        context = None
        if mode != "plain":
            assert pki is not None, "a TLS server needs a certificate"
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(pki.cert, pki.key)
        kwargs: dict[str, Any] = {}
        if users is not None:
            def authenticate(server: Any, session: Session, envelope: Envelope, mechanism: str,
                             auth_data: Any) -> AuthResult:
                ok = isinstance(auth_data, LoginPassword) and \
                    users.get(auth_data.login.decode()) == auth_data.password.decode()
                if ok:
                    self.logins.append(auth_data.login.decode())
                return AuthResult(success=ok, auth_data=auth_data.login if ok else None)

            kwargs.update(authenticator=authenticate, auth_require_tls=False)
        if mode == "starttls":
            kwargs.update(tls_context=context, require_starttls=require_starttls)
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port,
                                     ssl_context=context if mode == "ssl" else None,
                                     server_hostname="localhost", **kwargs)

    @property
    def messages(self) -> list[Received]:
        return self.handler.messages

    def __enter__(self) -> MailServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()
