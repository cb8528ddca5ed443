"""Strict settings (issue #9, item 7): a misspelled key in soc.yml or a ``SOC_...`` variable that
sets nothing is an error naming the file and line (or the variable) and the closest valid name;
``SOC_CONFIG`` naming a missing file, invalid YAML and wrong values are one line each, no
traceback, exit 2 from every command; ``soc --debug`` shows the traceback.

Commands run through the real CLI (typer's runner, and once as a subprocess through the ``soc``
entry point) in a temporary working directory with every ``SOC_`` variable of the caller removed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from soc.cli import app
from soc.config import (
    RESERVED_ENV_NAMES,
    RESERVED_ENV_PREFIXES,
    Settings,
    check_settings,
    load_settings,
)
from soc.config_errors import (
    ConfigError,
    env_name,
    environment_settings,
    leaf_names,
    read_settings_file,
)
from soc.errors import SocError


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory of its own (no soc.yml of the checkout) and no SOC_ variables."""
    for name in list(os.environ):
        if name.upper().startswith("SOC_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "250")
    return tmp_path


def write(folder: Path, text: str) -> Path:
    path = folder / "soc.yml"
    path.write_text(text, encoding="utf-8")
    return path


def soc(*args: str, **env: str) -> Result:
    return CliRunner().invoke(app, list(args), env=env)


def error_lines(result: Result) -> list[str]:
    return [line for line in result.output.splitlines() if line.strip()]


# -- unknown keys in the file ----------------------------------------------------------------------
def test_misspelled_section_stops_every_command_with_the_line_and_a_suggestion(workdir: Path) -> None:
    write(workdir, f"data_dir: {workdir / 'data'}\ndetecton:\n  interval_seconds: 5\n")
    expected = "soc.yml:2: unknown setting 'detecton' — did you mean 'detection'?"
    for command in (["alerts", "list"], ["incidents", "list"], ["report", "due"]):
        result = soc(*command)
        assert result.exit_code == 2, (command, result.output)
        assert error_lines(result) == [f"error: {expected}"], (command, result.output)
    checked = soc("config", "check")
    assert checked.exit_code == 1 and expected in checked.output and "Traceback" not in checked.output


def test_nested_typo_names_its_line_and_the_setting_meant(workdir: Path) -> None:
    write(workdir, "timezone: Asia/Ho_Chi_Minh\ndetection:\n  overlap_seconds: 60\n  interval_secs: 5\n")
    result = soc("alerts", "list")
    assert result.exit_code == 2
    assert error_lines(result) == ["error: soc.yml:4: unknown setting 'detection.interval_secs' — did you mean "
                                   "'detection.interval_seconds'?"]
    write(workdir, "detection: {interval_secs: 5}\n")  # flow style: the line of the key
    with pytest.raises(ConfigError, match=r"soc\.yml:1: unknown setting 'detection\.interval_secs' — did you mean "
                                          r"'detection\.interval_seconds'\?"):
        load_settings()


def test_keys_in_lists_and_every_problem_at_once(workdir: Path) -> None:
    write(workdir, """\
reporting:
  recipients:
    - name: a05
      channel: drop
      endpont: /srv/drop
kafka: {topc: soc.logs}
""")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    text = [str(p) for p in caught.value.problems]
    assert text == [  # in the order of the file; a missing key: the line of its list item
        "soc.yml:3: reporting.recipients[0].endpoint: Field required",
        "soc.yml:5: unknown setting 'reporting.recipients[0].endpont' — did you mean "
        "'reporting.recipients[0].endpoint'?",
        "soc.yml:6: unknown setting 'kafka.topc' — did you mean 'kafka.topic'?",
    ]
    assert isinstance(caught.value, SocError)
    result = soc("alerts", "list")
    assert result.exit_code == 2 and "the configuration has 3 problems" in result.output


def test_a_key_with_nothing_close_lists_the_valid_ones(workdir: Path) -> None:
    write(workdir, "syslog:\n  zzzz: 1\n")
    with pytest.raises(ConfigError, match=r"soc\.yml:2: unknown setting 'syslog\.zzzz' — the settings of 'syslog' "
                                          r"are: max_message_bytes, tcp, tls, udp"):
        load_settings()


def test_free_form_mappings_take_any_key(workdir: Path) -> None:
    write(workdir, "playbooks:\n  webhook_headers: {X-Team: soc}\n  inputs: {ssh-brute-force: {assignee: an}}\n")
    settings = load_settings()
    assert settings.playbooks.webhook_headers == {"X-Team": "soc"}


def test_every_setting_of_the_model_is_accepted_in_the_file_and_as_a_variable(workdir: Path) -> None:
    dumped = Settings(reporting={"recipients": [{"name": "a", "endpoint": str(workdir)}]}).model_dump(mode="json")
    dumped.update(store_password=None, smtp={**dumped["smtp"], "password": None},
                  reporting={**dumped["reporting"], "key_password": None})
    import yaml

    write(workdir, yaml.safe_dump(dumped, allow_unicode=True))
    checked = check_settings()
    assert checked.problems == [] and checked.settings is not None
    every = {env_name(loc): "1" for loc in leaf_names(Settings)}
    assert environment_settings(Settings, every).problems == []


# -- SOC_ variables --------------------------------------------------------------------------------
def test_unknown_variables_are_rejected_with_a_suggestion(workdir: Path) -> None:
    result = soc("alerts", "list", SOC_DETECTON__X="1")
    assert result.exit_code == 2
    assert error_lines(result) == ["error: environment variable SOC_DETECTON__X: matches no setting — did you mean "
                                   "SOC_DETECTION__X?"]
    result = soc("alerts", "list", SOC_DETECTION__INTERVAL_SECS="5")
    assert result.exit_code == 2
    assert error_lines(result) == ["error: environment variable SOC_DETECTION__INTERVAL_SECS: matches no setting — "
                                   "did you mean SOC_DETECTION__INTERVAL_SECONDS?"]
    result = soc("alerts", "list", SOC_DETECTION_INTERVAL_SECONDS="5")  # one underscore: not nested
    assert result.exit_code == 2 and "did you mean SOC_DETECTION__INTERVAL_SECONDS?" in result.output
    result = soc("alerts", "list", SOC_DATA_DIR__X="5")
    assert result.exit_code == 2 and "'data_dir' has no sub-settings: set SOC_DATA_DIR" in result.output
    result = soc("alerts", "list", SOC_DETECTION='{"interval_secs": 5}')  # a section as JSON
    assert result.exit_code == 2 and "SOC_DETECTION: unknown setting 'detection.interval_secs'" in result.output


def test_reserved_and_named_variables_are_accepted(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(workdir, "smtp: {username: soc, password_env: SOC_SMTP_PASSWORD}\n")  # as docs/reporting.md shows
    for name in ("SOC_TEST_ANYTHING", "SOC_DEVSTACK_JAVA", "SOC_SHARED_DATA", "SOC_DEBUG",
                 "SOC_TOPIC_PARTITIONS", "SOC_SMTP_PASSWORD"):
        monkeypatch.setenv(name, "0")
    monkeypatch.setenv("SOC_DETECTION__INTERVAL_SECONDS", "30")
    monkeypatch.setenv("soc_timezone", "Asia/Ho_Chi_Minh")  # names are case-insensitive, like the settings
    settings = load_settings()
    assert settings.detection.interval_seconds == 30 and settings.smtp.login_password() == "0"
    assert set(RESERVED_ENV_NAMES) >= {"SOC_CONFIG", "SOC_SHARED_DATA", "SOC_DEBUG"}
    assert set(RESERVED_ENV_PREFIXES) == {"SOC_TEST_", "SOC_DEVSTACK_"}


def test_every_soc_variable_the_code_base_reads_is_a_setting_or_reserved() -> None:
    """Grep the project for ``SOC_...`` names: each is a setting, reserved, or named by an ``_env`` setting."""
    root = Path(__file__).resolve().parent.parent
    files = [p for folder in ("soc", "tests", "benchmarks", "docker", ".ci", "docs") if (root / folder).is_dir()
             for p in (root / folder).rglob("*") if p.is_file() and p.suffix in ("", ".py", ".yml", ".md", ".example")]
    files += [root / "Makefile"]  # not README.md: it shows a misspelled variable on purpose
    files = [p for p in files if not p.name.startswith("test_config_")]  # these tests write wrong names on purpose
    names = set()
    for path in files:
        if path.is_file():
            names |= set(re.findall(r"(?<![A-Z_])SOC_[A-Z0-9_]*[A-Z0-9](?![A-Z0-9_])", path.read_text(encoding="utf-8",
                                                                                         errors="replace")))
    assert {"SOC_CONFIG", "SOC_STORE_URL", "SOC_TEST_KAFKA_BOOTSTRAP", "SOC_DEVSTACK_JAVA"} <= names
    names -= {"SOC_SMTP_PASSWORD"}  # docs/reporting.md: the name an smtp.password_env setting gives
    found = environment_settings(Settings, dict.fromkeys(names, "1"), reserved_names=RESERVED_ENV_NAMES,
                                 reserved_prefixes=RESERVED_ENV_PREFIXES)
    assert [str(p) for p in found.problems] == []


# -- the settings file itself --------------------------------------------------------------------
def test_soc_config_naming_a_missing_file_is_an_error(workdir: Path) -> None:
    result = soc("alerts", "list", SOC_CONFIG="/nonexistent/soc.yml")
    assert result.exit_code == 2
    assert error_lines(result) == ["error: SOC_CONFIG: the settings file /nonexistent/soc.yml does not exist"]
    with pytest.raises(ConfigError) as caught:
        read_settings_file({"SOC_CONFIG": str(workdir)})
    assert caught.value.unreadable and "is not a file" in str(caught.value)
    assert read_settings_file({}) is None  # no SOC_CONFIG and no soc.yml: the defaults


def test_invalid_yaml_is_one_line_with_its_place(workdir: Path) -> None:
    write(workdir, "data_dir: data\ndetection:\n  interval_seconds: [1\nkafka: {}\n")
    result = soc("alerts", "list")
    assert result.exit_code == 2 and "Traceback" not in result.output
    lines = error_lines(result)
    assert len(lines) == 1 and re.match(r"error: soc\.yml:4:\d+: not valid YAML: ", lines[0]), result.output
    assert "<unicode string>" not in result.output
    write(workdir, "- a\n- b\n")
    result = soc("alerts", "list")
    assert result.exit_code == 2 and error_lines(result) == [
        "error: soc.yml:1: expected a mapping of settings (name: value) at the top level, found a list"]


def test_a_wrong_type_is_one_line_with_its_place(workdir: Path) -> None:
    write(workdir, "data_dir: data\ndetection: {interval_seconds: soon}\n")
    result = soc("alerts", "list")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert error_lines(result) == ["error: soc.yml:2: detection.interval_seconds: Input should be a valid integer, "
                                   "unable to parse string as an integer (got 'soon')"]
    write(workdir, "timezone: Mars/Base\n")
    result = soc("alerts", "list")
    assert result.exit_code == 2 and error_lines(result) == [
        "error: soc.yml:1: timezone: unknown time zone 'Mars/Base' (an IANA name such as Asia/Ho_Chi_Minh)"]


def test_a_wrong_value_from_the_environment_names_the_variable(workdir: Path) -> None:
    write(workdir, "detection:\n  interval_seconds: 30\n")
    result = soc("alerts", "list", SOC_DETECTION__INTERVAL_SECONDS="soon")
    assert result.exit_code == 2
    assert error_lines(result) == ["error: environment variable SOC_DETECTION__INTERVAL_SECONDS: "
                                   "detection.interval_seconds: Input should be a valid integer, unable to parse "
                                   "string as an integer (got 'soon')"]
    result = soc("alerts", "list", SOC_RULE_DIRS="not json")
    assert result.exit_code == 2 and "environment variable SOC_RULE_DIRS: not valid JSON" in result.output


def test_debug_shows_the_traceback(workdir: Path) -> None:
    write(workdir, "detection: {interval_seconds: soon}\n")
    plain = soc("alerts", "list")
    assert plain.exit_code == 2 and "Traceback" not in plain.output
    for result in (soc("--debug", "alerts", "list"), soc("alerts", "list", SOC_DEBUG="1")):
        assert result.exit_code == 2
        assert "Traceback" in result.output and "ValidationError" in result.output
        assert "error: soc.yml:1: detection.interval_seconds" in result.output


def test_the_soc_entry_point_exits_2_without_a_traceback(workdir: Path) -> None:
    write(workdir, "detecton:\n  interval_seconds: 5\n")
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("SOC_")}
    env.update(COLUMNS="250", NO_COLOR="1")
    done = subprocess.run([sys.executable, "-m", "soc.cli", "alerts", "list"], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == "error: soc.yml:1: unknown setting 'detecton' — did you mean 'detection'?"
    debug = subprocess.run([sys.executable, "-m", "soc.cli", "--debug", "alerts", "list"], cwd=workdir, env=env,
                           capture_output=True, text=True, timeout=120)
    assert debug.returncode == 2 and "Traceback" in debug.stderr


def test_inline_secrets_still_work_and_help_needs_no_settings(workdir: Path) -> None:
    write(workdir, "smtp: {username: soc, password: Inline-pw-4a1f}\n")
    assert load_settings().smtp.login_password() == "Inline-pw-4a1f"  # with a warning (tests/test_secrets.py)
    write(workdir, "detecton: {}\n")
    assert soc("alerts", "--help").exit_code == 0  # help never reads the settings
