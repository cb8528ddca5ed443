"""The JVMs: which ``java``, the flags both servers share, and class-data sharing archives."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shlex
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

from soc.devstack.common import DevstackError

__all__ = ["KAFKA_JVM_FLAGS", "OPENSEARCH_JVM_FLAGS", "cds", "extra_jvm_flags", "finalize_cds", "java"]

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


def java() -> str:
    """The ``java`` to run: ``$SOC_DEVSTACK_JAVA``, ``$JAVA_HOME/bin/java`` or the one on PATH."""
    explicit = os.environ.get("SOC_DEVSTACK_JAVA")
    if explicit:
        return explicit
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise DevstackError("no java found (set JAVA_HOME or SOC_DEVSTACK_JAVA; JDK 17+ is needed)")
    return found


def extra_jvm_flags() -> list[str]:
    """Flags from $SOC_DEVSTACK_JAVA_OPTS, appended last (so they win) to both JVMs."""
    return shlex.split(os.environ.get("SOC_DEVSTACK_JAVA_OPTS", ""))


def cds(name: str, lib: Path, java: str) -> tuple[list[str], str | None, str]:
    """Application class-data sharing (AppCDS) for faster JVM start (~1-1.5 s per server).

    The first start of a server with a given classpath and JDK records the classes it loads
    (``-XX:ArchiveClassesAtExit``, written when the JVM exits cleanly); :func:`finalize_cds`
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


def finalize_cds(entry: dict[str, Any], stop_result: str) -> None:
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
