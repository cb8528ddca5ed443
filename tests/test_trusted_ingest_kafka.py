"""Trusted ingest, Kafka side (issue #10 item 6): the ``kafka:`` settings' TLS and SASL keys become
one set of kafka-python options (:func:`soc.kafka.config.security_options`) that reaches every
consumer and producer soc creates -- the worker and its dead-letter producer, the syslog relay,
the ``kafka`` source, ``soc kafka status`` and the dead-letter reader -- and SASL PLAIN in clear
text to a remote broker is refused. (A real TLS/SASL broker: tests/test_trusted_ingest_broker.py.)
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from soc.config import KafkaSettings, Settings
from soc.config_security import KafkaSecurityError
from soc.kafka.config import WorkerConfig, client_options, security_options
from soc.kafka.consumer import consumer_options
from soc.secrets import SecretError


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """Stand-ins for the PEM files (only their existence is checked before a connection)."""
    names = {"ca": "ca.pem", "cert": "client.pem", "key": "client-key.pem", "key_password": "key-password",
             "sasl_password": "sasl-password"}
    out = {}
    for name, file in names.items():
        out[name] = tmp_path / file
        out[name].write_text("s3cret-key-pass\n" if name == "key_password" else
                             "s3cret-sasl-pass\n" if name == "sasl_password" else "-----PEM-----\n", encoding="utf-8")
    return out


def sasl_ssl(files: dict[str, Path], **more: Any) -> KafkaSettings:
    return KafkaSettings(bootstrap="kafka1.example:9093,kafka2.example:9093", security_protocol="SASL_SSL",
                         ssl_cafile=files["ca"], ssl_certfile=files["cert"], ssl_keyfile=files["key"],
                         ssl_key_password_file=files["key_password"], sasl_mechanism="SCRAM-SHA-512",
                         sasl_username="soc-worker", sasl_password_file=files["sasl_password"], **more)


EXPECTED = {
    "security_protocol": "SASL_SSL", "ssl_check_hostname": True, "ssl_password": "s3cret-key-pass",
    "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": "soc-worker", "sasl_plain_password": "s3cret-sasl-pass",
}


def expected(files: dict[str, Path]) -> dict[str, Any]:
    return {**EXPECTED, "ssl_cafile": str(files["ca"]), "ssl_certfile": str(files["cert"]),
            "ssl_keyfile": str(files["key"])}


# -- the options ---------------------------------------------------------------------------------
def test_plaintext_adds_nothing() -> None:
    assert security_options(KafkaSettings(), "127.0.0.1:9092") == {}
    assert security_options(None, "kafka1:9092") == {}
    assert client_options("k:9092", {}, client_id="x") == {"bootstrap_servers": "k:9092", "client_id": "x"}


def test_sasl_ssl_with_a_client_certificate_and_secrets_from_files(files: dict[str, Path]) -> None:
    kafka = sasl_ssl(files)
    assert security_options(kafka, kafka.bootstrap) == expected(files)
    assert "s3cret" not in repr(kafka) and "s3cret" not in str(kafka.model_dump())


def test_ssl_only_and_the_password_from_a_variable(files: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    kafka = KafkaSettings(bootstrap="kafka1:9093", security_protocol="SSL", ssl_cafile=files["ca"],
                          ssl_check_hostname=False)
    assert security_options(kafka, kafka.bootstrap) == {"security_protocol": "SSL", "ssl_check_hostname": False,
                                                        "ssl_cafile": str(files["ca"])}
    kafka = KafkaSettings(bootstrap="kafka1:9093", security_protocol="SASL_SSL", sasl_mechanism="PLAIN",
                          sasl_username="soc", sasl_password_env="SOC_TEST_KAFKA_PASSWORD")
    monkeypatch.delenv("SOC_TEST_KAFKA_PASSWORD", raising=False)
    with pytest.raises(SecretError, match="kafka.sasl_password: the environment variable SOC_TEST_KAFKA_PASSWORD "
                                          "is not set"):
        security_options(kafka, kafka.bootstrap)
    monkeypatch.setenv("SOC_TEST_KAFKA_PASSWORD", "from-the-env")
    assert security_options(kafka, kafka.bootstrap) == {
        "security_protocol": "SASL_SSL", "ssl_check_hostname": True, "sasl_mechanism": "PLAIN",
        "sasl_plain_username": "soc", "sasl_plain_password": "from-the-env"}


def test_sasl_plain_in_clear_text_to_a_remote_broker_is_refused(caplog: Any) -> None:
    plain = {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN", "sasl_username": "soc",
             "sasl_password": "pw-in-clear"}
    with pytest.raises(ValidationError, match="SASL PLAIN over SASL_PLAINTEXT to kafka1.example would send the "
                                              "password in clear text"):
        KafkaSettings(bootstrap="kafka1.example:9092", **plain)
    local = KafkaSettings(bootstrap="127.0.0.1:9092,localhost:9093", **plain)  # this machine: allowed
    assert security_options(local, local.bootstrap)["sasl_plain_password"] == "pw-in-clear"
    with pytest.raises(KafkaSecurityError, match="to 10.0.0.7"):  # a remote broker given on the command line
        security_options(local, "127.0.0.1:9092,10.0.0.7:9092")
    allowed = KafkaSettings(bootstrap="kafka1.example:9092", allow_plaintext_sasl=True, **plain)
    assert security_options(allowed, allowed.bootstrap)["security_protocol"] == "SASL_PLAINTEXT"
    caplog.set_level(logging.WARNING, logger="soc.config")
    scram = KafkaSettings(bootstrap="kafka9.example:9092", **{**plain, "sasl_mechanism": "SCRAM-SHA-256"})
    assert security_options(scram, scram.bootstrap)["sasl_mechanism"] == "SCRAM-SHA-256"  # no password on the wire
    assert "every record travels unencrypted" in caplog.text


@pytest.mark.parametrize(("values", "message"), [
    ({"security_protocol": "SASL_SSL"}, "security_protocol SASL_SSL needs sasl_mechanism, sasl_username, "
                                        "sasl_password_file"),
    ({"security_protocol": "PLAINTEXT", "ssl_cafile": "CA"}, "ssl_cafile set but security_protocol is PLAINTEXT"),
    ({"security_protocol": "SSL", "sasl_username": "x"}, "sasl_mechanism/sasl_username set but security_protocol "
                                                         "is SSL"),
    ({"security_protocol": "SSL", "ssl_keyfile": "CA"}, "ssl_keyfile needs ssl_certfile"),
    ({"security_protocol": "TLS"}, "security_protocol"),
    ({"security_protocol": "SASL_SSL", "sasl_mechanism": "GSSAPI"}, "sasl_mechanism"),
    ({"security_protocol": "SSL", "ssl_cafile": "missing.pem"}, "ssl_cafile: missing.pem does not exist"),
])
def test_incomplete_or_inconsistent_settings_are_refused(files: dict[str, Path], values: dict[str, Any],
                                                         message: str) -> None:
    values = {k: (files["ca"] if v == "CA" else v) for k, v in values.items()}
    with pytest.raises(ValidationError, match=message):
        KafkaSettings(**values)


def test_inline_secrets_warn_and_are_redacted(files: dict[str, Path]) -> None:
    settings = Settings(kafka={"bootstrap": "k:9093", "security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN",
                               "sasl_username": "u", "sasl_password": "inline-sasl-pw", "ssl_certfile": files["cert"],
                               "ssl_key_password": "inline-key-pw"})
    assert ("kafka.sasl_password", "kafka.sasl_password_file", "kafka.sasl_password_env") in settings.inline_secrets()
    assert ("kafka.ssl_key_password", "kafka.ssl_key_password_file",
            "kafka.ssl_key_password_env") in settings.inline_secrets()
    assert {"inline-sasl-pw", "inline-key-pw"} <= set(settings.secret_values())
    assert "inline-sasl-pw" not in repr(settings)


# -- every creation site gets them ------------------------------------------------------------
class Recorder:
    """Stands in for kafka-python's client classes: records the keyword arguments."""

    made: list[tuple[str, dict[str, Any]]] = []

    def __init__(self, **kwargs: Any) -> None:
        Recorder.made.append((type(self).__name__, kwargs))

    def __getattr__(self, name: str) -> Any:
        return lambda *a, **k: None if name != "partitions_for_topic" else set()


