"""Serving the API: uvicorn on a thread, the bind rules, TLS, and the periodic purge.

``soc serve`` runs only the API; ``soc run`` runs it next to the syslog listeners and the
scheduled rules (:class:`soc.service.Service` starts and stops it). Both build one
:class:`ApiServer` over the same root :class:`~soc.app.App` as every other front door.

**Bind rules** (:func:`check_bind`). The API binds ``api.host`` (default ``127.0.0.1``). On a
loopback address it may serve plain HTTP: only this machine reaches it. On any other address it
needs ``api.certificate`` and ``api.private_key`` -- it then serves HTTPS only, TLS 1.2 or later
-- or an explicit ``--insecure`` (plain HTTP, for a TLS proxy in front of it; the start-up
banner says so loudly). Otherwise it refuses to start and says what to do. With a certificate
the cookies are ``Secure`` and ``__Host-`` prefixed and answers carry HSTS.

**Housekeeping.** Expired sessions and spent login counters are deleted every
``api.purge_minutes`` (:meth:`soc.identity.service.Identity.purge`).
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

from soc.app import App
from soc.config_api import ApiSettings
from soc.errors import SocError
from soc.net import is_loopback_host, listen_address
from soc.web.server import create_app

__all__ = ["ApiServeError", "ApiServer", "check_bind", "tls_context"]

log = logging.getLogger(__name__)
#: how long start() waits for uvicorn to take requests, and stop() for it to finish
START_SECONDS, STOP_SECONDS = 30.0, 15.0


class ApiServeError(SocError):
    """The API cannot be served as configured (the message says what to do)."""


def check_bind(host: str, port: int, *, tls: bool, insecure: bool, option: str = "--insecure") -> None:
    """Refuse plain HTTP on an address other machines can reach, unless ``insecure`` (the
    command-line ``option`` that says so, named in the message)."""
    if tls or insecure or is_loopback_host(host):
        return
    raise ApiServeError(
        f"the API would serve plain HTTP on {listen_address(host, port)}, where passwords, session cookies "
        "and API tokens would cross the network unencrypted. Give it a certificate (api.certificate and "
        "api.private_key in soc.yml: it then serves HTTPS), or bind 127.0.0.1 (api.host, --host) behind a TLS "
        f"proxy on this machine, or pass {option} if a TLS proxy elsewhere terminates HTTPS for it")


def tls_context(settings: ApiSettings) -> ssl.SSLContext:
    """The server's TLS context (TLS 1.2 or later) with the configured certificate and key."""
    assert settings.certificate is not None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_COMPRESSION
    try:
        context.load_cert_chain(settings.certificate, settings.private_key, settings.private_key_password())
    except (ssl.SSLError, OSError) as error:
        reason = getattr(error, "reason", None) or getattr(error, "strerror", None) or str(error)
        raise ApiServeError(f"api.certificate {settings.certificate} / api.private_key "
                            f"{settings.private_key or '(in the certificate file)'} cannot be used: {reason} "
                            "(a PEM chain and its key; a key with a password needs api.key_password_file or "
                            "api.key_password_env)") from None
    return context


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host.strip("[]"), port), family=family, backlog=128)
    except OSError as error:
        raise ApiServeError(f"the API cannot listen on {host}:{port}: {error.strerror or error} (choose "
                            "another port with api.port or --port, or turn the API off with api.enabled: "
                            "false)") from None


