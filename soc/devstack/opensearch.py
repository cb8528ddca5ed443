"""OpenSearch 2.19 as one node, its modules loaded from the classpath, started by
``tools/opensearch/EmbeddedOpenSearch.java`` in single-file source mode."""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from soc.devstack import jvm
from soc.devstack.common import OPENSEARCH_LAUNCHER, OPENSEARCH_LOG4J, DevstackError
from soc.devstack.processes import launch, port_open, wait_ready

__all__ = ["opensearch_ready", "start_opensearch"]


def opensearch_ready(port: int) -> bool:
    """True when the cluster health is at least yellow."""
    url = f"http://127.0.0.1:{port}/_cluster/health?wait_for_status=yellow&timeout=2s"
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def start_opensearch(
    entry: dict[str, Any], lib: Path, timeout: float,
    cancel: threading.Event | None = None, on_pid: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Start OpenSearch as described by entry (reusing its port and data); wait for yellow."""
    run_dir = Path(entry["run_dir"])
    log_path = Path(entry["log"])
    if cancel is not None and cancel.is_set():
        raise DevstackError("OpenSearch start cancelled")
    if port_open(entry["port"], timeout=0.2):
        raise DevstackError(f"port {entry['port']} for OpenSearch is already in use")
    java = jvm.java()
    cds_flags, entry["cds_pending"], entry["cds_archive"] = jvm.cds("opensearch", lib, java)
    cmd = [
        java, *jvm.OPENSEARCH_JVM_FLAGS, f"-Dlog4j2.configurationFile=file:{OPENSEARCH_LOG4J}",
        *jvm.extra_jvm_flags(), *cds_flags,
        "-cp", f"{lib}/*", str(OPENSEARCH_LAUNCHER),
        str(entry["port"]), entry["data_dir"], str(entry["transport_port"]),
    ]
    t0 = time.monotonic()
    proc = launch(cmd, log_path, run_dir)
    entry["pid"] = proc.pid
    if on_pid is not None:
        on_pid()
    wait_ready("OpenSearch", proc, entry, lambda port: port_open(port) and opensearch_ready(port),
               timeout, cancel, t0)
    return entry
