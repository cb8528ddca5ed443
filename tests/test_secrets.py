"""Secrets (soc/secrets.py and the settings' accessors): where they are read from, the warning
for secrets in clear text, URL masking, ``repr``, log redaction; the metrics bind address."""

from __future__ import annotations

import logging
import os
import urllib.request
from pathlib import Path

import pytest
from pydantic import SecretStr

from soc import secrets
from soc.config import KafkaSettings, SmtpSettings, SyslogSettings, load_settings
from soc.kafka.metrics import MetricsServer, WorkerMetrics
from soc.kafka.worker import WorkerConfig
from soc.net import listen_address
from soc.secrets import (
    RedactingFilter,
    SecretError,
    mask_url,
    mask_urls_in,
    resolve_secret,
    url_with_password,
)
from soc.store import StoreError, open_store
from soc.store.search_client import parse_url

SECRET = "S3cr3t-pa55"


@pytest.fixture(autouse=True)
def _fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sees the once-per-process warnings afresh."""
    monkeypatch.setattr(secrets, "_warned", set())


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Write a soc.yml and point SOC_CONFIG at it."""
    for name in [n for n in os.environ if n.startswith("SOC_")]:
        monkeypatch.delenv(name)

    def write(text: str) -> Path:
        path = tmp_path / "soc.yml"
        path.write_text(text, encoding="utf-8")
        monkeypatch.setenv("SOC_CONFIG", str(path))
        return path

    return write


# -- resolve_secret ---------------------------------------------------------------------------
def test_resolve_from_file_drops_one_trailing_newline(tmp_path: Path) -> None:
    path = tmp_path / "pw"
    path.write_text(SECRET + "\n", encoding="utf-8")
    assert resolve_secret(None, None, path, "smtp.password") == SECRET
    path.write_text(SECRET + "\r\n", encoding="utf-8")
    assert resolve_secret(None, None, str(path), "smtp.password") == SECRET
    path.write_text(" spaced \n\n", encoding="utf-8")  # only one newline is the file's, the rest is the secret's
    assert resolve_secret(None, None, path, "smtp.password") == " spaced \n"


def test_resolve_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_SOC_SECRET", SECRET)
    assert resolve_secret(None, "TEST_SOC_SECRET", None, "smtp.password") == SECRET


def test_resolve_inline_plain_and_secretstr() -> None:
    assert resolve_secret(SECRET, None, None, "x") == SECRET
    assert resolve_secret(SecretStr(SECRET), None, None, "x") == SECRET
    assert resolve_secret(None, None, None, "x") is None
    assert resolve_secret("", None, None, "x") is None


def test_resolve_order_file_then_env_then_inline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pw").write_text("from-file", encoding="utf-8")
    monkeypatch.setenv("TEST_SOC_SECRET", "from-env")
    assert resolve_secret("inline", "TEST_SOC_SECRET", tmp_path / "pw", "x") == "from-file"
    assert resolve_secret("inline", "TEST_SOC_SECRET", None, "x") == "from-env"


def test_resolve_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SecretError, match=r"smtp\.password: the secret file .*/nope does not exist"):
        resolve_secret("inline", None, tmp_path / "nope", "smtp.password")


def test_resolve_directory_empty_and_unreadable_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SecretError, match="is a directory"):
        resolve_secret(None, None, tmp_path, "x")
    (tmp_path / "empty").write_text("\n", encoding="utf-8")
    with pytest.raises(SecretError, match="is empty"):
        resolve_secret(None, None, tmp_path / "empty", "x")
    (tmp_path / "latin1").write_bytes(b"caf\xe9")
    with pytest.raises(SecretError, match="is not UTF-8 text"):
        resolve_secret(None, None, tmp_path / "latin1", "x")
    locked = tmp_path / "locked"
    locked.write_text(SECRET, encoding="utf-8")

    def denied(self: Path, *args: object, **kwargs: object) -> str:  # chmod 0 does not stop root
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_text", denied)
    with pytest.raises(SecretError, match=r"x: cannot read the secret file .*locked \(Permission denied\)"):
        resolve_secret(None, None, locked, "x")


def test_resolve_unset_or_empty_env_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEST_SOC_UNSET", raising=False)
    with pytest.raises(SecretError, match="x: the environment variable TEST_SOC_UNSET is not set"):
        resolve_secret("inline", "TEST_SOC_UNSET", None, "x")
    monkeypatch.setenv("TEST_SOC_UNSET", "")
    with pytest.raises(SecretError, match="TEST_SOC_UNSET is empty"):
        resolve_secret(None, "TEST_SOC_UNSET", None, "x")


