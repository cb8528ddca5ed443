"""pytest plugin: the real Kafka and OpenSearch servers of the devstack, once per session.

Register it from ``tests/conftest.py`` with ``pytest_plugins = ["tests.servers"]`` (or run
``pytest -p tests.servers``). Fixtures:

``devstack`` (session)
    Starts Apache Kafka and OpenSearch in parallel with :func:`soc.devstack.up` the first time a
    test needs them, and stops them (:func:`soc.devstack.down`) at the end of the session.
    Servers already running are reused instead when ``SOC_TEST_KAFKA_BOOTSTRAP`` (``host:port``)
    and/or ``SOC_TEST_OPENSEARCH_URL`` (``http://host:port``) are set, e.g. by ``.ci/run`` after
    ``soc devstack up``; only the missing one is then started, and only what this session
    started is stopped. Set ``SOC_TEST_DEVSTACK_STATE`` to the state dir of such an external
    stack so that outage tests can stop and start its OpenSearch.
    Value: a dict with ``kafka_bootstrap``, ``opensearch_url``, ``state_dir`` (the devstack
    state dir holding the session's OpenSearch, ``None`` when unknown), ``started`` (the
    servers this session started) and, when it started any, ``own_state_dir``.
    Nothing is skipped: when a server cannot start, every test using it errors with the tail
    of the server log.
``kafka_bootstrap`` (session)
    ``"127.0.0.1:PORT"`` of the Kafka broker.
``opensearch_url`` (session)
    ``"http://127.0.0.1:PORT"`` of the OpenSearch node.
``search_control`` (function)
    A :class:`SearchControl` to stop and start the search engine while Kafka keeps running
    (outage tests). It controls the session's OpenSearch when its state dir is known, otherwise
    a private OpenSearch started for this purpose (its URL is ``search_control.url``; use that,
    not ``opensearch_url``). After the test the engine is running again.
``elasticsearch_url`` (session, one per image)
    ``"http://HOST:PORT"`` of an Elasticsearch 8 and 9 container started through testcontainers.
    Only where a Docker engine answers (a user's machine); elsewhere (CI, these build machines)
    the tests using it are skipped with that reason, as the README's "Engines the tests cover"
    says. Images: ``SOC_TEST_ELASTICSEARCH_IMAGES`` (comma-separated), default 8.17.4 and 9.1.5.
``unique_name`` (function)
    A fresh lowercase name such as ``t-test-foo-1a2b3c4d``, valid as a Kafka topic, consumer
    group, OpenSearch index or template name; add suffixes of ``[a-z0-9-]`` for more names.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import socket
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from soc import devstack as ds

ENV_KAFKA = "SOC_TEST_KAFKA_BOOTSTRAP"
ENV_OPENSEARCH = "SOC_TEST_OPENSEARCH_URL"
ENV_STATE = "SOC_TEST_DEVSTACK_STATE"
#: Per-session state dirs of the stacks started by pytest (pid in the name).
SESSIONS_DIR = ds.DEFAULT_CACHE_DIR / "devstack-pytest"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _reap_stale_sessions() -> None:
    """Stop stacks left behind by pytest sessions that died without teardown (e.g. SIGKILL)."""
    if not SESSIONS_DIR.is_dir():
        return
    for path in SESSIONS_DIR.glob("session-*"):
        m = re.fullmatch(r"session-(\d+)", path.name)
        if not m or _pid_alive(int(m.group(1))):
            continue
        with contextlib.suppress(Exception):
            ds.down(path)
        shutil.rmtree(path, ignore_errors=True)


def _check_kafka(bootstrap: str) -> None:
    host, _, port = bootstrap.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=5):
            pass
    except (OSError, ValueError) as e:
        pytest.fail(f"{ENV_KAFKA}={bootstrap!r} is set but Kafka is not reachable: {e}", pytrace=False)


def _check_opensearch(url: str) -> None:
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/_cluster/health", timeout=10) as resp:
            resp.read()
    except (urllib.error.URLError, OSError, ValueError) as e:
        pytest.fail(f"{ENV_OPENSEARCH}={url!r} is set but OpenSearch is not reachable: {e}", pytrace=False)


@pytest.fixture(scope="session")
def devstack() -> Iterator[dict[str, Any]]:
    """The session's servers (see the module docstring)."""
    kafka_env = os.environ.get(ENV_KAFKA) or None
    search_env = os.environ.get(ENV_OPENSEARCH) or None
    external_state = os.environ.get(ENV_STATE) or None
    if kafka_env:
        _check_kafka(kafka_env)
    if search_env:
        _check_opensearch(search_env)

    info: dict[str, Any] = {
        "kafka_bootstrap": kafka_env,
        "opensearch_url": search_env.rstrip("/") if search_env else None,
        "state_dir": Path(external_state) if external_state else None,
        "started": [],
    }
    need_kafka, need_search = kafka_env is None, search_env is None
    if not (need_kafka or need_search):
        yield info
        return

    _reap_stale_sessions()
    state_dir = SESSIONS_DIR / f"session-{os.getpid()}"
    atexit.register(_down_quietly, state_dir)  # safety net if the session ends abnormally
    try:
        state = ds.up(state_dir, kafka=need_kafka, search=need_search)
    except ds.DevstackError as e:  # state_dir keeps only the failed logs; reaped by a later session
        pytest.fail(f"could not start the devstack servers:\n{e}", pytrace=False)
    if need_kafka:
        info["kafka_bootstrap"] = state["kafka_bootstrap"]
        info["started"].append("kafka")
    if need_search:
        info["opensearch_url"] = state["opensearch_url"]
        info["started"].append("opensearch")
        info["state_dir"] = state_dir  # so that search_control can stop/start this OpenSearch
    info["own_state_dir"] = state_dir
    try:
        yield info
    finally:
        _down_quietly(state_dir)


