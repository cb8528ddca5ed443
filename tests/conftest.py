"""Shared test fixtures.

Real external data is read from ``../shared/data`` (see its README; ``SOC_SHARED_DATA`` names
another folder); tests that need it skip with a clear message only when that folder is absent. Real servers (Kafka, OpenSearch) come from the
``tests/servers.py`` plugin, started once per session.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest_plugins = ["tests.servers", "tests.browser"]

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("SOC_SHARED_DATA") or ROOT.parent / "shared" / "data").resolve()


def shared(*parts: str) -> Path:
    """Path of a file under ../shared/data, skipping the test when the data is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real test data not found at {SHARED_DATA} (clone the shared data next to the repo)")
    if not path.exists():
        raise FileNotFoundError(f"expected real test data at {path}")
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real test data not found at {SHARED_DATA}")
    return SHARED_DATA
