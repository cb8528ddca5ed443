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

The package: this module has the public functions; :mod:`.maven` fetches the jars,
:mod:`.kafka` and :mod:`.opensearch` configure, start and probe each server, :mod:`.jvm` has
the shared JVM flags and class-data sharing, :mod:`.processes` the state file, ports, logs
and process handling, :mod:`.common` the paths, settings and :class:`DevstackError`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from soc.devstack import jvm, maven, processes
from soc.devstack import kafka as kafka_server
from soc.devstack import opensearch as opensearch_server
from soc.devstack.common import (
    DEFAULT_CACHE_DIR,
    DEFAULT_START_TIMEOUT,
    DEFAULT_STATE_DIR,
    DEFAULT_STOP_TIMEOUT,
    REPO,
    STATE_FILE,
    DevstackError,
)
from soc.devstack.maven import fetch

__all__ = [
    "DEFAULT_CACHE_DIR",
    "DEFAULT_START_TIMEOUT",
    "DEFAULT_STATE_DIR",
    "DEFAULT_STOP_TIMEOUT",
    "REPO",
    "STATE_FILE",
    "DevstackError",
    "down",
    "fetch",
    "iter_logs",
    "start_search",
    "status",
    "stop_search",
    "up",
]


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
    sdir = processes.resolve_dirs(state_dir)
    cache = Path(cache_dir).resolve() if cache_dir is not None else DEFAULT_CACHE_DIR
    with processes.state_lock:
        old = processes.load_state(sdir)
        if old is not None:
            running = [n for n in ("kafka", "opensearch")
                       if old.get(n) and processes.alive(old[n].get("pid"), old[n].get("run_dir"))]
            if running:
                raise DevstackError(f"devstack in {sdir} is already running ({', '.join(running)}); "
                                    "use status() or down() first")
            _cleanup(sdir, old)
        libs = fetch(cache, quiet=False)
        sdir.mkdir(parents=True, exist_ok=True)
        ports = processes.free_ports(4)
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
                "cluster_id": kafka_server.cluster_id(), "run_dir": str(run), "data_dir": str(run / "data"),
                "log": str(run / "server.log"),
            }
            state["kafka_bootstrap"] = f"127.0.0.1:{ports[0]}"
            jobs["kafka"] = (kafka_server.start_kafka, state["kafka"], libs["kafka"])
        if search:
            run = Path(tempfile.mkdtemp(prefix="opensearch-", dir=sdir))
            state["opensearch"] = {
                "pid": None, "running": False, "port": ports[2], "transport_port": ports[3],
                "run_dir": str(run), "data_dir": str(run / "node"), "log": str(run / "server.log"),
            }
            state["opensearch_url"] = f"http://127.0.0.1:{ports[2]}"
            jobs["opensearch"] = (opensearch_server.start_opensearch, state["opensearch"], libs["opensearch"])

        # Saved before and right after each launch, so that down() can always find the pids,
        # even if this process dies while waiting for readiness.
        save_lock = threading.Lock()

        def save() -> None:
            with save_lock:
                processes.save_state(sdir, state)

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
        jvm.finalize_cds(entry, processes.terminate(entry.get("pid"), entry["run_dir"]))
        with contextlib.suppress(OSError):
            shutil.copyfile(entry["log"], sdir / f"{name}-failed.log")
            kept.append(str(sdir / f"{name}-failed.log"))
        shutil.rmtree(entry["run_dir"], ignore_errors=True)
    with contextlib.suppress(FileNotFoundError):
        processes.state_path(sdir).unlink()
    return kept


def _cleanup(sdir: Path, state: dict[str, Any]) -> None:
    for name in ("kafka", "opensearch"):
        entry = state.get(name)
        if entry and entry.get("run_dir"):
            shutil.rmtree(entry["run_dir"], ignore_errors=True)
        if entry and entry.get("cds_pending"):
            Path(entry["cds_pending"]).unlink(missing_ok=True)
    with contextlib.suppress(FileNotFoundError):
        processes.state_path(sdir).unlink()


