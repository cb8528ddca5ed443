"""Paths, settings and the error of the devstack (shared by its modules)."""

from __future__ import annotations

import os
from pathlib import Path

from soc.errors import SocError

__all__ = [
    "DEFAULT_CACHE_DIR",
    "DEFAULT_START_TIMEOUT",
    "DEFAULT_STATE_DIR",
    "DEFAULT_STOP_TIMEOUT",
    "KAFKA_LOG4J",
    "KAFKA_POM",
    "LOG_TAIL_LINES",
    "OPENSEARCH_LAUNCHER",
    "OPENSEARCH_LOG4J",
    "OPENSEARCH_POM",
    "REPO",
    "STATE_FILE",
    "TOOLS",
    "DevstackError",
]

#: Repository root (the parent of the ``soc`` package folder).
REPO = Path(__file__).resolve().parent.parent.parent
#: Where the Maven-resolved classpaths go (git-ignored).
DEFAULT_CACHE_DIR = REPO / ".cache"
#: Where :func:`soc.devstack.up` keeps ``devstack.json``, data folders and logs by default.
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


class DevstackError(SocError, RuntimeError):
    """A devstack server could not be fetched, started or stopped (message has the log tail)."""
