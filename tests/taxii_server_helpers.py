"""The TAXII server for the tests of tests/test_taxii_server*.py: the real application served by
uvicorn on a loopback port in a thread, over a real store, with configured collections and API
tokens scoped to them; and STIX objects to post."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from soc.app import App
from soc.config import Settings
from soc.store.base import Store
from tests.api_fixtures import SHELL, app_settings, make_root

NATIONAL = "5b6f4a3e-7c1d-4e8f-9a2b-0c3d4e5f6a7b"  # read and write, TLP:AMBER
PEER = "9d8c7b6a-5e4f-4a3b-8c2d-1e0f9a8b7c6d"  # read only, TLP:GREEN
COLLECTIONS = [
    {"id": NATIONAL, "alias": "national", "title": "Trung tâm quốc gia", "can_write": True, "tlp": "amber",
     "description": "incidents and indicators for the national center"},
    {"id": PEER, "alias": "peer-green", "title": "Peers (TLP:GREEN)", "tlp": "green", "content": ["indicators"]},
]


def taxii_settings(tmp_path: Path, base: Settings | None = None, **taxii: Any) -> Settings:
    settings = app_settings(tmp_path, base)
    conf = {"collections": COLLECTIONS, "default_limit": 100, "max_limit": 1000, **taxii}
    return settings.model_copy(update={"taxii": type(settings.taxii).model_validate(conf)})


class BearerAuth(requests.auth.AuthBase):
    def __init__(self, token: str) -> None:
        self.token = token

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = f"Bearer {self.token}"
        return r


@dataclass
class Served:
    """The application over ``root`` served at ``url`` (``http://127.0.0.1:PORT``)."""

    root: App
    url: str
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def taxii(self) -> str:
        return f"{self.url}/taxii2/"

    @property
    def api_root(self) -> str:
        return f"{self.url}/taxii2/{self.root.settings.taxii.api_root}/"

    def collection_url(self, collection_id: str) -> str:
        return f"{self.api_root}collections/{collection_id}/"

    def token(self, *scopes: str, name: str | None = None, agency: str | None = None) -> str:
        """A new user (of ``agency``) with an API token of ``scopes``."""
        user = name or f"u-{uuid.uuid4().hex[:8]}"
        self.root.identity.users.add(SHELL, user, ["analyst"], agency=agency, password="một mật khẩu đủ dài 42",
                                     must_change_password=False)
        return self.root.identity.tokens.create(SHELL, user, "taxii", list(scopes)).secret


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def serve(root: App) -> Iterator[str]:
    """``create_app(root)`` served by uvicorn on a free loopback port until the block ends."""
    import uvicorn

    from soc.web.server import create_app

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(root), host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, name=f"taxii-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the server did not start on port {port}")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def served(tmp_path: Path, *, store: Store | None = None, settings: Settings | None = None,
           **taxii: Any) -> Iterator[Served]:
    root = make_root(tmp_path, taxii_settings(tmp_path, settings, **taxii), store=store)
    try:
        with serve(root) as url:
            yield Served(root, url)
    finally:
        if store is None:
            root.close()


def indicator(n: int, *, modified: str = "2026-12-01T00:00:00.000Z", value: str | None = None,
              object_id: str | None = None) -> dict[str, Any]:
    """A STIX 2.1 indicator (a distinct IPv4 address per ``n``)."""
    address = value or f"198.51.{n // 250 % 250}.{n % 250 + 1}"
    return {"type": "indicator", "spec_version": "2.1",
            "id": object_id or f"indicator--{uuid.uuid5(uuid.NAMESPACE_URL, f'taxii-test-{n}')}",
            "created": "2026-12-01T00:00:00.000Z", "modified": modified, "name": f"ipv4 {address}",
            "pattern": f"[ipv4-addr:value = '{address}']", "pattern_type": "stix",
            "valid_from": "2026-12-01T00:00:00Z", "indicator_types": ["malicious-activity"]}


def envelope(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return {"objects": objects}
