"""No secret in what ``soc run``, ``soc kafka worker`` and ``soc detect`` print or log at start-up.

Each command runs as a subprocess with a soc.yml holding a store password (in the store URL),
an SMTP password, a signing-key password and a recipient's bearer token, all inline (so the
warning path runs too); its stdout and stderr (where the logs go) must contain none of them,
and the store URL must be shown masked (``soc:***@``). Once against a closed port (the commands
fail fast: the store error is masked too), once against the session's real OpenSearch and
Kafka (the commands start, run a few seconds and are stopped with SIGINT).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

SECRETS = {"store": "StorePw-7f3a9c", "smtp": "SmtpPw-51be02", "token": "Token-c0ffee99", "key": "KeyPw-d00d4e"}
SOC = [sys.executable, "-c", "from soc.cli import app; app()"]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _write_config(folder: Path, store_host: str, *, kafka: str = "127.0.0.1:1", name: str = "t-secrets",
                  store_url: str | None = None) -> Path:
    url = store_url or f"opensearch://soc:{SECRETS['store']}@{store_host}"
    path = folder / "soc.yml"
    path.write_text(f"""
data_dir: {folder / 'data'}
store_url: {url}
kafka: {{bootstrap: "{kafka}", topic: {name}, dead_letter_topic: {name}-dlq, group: {name},
        index_prefix: {name}, index_replicas: 0, metrics_port: 0}}
smtp: {{host: 127.0.0.1, port: 1, username: soc, password: {SECRETS['smtp']}}}
reporting:
  key_password: {SECRETS['key']}
  schedule: false
  recipients:
    - {{name: a05, channel: https, endpoint: "https://127.0.0.1:1/api", token: {SECRETS['token']}}}
""", encoding="utf-8")
    return path


def _env(config: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOC_")}
    env.update(SOC_CONFIG=str(config), PYTHONUNBUFFERED="1", COLUMNS="400", NO_COLOR="1")
    return env


class Command:
    """A ``soc`` subprocess whose stdout and stderr go to files (read while it runs)."""

    def __init__(self, args: list[str], folder: Path, config: Path) -> None:
        self.out, self.err = folder / "stdout.txt", folder / "stderr.txt"
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.proc = subprocess.Popen([*SOC, *args], cwd=folder, env=_env(config), stdout=out, stderr=err,
                                         stdin=subprocess.DEVNULL)

    @property
    def output(self) -> str:
        return self.out.read_text("utf-8", "replace") + self.err.read_text("utf-8", "replace")

    def wait_for(self, marker: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while marker not in self.output:
            if self.proc.poll() is not None:
                raise AssertionError(f"exited {self.proc.returncode} before {marker!r}:\n{self.output}")
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"no {marker!r} within {timeout:g} s:\n{self.output}")
            time.sleep(0.2)

    def stop(self, timeout: float = 90) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise AssertionError(f"did not stop within {timeout:g} s of SIGINT:\n{self.output}") from None


def _assert_no_secret(output: str) -> None:
    flat = output.replace("\n", "")
    for what, value in SECRETS.items():
        assert value not in flat, f"the {what} secret appears in the output:\n{output}"
    assert "soc:***@" in output, f"the masked store URL is not shown:\n{output}"
    assert "is written in the settings" in output and "smtp.password_file" in output, output  # the warning


COMMANDS = {
    "run": ["run", "--udp", "127.0.0.1:0", "--tcp", "127.0.0.1:0", "--api", "127.0.0.1:0"],
    "kafka-worker": ["kafka", "worker", "--verbose"],
    "detect": ["detect"],
}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_store_unreachable_error_shows_no_secret(command: str, tmp_path: Path) -> None:
    port = _closed_port()
    config = _write_config(tmp_path, f"127.0.0.1:{port}")
    run = Command(COMMANDS[command], tmp_path, config)
    code = run.proc.wait(120)
    output = run.output
    assert code == 2, output
    assert f"error: OpenSearch at http://soc:***@127.0.0.1:{port} is unreachable" in output
    _assert_no_secret(output)


@pytest.mark.search
def test_soc_run_start_up_shows_no_secret_and_where_it_listens(opensearch_url: str, tmp_path: Path) -> None:
    config = _write_config(tmp_path, opensearch_url.split("://", 1)[1])
    run = Command(COMMANDS["run"], tmp_path, config)
    run.wait_for("running; Ctrl-C to stop")
    time.sleep(2)
    assert run.stop() == 0, run.output
    output = run.output
    _assert_no_secret(output)
    assert f"store: opensearch://soc:***@{opensearch_url.split('://', 1)[1]}" in output
    assert "listening for syslog on UDP 127.0.0.1:" in output and "(this machine only)" in output
    assert "listening on: syslog UDP 127.0.0.1:" in output and "syslog TCP 127.0.0.1:" in output


@pytest.mark.search
@pytest.mark.kafka
def test_kafka_worker_start_up_shows_no_secret_and_where_metrics_listen(
        opensearch_url: str, kafka_bootstrap: str, unique_name: str, tmp_path: Path) -> None:
    config = _write_config(tmp_path, opensearch_url.split("://", 1)[1], kafka=kafka_bootstrap, name=unique_name)
    run = Command(COMMANDS["kafka-worker"], tmp_path, config)
    run.wait_for("metrics listen on 127.0.0.1:")
    run.wait_for("assigned", timeout=60)
    time.sleep(1)
    assert run.stop() == 0, run.output
    output = run.output
    _assert_no_secret(output)
    assert f"into opensearch://soc:***@{opensearch_url.split('://', 1)[1]}" in output
    assert "(this machine only)" in output


@pytest.mark.search
def test_detect_start_up_shows_no_secret(opensearch_url: str, unique_name: str, tmp_path: Path) -> None:
    config = _write_config(tmp_path, opensearch_url.split("://", 1)[1])
    run = Command([*COMMANDS["detect"], "--index-prefix", unique_name, "--replicas", "0"], tmp_path, config)
    run.wait_for("soc detect: ")
    time.sleep(3)
    assert run.stop() == 0, run.output
    output = run.output
    _assert_no_secret(output)
    assert f"rules on opensearch://soc:***@{opensearch_url.split('://', 1)[1]}" in output


@pytest.mark.search
def test_detect_once_with_the_store_password_in_a_file(opensearch_url: str, unique_name: str,
                                                       tmp_path: Path) -> None:
    """The clean set-up: the user in the URL, the password in store_password_file; no warning for it."""
    host = opensearch_url.split("://", 1)[1]
    config = _write_config(tmp_path, host, store_url=f"opensearch://soc@{host}")
    (tmp_path / "store-password").write_text(SECRETS["store"] + "\n", encoding="utf-8")
    with config.open("a", encoding="utf-8") as fh:
        fh.write(f"store_password_file: {tmp_path / 'store-password'}\n")
    run = Command([*COMMANDS["detect"], "--once", "--quiet", "--index-prefix", unique_name, "--replicas", "0"],
                  tmp_path, config)
    code = run.proc.wait(120)
    output = run.output
    assert code == 0, output
    _assert_no_secret(output)
    assert f"rules on opensearch://soc:***@{host}" in output
    assert "password in store_url" not in output
