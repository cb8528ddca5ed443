"""Kafka over TLS and SASL for real: a private Kafka 4 broker (the devstack's jars, its own
folder and ports, stopped after these tests) with a mutual-TLS listener (``SSL``, client
certificates required) and a ``SASL_SSL`` listener (SCRAM-SHA-512 and PLAIN users), both with a
certificate of a throwaway CA. soc's own clients connect with the options the ``kafka:`` settings
give (:func:`soc.kafka.config.security_options`): the syslog relay publishes over mutual TLS with
an encrypted client key, the ``kafka`` source of ``soc run`` consumes over SCRAM, ``soc kafka
status`` reads the group over PLAIN; a client without a certificate or with a wrong password is
turned away.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from soc.agencies import Agency, AgencyTree
from soc.config import KafkaSettings, Settings
from soc.devstack import jvm, maven, processes
from soc.devstack.common import KAFKA_LOG4J
from soc.devstack.kafka import cluster_id, kafka_ready
from soc.ingest.sourcedefs import SourceDefinition
from soc.ingest.sources.contract import SourceEnv
from soc.kafka.config import security_options
from soc.kafka.relay import SyslogRelay
from soc.kafka.source import KafkaSource
from soc.kafka.status import group_status
from tests.test_trusted_ingest import Authority

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(300)]

SCRAM_USER, SCRAM_PASSWORD = "soc-worker", "scram-secret-7"
PLAIN_USER, PLAIN_PASSWORD = "soc-status", "plain-secret-9"


@dataclass
class Broker:
    plaintext: int
    ssl: int
    sasl_ssl: int
    ca: Path
    client_cert: Path
    client_key: Path
    client_key_password: Path


def _properties(run: Path, ports: list[int], keystore: Path, ca: Path) -> str:
    plain, ssl_port, sasl, controller = ports
    return f"""\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller}
