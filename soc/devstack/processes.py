"""The servers as processes: the state file (pids, ports, paths), free ports, starting a JVM
detached with its log, waiting until it is ready, and stopping it (SIGTERM, then SIGKILL)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from soc.devstack.common import (
    DEFAULT_STATE_DIR,
    DEFAULT_STOP_TIMEOUT,
    LOG_TAIL_LINES,
    STATE_FILE,
    DevstackError,
)

__all__ = [
    "alive",
    "free_ports",
    "launch",
    "load_state",
    "port_open",
    "resolve_dirs",
    "rss_mib",
    "save_state",
    "state_lock",
    "state_path",
    "tail",
    "terminate",
    "wait_ready",
]

#: Held while a process of this interpreter reads, changes and writes a state file.
state_lock = threading.Lock()
# Popen objects of servers started by this Python process, so that they can be reaped.
_children: dict[int, subprocess.Popen[bytes]] = {}


# -- the state file ----------------------------------------------------------------------------


def state_path(state_dir: Path) -> Path:
    return state_dir / STATE_FILE


def resolve_dirs(state_dir: str | os.PathLike[str] | None) -> Path:
    """The state folder to use (default ``<repo>/.cache/devstack``), absolute."""
    return (Path(state_dir) if state_dir is not None else DEFAULT_STATE_DIR).resolve()


def load_state(state_dir: Path) -> dict[str, Any] | None:
    """The saved state, None when nothing was started there."""
    path = state_path(state_dir)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None


def save_state(state_dir: Path, state: dict[str, Any]) -> None:
    """Write the state atomically (a temporary file renamed over the old one)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_path(state_dir)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


# -- ports and logs ----------------------------------------------------------------------------


def free_ports(n: int) -> list[int]:
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


def port_open(port: int, timeout: float = 0.5) -> bool:
    """True when something accepts connections on ``127.0.0.1:port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def tail(path: str | os.PathLike[str] | None, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a log (or why they cannot be read)."""
    if not path:
        return "(no log)"
    try:
        with open(path, "rb") as f:
            return b"".join(deque(f, maxlen=lines)).decode("utf-8", "replace").rstrip()
    except OSError as e:
        return f"(cannot read {path}: {e})"


# -- processes ---------------------------------------------------------------------------------


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def alive(pid: int | None, marker: str | None = None) -> bool:
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


def rss_mib(pid: int | None) -> float | None:
    """Resident memory of a process in MiB (None when unknown)."""
    if not pid:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def launch(cmd: list[str], log_path: Path, cwd: Path) -> subprocess.Popen[bytes]:
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


def terminate(pid: int | None, marker: str | None, timeout: float = DEFAULT_STOP_TIMEOUT) -> str:
    """SIGTERM the server's process group, SIGKILL it after timeout. Returns what happened."""
    if not alive(pid, marker):
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
        if not alive(pid):
            return "stopped"
        time.sleep(0.1)
    signal_group(signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and alive(pid):
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


def wait_ready(
    what: str, proc: subprocess.Popen[bytes], entry: dict[str, Any], probe: Callable[[int], object],
    timeout: float, cancel: threading.Event | None, t0: float,
) -> None:
    """Poll probe(port) until it returns a truthy value; raise with the log tail otherwise."""
    log_path = entry["log"]
    deadline = t0 + timeout
    while True:
        if proc.poll() is not None:
            raise DevstackError(f"{what} exited with code {proc.returncode} while starting; "
                                f"last lines of {log_path}:\n{tail(log_path)}")
        if cancel is not None and cancel.is_set():
            raise DevstackError(f"{what} start cancelled")
        if probe(entry["port"]):
            break
        if time.monotonic() > deadline:
            raise DevstackError(f"{what} not ready on 127.0.0.1:{entry['port']} after {timeout:.0f} s; "
                                f"last lines of {log_path}:\n{tail(log_path)}")
        time.sleep(0.25)
    entry["start_seconds"] = round(time.monotonic() - t0, 2)
    entry["started_at"] = time.time()
    entry["running"] = True
