"""Serving the API (issue #10, "Trust", item 5): ``soc serve`` and ``soc run`` on real sockets.

- bind rules: a loopback address serves plain HTTP; any other address needs a certificate
  (then HTTPS only, TLS 1.2+, HSTS, ``__Host-`` Secure cookies) or an explicit ``--insecure``
  (announced loudly); otherwise the command refuses with what to do;
- a port in use, a certificate that cannot be loaded: a clear error before anything runs;
- ``soc run`` serves the API next to its listeners, lists it in the banner and stops it with the
  service; ``soc serve`` creates the first admin on a fresh store.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from typer.testing import CliRunner

from soc.app import App
from soc.config_api import ApiSettings
from soc.web.serve import ApiServeError, ApiServer, check_bind
from tests.api_helpers import GOOD, add_user, settings_for

KEY_PASSWORD = "Key-pass-31337"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, its key encrypted with a password
    kept in a file."""
    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "soc test")])
    now = datetime.now(UTC)
    import ipaddress

    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(hours=1))
            .not_valid_after(now + timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    paths = {"cert": folder / "api.pem", "key": folder / "api.key", "password": folder / "key-password"}
    paths["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.BestAvailableEncryption(KEY_PASSWORD.encode())))
    paths["password"].write_text(KEY_PASSWORD + "\n", encoding="utf-8")
    return paths


@pytest.fixture
def root(tmp_path: Path) -> Iterator[App]:
    with App(settings_for(tmp_path / "data")) as app:
        add_user(app, "an", ["analyst"])
        yield app


def tls_settings(certificate: dict[str, Path], **extra: object) -> ApiSettings:
    return ApiSettings(certificate=certificate["cert"], private_key=certificate["key"],
                       key_password_file=certificate["password"], **extra)  # type: ignore[arg-type]


@pytest.fixture
def serving() -> Iterator[list[ApiServer]]:
    """Servers started by a test; stopped after it."""
    started: list[ApiServer] = []
    yield started
    for server in started:
        server.stop()


def start(server: ApiServer, started: list[ApiServer]) -> ApiServer:
    server.start()
    started.append(server)
    return server


# -- bind rules ----------------------------------------------------------------------------------
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.5"])
def test_plain_http_is_fine_on_a_loopback_address(host: str) -> None:
    check_bind(host, 8080, tls=False, insecure=False)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.2.0.1", "soc.example.vn"])
def test_plain_http_on_a_reachable_address_is_refused_with_what_to_do(host: str) -> None:
    with pytest.raises(ApiServeError) as refused:
        check_bind(host, 8080, tls=False, insecure=False)
    message = str(refused.value)
    assert "api.certificate" in message and "api.private_key" in message and "--insecure" in message
    assert "127.0.0.1" in message
    check_bind(host, 8080, tls=True, insecure=False)
    check_bind(host, 8080, tls=False, insecure=True)


def test_the_settings_check_files_and_want_a_certificate_for_a_key(tmp_path: Path) -> None:
    assert ApiSettings().host == "127.0.0.1" and ApiSettings().enabled and not ApiSettings().tls
    with pytest.raises(ValueError, match="does not exist"):
        ApiSettings(certificate=tmp_path / "missing.pem")
    (tmp_path / "k").write_text("x")
    with pytest.raises(ValueError, match="need certificate"):
        ApiSettings(private_key=tmp_path / "k")


def test_soc_serve_refuses_a_reachable_address_without_tls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from soc.cli import app

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SOC_DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0", "--port", "0"])
    assert result.exit_code == 2
    assert "error: the API would serve plain HTTP on 0.0.0.0:0 (all interfaces)" in result.output
    assert "api.certificate" in result.output and "Traceback" not in result.output
    assert "first run" not in result.output  # refused before anything was created


# -- serving -------------------------------------------------------------------------------------
def test_plain_http_on_loopback_serves_and_stops(root: App, serving: list[ApiServer]) -> None:
    server = start(ApiServer(root, port=0), serving)
    assert server.url.startswith("http://127.0.0.1:") and server.warnings() == []
    assert server.describe() == f"API http://127.0.0.1:{server.port} (this machine only)"
    answer = httpx.get(f"{server.url}/api/v1/health", timeout=10)
    assert answer.status_code == 200 and answer.json() == {"status": "ok"}
    assert answer.headers["x-content-type-options"] == "nosniff" and "strict-transport-security" not in answer.headers
    assert "server" not in answer.headers
    login = httpx.post(f"{server.url}/api/v1/auth/login", json={"name": "an", "password": GOOD}, timeout=10)
    assert login.status_code == 200 and login.headers["set-cookie"].startswith("soc_session=")
    server.stop()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{server.url}/api/v1/health", timeout=3)


def test_https_with_tls_1_2_or_later_only(root: App, certificate: dict[str, Path],
                                          serving: list[ApiServer]) -> None:
    server = start(ApiServer(root, tls_settings(certificate), host="127.0.0.1", port=0), serving)
    assert server.url.startswith("https://127.0.0.1:")
    trusted = ssl.create_default_context(cafile=str(certificate["cert"]))
    with httpx.Client(verify=trusted, timeout=10) as https:
        answer = https.get(f"{server.url}/api/v1/health")
        assert answer.status_code == 200
        assert answer.headers["strict-transport-security"].startswith("max-age=")
        login = https.post(f"{server.url}/api/v1/auth/login", json={"name": "an", "password": GOOD})
        cookie = login.headers["set-cookie"]
        assert cookie.startswith("__Host-soc_session=") and "secure" in cookie.lower()
        assert https.get(f"{server.url}/api/v1/auth/me").json()["name"] == "an"
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw, \
            trusted.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.check_hostname, old.verify_mode = False, ssl.CERT_NONE
    try:
        with warnings.catch_warnings():  # deprecated: that is the point
            warnings.simplefilter("ignore", DeprecationWarning)
            old.minimum_version = ssl.TLSVersion.TLSv1
            old.maximum_version = ssl.TLSVersion.TLSv1_1
        old.set_ciphers("ALL:@SECLEVEL=0")
    except (ValueError, ssl.SSLError):
        pytest.skip("this OpenSSL cannot even offer TLS 1.1")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw, pytest.raises(ssl.SSLError):
        old.wrap_socket(raw, server_hostname="127.0.0.1").close()
    # plain HTTP to the HTTPS port gets no answer
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{server.port}/api/v1/health", timeout=5).raise_for_status()


def test_insecure_on_a_reachable_address_is_said_loudly(root: App, serving: list[ApiServer]) -> None:
    server = ApiServer(root, host="0.0.0.0", port=0, insecure=True)
    warning = server.warnings()
    assert len(warning) == 1 and warning[0].startswith("WARNING: the API serves plain HTTP on 0.0.0.0:0")
    assert "api.certificate" in warning[0]
    assert ApiServer(root, port=0, insecure=True).warnings() == []  # loopback: nothing to warn about


def test_a_port_in_use_and_a_bad_key_password_are_clear_errors(root: App, certificate: dict[str, Path],
                                                               tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ApiServeError, match=f"cannot listen on 127.0.0.1:{port}.*api.port"):
            ApiServer(root, port=port).start()
    (tmp_path / "wrong").write_text("not the password")
    wrong = ApiSettings(certificate=certificate["cert"], private_key=certificate["key"],
                        key_password_file=tmp_path / "wrong")
    with pytest.raises(ApiServeError, match="cannot be used"):
        ApiServer(root, wrong, port=0)


def test_expired_sessions_are_purged(root: App) -> None:
    server = ApiServer(root, port=0)
    session = root.identity.sessions.create(root.identity.users.require("an"))
    assert server.purge() == {"sessions": 0, "login_attempts": 0}
    root.identity.sessions.idle = timedelta(seconds=0)  # every session is now idle too long
    assert server.purge()["sessions"] == 1
    assert root.identity.session(session.id) is None


# -- soc run and soc serve -----------------------------------------------------------------------
@pytest.mark.timeout(300)
def test_soc_run_serves_the_api_lists_it_and_stops_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from soc.service import run_service
    from tests.service_helpers import RULES, workspace

    settings = workspace(tmp_path, monkeypatch, {"inbox.yml": {"name": "drop", "type": "inbox", "agency": "so-tttt"}})
    out: list[str] = []
    stop = threading.Event()
    with App(settings, rule_dirs=RULES) as app:
        server = ApiServer(app, port=0)
        thread = threading.Thread(target=run_service, args=(app,),
                                  kwargs={"stop": stop, "out": lambda line: out.append(str(line)), "api": server})
        thread.start()
        try:
            deadline = time.monotonic() + 120
            while not any(line.startswith("running;") for line in out) and thread.is_alive():
                assert time.monotonic() < deadline, out
                time.sleep(0.2)
            banner = "\n".join(out)
            assert f"listening on: API http://127.0.0.1:{server.port} (this machine only); no other port" in banner
            assert httpx.get(f"{server.url}/api/v1/health", timeout=10).status_code == 200
        finally:
            stop.set()
            thread.join(60)
        assert not thread.is_alive()
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{server.url}/api/v1/health", timeout=3)


def test_soc_run_refuses_an_insecure_api_address_before_starting(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from soc.cli import app
    from tests.service_helpers import workspace

    workspace(tmp_path, monkeypatch, {})
    result = CliRunner().invoke(app, ["run", "--udp", "", "--tcp", "", "--api", "0.0.0.0:0",
                                      "--data-dir", str(tmp_path / "data")])
    assert result.exit_code == 2, result.output
    assert "the API would serve plain HTTP on 0.0.0.0:0" in result.output and "--insecure-api" in result.output
    assert "running;" not in result.output
    bad = CliRunner().invoke(app, ["run", "--api", "nonsense", "--data-dir", str(tmp_path / "data")])
    assert bad.exit_code == 2 and "give HOST:PORT" in bad.output


def test_soc_serve_creates_the_first_admin_and_serves_until_stopped(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("SOC_")}
    env.update(SOC_DATA_DIR=str(tmp_path / "data"), SOC_AUTH__ARGON2_TIME_COST="1", PYTHONUNBUFFERED="1",
               COLUMNS="300", NO_COLOR="1", SOC_API__PORT="0")
    proc = subprocess.Popen([sys.executable, "-c", "from soc.cli import app; app()", "serve"], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "Ctrl-C to stop" in line:
                break
        text = "".join(lines)
        assert "first run: created the user 'admin'" in text, text
        assert "listening on: API http://127.0.0.1:" in text and "(this machine only); no other port" in text
        url = text.split("listening on: API ", 1)[1].split(" ", 1)[0]
        password = text.split("shown only now:", 1)[1].split()[0]
        login = httpx.post(f"{url}/api/v1/auth/login", json={"name": "admin", "password": password}, timeout=10)
        assert login.status_code == 200 and login.json()["must_change_password"] is True
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