def test_secret_error_never_contains_the_secret(tmp_path: Path) -> None:
    with pytest.raises(SecretError) as caught:
        resolve_secret(SECRET, None, tmp_path / "nope", "x")
    assert SECRET not in str(caught.value)


# -- accessors on the settings ----------------------------------------------------------------
def test_accessors_read_file_env_and_inline(config_file, tmp_path: Path,  # type: ignore[no-untyped-def]
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "token").write_text("tok-from-file\n", encoding="utf-8")
    (tmp_path / "key").write_text("key-from-file", encoding="utf-8")
    monkeypatch.setenv("TEST_SMTP_PW", "smtp-from-env")
    config_file(f"""
smtp: {{username: soc, password_env: TEST_SMTP_PW}}
reporting:
  key_password_file: {tmp_path / 'key'}
  recipients:
    - {{name: a05, channel: https, endpoint: "https://x/api", token_file: {tmp_path / 'token'}}}
    - {{name: b, channel: https, endpoint: "https://y/api", token: inline-token}}
""")
    s = load_settings()
    assert s.reporting.recipients[0].bearer_token() == "tok-from-file"
    assert s.reporting.recipients[1].bearer_token() == "inline-token"
    assert s.smtp.login_password() == "smtp-from-env"
    assert s.reporting.signing_key_password() == "key-from-file"
    assert s.store_login_password() is None
    assert SmtpSettings().login_password() is None