def _down_quietly(state_dir: Path) -> None:
    with contextlib.suppress(Exception):
        ds.down(state_dir)
    shutil.rmtree(state_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def kafka_bootstrap(devstack: dict[str, Any]) -> str:
    """``"127.0.0.1:PORT"`` of the session's Kafka broker."""
    return devstack["kafka_bootstrap"]


@pytest.fixture(scope="session")
def opensearch_url(devstack: dict[str, Any]) -> str:
    """``"http://127.0.0.1:PORT"`` of the session's OpenSearch node."""
    return devstack["opensearch_url"]


class SearchControl:
    """Stops and starts one OpenSearch node of a devstack (same port and data after restart)."""

    def __init__(self, state_dir: Path, url: str) -> None:
        self.state_dir = state_dir
        self.url = url

    def stop(self) -> None:
        """Stop the search engine (SIGTERM, then SIGKILL after 20 s); Kafka keeps running."""
        ds.stop_search(self.state_dir)

    def start(self) -> None:
        """Start it again and wait until the cluster is yellow (existing indices recovered)."""
        ds.start_search(self.state_dir)

    @property
    def running(self) -> bool:
        entry = ds.status(self.state_dir).get("opensearch") or {}
        return bool(entry.get("running"))


def _own_search_state(devstack: dict[str, Any]) -> tuple[Path, str] | None:
    state_dir = devstack.get("state_dir")
    if state_dir is None:
        return None
    state = ds.status(state_dir)
    entry = state.get("opensearch")
    if not entry or state.get("opensearch_url") != devstack["opensearch_url"]:
        return None
    return Path(state_dir), state["opensearch_url"]


@pytest.fixture(scope="session")
def _search_control_session(devstack: dict[str, Any]) -> Iterator[SearchControl]:
    own = _own_search_state(devstack)
    if own is not None:
        yield SearchControl(*own)
        return
    # The session's OpenSearch is external and its state dir unknown: use a private node.
    private = SESSIONS_DIR / f"session-{os.getpid()}-search"
    atexit.register(_down_quietly, private)
    try:
        state = ds.up(private, kafka=False, search=True)
    except ds.DevstackError as e:
        pytest.fail(f"could not start a private OpenSearch for outage tests:\n{e}", pytrace=False)
    try:
        yield SearchControl(private, state["opensearch_url"])
    finally:
        _down_quietly(private)


@pytest.fixture
def search_control(_search_control_session: SearchControl) -> Iterator[SearchControl]:
    """Stop/start the search engine during a test; it is running again afterwards."""
    yield _search_control_session
    if not _search_control_session.running:
        _search_control_session.start()


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> str:
    """A fresh lowercase topic/group/index name derived from the test name."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    return f"t-{slug or 'test'}-{uuid.uuid4().hex[:8]}"


ELASTICSEARCH_IMAGES = os.environ.get(
    "SOC_TEST_ELASTICSEARCH_IMAGES",
    "docker.elastic.co/elasticsearch/elasticsearch:8.17.4,docker.elastic.co/elasticsearch/elasticsearch:9.1.5",
).split(",")


def _docker_available() -> bool:
    try:
        import docker  # installed with testcontainers

        return bool(docker.from_env(timeout=3).ping())
    except Exception:
        return False


@pytest.fixture(scope="session", params=ELASTICSEARCH_IMAGES, ids=lambda image: image.rsplit(":", 1)[-1])
def elasticsearch_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """An Elasticsearch container per image (testcontainers), where Docker exists."""
    if not _docker_available():
        pytest.skip("no Docker engine on this machine: Elasticsearch 8/9 runs through testcontainers "
                    "only where Docker exists (OpenSearch covers the search store here)")
    from testcontainers.community.elasticsearch import ElasticSearchContainer

    container = ElasticSearchContainer(request.param, mem_limit="2G").with_env("ES_JAVA_OPTS", "-Xms1g -Xmx1g")
    with container:
        yield f"http://{container.get_container_host_ip()}:{container.get_exposed_port(container.port)}"
