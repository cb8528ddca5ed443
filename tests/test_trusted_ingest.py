"""Trusted ingest (issue #10 item 6): syslog over TLS (RFC 5425) and mutual TLS, configured per
listener, with the agency taken from the client certificate.

A throwaway PKI is made with ``cryptography``: a CA, the listener's certificate, client
certificates of agencies A and B (one by its common name, one by a DNS name), one of another
CA, an expired one and a valid one no agency lists. Real sockets on 127.0.0.1 and, for the
end-to-end tests, the embedded service (``run_service``) with its SQLite store.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from soc.agencies import Agency, AgencyTree
from soc.app import App
from soc.config import Settings, SyslogSettings
from soc.config_errors import ConfigError
from soc.ingest import Record
from soc.ingest.sourcedefs import SourceDefinition, SourceDefinitionError, load_sources
from soc.ingest.sources import SourceError, SyslogListener
from soc.ingest.sources.tls import certificate_names, tls_endpoint
from soc.service import run_service
from tests.service_helpers import RULES, stored_events, workspace

# -- a throwaway PKI ---------------------------------------------------------------------------
NOW = dt.datetime.now(dt.UTC)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


@dataclass(frozen=True)
class Issued:
    """A certificate and its key as PEM files."""

    cert: Path
    key: Path


class Authority:
    """A CA that issues server and client certificates into ``folder``."""

    def __init__(self, folder: Path, name: str) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = _name(name)
        self.cert = (x509.CertificateBuilder().subject_name(self.name).issuer_name(self.name)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(NOW - dt.timedelta(days=30)).not_valid_after(NOW + dt.timedelta(days=30))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                     .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                                  key_encipherment=False, data_encipherment=False,
                                                  key_agreement=False, key_cert_sign=True, crl_sign=True,
                                                  encipher_only=False, decipher_only=False), critical=True)
                     .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False)
                     .sign(self.key, hashes.SHA256()))
        self.pem = folder / f"{name.replace(' ', '-')}.pem"
        self.pem.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, file: str, cn: str, *, dns: tuple[str, ...] = (), ips: tuple[str, ...] = (),
              server: bool = False, expired: bool = False, password: bytes | None = None) -> Issued:
        """A certificate for ``cn`` (and DNS/IP names) valid now (or ``expired``), its key
        encrypted with ``password`` when given."""
        key = ec.generate_private_key(ec.SECP256R1())
        start, end = (NOW - dt.timedelta(days=10), NOW - dt.timedelta(days=1)) if expired else \
            (NOW - dt.timedelta(minutes=5), NOW + dt.timedelta(days=1))
        names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
        names += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        builder = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(self.name)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(start).not_valid_after(end)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server
                                                         else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                                  critical=False))
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        issued = Issued(self.folder / f"{file}.pem", self.folder / f"{file}-key.pem")
        issued.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        encryption = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
        issued.key.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                 encryption))
        return issued


@dataclass(frozen=True)
class Pki:
    ca: Authority
    server: Issued
    agency_a: Issued
    agency_b: Issued
    other_ca: Issued
    expired: Issued
    unlisted: Issued


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    ca, rogue = Authority(folder, "Province SOC CA"), Authority(folder / "rogue", "Rogue CA")
    return Pki(
        ca=ca,
        server=ca.issue("server", "soc.example", dns=("localhost",), ips=("127.0.0.1",), server=True),
        agency_a=ca.issue("agency-a", "fw1.agency-a.example"),                         # by its CN
        agency_b=ca.issue("agency-b", "device 7", dns=("syslog.agency-b.example",)),   # by a DNS SAN
        other_ca=rogue.issue("rogue-a", "fw1.agency-a.example"),  # A's name, but not our CA
        expired=ca.issue("expired-a", "fw1.agency-a.example", expired=True),
        unlisted=ca.issue("unlisted", "printer.nobody.example"),
    )


#: agency A lists certificate names; agency B owns the loopback network (every test client's address)
AGENCIES = [
    {"id": "agency-a", "name": "Agency A", "level": "department", "certificate_names": ["FW1.agency-a.example"]},
    {"id": "agency-b", "name": "Agency B", "level": "department", "networks": ["127.0.0.0/8"],
     "certificate_names": ["syslog.agency-b.example"]},
]


def tree() -> AgencyTree:
    return AgencyTree(tuple(Agency(**a) for a in AGENCIES), Agency(id="unknown", name="Chưa xác định"))


# -- clients ---------------------------------------------------------------------------------
def frame(message: bytes) -> bytes:
    """One RFC 5425 frame: MSG-LEN SP SYSLOG-MSG (octet counting)."""
    return b"%d %s" % (len(message), message)


def client_context(pki: Pki, client: Issued | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki.ca.pem))
    if client is not None:
        ctx.load_cert_chain(str(client.cert), str(client.key))
    return ctx


def send_tls(port: int, ctx: ssl.SSLContext, messages: list[bytes]) -> str | None:
    """Send RFC 5425 frames over TLS; ``None`` when sent and closed cleanly, else what failed
    (a TLS 1.3 client learns that its certificate was refused only after its handshake)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
                ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(b"".join(frame(m) for m in messages))
            tls.settimeout(2)
            try:
                if tls.recv(1) == b"":
                    return None
            except TimeoutError:
                return None
            except ssl.SSLZeroReturnError:
                return None
            return "unexpected data"
    except (ssl.SSLError, OSError) as error:
        return f"{type(error).__name__}: {error}"


