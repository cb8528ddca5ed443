"""Real Apache Kafka and OpenSearch servers for integration tests and local development.

No Docker is needed: both servers run as plain JVMs from flat classpaths that Maven resolves
from the dependency-only POMs in ``tools/``:

* Apache Kafka 4.x (KRaft, one combined broker+controller node): ``tools/kafka/pom.xml``,
  started with ``kafka.tools.StorageTool format`` then ``kafka.Kafka server.properties``.
* OpenSearch 2.19 (one node, modules loaded from the classpath): ``tools/opensearch/pom.xml``,
  started by ``tools/opensearch/EmbeddedOpenSearch.java`` in single-file source mode.

Both listen on free loopback ports only and keep their data in fresh folders under the state
directory. Needs JDK 17+ (``java`` from ``$SOC_DEVSTACK_JAVA``, ``$JAVA_HOME`` or ``PATH``) and,
for the first :func:`fetch`, Maven with access to Maven Central.

Typical use::

    from soc import devstack
    info = devstack.up()                # fetches the jars if needed, starts both servers
    info["kafka_bootstrap"]             # "127.0.0.1:PORT"
    info["opensearch_url"]              # "http://127.0.0.1:PORT"
    devstack.stop_search()              # simulate a search-engine outage; Kafka keeps running
    devstack.start_search()             # same port, same data
    devstack.down()

The state (pids, ports, paths, timings) is kept in ``<state_dir>/devstack.json``, so the
servers outlive the Python process that started them and another process can stop them.
Only the Python standard library is used here, plus ``kafka-python`` for the Kafka
readiness check.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import os
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_CACHE_DIR",
    "DEFAULT_STATE_DIR",
    "REPO",
    "DevstackError",
    "down",
    "fetch",
    "iter_logs",
    "start_search",
    "status",
    "stop_search",
    "up",
]

#: Repository root (the parent of the ``soc`` package folder).
REPO = Path(__file__).resolve().parent.parent
#: Where the Maven-resolved classpaths go (git-ignored).
DEFAULT_CACHE_DIR = REPO / ".cache"
#: Where :func:`up` keeps ``devstack.json``, data folders and logs by default.
DEFAULT_STATE_DIR = DEFAULT_CACHE_DIR / "devstack"

TOOLS = REPO / "tools"
KAFKA_POM = TOOLS / "kafka" / "pom.xml"
KAFKA_LOG4J = TOOLS / "kafka" / "log4j2.properties"
OPENSEARCH_POM = TOOLS / "opensearch" / "pom.xml"
OPENSEARCH_LOG4J = TOOLS / "opensearch" / "log4j2.properties"
OPENSEARCH_LAUNCHER = TOOLS / "opensearch" / "EmbeddedOpenSearch.java"

STATE_FILE = "devstack.json"
LOG_TAIL_LINES = 40
#: Seconds to wait for a server to become ready (override: $SOC_DEVSTACK_TIMEOUT).
DEFAULT_START_TIMEOUT = float(os.environ.get("SOC_DEVSTACK_TIMEOUT", "180"))
#: Seconds between SIGTERM and SIGKILL.
DEFAULT_STOP_TIMEOUT = 20.0

# Shared by both JVMs: small footprint, fast start. SerialGC suits one-node test servers on a
# 2-core machine (fewer GC threads, lower RSS than G1 at these heap sizes). C1-only JIT starts
# both servers ~2.5 s faster on 2 cores and, measured, indexes 50k small documents no slower
# than tiered C1+C2 (the Python client is the bottleneck at test sizes). For a server-side
# benchmark, restore C2 with SOC_DEVSTACK_JAVA_OPTS="-XX:TieredStopAtLevel=4".
_COMMON_JVM_FLAGS = [
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
    "-Dfile.encoding=UTF-8",
    "-Dlog4j2.formatMsgNoLookups=true",
    "-Dlog4j2.disable.jmx=true",
]
KAFKA_JVM_FLAGS = ["-Xms256m", "-Xmx512m", *_COMMON_JVM_FLAGS]
OPENSEARCH_JVM_FLAGS = [
    "-Xms512m",
    "-Xmx768m",
    *_COMMON_JVM_FLAGS,
    # What the OpenSearch 2.x distribution passes (config/jvm.options), where relevant here.
    "-Djava.locale.providers=SPI,COMPAT",
    "-Dlog4j.shutdownHookEnabled=false",
    "-Dio.netty.allocator.numDirectArenas=0",
    "-Dio.netty.noUnsafe=true",
    "-Dio.netty.noKeySetOptimization=true",
    "-Dio.netty.recycler.maxCapacityPerThread=0",
]

_log = logging.getLogger(__name__)
_state_lock = threading.Lock()
# Popen objects of servers started by this Python process, so that they can be reaped.
_children: dict[int, subprocess.Popen[bytes]] = {}


class DevstackError(RuntimeError):
    """A devstack server could not be fetched, started or stopped (message has the log tail)."""


# --------------------------------------------------------------------------------------------
# fetch


def _classpaths(cache_dir: Path) -> dict[str, tuple[Path, Path]]:
    return {
        "kafka": (KAFKA_POM, cache_dir / "kafka-lib"),
        "opensearch": (OPENSEARCH_POM, cache_dir / "opensearch-lib"),
    }


def _pom_digest(pom: Path) -> str:
    return hashlib.sha256(pom.read_bytes()).hexdigest()


def _populated(lib: Path, pom: Path) -> bool:
    marker = lib / ".pom.sha256"
    return (
        marker.is_file()
        and marker.read_text().strip() == _pom_digest(pom)
        and any(lib.glob("*.jar"))
    )


def fetch(cache_dir: str | os.PathLike[str] | None = None, *, quiet: bool = False) -> dict[str, Path]:
    """Resolve both server classpaths with Maven into ``<cache_dir>/kafka-lib`` and
    ``<cache_dir>/opensearch-lib`` (default cache dir: ``<repo>/.cache``).

    Runs ``mvn -B -q -f tools/<x>/pom.xml dependency:copy-dependencies -DincludeScope=runtime
    -DoutputDirectory=...`` for each POM, into a temporary folder that is renamed when complete.
    A folder is skipped when it is already populated from the same POM (a ``.pom.sha256`` marker
    holds the POM's digest, so editing a POM re-fetches). Jars come from ``~/.m2`` when present.
    Prints one line per classpath unless ``quiet``. Returns ``{"kafka": path, "opensearch": path}``.
    Raises :class:`DevstackError` when Maven is missing or fails.
    """
    cache = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE_DIR
    cache.mkdir(parents=True, exist_ok=True)
    result: dict[str, Path] = {}
    for name, (pom, lib) in _classpaths(cache).items():
        result[name] = lib
        if not pom.is_file():
            raise DevstackError(f"{pom} not found: the devstack needs the soc source checkout (tools/)")
        if _populated(lib, pom):
            if not quiet:
                print(f"devstack: {name} classpath already in {lib}")
            continue
        mvn = shutil.which("mvn")
        if mvn is None:
            raise DevstackError("Maven (mvn) is not on PATH; it is needed once to fetch the jars")
        if not quiet:
            print(f"devstack: fetching {name} classpath ({pom.relative_to(REPO)}) into {lib} ...", flush=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{lib.name}-", dir=cache))
        cmd = [
            mvn, "-B", "-q", "-f", str(pom), "dependency:copy-dependencies",
            "-DincludeScope=runtime", f"-DoutputDirectory={tmp}",
        ]
        t0 = time.monotonic()
        proc = subprocess.run(cmd, cwd=REPO, stdin=subprocess.DEVNULL, capture_output=True, text=True)
        if proc.returncode != 0 or not any(tmp.glob("*.jar")):
            shutil.rmtree(tmp, ignore_errors=True)
            out = "\n".join((proc.stdout + proc.stderr).splitlines()[-LOG_TAIL_LINES:])
            raise DevstackError(f"{' '.join(cmd)} failed (exit {proc.returncode}):\n{out}")
        (tmp / ".pom.sha256").write_text(_pom_digest(pom) + "\n")
        if lib.exists():
            shutil.rmtree(lib)
        tmp.rename(lib)
        lib.chmod(0o755)  # mkdtemp made it private
        if not quiet:
            jars = list(lib.glob("*.jar"))
            size = sum(j.stat().st_size for j in jars) / 2**20
            print(f"devstack: {name}: {len(jars)} jars, {size:.0f} MiB in {time.monotonic() - t0:.1f} s")
    return result


# --------------------------------------------------------------------------------------------
# helpers


def _state_path(state_dir: Path) -> Path:
    return state_dir / STATE_FILE


def _resolve_dirs(state_dir: str | os.PathLike[str] | None) -> Path:
    return (Path(state_dir) if state_dir is not None else DEFAULT_STATE_DIR).resolve()


def _load(state_dir: Path) -> dict[str, Any] | None:
    path = _state_path(state_dir)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None


def _save(state_dir: Path, state: dict[str, Any]) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    path = _state_path(state_dir)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def _java() -> str:
    explicit = os.environ.get("SOC_DEVSTACK_JAVA")
    if explicit:
        return explicit
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise DevstackError("no java found (set JAVA_HOME or SOC_DEVSTACK_JAVA; JDK 17+ is needed)")
    return java


def _free_ports(n: int) -> list[int]:
    """n distinct free loopback ports (held open together so they differ)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _port_open(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def _tail(path: str | os.PathLike[str] | None, lines: int = LOG_TAIL_LINES) -> str:
    if not path:
        return "(no log)"
    try:
        with open(path, "rb") as f:
            return b"".join(deque(f, maxlen=lines)).decode("utf-8", "replace").rstrip()
    except OSError as e:
        return f"(cannot read {path}: {e})"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def _alive(pid: int | None, marker: str | None = None) -> bool:
    """True when pid runs (not a zombie) and, if given, its command line contains marker."""
    if not pid:
        return False
    child = _children.get(pid)
    if child is not None and child.poll() is not None:
        _children.pop(pid, None)
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] in ("Z", "X"):
            return False
    except (OSError, IndexError):
        pass
    return marker is None or marker in _cmdline(pid)


def _rss_mib(pid: int | None) -> float | None:
    if not pid:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def _launch(cmd: list[str], log_path: Path, cwd: Path) -> subprocess.Popen[bytes]:
    """Start a server in its own session/process group, output appended to log_path."""
    with open(log_path, "ab") as log:
        log.write(f"\n=== devstack {time.strftime('%Y-%m-%d %H:%M:%S')}: {' '.join(cmd)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, close_fds=True,
        )
    _children[proc.pid] = proc
    return proc


def _terminate(pid: int | None, marker: str | None, timeout: float = DEFAULT_STOP_TIMEOUT) -> str:
    """SIGTERM the server's process group, SIGKILL it after timeout. Returns what happened."""
    if not _alive(pid, marker):
        _reap(pid)
        return "not running"
    assert pid is not None

    def signal_group(sig: int) -> None:
        try:
            # Servers are started with start_new_session=True, so their pgid is their pid.
            if os.getpgid(pid) == pid:
                os.killpg(pid, sig)
            else:
                os.kill(pid, sig)
        except ProcessLookupError:
            pass

    signal_group(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pid)
        if not _alive(pid):
            return "stopped"
        time.sleep(0.1)
    signal_group(signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _alive(pid):
        _reap(pid)
        time.sleep(0.05)
    return "killed"


def _reap(pid: int | None) -> None:
    if not pid:
        return
    child = _children.get(pid)
    if child is not None:
        if child.poll() is not None:
            _children.pop(pid, None)
        return
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _extra_jvm_flags() -> list[str]:
    """Flags from $SOC_DEVSTACK_JAVA_OPTS, appended last (so they win) to both JVMs."""
    return shlex.split(os.environ.get("SOC_DEVSTACK_JAVA_OPTS", ""))


def _cds(name: str, lib: Path, java: str) -> tuple[list[str], str | None, str]:
    """Application class-data sharing (AppCDS) for faster JVM start (~1-1.5 s per server).

    The first start of a server with a given classpath and JDK records the classes it loads
    (``-XX:ArchiveClassesAtExit``, written when the JVM exits cleanly); :func:`_finalize_cds`
    then moves that archive into ``<cache>/cds/``, and later starts map it
    (``-XX:SharedArchiveFile``). The archive name is keyed by the POM digest, the fetch time
    and the java binary, so a re-fetch or another JDK records a new one. A stale or unusable
    archive only costs the speed-up (the JVM prints a warning and runs without it).
    Disabled with SOC_DEVSTACK_CDS=0. Returns (flags, pending archive or None, final archive).
    """
    if os.environ.get("SOC_DEVSTACK_CDS", "1") == "0":
        return [], None, ""
    marker = lib / ".pom.sha256"
    real_java = Path(java).resolve()
    key_src = "|".join([
        marker.read_text().strip() if marker.is_file() else "",
        str(marker.stat().st_mtime_ns) if marker.is_file() else "",
        str(real_java),
        str(real_java.stat().st_mtime_ns) if real_java.exists() else "",
    ])
    key = hashlib.sha256(key_src.encode()).hexdigest()[:16]
    final = lib.parent / "cds" / f"{name}-{key}.jsa"
    # Archives recorded by JVMs that were killed before they could exit cleanly.
    for stale in final.parent.glob(f"{name}-*.jsa.*.tmp"):
        with contextlib.suppress(OSError):
            if time.time() - stale.stat().st_mtime > 3600:
                stale.unlink()
    if final.is_file() and final.stat().st_size > 0:
        return [f"-XX:SharedArchiveFile={final}"], None, str(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    pending = final.with_name(f"{final.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    return [f"-XX:ArchiveClassesAtExit={pending}"], str(pending), str(final)


def _finalize_cds(entry: dict[str, Any], stop_result: str) -> None:
    """After a server stopped: keep the archive it recorded if it exited cleanly."""
    pending = entry.get("cds_pending")
    if not pending:
        return
    entry["cds_pending"] = None
    path = Path(pending)
    try:
        if stop_result == "stopped" and path.is_file() and path.stat().st_size > 0:
            final = Path(entry["cds_archive"])
            os.replace(path, final)
            # Only the newest archive per server is kept (each is 50-90 MB).
            for old in final.parent.glob(f"{final.name.rsplit('-', 1)[0]}-*.jsa"):
                if old != final:
                    old.unlink(missing_ok=True)
        else:
            path.unlink(missing_ok=True)
    except OSError:
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------
# Kafka


def _kafka_cluster_id() -> str:
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()


def _kafka_properties(port: int, controller_port: int, data_dir: Path) -> str:
    return f"""\
# Written by soc/devstack.py: a single combined broker+controller KRaft node on loopback.
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


def _kafka_ready(port: int) -> dict[str, Any] | None:
    """describe_cluster + list_topics through kafka-python; None while not ready."""
    if not _port_open(port):
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


def _wait_ready(
    what: str, proc: subprocess.Popen[bytes], entry: dict[str, Any], probe: Callable[[int], object],
    timeout: float, cancel: threading.Event | None, t0: float,
) -> None:
    """Poll probe(port) until it returns a truthy value; raise with the log tail otherwise."""
    log_path = entry["log"]
    deadline = t0 + timeout
    while True:
        if proc.poll() is not None:
            raise DevstackError(f"{what} exited with code {proc.returncode} while starting; "
                                f"last lines of {log_path}:\n{_tail(log_path)}")
        if cancel is not None and cancel.is_set():
            raise DevstackError(f"{what} start cancelled")
        if probe(entry["port"]):
            break
        if time.monotonic() > deadline:
            raise DevstackError(f"{what} not ready on 127.0.0.1:{entry['port']} after {timeout:.0f} s; "
                                f"last lines of {log_path}:\n{_tail(log_path)}")
        time.sleep(0.25)
    entry["start_seconds"] = round(time.monotonic() - t0, 2)
    entry["started_at"] = time.time()
    entry["running"] = True


def _start_kafka(
    entry: dict[str, Any], lib: Path, timeout: float,
    cancel: threading.Event | None = None, on_pid: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Format (first start only) and start Kafka as described by entry; wait until ready."""
    run_dir = Path(entry["run_dir"])
    log_path = Path(entry["log"])
    java = _java()
    cp = f"{lib}/*"
    flags = [*KAFKA_JVM_FLAGS, f"-Dlog4j2.configurationFile=file:{KAFKA_LOG4J}", *_extra_jvm_flags()]
    cds_flags, entry["cds_pending"], entry["cds_archive"] = _cds("kafka", lib, java)
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
                                f"{_tail(log_path)}")
    if cancel is not None and cancel.is_set():
        raise DevstackError("Kafka start cancelled")
    proc = _launch([java, *flags, *cds_flags, "-cp", cp, "kafka.Kafka", str(props)], log_path, run_dir)
    entry["pid"] = proc.pid
    if on_pid is not None:
        on_pid()
    _wait_ready("Kafka", proc, entry, lambda port: _kafka_ready(port) is not None, timeout, cancel, t0)
    return entry


# --------------------------------------------------------------------------------------------
# OpenSearch


def _opensearch_ready(port: int) -> bool:
    url = f"http://127.0.0.1:{port}/_cluster/health?wait_for_status=yellow&timeout=2s"
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _start_opensearch(
    entry: dict[str, Any], lib: Path, timeout: float,
    cancel: threading.Event | None = None, on_pid: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Start OpenSearch as described by entry (reusing its port and data); wait for yellow."""
    run_dir = Path(entry["run_dir"])
    log_path = Path(entry["log"])
    if cancel is not None and cancel.is_set():
        raise DevstackError("OpenSearch start cancelled")
    if _port_open(entry["port"], timeout=0.2):
        raise DevstackError(f"port {entry['port']} for OpenSearch is already in use")
    java = _java()
    cds_flags, entry["cds_pending"], entry["cds_archive"] = _cds("opensearch", lib, java)
    cmd = [
        java, *OPENSEARCH_JVM_FLAGS, f"-Dlog4j2.configurationFile=file:{OPENSEARCH_LOG4J}",
        *_extra_jvm_flags(), *cds_flags,
        "-cp", f"{lib}/*", str(OPENSEARCH_LAUNCHER),
        str(entry["port"]), entry["data_dir"], str(entry["transport_port"]),
    ]
    t0 = time.monotonic()
    proc = _launch(cmd, log_path, run_dir)
    entry["pid"] = proc.pid
    if on_pid is not None:
        on_pid()
    _wait_ready("OpenSearch", proc, entry, lambda port: _port_open(port) and _opensearch_ready(port),
                timeout, cancel, t0)
    return entry


# --------------------------------------------------------------------------------------------
# public API


def up(
    state_dir: str | os.PathLike[str] | None = None,
    *,
    kafka: bool = True,
    search: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
    timeout: float = DEFAULT_START_TIMEOUT,
) -> dict[str, Any]:
    """Start Kafka and/or OpenSearch in parallel and wait until both are ready.

    * Fetches the classpaths first if needed (:func:`fetch`, cache dir default ``<repo>/.cache``).
    * Each server gets free ``127.0.0.1`` ports and a fresh run folder under ``state_dir``
      (default ``<repo>/.cache/devstack``) holding its data and its log (``server.log``).
    * Kafka (``-Xmx512m``) is ready when kafka-python's admin client can describe the cluster
      and list topics; OpenSearch (``-Xms512m -Xmx768m``) when
      ``GET /_cluster/health?wait_for_status=yellow`` returns 200.
    * The servers run detached (own process group) and outlive the calling process; stop them
      with :func:`down`.

    Returns the state written to ``<state_dir>/devstack.json``: ``kafka_bootstrap``
    (``"127.0.0.1:PORT"``), ``opensearch_url`` (``"http://127.0.0.1:PORT"``), and per server
    (``"kafka"`` / ``"opensearch"``) ``pid``, ``port``, ``log``, ``data_dir``, ``start_seconds``...

    Raises :class:`DevstackError` (with the last 40 lines of the server log) if a server fails
    to start or is not ready within ``timeout`` seconds; whatever was started is then stopped
    and its data removed (the failed log is kept as ``<state_dir>/<server>-failed.log``).
    Also raises if ``state_dir`` already has running servers.
    """
    if not (kafka or search):
        raise ValueError("nothing to start: kafka and search are both False")
    sdir = _resolve_dirs(state_dir)
    cache = Path(cache_dir).resolve() if cache_dir is not None else DEFAULT_CACHE_DIR
    with _state_lock:
        old = _load(sdir)
        if old is not None:
            running = [n for n in ("kafka", "opensearch")
                       if old.get(n) and _alive(old[n].get("pid"), old[n].get("run_dir"))]
            if running:
                raise DevstackError(f"devstack in {sdir} is already running ({', '.join(running)}); "
                                    "use status() or down() first")
            _cleanup(sdir, old)
        libs = fetch(cache, quiet=False)
        sdir.mkdir(parents=True, exist_ok=True)
        ports = _free_ports(4)
        state: dict[str, Any] = {
            "version": 1, "state_dir": str(sdir), "cache_dir": str(cache), "repo": str(REPO),
            "kafka": None, "opensearch": None, "kafka_bootstrap": None, "opensearch_url": None,
        }
        jobs = {}
        if kafka:
            run = Path(tempfile.mkdtemp(prefix="kafka-", dir=sdir))
            (run / "data").mkdir()
            state["kafka"] = {
                "pid": None, "running": False, "port": ports[0], "controller_port": ports[1],
                "cluster_id": _kafka_cluster_id(), "run_dir": str(run), "data_dir": str(run / "data"),
                "log": str(run / "server.log"),
            }
            state["kafka_bootstrap"] = f"127.0.0.1:{ports[0]}"
            jobs["kafka"] = (_start_kafka, state["kafka"], libs["kafka"])
        if search:
            run = Path(tempfile.mkdtemp(prefix="opensearch-", dir=sdir))
            state["opensearch"] = {
                "pid": None, "running": False, "port": ports[2], "transport_port": ports[3],
                "run_dir": str(run), "data_dir": str(run / "node"), "log": str(run / "server.log"),
            }
            state["opensearch_url"] = f"http://127.0.0.1:{ports[2]}"
            jobs["opensearch"] = (_start_opensearch, state["opensearch"], libs["opensearch"])

        # Saved before and right after each launch, so that down() can always find the pids,
        # even if this process dies while waiting for readiness.
        save_lock = threading.Lock()

        def save() -> None:
            with save_lock:
                _save(sdir, state)

        save()
        t0 = time.monotonic()
        errors: list[str] = []
        cancel = threading.Event()
        pool = ThreadPoolExecutor(max_workers=len(jobs), thread_name_prefix="devstack")
        try:
            futures = {pool.submit(fn, entry, lib, timeout, cancel, save): name
                       for name, (fn, entry, lib) in jobs.items()}
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                for fut in done:
                    if fut.exception() is not None:
                        errors.append(f"[{futures[fut]}] {fut.exception()}")
                        cancel.set()  # no point waiting for the other server
        except BaseException:  # e.g. KeyboardInterrupt: leave nothing running behind
            cancel.set()
            pool.shutdown(wait=True)
            _abort_up(sdir, state, list(jobs))
            raise
        pool.shutdown(wait=True)
        if errors:
            errors = [e for e in errors if not e.endswith("start cancelled")] or errors
            kept = _abort_up(sdir, state, list(jobs))
            raise DevstackError("devstack up failed (everything started was stopped again):\n"
                                + "\n\n".join(errors) + f"\n\nfull logs kept: {', '.join(kept) or 'none'}")
        state["up_seconds"] = round(time.monotonic() - t0, 2)
        save()
        return state


def _abort_up(sdir: Path, state: dict[str, Any], names: list[str]) -> list[str]:
    """Stop what a failed up() started, keep its logs as <name>-failed.log, drop the rest."""
    kept = []
    for name in names:
        entry = state[name]
        _finalize_cds(entry, _terminate(entry.get("pid"), entry["run_dir"]))
        with contextlib.suppress(OSError):
            shutil.copyfile(entry["log"], sdir / f"{name}-failed.log")
            kept.append(str(sdir / f"{name}-failed.log"))
        shutil.rmtree(entry["run_dir"], ignore_errors=True)
    with contextlib.suppress(FileNotFoundError):
        _state_path(sdir).unlink()
    return kept


def _cleanup(sdir: Path, state: dict[str, Any]) -> None:
    for name in ("kafka", "opensearch"):
        entry = state.get(name)
        if entry and entry.get("run_dir"):
            shutil.rmtree(entry["run_dir"], ignore_errors=True)
        if entry and entry.get("cds_pending"):
            Path(entry["cds_pending"]).unlink(missing_ok=True)
    with contextlib.suppress(FileNotFoundError):
        _state_path(sdir).unlink()


def down(state_dir: str | os.PathLike[str] | None = None, *, timeout: float = DEFAULT_STOP_TIMEOUT) -> dict[str, str]:
    """Stop the servers recorded in ``<state_dir>/devstack.json`` and remove their state.

    Each server's process group gets SIGTERM (a clean shutdown takes a few seconds), then
    SIGKILL after ``timeout`` seconds. A pid is only signalled while its command line still
    names the server's run folder (no stray kill after pid reuse). The run folders (data and
    logs) and ``devstack.json`` are then removed. Returns ``{"kafka": "stopped"|"killed"|
    "not running", "opensearch": ...}``; an empty dict when nothing was recorded.
    """
    sdir = _resolve_dirs(state_dir)
    with _state_lock:
        state = _load(sdir)
        if state is None:
            return {}
        result: dict[str, str] = {}
        names = [n for n in ("kafka", "opensearch") if state.get(n)]
        with ThreadPoolExecutor(max_workers=max(1, len(names))) as pool:
            futs = {n: pool.submit(_terminate, state[n].get("pid"), state[n]["run_dir"], timeout) for n in names}
            for n, fut in futs.items():
                result[n] = fut.result()
                _finalize_cds(state[n], result[n])
        _cleanup(sdir, state)
        return result


def status(state_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """What runs in ``state_dir``: the saved state plus, per server, live ``running`` (process
    alive), ``listening`` (port accepts connections) and ``rss_mib``. Top-level ``running`` is
    True when every recorded server runs. Returns ``{"state_dir": ..., "running": False,
    "kafka": None, "opensearch": None}`` when nothing was started there. Never raises for a
    missing or dead stack.
    """
    sdir = _resolve_dirs(state_dir)
    state = _load(sdir)
    if state is None:
        return {"state_dir": str(sdir), "running": False, "kafka": None, "opensearch": None,
                "kafka_bootstrap": None, "opensearch_url": None}
    all_running = True
    for name in ("kafka", "opensearch"):
        entry = state.get(name)
        if not entry:
            continue
        alive = _alive(entry.get("pid"), entry["run_dir"])
        entry["running"] = alive
        entry["listening"] = alive and _port_open(entry["port"])
        entry["rss_mib"] = _rss_mib(entry.get("pid")) if alive else None
        all_running = all_running and alive
    state["running"] = all_running
    return state


def stop_search(state_dir: str | os.PathLike[str] | None = None, *, timeout: float = DEFAULT_STOP_TIMEOUT) -> dict[str, Any]:
    """Stop only OpenSearch (SIGTERM, SIGKILL after ``timeout``); Kafka keeps running.

    Keeps the port and the data folder recorded so that :func:`start_search` brings the same
    node back at the same URL with the same indices. Used to simulate a search-engine outage.
    Returns the updated state. Raises :class:`DevstackError` if no OpenSearch was started in
    ``state_dir``.
    """
    sdir = _resolve_dirs(state_dir)
    with _state_lock:
        state = _load(sdir)
        if state is None or not state.get("opensearch"):
            raise DevstackError(f"no OpenSearch recorded in {sdir}; start it with up() first")
        entry = state["opensearch"]
        entry["last_stop"] = _terminate(entry.get("pid"), entry["run_dir"], timeout)
        _finalize_cds(entry, entry["last_stop"])
        entry["pid"] = None
        entry["running"] = False
        _save(sdir, state)
        return state


def start_search(
    state_dir: str | os.PathLike[str] | None = None, *, timeout: float = DEFAULT_START_TIMEOUT
) -> dict[str, Any]:
    """Start OpenSearch again after :func:`stop_search`, on the same port with the same data,
    and wait until the cluster is yellow (all primaries of the existing indices recovered).

    A no-op (returns the state) when it already runs. Raises :class:`DevstackError` with the
    log tail when it does not come back within ``timeout`` seconds, or when no OpenSearch was
    ever started in ``state_dir``.
    """
    sdir = _resolve_dirs(state_dir)
    with _state_lock:
        state = _load(sdir)
        if state is None or not state.get("opensearch"):
            raise DevstackError(f"no OpenSearch recorded in {sdir}; start it with up() first")
        entry = state["opensearch"]
        if _alive(entry.get("pid"), entry["run_dir"]):
            return state
        lib = _classpaths(Path(state.get("cache_dir") or DEFAULT_CACHE_DIR))["opensearch"][1]
        try:
            _start_opensearch(entry, lib, timeout, on_pid=lambda: _save(sdir, state))
        except DevstackError:
            _finalize_cds(entry, _terminate(entry.get("pid"), entry["run_dir"]))
            entry["pid"] = None
            entry["running"] = False
            _save(sdir, state)
            raise
        _save(sdir, state)
        return state


def iter_logs(state_dir: str | os.PathLike[str] | None = None) -> Iterator[tuple[str, Path]]:
    """(server name, log path) for each server recorded in ``state_dir``."""
    state = _load(_resolve_dirs(state_dir)) or {}
    for name in ("kafka", "opensearch"):
        if state.get(name):
            yield name, Path(state[name]["log"])
