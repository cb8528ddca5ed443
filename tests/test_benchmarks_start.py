"""Every benchmark starts from a fresh clone (no ``.cache`` folder yet, nothing run before it).

The figures themselves are printed by the benchmarks, never asserted here (no timed tests)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

#: the benchmark scripts (helper modules next to them are imported, not run)
BENCHMARKS = sorted(p for p in (ROOT / "benchmarks").glob("*.py")
                    if '__name__ == "__main__"' in p.read_text(encoding="utf-8"))


def test_bench_dir_creates_the_missing_cache_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from soc import devstack

    cache = tmp_path / "fresh-clone" / ".cache"
    monkeypatch.setattr(devstack, "DEFAULT_CACHE_DIR", cache)
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import bulk_ceiling
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    made = bulk_ceiling.bench_dir("bench-ingest-")
    assert made.is_dir() and made.parent == cache and made.name.startswith("bench-ingest-")


def test_no_benchmark_makes_its_folder_in_a_cache_it_did_not_create() -> None:
    for path in BENCHMARKS:
        text = path.read_text(encoding="utf-8")
        assert "dir=devstack.DEFAULT_CACHE_DIR" not in text, f"{path.name}: use bulk_ceiling.bench_dir"


@pytest.mark.parametrize("path", BENCHMARKS, ids=lambda p: p.name)
def test_benchmark_starts(path: Path, tmp_path: Path) -> None:
    """``--help`` from another working directory: imports resolve without the test suite's set-up."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, str(path), "--help"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
