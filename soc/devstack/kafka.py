"""Apache Kafka 4.x as one combined broker+controller KRaft node on loopback: its
configuration, the storage format on first start, and the readiness check (kafka-python)."""

from __future__ import annotations

import base64
import contextlib
import logging
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from soc.devstack import jvm
from soc.devstack.common import KAFKA_LOG4J, DevstackError
from soc.devstack.processes import launch, port_open, tail, wait_ready

__all__ = ["cluster_id", "kafka_ready", "start_kafka"]


def cluster_id() -> str:
    """A fresh KRaft cluster id."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()


def _kafka_properties(port: int, controller_port: int, data_dir: Path) -> str:
    return f"""\
# Written by soc/devstack/kafka.py: a single combined broker+controller KRaft node on loopback.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller_port}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs={data_dir}
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
delete.topic.enable=true
num.network.threads=2
num.io.threads=2
num.recovery.threads.per.data.dir=1
background.threads=2
log.cleaner.threads=1
"""


def kafka_ready(port: int) -> dict[str, Any] | None:
    """describe_cluster + list_topics through kafka-python; None while not ready."""
    if not port_open(port):
        return None
    from kafka import KafkaAdminClient  # noqa: PLC0415  (only needed here)

    kafka_log = logging.getLogger("kafka")
    level = kafka_log.level
    kafka_log.setLevel(logging.CRITICAL)  # connection errors while booting are expected
    admin = None
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=f"127.0.0.1:{port}", client_id="soc-devstack-probe",
            request_timeout_ms=5000, **_kafka_admin_extra(),
        )
        cluster = admin.describe_cluster()
        admin.list_topics()
        return cluster if isinstance(cluster, dict) else {"cluster": str(cluster)}
    except Exception:  # noqa: BLE001  (any failure = not ready yet)
        return None
    finally:
        if admin is not None:
            with contextlib.suppress(Exception):
                admin.close()
        kafka_log.setLevel(level)


def _kafka_admin_extra() -> dict[str, Any]:
    from kafka import KafkaAdminClient  # noqa: PLC0415

    return {"bootstrap_timeout_ms": 5000} if "bootstrap_timeout_ms" in KafkaAdminClient.DEFAULT_CONFIG else {}


def start_kafka(
    entry: dict[str, Any], lib: Path, timeout: float,
    cancel: threading.Event | None = None, on_pid: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Format (first start only) and start Kafka as described by entry; wait until ready."""
    run_dir = Path(entry["run_dir"])
    log_path = Path(entry["log"])
    java = jvm.java()
    cp = f"{lib}/*"
    flags = [*jvm.KAFKA_JVM_FLAGS, f"-Dlog4j2.configurationFile=file:{KAFKA_LOG4J}", *jvm.extra_jvm_flags()]
    cds_flags, entry["cds_pending"], entry["cds_archive"] = jvm.cds("kafka", lib, java)
    props = run_dir / "server.properties"
    t0 = time.monotonic()
    if not (Path(entry["data_dir"]) / "meta.properties").exists():
        props.write_text(_kafka_properties(entry["port"], entry["controller_port"], Path(entry["data_dir"])))
        # The format tool shares the broker's archive when there is one, but records none.
        fmt = [java, *flags, *(cds_flags if entry["cds_pending"] is None else []),
               "-cp", cp, "kafka.tools.StorageTool", "format",
               f"--cluster-id={entry['cluster_id']}", "-c", str(props)]  # an id may start with "-"
        with open(log_path, "ab") as log:
            log.write(f"=== devstack: {' '.join(fmt)}\n".encode())
            log.flush()
            rc = subprocess.run(fmt, cwd=run_dir, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, timeout=timeout).returncode
        if rc != 0:
            raise DevstackError(f"Kafka storage format failed (exit {rc}); last lines of {log_path}:\n"
                                f"{tail(log_path)}")
    if cancel is not None and cancel.is_set():
        raise DevstackError("Kafka start cancelled")
    proc = launch([java, *flags, *cds_flags, "-cp", cp, "kafka.Kafka", str(props)], log_path, run_dir)
    entry["pid"] = proc.pid
    if on_pid is not None:
        on_pid()
    wait_ready("Kafka", proc, entry, lambda port: kafka_ready(port) is not None, timeout, cancel, t0)
    return entry