def test_accessor_errors_name_the_setting(config_file, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config_file(f"""
reporting:
  recipients: [{{name: a05, channel: https, endpoint: "https://x/api", token_file: {tmp_path / 'gone'}}}]
""")
    with pytest.raises(SecretError, match=r"reporting\.recipients\[a05\]\.token: the secret file"):
        load_settings().reporting.recipients[0].bearer_token()


def test_inline_secrets_warn_once_naming_file_and_env(config_file, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    config_file(f"""
store_url: opensearch+https://soc:{SECRET}-url@es1:9200
smtp: {{username: soc, password: {SECRET}-smtp}}
reporting:
  key_password: {SECRET}-key
  recipients: [{{name: a05, channel: https, endpoint: "https://x/api", token: {SECRET}-tok}}]
""")
    with caplog.at_level(logging.WARNING, logger="soc.secrets"):
        load_settings()
        load_settings()  # loaded again by the same process: no second warning
    warnings = [r.getMessage() for r in caplog.records if r.name == "soc.secrets"]
    assert len(warnings) == 4, warnings
    text = "\n".join(warnings)
    for name, alternatives in [("the password in store_url", "store_password_file"),
                               ("smtp.password", "smtp.password_file"),
                               ("reporting.key_password", "reporting.key_password_env"),
                               ("reporting.recipients[a05].token", "reporting.recipients[a05].token_file")]:
        assert name in text and alternatives in text
    assert SECRET not in text


def test_no_warning_for_files_and_variables(config_file, tmp_path: Path,  # type: ignore[no-untyped-def]
                                            caplog: pytest.LogCaptureFixture) -> None:
    config_file(f"""
store_url: opensearch+https://soc@es1:9200
store_password_file: {tmp_path / 'pw'}
smtp: {{username: soc, password_env: X}}
""")
    with caplog.at_level(logging.WARNING, logger="soc.secrets"):
        load_settings()
    assert not [r for r in caplog.records if r.name == "soc.secrets"]


def test_repr_of_settings_shows_no_secret(config_file, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config_file(f"""
store_url: opensearch+https://soc:{SECRET}-url@es1:9200
store_password: {SECRET}-store
smtp: {{username: soc, password: {SECRET}-smtp}}
reporting:
  key_password: {SECRET}-key
  recipients: [{{name: a05, channel: https, endpoint: "https://x/api", token: {SECRET}-tok}}]
""")
    s = load_settings()
    for text in (repr(s), str(s), repr(s.smtp), repr(s.reporting), repr(s.reporting.recipients[0])):
        assert SECRET not in text
    assert "soc:***@es1:9200" in repr(s)
    dumped = s.model_dump_json()  # the password fields are SecretStr: not even in a dump
    assert f"{SECRET}-smtp" not in dumped and f"{SECRET}-key" not in dumped and f"{SECRET}-store" not in dumped


# -- the store password -----------------------------------------------------------------------
def test_store_password_file_goes_into_the_url_when_connecting(config_file, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "pw").write_text("p@ss/w:rd\n", encoding="utf-8")
    config_file(f"store_url: opensearch+https://soc@es1:9200\nstore_password_file: {tmp_path / 'pw'}\n")
    s = load_settings()
    url = s.store_connect_url()
    endpoint = parse_url(url)
    assert (endpoint.username, endpoint.password) == ("soc", "p@ss/w:rd")
    assert "p@ss" not in repr(endpoint)
    assert s.store_display_url() == "opensearch+https://soc:***@es1:9200"
    # a URL on the command line that names the user gets it too; one with its own password or no user is kept
    assert parse_url(s.store_connect_url("opensearch://soc@es2:9200")).password == "p@ss/w:rd"
    assert s.store_connect_url("opensearch://other:theirs@es2:9200") == "opensearch://other:theirs@es2:9200"
    assert s.store_connect_url("opensearch://es2:9200") == "opensearch://es2:9200"
    assert s.store_connect_url("sqlite:///x.db") == "sqlite:///x.db"


def test_store_password_needs_a_user_and_no_second_password(config_file, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "pw").write_text(SECRET, encoding="utf-8")
    config_file(f"store_url: opensearch://es1:9200\nstore_password_file: {tmp_path / 'pw'}\n")
    with pytest.raises(SecretError, match="names no user"):
        load_settings().store_connect_url()
    config_file(f"store_url: opensearch://soc:other@es1:9200\nstore_password_file: {tmp_path / 'pw'}\n")
    with pytest.raises(SecretError, match="keep only one") as caught:
        load_settings().store_connect_url()
    assert "other" not in str(caught.value) and SECRET not in str(caught.value)


def test_sqlite_never_reads_the_store_password(config_file, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config_file(f"store_password_file: {tmp_path / 'missing'}\n")
    s = load_settings(data_dir=tmp_path)
    assert s.store_connect_url().startswith("sqlite:///")


def test_worker_config_takes_the_password_but_does_not_show_it(config_file, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "pw").write_text(SECRET, encoding="utf-8")
    config_file(f"store_url: opensearch://soc@es1:9200\nstore_password_file: {tmp_path / 'pw'}\n")
    config = WorkerConfig.from_settings(load_settings())
    assert parse_url(config.store_url).password == SECRET
    assert SECRET not in repr(config)
    assert config.display_store_url == "opensearch://soc:***@es1:9200"
    assert config.metrics_host == "127.0.0.1"
    override = WorkerConfig.from_settings(load_settings(), store_url="opensearch://soc@es2:9200")
    assert parse_url(override.store_url).hosts == ["http://es2:9200"]
    assert parse_url(override.store_url).password == SECRET


def test_store_errors_mask_the_url() -> None:
    with pytest.raises(StoreError) as caught:
        open_store(f"mongodb://soc:{SECRET}@db:27017")
    assert SECRET not in str(caught.value) and "soc:***@db" in str(caught.value)
    with pytest.raises(ValueError) as bad:
        parse_url(f"opensearch://soc:{SECRET}@es1:9200?bogus=1")
    assert SECRET not in str(bad.value) and "soc:***@es1" in str(bad.value)


# -- mask_url ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("url", "shown"), [
    ("opensearch://es1:9200", "opensearch://es1:9200"),
    ("sqlite:////var/lib/soc/soc.db", "sqlite:////var/lib/soc/soc.db"),
    ("opensearch+https://soc:pw@es1:9200", "opensearch+https://soc:***@es1:9200"),
    ("opensearch://soc@es1:9200", "opensearch://soc@es1:9200"),
    ("elasticsearch+https://soc:pw@h1:9200,h2:9200/x", "elasticsearch+https://soc:***@h1:9200,h2:9200/x"),
    ("opensearch://soc:pw@[::1]:9200", "opensearch://soc:***@[::1]:9200"),
    ("https://[2001:db8::1]:8443/path", "https://[2001:db8::1]:8443/path"),
    ("opensearch://soc:p%40ss@es1", "opensearch://soc:***@es1"),
    ("opensearch://soc:p@ss@es1:9200", "opensearch://soc:***@es1:9200"),       # '@' not escaped
    ("opensearch://soc:a/b?c@es1:9200", "opensearch://soc:***@es1:9200"),      # '/' and '?' not escaped
    ("opensearch+https://soc:pw@es1:9200?ca_certs=/etc/ca.pem&verify_certs=true",
     "opensearch+https://soc:***@es1:9200?ca_certs=/etc/ca.pem&verify_certs=true"),
    ("https://api.example/x?user=a&password=pw&api_key=k&access_token=t#frag",
     "https://api.example/x?user=a&password=***&api_key=***&access_token=***#frag"),
    ("https://h/p?email=a@b.example", "https://h/p?email=a@b.example"),
    ("not a url", "not a url"),
])
def test_mask_url(url: str, shown: str) -> None:
    assert mask_url(url) == shown


def test_mask_urls_in_free_text() -> None:
    text = "cannot open 'opensearch://soc:pw1@es1:9200' nor http://u:pw2@h/x; sqlite:///a.db is fine"
    assert mask_urls_in(text) == ("cannot open 'opensearch://soc:***@es1:9200' nor http://u:***@h/x; "
                                  "sqlite:///a.db is fine")


def test_url_with_password_escapes_it() -> None:
    assert url_with_password("opensearch://soc@es1:9200/", "a@b/c:d") == "opensearch://soc:a%40b%2Fc%3Ad@es1:9200/"


def test_redacting_filter_masks_urls_and_known_values(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.secrets.redact")
    redactor = RedactingFilter([SECRET])
    caplog.handler.addFilter(redactor)
    try:
        with caplog.at_level(logging.INFO, logger="test.secrets.redact"):
            logger.warning("connect %s failed: %s", f"opensearch://soc:{SECRET}@es1:9200", f"auth {SECRET} refused")
            try:
                raise RuntimeError(f"boom {SECRET}")
            except RuntimeError:
                logger.exception("failed")
    finally:
        caplog.handler.removeFilter(redactor)
    assert SECRET not in caplog.text
    assert "opensearch://soc:***@es1:9200" in caplog.text and "auth *** refused" in caplog.text


# -- bind addresses ---------------------------------------------------------------------------
def test_bind_defaults() -> None:
    assert KafkaSettings().metrics_host == "127.0.0.1"
    assert SyslogSettings().udp == "0.0.0.0:5514" and SyslogSettings().tcp == "0.0.0.0:5514"  # devices send here


def test_metrics_server_binds_loopback_by_default(caplog: pytest.LogCaptureFixture) -> None:
    server = MetricsServer(WorkerMetrics(), 0).start()
    try:
        assert server.host == "127.0.0.1"
        with caplog.at_level(logging.INFO, logger="soc.kafka.metrics"):
            server.announce()
        assert f"metrics listen on 127.0.0.1:{server.port} (this machine only)" in caplog.text
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5) as response:
            assert b"soc_kafka_records_consumed_total" in response.read()
    finally:
        server.stop()


def test_metrics_server_opened_explicitly_warns(caplog: pytest.LogCaptureFixture) -> None:
    server = MetricsServer(WorkerMetrics(), 0, host="0.0.0.0").start()
    try:
        with caplog.at_level(logging.INFO, logger="soc.kafka.metrics"):
            server.announce()
        assert "0.0.0.0" in caplog.text and "WITHOUT authentication" in caplog.text
        assert any(r.levelno == logging.WARNING for r in caplog.records)
    finally:
        server.stop()


def test_listen_address() -> None:
    assert listen_address("0.0.0.0", 5514) == "0.0.0.0:5514 (all interfaces)"
    assert listen_address("::", 5514) == "[::]:5514 (all interfaces)"
    assert listen_address("127.0.0.1", 9108) == "127.0.0.1:9108 (this machine only)"
    assert listen_address("::1", 9108) == "[::1]:9108 (this machine only)"
    assert listen_address("10.1.2.3", 5514) == "10.1.2.3:5514"


def test_password_on_the_command_line_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="soc.secrets"):
        secrets.warn_password_option("--store-url", "opensearch://soc@es1:9200")  # no password: fine
        secrets.warn_password_option("--store-url", f"opensearch://soc:{SECRET}@es1:9200")
        secrets.warn_password_option("--store-url", f"opensearch://soc:{SECRET}@es1:9200")
    assert len(caplog.records) == 1 and "store_password_file" in caplog.text and SECRET not in caplog.text


def test_secret_values_for_log_redaction(config_file, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config_file(f"""
store_url: opensearch://soc:{SECRET}%2Furl@es1:9200
smtp: {{username: soc, password: {SECRET}-smtp}}
playbooks: {{webhook_headers: {{Authorization: "Bearer {SECRET}-hook", X-Env: prod}}}}
reporting:
  recipients:
    - {{name: a, channel: https, endpoint: "https://x/api", token: {SECRET}-tok}}
    - {{name: b, channel: https, endpoint: "https://y/api", token_file: {tmp_path / 'missing'}}}
""")
    values = load_settings().secret_values()
    assert sorted(values) == sorted([f"{SECRET}/url", f"{SECRET}-smtp", f"Bearer {SECRET}-hook", f"{SECRET}-tok"])