listeners=PLAINTEXT://127.0.0.1:{plain},SSL://127.0.0.1:{ssl_port},SASL_SSL://127.0.0.1:{sasl},CONTROLLER://127.0.0.1:{controller}
advertised.listeners=PLAINTEXT://127.0.0.1:{plain},SSL://127.0.0.1:{ssl_port},SASL_SSL://127.0.0.1:{sasl}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_SSL:SASL_SSL
ssl.keystore.type=PEM
ssl.keystore.location={keystore}
ssl.truststore.type=PEM
ssl.truststore.location={ca}
listener.name.ssl.ssl.client.auth=required
sasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required \
user_{PLAIN_USER}="{PLAIN_PASSWORD}";
log.dirs={run / "data"}
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
num.network.threads=2
num.io.threads=2
"""


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    run = tmp_path_factory.mktemp("secure-kafka")
    ca = Authority(run / "pki", "Kafka test CA")
    server = ca.issue("broker", "broker.test", dns=("localhost",), ips=("127.0.0.1",), server=True)
    client = ca.issue("client", "soc-relay.agency-a.example", password=b"client-key-pass")
    keystore = run / "broker-keystore.pem"
    keystore.write_bytes(server.key.read_bytes() + server.cert.read_bytes() + ca.pem.read_bytes())
    password = run / "client-key-password"
    password.write_text("client-key-pass\n", encoding="utf-8")
    ports = processes.free_ports(4)
    props = run / "server.properties"
    props.write_text(_properties(run, ports, keystore, ca.pem), encoding="utf-8")
    lib = maven.fetch(quiet=True)["kafka"]
    java, log = jvm.java(), run / "server.log"
    flags = [*jvm.KAFKA_JVM_FLAGS, f"-Dlog4j2.configurationFile=file:{KAFKA_LOG4J}"]
    fmt = [java, *flags, "-cp", f"{lib}/*", "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id()}",
           "-c", str(props), "--add-scram", f"SCRAM-SHA-512=[name={SCRAM_USER},password={SCRAM_PASSWORD}]"]
    with open(log, "ab") as out:
        import subprocess

        assert subprocess.run(fmt, stdout=out, stderr=subprocess.STDOUT, timeout=120).returncode == 0, \
            processes.tail(log)
    proc = processes.launch([java, *flags, "-cp", f"{lib}/*", "kafka.Kafka", str(props)], log, run)
    try:
        processes.wait_ready("secure Kafka", proc, {"port": ports[0], "log": str(log)},
                             lambda port: kafka_ready(port) is not None, 120, None, time.monotonic())
        yield Broker(ports[0], ports[1], ports[2], ca.pem, client.cert, client.key, password)
    finally:
        processes.terminate(proc.pid, None)


def _settings(**kafka: Any) -> Settings:
    return Settings(kafka=KafkaSettings(**kafka).model_dump())


def _agencies() -> AgencyTree:
    return AgencyTree((Agency(id="agency-a", name="Agency A", networks=("127.0.0.0/8",)),),
                      Agency(id="unknown", name="?"))


def test_relay_over_mutual_tls_then_the_source_over_scram_and_status_over_plain(
        broker: Broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    topic = f"secure-{time.monotonic_ns()}"
    mtls = _settings(bootstrap=f"127.0.0.1:{broker.ssl}", security_protocol="SSL", ssl_cafile=broker.ca,
                     ssl_certfile=broker.client_cert, ssl_keyfile=broker.client_key,
                     ssl_key_password_file=broker.client_key_password)
    security = security_options(mtls.kafka, mtls.kafka.bootstrap)
    assert security["ssl_password"] == "client-key-pass" and security["ssl_check_hostname"] is True
    relay = SyslogRelay(mtls.kafka.bootstrap, topic, udp="127.0.0.1:0", agencies=_agencies(), security=security,
                        batch_delay=0.05)
    relay.start()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            for i in range(3):
                udp.sendto(b"<13>1 2025-03-01T10:00:00Z fw1 app - - - over mutual TLS %d" % i, relay.udp_address)
        deadline = time.monotonic() + 60
        while relay.sent < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        relay.stop()
    assert (relay.sent, relay.failed) == (3, 0)

    monkeypatch.setenv("SOC_TEST_SCRAM_PASSWORD", SCRAM_PASSWORD)
    scram = _settings(bootstrap=f"127.0.0.1:{broker.sasl_ssl}", security_protocol="SASL_SSL", ssl_cafile=broker.ca,
                      sasl_mechanism="SCRAM-SHA-512", sasl_username=SCRAM_USER, sasl_password_env="SOC_TEST_SCRAM_PASSWORD")
    env = SourceEnv(settings=scram, agencies=_agencies(), state_dir=tmp_path)
    source = KafkaSource(SourceDefinition(name="secure", type="kafka", topic=topic, group=f"{topic}-g"), env)
    source.start()
    got: list[bytes] = []
    batches = source.batches()
    try:
        deadline = time.monotonic() + 60
        while len(got) < 3 and time.monotonic() < deadline:
            batch = next(batches)
            got += [record.raw for record in batch]
            source.ack(batch)
    finally:
        source.stop()
        with contextlib.suppress(StopIteration):
            next(batches)
    assert got == [b"<13>1 2025-03-01T10:00:00Z fw1 app - - - over mutual TLS %d" % i for i in range(3)]

    secret = tmp_path / "plain-password"
    secret.write_text(PLAIN_PASSWORD, encoding="utf-8")
    plain = _settings(bootstrap=f"127.0.0.1:{broker.sasl_ssl}", security_protocol="SASL_SSL", ssl_cafile=broker.ca,
                      sasl_mechanism="PLAIN", sasl_username=PLAIN_USER, sasl_password_file=secret)
    status = group_status(plain.kafka.bootstrap, f"{topic}-g", [topic],
                          security=security_options(plain.kafka, plain.kafka.bootstrap))
    assert status.fully_committed and [p.end for p in status.partitions] == [3]


def _refused(bootstrap: str, security: dict[str, Any]) -> str | None:
    """Why a client with these options is turned away (``None``: it lists the topics)."""
    from kafka import KafkaConsumer

    try:
        consumer = KafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=8000, bootstrap_timeout_ms=6000,
                                 **security)
    except Exception as error:  # noqa: BLE001  (NoBrokersAvailable, an authentication error...)
        return f"{type(error).__name__}: {error}"
    try:
        consumer.topics()
        return None
    except Exception as error:  # noqa: BLE001
        return f"{type(error).__name__}: {error}"
    finally:
        consumer.close()


def test_no_client_certificate_or_a_wrong_password_is_turned_away(broker: Broker) -> None:
    """The same listeners turn away a client without a certificate, or with a wrong password, and
    take one with the right one (kafka-python reports both refusals as a failed bootstrap)."""
    no_cert = _settings(bootstrap=f"127.0.0.1:{broker.ssl}", security_protocol="SSL", ssl_cafile=broker.ca)
    assert "Unable to bootstrap" in str(_refused(no_cert.kafka.bootstrap,
                                                 security_options(no_cert.kafka, no_cert.kafka.bootstrap)))
    wrong = _settings(bootstrap=f"127.0.0.1:{broker.sasl_ssl}", security_protocol="SASL_SSL", ssl_cafile=broker.ca,
                      sasl_mechanism="SCRAM-SHA-512", sasl_username=SCRAM_USER, sasl_password="not-the-password")
    assert "Unable to bootstrap" in str(_refused(wrong.kafka.bootstrap, security_options(wrong.kafka, wrong.kafka.bootstrap)))
    right = _settings(bootstrap=f"127.0.0.1:{broker.sasl_ssl}", security_protocol="SASL_SSL", ssl_cafile=broker.ca,
                      sasl_mechanism="SCRAM-SHA-512", sasl_username=SCRAM_USER, sasl_password=SCRAM_PASSWORD)
    assert _refused(right.kafka.bootstrap, security_options(right.kafka, right.kafka.bootstrap)) is None