class ApiServer:
    """The API over ``root`` on uvicorn, on a thread of its own.

    ``host``, ``port`` override the settings (``--host``, ``--port``); ``insecure`` allows plain
    HTTP on a non-loopback address (``option``: the command-line option that says so, for the
    messages). The constructor checks everything that can be checked before listening
    (:class:`ApiServeError`); :meth:`start` listens, :meth:`stop` stops."""

    def __init__(self, root: App, settings: ApiSettings | None = None, *, host: str | None = None,
                 port: int | None = None, insecure: bool = False, option: str = "--insecure") -> None:
        self.settings = settings or root.settings.api
        self.root = root
        self.host = host or self.settings.host
        self.port = self.settings.port if port is None else port
        self.tls = self.settings.tls
        self.insecure = insecure and not self.tls and not is_loopback_host(self.host)
        self.option = option
        check_bind(self.host, self.port, tls=self.tls, insecure=insecure, option=option)
        self.context = tls_context(self.settings) if self.tls else None
        self.app = create_app(root, tls=self.tls)
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._purger: threading.Thread | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def url(self) -> str:
        """The base URL (the bound port once started)."""
        shown = f"[{self.host.strip('[]')}]" if ":" in self.host else self.host
        return f"{self.scheme}://{shown}:{self.port}"

    def describe(self) -> str:
        """``API https://0.0.0.0:8443 (all interfaces)`` for the banner's listening line."""
        return f"API {self.scheme}://{listen_address(self.host, self.port)}"

    def warnings(self) -> list[str]:
        """What the banner must say loudly (plain HTTP on a reachable address)."""
        if not self.insecure:
            return []
        return [f"WARNING: the API serves plain HTTP on {listen_address(self.host, self.port)} ({self.option}): "
                "passwords, session cookies and API tokens cross the network unencrypted unless a TLS proxy "
                "terminates HTTPS in front of it. Give api.certificate and api.private_key to serve HTTPS."]

    # -- lifecycle ----------------------------------------------------------------------------------
    def start(self) -> None:
        """Listen and serve on a thread; returns once requests are taken (or raises
        :class:`ApiServeError`). The store, identities and audit trail are opened first, here."""
        import uvicorn

        self.root.base_store  # noqa: B018 -- open the shared parts before requests race for them
        self.root.identity  # noqa: B018
        self.root.audit  # noqa: B018
        sock = _listen(self.host, self.port)
        self.port = int(sock.getsockname()[1])
        trusted = self.settings.trusted_proxies
        config = uvicorn.Config(self.app, lifespan="off", log_config=None, access_log=False, server_header=False,
                                proxy_headers=bool(trusted), forwarded_allow_ips=trusted or None,
                                timeout_graceful_shutdown=int(STOP_SECONDS) - 5)
        config.load()
        config.ssl = self.context  # ours: TLS 1.2+, loaded and checked already
        self._server = server = uvicorn.Server(config)
        self._thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="soc-api", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_SECONDS
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                sock.close()
                raise ApiServeError(f"the API did not start on {self.url} (see the log above)")
            time.sleep(0.05)
        self._purger = threading.Thread(target=self._purge_loop, name="soc-api-purge", daemon=True)
        self._purger.start()

    def stop(self) -> None:
        """Stop taking requests, let the running ones finish (a few seconds at most)."""
        self._stopping.set()
        if self._server is not None:
            self._server.should_exit = True
        for thread in (self._thread, self._purger):
            if thread is not None:
                thread.join(STOP_SECONDS)

    def wait(self, stop: threading.Event, tick: Callable[[], None] | None = None) -> None:
        """Block until ``stop`` is set or the server ends by itself."""
        while not stop.wait(0.5):
            if self._thread is not None and not self._thread.is_alive():
                log.error("the API server stopped by itself")
                return
            if tick is not None:
                tick()

    def _purge_loop(self) -> None:
        interval = self.settings.purge_minutes * 60
        while not self._stopping.wait(interval):
            self.purge()

    def purge(self) -> dict[str, int]:
        """Delete expired sessions and spent login counters now (errors are logged)."""
        try:
            removed = self.root.identity.purge()
        except Exception:  # the store may be down for a while: next time
            log.exception("purging expired sessions failed")
            return {}
        if any(removed.values()):
            log.info("purged %s", ", ".join(f"{n} {what}" for what, n in removed.items()))
        return removed
