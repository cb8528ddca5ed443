"""``soc.mail`` over verified TLS, against a real local SMTP server (aiosmtpd) started here with a
throwaway CA: SMTPS and STARTTLS fail against a certificate the client does not trust and work
with ``smtp.ca``; no STARTTLS offered is an error; no password over plaintext except to loopback."""

from __future__ import annotations

import smtplib
from pathlib import Path

import pytest

from soc.config import SmtpSettings
from soc.mail import MailError, check_transport, send_mail
from soc.net import is_loopback_host
from tests.mail_server import MailServer, ServerPki, make_server_pki

ATTACHMENTS = [("BC03.json", b'{"a": 1}\n', "application/json"),
               ("BC03.json.p7s", bytes(range(256)), "application/pkcs7-signature")]


@pytest.fixture
def pki(tmp_path: Path) -> ServerPki:
    return make_server_pki(tmp_path / "mail-pki")


def _send(smtp: SmtpSettings) -> dict[str, object]:
    return send_mail(smtp, sender="soc@tinh.gov.vn", to=["ir@vncert.example"], subject="[TBSC] Báo cáo",
                     text="Kính gửi", attachments=ATTACHMENTS)


def _assert_received(server: MailServer, *, login: str | None = None) -> None:
    (received,) = server.messages
    assert received.tls and received.to == ["ir@vncert.example"] and received.login == login
    message = received.message
    assert message["Subject"] == "[TBSC] Báo cáo"
    assert {part.get_filename(): part.get_content() for part in message.iter_attachments()} == \
        {name: data for name, data, _ in ATTACHMENTS}


@pytest.mark.parametrize("mode", ["ssl", "starttls"])
def test_a_server_certificate_the_client_does_not_trust_is_refused(pki: ServerPki, mode: str) -> None:
    with MailServer(mode, pki) as server:  # type: ignore[arg-type]
        smtp = SmtpSettings(host="127.0.0.1", port=server.port, **{mode: True}, timeout_seconds=5)
        with pytest.raises(MailError) as caught:
            _send(smtp)  # system CAs only: the throwaway CA is unknown
        assert caught.value.retryable is False
        text = str(caught.value)
        assert f"127.0.0.1:{server.port}" in text and "smtp.ca" in text and "certificate" in text
        assert server.messages == []


@pytest.mark.parametrize("mode", ["ssl", "starttls"])
def test_a_certificate_from_another_ca_is_refused(pki: ServerPki, tmp_path: Path, mode: str) -> None:
    other = make_server_pki(tmp_path / "other", "Another CA")
    with MailServer(mode, pki) as server:  # type: ignore[arg-type]
        smtp = SmtpSettings(host="127.0.0.1", port=server.port, ca=other.ca, timeout_seconds=5, **{mode: True})
        with pytest.raises(MailError, match="cannot be verified") as caught:
            _send(smtp)
        assert not caught.value.retryable and server.messages == []


@pytest.mark.parametrize("mode", ["ssl", "starttls"])
def test_with_its_ca_configured_the_message_and_attachments_arrive(pki: ServerPki, mode: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_SMTP_PASSWORD", "s3cret")
    with MailServer(mode, pki, users={"soc": "s3cret"}) as server:  # type: ignore[arg-type]
        smtp = SmtpSettings(host="127.0.0.1", port=server.port, ca=pki.ca, username="soc",
                            password_env="TEST_SMTP_PASSWORD", timeout_seconds=5, **{mode: True})
        receipt = _send(smtp)
        assert receipt["server"] == f"127.0.0.1:{server.port}" and receipt["refused"] == {}
        assert server.logins == ["soc"]
        _assert_received(server, login="soc")


def test_the_host_name_is_checked(pki: ServerPki, tmp_path: Path) -> None:
    """A certificate from the trusted CA but for another host name is refused; "localhost",
    which the certificate names, verifies."""
    with MailServer("ssl", pki) as server:
        _send(SmtpSettings(host="localhost", port=server.port, ssl=True, ca=pki.ca, timeout_seconds=5))
    assert len(server.messages) == 1
    elsewhere = make_server_pki(tmp_path / "elsewhere", hosts=("mail.example.gov.vn",))
    with MailServer("ssl", elsewhere) as server:
        with pytest.raises(MailError, match="cannot be verified") as caught:
            _send(SmtpSettings(host="127.0.0.1", port=server.port, ssl=True, ca=elsewhere.ca, timeout_seconds=5))
        assert "127.0.0.1" in str(caught.value) and not caught.value.retryable and server.messages == []


def test_starttls_not_offered_is_an_error_not_a_plaintext_fallback() -> None:
    with MailServer("plain") as server:
        smtp = SmtpSettings(host="127.0.0.1", port=server.port, starttls=True, timeout_seconds=5)
        with pytest.raises(MailError, match="does not offer STARTTLS") as caught:
            _send(smtp)
        assert caught.value.retryable is False and server.messages == []


def test_login_without_tls_to_a_remote_host_is_refused_before_connecting(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def no_connection(*args: object, **kwargs: object) -> None:
        raise AssertionError("must not connect")

    monkeypatch.setattr(smtplib.SMTP, "connect", no_connection)
    smtp = SmtpSettings(host="mail.example.gov.vn", port=25, username="soc", password_env="X")
    with pytest.raises(MailError, match="starttls") as caught:
        check_transport(smtp)
    assert caught.value.retryable is False and "mail.example.gov.vn" in str(caught.value)
    with pytest.raises(MailError, match="without TLS"):
        _send(smtp)
    # with TLS configured, or without a login, the check lets it through
    check_transport(smtp.model_copy(update={"starttls": True}))
    check_transport(smtp.model_copy(update={"ssl": True}))
    check_transport(smtp.model_copy(update={"username": None}))


@pytest.mark.parametrize(("host", "loopback"), [
    ("localhost", True), ("LOCALHOST.", True), ("relay.localhost", False), ("127.0.0.1", True),
    ("127.1.2.3", True), ("::1", True), ("[::1]", True), ("10.0.0.1", False), ("mail.example.gov.vn", False),
    ("localhost.example.com", False), ("::ffff:10.0.0.1", False)])
def test_is_loopback(host: str, loopback: bool) -> None:
    """One loopback rule for every outgoing channel (soc.outgoing): only literals count."""
    assert is_loopback_host(host) is loopback


def test_login_over_plain_smtp_to_loopback_is_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_SMTP_PASSWORD", "pw")
    with MailServer("plain", users={"relay": "pw"}) as server:
        smtp = SmtpSettings(host="127.0.0.1", port=server.port, username="relay",
                            password_env="TEST_SMTP_PASSWORD", timeout_seconds=5)
        _send(smtp)
        (received,) = server.messages
        assert server.logins == ["relay"] and received.login == "relay" and not received.tls


def test_an_unreadable_ca_file_is_a_clear_error(tmp_path: Path) -> None:
    smtp = SmtpSettings(host="127.0.0.1", port=1, ssl=True, ca=tmp_path / "missing.pem")
    with pytest.raises(MailError, match="cannot read smtp.ca") as caught:
        _send(smtp)
    assert caught.value.retryable is False
