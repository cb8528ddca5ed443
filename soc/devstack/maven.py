"""Fetching the servers' jars: Maven resolves the dependency-only POMs in ``tools/`` into flat
classpath folders under the cache directory."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from soc.devstack.common import (
    DEFAULT_CACHE_DIR,
    KAFKA_POM,
    LOG_TAIL_LINES,
    OPENSEARCH_POM,
    REPO,
    DevstackError,
)

__all__ = ["classpaths", "fetch"]


def classpaths(cache_dir: Path) -> dict[str, tuple[Path, Path]]:
    """Per server: (its POM, the folder its classpath is fetched into)."""
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
    for name, (pom, lib) in classpaths(cache).items():
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