class KafkaConsumer(Recorder):
    pass


class KafkaProducer(Recorder):
    pass


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    import kafka

    Recorder.made = []
    monkeypatch.setattr(kafka, "KafkaConsumer", KafkaConsumer)
    monkeypatch.setattr(kafka, "KafkaProducer", KafkaProducer)
    return Recorder.made


def _has_security(kwargs: dict[str, Any], files: dict[str, Path]) -> bool:
    return all(kwargs.get(k) == v for k, v in expected(files).items())


def test_every_consumer_and_producer_gets_the_security_options(files: dict[str, Path], tmp_path: Path,
                                                               recorded: list[tuple[str, dict[str, Any]]],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from soc.agencies import Agency, AgencyTree
    from soc.ingest.sourcedefs import SourceDefinition
    from soc.ingest.sources.contract import SourceEnv
    from soc.kafka.deadletters import read_dead_letters
    from soc.kafka.relay import SyslogRelay
    from soc.kafka.source import KafkaSource
    from soc.kafka.status import group_status
    from soc.kafka.worker import IngestWorker
    from soc.store import open_store

    monkeypatch.delenv("SOC_CONFIG", raising=False)
    settings = Settings(data_dir=tmp_path, kafka=sasl_ssl(files).model_dump())
    agencies = AgencyTree((), Agency(id="unknown", name="?"))

    config = WorkerConfig.from_settings(settings, store_url=f"sqlite:///{tmp_path / 'w.db'}")
    assert config.security == security_options(settings.kafka, settings.kafka.bootstrap)
    assert "s3cret" not in repr(config)
    store = open_store(f"sqlite:///{tmp_path / 'w.db'}")
    worker = IngestWorker(config, store=store, agencies=agencies)
    worker._make_consumer()
    worker._dead_letter_producer()
    store.close()
    source = KafkaSource(SourceDefinition(name="shippers", type="kafka"),
                         SourceEnv(settings=settings, agencies=agencies, state_dir=tmp_path))
    source.start()
    relay = SyslogRelay(settings.kafka.bootstrap, "soc.logs", udp="127.0.0.1:0", agencies=agencies,
                        security=config.security)
    group_status(settings.kafka.bootstrap, "g", ["soc.logs"], security=config.security)
    list(read_dead_letters(settings.kafka.bootstrap, "soc.logs.dlq", security=config.security))
    made = [(kind, kw.get("client_id")) for kind, kw in recorded]
    assert made == [("KafkaConsumer", "soc-ingest"), ("KafkaProducer", "soc-ingest-dlq"),
                    ("KafkaConsumer", "soc-run-shippers"), ("KafkaProducer", "soc-syslog-relay"),
                    ("KafkaConsumer", "soc-kafka-status"), ("KafkaConsumer", "soc-dlq-reader")]
    bad = [kw.get("client_id") for _, kw in recorded if not _has_security(kw, files)]
    assert bad == [], f"clients created without the security options: {bad}"
    assert all(kw["bootstrap_servers"] == settings.kafka.bootstrap for _, kw in recorded)
    assert relay.producer is not None
    # the consumer options of the log topic keep their own settings on top
    options = consumer_options("k:9093", "g", security=config.security)
    assert options["enable_auto_commit"] is False and options["security_protocol"] == "SASL_SSL"


def test_a_kafka_source_names_what_is_wrong_with_its_security(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from soc.agencies import Agency, AgencyTree
    from soc.ingest.sourcedefs import SourceDefinition
    from soc.ingest.sources import SourceError
    from soc.ingest.sources.contract import SourceEnv
    from soc.kafka.source import KafkaSource

    monkeypatch.delenv("SOC_CONFIG", raising=False)
    settings = Settings(kafka={"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN",
                               "sasl_username": "u", "sasl_password": "p"})  # bootstrap: this machine
    env = SourceEnv(settings=settings, agencies=AgencyTree((), Agency(id="unknown", name="?")), state_dir=tmp_path)
    with pytest.raises(SourceError, match="source 'remote': kafka: SASL PLAIN over SASL_PLAINTEXT to kafka.example"):
        KafkaSource(SourceDefinition(name="remote", type="kafka", bootstrap="kafka.example:9092"), env)


def test_the_kafka_commands_refuse_a_missing_password(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from soc.cli.main import app

    config = tmp_path / "soc.yml"
    config.write_text("kafka:\n  bootstrap: kafka1.example:9093\n  security_protocol: SASL_SSL\n"
                      "  sasl_mechanism: SCRAM-SHA-256\n  sasl_username: soc\n"
                      "  sasl_password_env: SOC_TEST_NO_SUCH_PASSWORD\n", encoding="utf-8")
    monkeypatch.setenv("SOC_CONFIG", str(config))
    monkeypatch.delenv("SOC_TEST_NO_SUCH_PASSWORD", raising=False)
    for command in (["kafka", "status"], ["kafka", "dlq", "list"],
                    ["kafka", "worker", "--store-url", f"sqlite:///{tmp_path / 'x.db'}", "--until-idle", "1"]):
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 2, (command, result.output)
        assert "kafka.sasl_password: the environment variable SOC_TEST_NO_SUCH_PASSWORD is not set" in result.output