def down(state_dir: str | os.PathLike[str] | None = None, *, timeout: float = DEFAULT_STOP_TIMEOUT) -> dict[str, str]:
    """Stop the servers recorded in ``<state_dir>/devstack.json`` and remove their state.

    Each server's process group gets SIGTERM (a clean shutdown takes a few seconds), then
    SIGKILL after ``timeout`` seconds. A pid is only signalled while its command line still
    names the server's run folder (no stray kill after pid reuse). The run folders (data and
    logs) and ``devstack.json`` are then removed. Returns ``{"kafka": "stopped"|"killed"|
    "not running", "opensearch": ...}``; an empty dict when nothing was recorded.
    """
    sdir = processes.resolve_dirs(state_dir)
    with processes.state_lock:
        state = processes.load_state(sdir)
        if state is None:
            return {}
        result: dict[str, str] = {}
        names = [n for n in ("kafka", "opensearch") if state.get(n)]
        with ThreadPoolExecutor(max_workers=max(1, len(names))) as pool:
            futs = {n: pool.submit(processes.terminate, state[n].get("pid"), state[n]["run_dir"], timeout)
                    for n in names}
            for n, fut in futs.items():
                result[n] = fut.result()
                jvm.finalize_cds(state[n], result[n])
        _cleanup(sdir, state)
        return result


def status(state_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """What runs in ``state_dir``: the saved state plus, per server, live ``running`` (process
    alive), ``listening`` (port accepts connections) and ``rss_mib``. Top-level ``running`` is
    True when every recorded server runs. Returns ``{"state_dir": ..., "running": False,
    "kafka": None, "opensearch": None}`` when nothing was started there. Never raises for a
    missing or dead stack.
    """
    sdir = processes.resolve_dirs(state_dir)
    state = processes.load_state(sdir)
    if state is None:
        return {"state_dir": str(sdir), "running": False, "kafka": None, "opensearch": None,
                "kafka_bootstrap": None, "opensearch_url": None}
    all_running = True
    for name in ("kafka", "opensearch"):
        entry = state.get(name)
        if not entry:
            continue
        running = processes.alive(entry.get("pid"), entry["run_dir"])
        entry["running"] = running
        entry["listening"] = running and processes.port_open(entry["port"])
        entry["rss_mib"] = processes.rss_mib(entry.get("pid")) if running else None
        all_running = all_running and running
    state["running"] = all_running
    return state


def stop_search(state_dir: str | os.PathLike[str] | None = None, *, timeout: float = DEFAULT_STOP_TIMEOUT) -> dict[str, Any]:
    """Stop only OpenSearch (SIGTERM, SIGKILL after ``timeout``); Kafka keeps running.

    Keeps the port and the data folder recorded so that :func:`start_search` brings the same
    node back at the same URL with the same indices. Used to simulate a search-engine outage.
    Returns the updated state. Raises :class:`DevstackError` if no OpenSearch was started in
    ``state_dir``.
    """
    sdir = processes.resolve_dirs(state_dir)
    with processes.state_lock:
        state = processes.load_state(sdir)
        if state is None or not state.get("opensearch"):
            raise DevstackError(f"no OpenSearch recorded in {sdir}; start it with up() first")
        entry = state["opensearch"]
        entry["last_stop"] = processes.terminate(entry.get("pid"), entry["run_dir"], timeout)
        jvm.finalize_cds(entry, entry["last_stop"])
        entry["pid"] = None
        entry["running"] = False
        processes.save_state(sdir, state)
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
    sdir = processes.resolve_dirs(state_dir)
    with processes.state_lock:
        state = processes.load_state(sdir)
        if state is None or not state.get("opensearch"):
            raise DevstackError(f"no OpenSearch recorded in {sdir}; start it with up() first")
        entry = state["opensearch"]
        if processes.alive(entry.get("pid"), entry["run_dir"]):
            return state
        lib = maven.classpaths(Path(state.get("cache_dir") or DEFAULT_CACHE_DIR))["opensearch"][1]
        try:
            opensearch_server.start_opensearch(entry, lib, timeout,
                                               on_pid=lambda: processes.save_state(sdir, state))
        except DevstackError:
            jvm.finalize_cds(entry, processes.terminate(entry.get("pid"), entry["run_dir"]))
            entry["pid"] = None
            entry["running"] = False
            processes.save_state(sdir, state)
            raise
        processes.save_state(sdir, state)
        return state


def iter_logs(state_dir: str | os.PathLike[str] | None = None) -> Iterator[tuple[str, Path]]:
    """(server name, log path) for each server recorded in ``state_dir``."""
    state = processes.load_state(processes.resolve_dirs(state_dir)) or {}
    for name in ("kafka", "opensearch"):
        if state.get(name):
            yield name, Path(state[name]["log"])