def wait_until(condition: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


class Collected:
    def __init__(self) -> None:
        self.records: list[Record] = []
        self.lock = threading.Lock()

    def __call__(self, batch: list[Record]) -> None:
        with self.lock:
            self.records.extend(batch)


def definition(**fields: Any) -> SourceDefinition:
    return SourceDefinition(name="net", type="syslog", agency="by-network", **fields)


@pytest.fixture
def listener(pki: Pki) -> Iterator[Callable[..., tuple[SyslogListener, Collected]]]:
    """A started listener with a TLS endpoint from a definition's ``tls_*`` fields."""
    started: list[SyslogListener] = []

    def make(**fields: Any) -> tuple[SyslogListener, Collected]:
        fields.setdefault("listen_tls", "127.0.0.1:0")
        fields.setdefault("tls_certificate", pki.server.cert)
        fields.setdefault("tls_private_key", pki.server.key)
        endpoint = tls_endpoint(definition(**fields), SyslogSettings().tls, tree())
        got = Collected()
        lst = SyslogListener(got, tls=endpoint, source_name="net", batch_delay=0.05)
        lst.start()
        started.append(lst)
        return lst, got

    yield make
    for lst in started:
        lst.stop()


# -- the listener --------------------------------------------------------------------------------
def test_mutual_tls_takes_the_agency_from_the_certificate(pki: Pki, listener: Any) -> None:
    lst, got = listener(tls_client_ca=pki.ca.pem)
    port = lst.tls_address[1]
    assert send_tls(port, client_context(pki, pki.agency_a), [b"<13>1 - fw1 app - - - from A %d" % i
                                                              for i in range(3)]) is None
    assert send_tls(port, client_context(pki, pki.agency_b), [b"<13>1 - dev7 app - - - from B"]) is None
    records = wait_until(lambda: len(got.records) >= 4 and got.records, "4 records")
    by_agency = {r.raw: r.agency for r in records}
    assert by_agency == {b"<13>1 - fw1 app - - - from A 0": "agency-a", b"<13>1 - fw1 app - - - from A 1": "agency-a",
                         b"<13>1 - fw1 app - - - from A 2": "agency-a", b"<13>1 - dev7 app - - - from B": "agency-b"}
    assert all(r.origin.startswith("tls 127.0.0.1:") for r in records)
    assert {r.origin.split(" cert ")[1] for r in records} == {"fw1.agency-a.example", "device 7"}
    assert lst.counters.refused == {}


@pytest.mark.parametrize(("client", "reason", "logged"), [
    (None, "no_certificate", "no client certificate"),
    ("other_ca", "untrusted_certificate", "not issued by the client CA"),
    ("expired", "expired_certificate", "client certificate expired"),
    ("unlisted", "no_agency", "client certificate printer.nobody.example is listed by no agency"),
])
def test_a_client_without_a_valid_listed_certificate_is_refused(pki: Pki, listener: Any, caplog: Any,
                                                                client: str | None, reason: str, logged: str) -> None:
    lst, got = listener(tls_client_ca=pki.ca.pem)
    caplog.set_level(logging.WARNING, logger="soc.ingest.sources.syslog")
    issued = getattr(pki, client) if client else None
    send_tls(lst.tls_address[1], client_context(pki, issued), [b"<13>1 - host app - - - must not be stored"])
    wait_until(lambda: lst.counters.refused, "the refusal")
    assert lst.counters.refused == {reason: 1}
    refusals = [r.getMessage() for r in caplog.records if "refused TLS client" in r.getMessage()]
    assert len(refusals) == 1 and "127.0.0.1:" in refusals[0] and logged in refusals[0], refusals
    lst.stop()
    assert got.records == []
    assert lst.counters.received == 0 and lst.counters.connections_total == 0


def test_an_unlisted_certificate_may_be_stored_as_the_unknown_agency(pki: Pki, listener: Any) -> None:
    lst, got = listener(tls_client_ca=pki.ca.pem, tls_unmapped_certificate="unknown-agency")
    assert send_tls(lst.tls_address[1], client_context(pki, pki.unlisted), [b"<13>1 - p app - - - hello"]) is None
    records = wait_until(lambda: got.records, "the record")
    assert [r.agency for r in records] == ["unknown"]


def test_optional_client_certificates_and_certificates_only_for_authentication(pki: Pki, listener: Any) -> None:
    lst, got = listener(tls_client_ca=pki.ca.pem, tls_require_client_certificate=False)
    assert send_tls(lst.tls_address[1], client_context(pki), [b"<13>1 - h app - - - no certificate"]) is None
    assert send_tls(lst.tls_address[1], client_context(pki, pki.agency_a), [b"<13>1 - h app - - - A"]) is None
    records = wait_until(lambda: len(got.records) >= 2 and got.records, "2 records")
    assert {r.raw.rsplit(b" ", 1)[1]: r.agency for r in records} == {b"certificate": None, b"A": "agency-a"}
    # a certificate of another CA is still refused when one is presented
    send_tls(lst.tls_address[1], client_context(pki, pki.other_ca), [b"<13>1 - h app - - - rogue"])
    wait_until(lambda: lst.counters.refused, "the refusal")
    assert lst.counters.refused == {"untrusted_certificate": 1}

    lst2, got2 = listener(tls_client_ca=pki.ca.pem, tls_agency_from_certificate=False)
    assert send_tls(lst2.tls_address[1], client_context(pki, pki.agency_a), [b"<13>1 - h app - - - A"]) is None
    assert [r.agency for r in wait_until(lambda: got2.records, "the record")] == [None]


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_plain_tls_and_old_protocols(pki: Pki, listener: Any) -> None:
    lst, got = listener()  # no client CA: plain TLS, any client
    assert send_tls(lst.tls_address[1], client_context(pki, pki.other_ca), [b"<13>1 - h app - - - plain"]) is None
    records = wait_until(lambda: got.records, "the record")
    assert [(r.agency, r.peer) for r in records] == [(None, "127.0.0.1")]
    old = client_context(pki)
    old.minimum_version = old.maximum_version = ssl.TLSVersion.TLSv1_1
    old.set_ciphers("ALL:@SECLEVEL=0")
    assert send_tls(lst.tls_address[1], old, [b"<13>1 - h app - - - tls 1.1"]) is not None
    wait_until(lambda: lst.counters.refused, "the refusal")
    assert lst.counters.refused == {"handshake_failed": 1}
    assert len(got.records) == 1


def test_a_client_that_never_finishes_the_handshake_is_cut_off(pki: Pki, caplog: Any) -> None:
    endpoint = tls_endpoint(definition(listen_tls="127.0.0.1:0", tls_certificate=pki.server.cert,
                                       tls_private_key=pki.server.key), SyslogSettings().tls, tree())
    assert endpoint is not None
    got = Collected()
    lst = SyslogListener(got, tls=dataclasses.replace(endpoint, handshake_timeout=0.3), source_name="net")
    lst.start()
    try:
        with socket.create_connection(lst.tls_address, timeout=5) as silent:
            wait_until(lambda: lst.counters.refused, "the refusal", 10)
            try:
                assert silent.recv(1) == b""  # the listener closed it ...
            except ConnectionResetError:
                pass  # ... or reset it
    finally:
        lst.stop()
    assert lst.counters.refused == {"handshake_timeout": 1} and got.records == []
    assert "TLS handshake not finished in time" in caplog.text


def test_certificate_names_are_the_common_name_then_dns_names(pki: Pki) -> None:
    peercert = {"subject": ((("countryName", "VN"),), (("commonName", "device 7"),)),
                "subjectAltName": (("DNS", "syslog.agency-b.example"), ("IP Address", "10.0.0.7"),
                                   ("DNS", "device 7"))}
    assert certificate_names(peercert) == ["device 7", "syslog.agency-b.example"]
    assert certificate_names(None) == certificate_names({}) == []


# -- definitions and settings ------------------------------------------------------------------
def test_definition_tls_files_are_checked_when_loaded(tmp_path: Path, pki: Pki) -> None:
    sources = tmp_path / "sources"
    sources.mkdir()
    (sources / "net.yml").write_text(
        f"name: net\ntype: syslog\nlisten_tls: 127.0.0.1:6514\ntls_certificate: {pki.server.cert}\n"
        f"tls_private_key: {tmp_path / 'missing-key.pem'}\ntls_client_ca: {pki.ca.pem}\n"
        "tls_unmapped_certificate: accept\n", encoding="utf-8")
    (sources / "files.yml").write_text(f"name: files\ntype: inbox\ntls_client_ca: {pki.ca.pem}\n", encoding="utf-8")
    with pytest.raises(SourceDefinitionError) as raised:
        load_sources(tmp_path)
    message = str(raised.value)
    assert f"tls_private_key: tls_private_key: {tmp_path / 'missing-key.pem'} does not exist" in message
    assert "tls_unmapped_certificate: 'accept': use refuse or unknown-agency" in message
    assert "source 'files': tls_client_ca: only a syslog source listens for TLS" in message


def test_an_encrypted_key_with_its_password_from_a_file(tmp_path: Path, pki: Pki) -> None:
    key = pki.ca.issue("server-enc", "soc.example", ips=("127.0.0.1",), server=True, password=b"s3cret-key")
    secret = tmp_path / "key-password"
    secret.write_text("s3cret-key\n", encoding="utf-8")
    ok = definition(listen_tls="127.0.0.1:0", tls_certificate=key.cert, tls_private_key=key.key,
                    tls_key_password_file=secret)
    endpoint = tls_endpoint(ok, SyslogSettings().tls, tree())
    assert endpoint is not None and not endpoint.mutual and endpoint.kind == "TLS"
    secret.write_text("wrong", encoding="utf-8")
    with pytest.raises(SourceError, match="cannot load the TLS certificate .* wrong key password"):
        tls_endpoint(ok, SyslogSettings().tls, tree())
    assert "s3cret" not in repr(ok) and "wrong" not in repr(ok)


def test_settings_enable_tls_for_every_syslog_source(tmp_path: Path, pki: Pki, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOC_CONFIG", raising=False)
    settings = Settings(syslog={"tls": {"certificate": pki.server.cert, "private_key": pki.server.key,
                                        "client_ca": pki.ca.pem, "listen": "127.0.0.1:0"}})
    endpoint = tls_endpoint(definition(), settings.syslog.tls, tree())
    assert endpoint is not None and endpoint.mutual and endpoint.address == "127.0.0.1:0"
    assert endpoint.context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert endpoint.context.verify_mode == ssl.CERT_REQUIRED
    assert tls_endpoint(definition(listen_tls=""), settings.syslog.tls, tree()) is None  # one source opts out
    assert tls_endpoint(definition(), Settings().syslog.tls, tree()) is None  # off by default
    assert Settings().syslog.tls.listen == "0.0.0.0:6514"
    with pytest.raises(ValueError, match="certificate: .*nope.pem does not exist"):
        Settings(syslog={"tls": {"certificate": tmp_path / "nope.pem"}})
    with pytest.raises(ValueError, match="client_ca need certificate"):
        Settings(syslog={"tls": {"client_ca": pki.ca.pem}})


def test_settings_file_with_tls_and_an_inline_password_warns(tmp_path: Path, pki: Pki, caplog: Any,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from soc.config import load_settings

    config = tmp_path / "soc.yml"
    config.write_text(f"syslog:\n  tls:\n    certificate: {pki.server.cert}\n    key_password: hunter22\n"
                      "    unmapped_certificate: maybe\n", encoding="utf-8")
    monkeypatch.setenv("SOC_CONFIG", str(config))
    with pytest.raises(ConfigError, match="unmapped_certificate"):
        load_settings()
    config.write_text(f"syslog:\n  tls:\n    certificate: {pki.server.cert}\n    key_password: hunter22\n",
                      encoding="utf-8")
    caplog.set_level(logging.WARNING)
    settings = load_settings()
    assert settings.syslog.tls.private_key_password() == "hunter22"
    assert "hunter22" in settings.secret_values()
    assert any("syslog.tls.key_password is written in the settings" in r.getMessage() for r in caplog.records)
    assert "hunter22" not in repr(settings) and "hunter22" not in caplog.text


# -- end to end: the embedded service stores what it admits --------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_service_stores_certified_agencies_and_refuses_the_rest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               pki: Pki, caplog: Any) -> None:
    mtls_port, tls_port = _free_port(), _free_port()
    settings = workspace(tmp_path, monkeypatch, {
        "mtls.yml": {"name": "mtls", "type": "syslog", "agency": "by-network", "listen_tls": f"127.0.0.1:{mtls_port}",
                     "tls_certificate": str(pki.server.cert), "tls_private_key": str(pki.server.key),
                     "tls_client_ca": str(pki.ca.pem)},
        "tls.yml": {"name": "tls", "type": "syslog", "agency": "by-network", "listen_tls": f"127.0.0.1:{tls_port}",
                    "tls_certificate": str(pki.server.cert), "tls_private_key": str(pki.server.key)},
    }, AGENCIES)
    caplog.set_level(logging.WARNING, logger="soc.ingest.sources.syslog")
    out: list[str] = []
    stop = threading.Event()
    thread = threading.Thread(target=lambda: run_service(App(settings, rule_dirs=RULES), stop=stop,
                                                         out=lambda line: out.append(str(line))))
    thread.start()
    try:
        wait_until(lambda: any(line.startswith("running;") for line in out) or not thread.is_alive(), "the service", 120)
        assert thread.is_alive(), out
        banner = "\n".join(out)
        assert (f"source syslog 'mtls': listening for syslog on mTLS 127.0.0.1:{mtls_port} (this machine only) "
                "(client certificates required, agency from the certificate)") in banner, banner
        assert f"source syslog 'tls': listening for syslog on TLS 127.0.0.1:{tls_port} (this machine only)" in banner
        assert f"syslog mTLS 127.0.0.1:{mtls_port}" in banner and f"syslog TLS 127.0.0.1:{tls_port}" in banner

        a_lines = [b"<38>1 2025-03-01T10:00:0%dZ fw1 sshd 1 - - Failed password for root from 203.0.113.9 "
                   b"port 22 ssh2" % i for i in range(3)]
        assert send_tls(mtls_port, client_context(pki, pki.agency_a), a_lines) is None
        for client in (None, pki.other_ca, pki.expired, pki.unlisted):
            send_tls(mtls_port, client_context(pki, client), [b"<13>1 - x app - - - refused"])
        assert send_tls(tls_port, client_context(pki), [b"<13>1 2025-03-01T10:00:00Z h app - - - plain tls"]) is None

        def stored() -> list[dict[str, Any]]:
            events = stored_events(settings)
            return events if len(events) >= 4 else []

        events = wait_until(stored, "4 events", 60)
        wait_until(lambda: sum("refused TLS client" in r.getMessage() for r in caplog.records) >= 4, "4 refusals")
    finally:
        stop.set()
        thread.join(60)
    assert not thread.is_alive()
    events = stored_events(settings)
    assert sorted((e["soc.source"], e["organization.id"], e["organization.name"]) for e in events) == [
        ("mtls", "agency-a", "Agency A")] * 3 + [("tls", "agency-b", "Agency B")]
    # agency A although the sender's address is in agency B's network
    assert {e["log.source.address"] for e in events} == {"127.0.0.1"}
    assert not any("refused" in (e.get("message") or "") for e in events)
    refusals = sorted(r.getMessage().split(": ", 2)[2].split(" (")[0] for r in caplog.records
                      if "refused TLS client" in r.getMessage())
    assert refusals == ["client certificate expired", "client certificate not issued by the client CA",
                        "client certificate printer.nobody.example is listed by no agency", "no client certificate"]
