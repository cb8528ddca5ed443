"""``soc serve``: the HTTP API alone (``soc run`` serves it too, next to the listeners and rules)."""

from __future__ import annotations

from typing import Annotated

import typer

from soc.cli.common import fail


def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (default from settings: api.host, "
                                                   "127.0.0.1).", show_default=False)] = None,
    port: Annotated[int | None, typer.Option(min=0, max=65535, help="TCP port (default from settings: "
                                                                     "api.port, 8080; 0: any free port).",
                                             show_default=False)] = None,
    insecure: Annotated[bool, typer.Option("--insecure", help="Serve plain HTTP on an address other machines "
                                           "can reach (only behind a TLS proxy; said loudly at start-up).")] = False,
    routes: Annotated[bool, typer.Option("--routes", help="Print every API route with the permission it needs "
                                         "(Markdown) and exit.")] = False,
) -> None:
    """Serve the HTTP API (docs/api.md) over the configured store: /api/v1, the description at
    /api/openapi.json, the documentation at /api/docs.

    Binds 127.0.0.1 unless --host or api.host says otherwise; any other address needs
    api.certificate and api.private_key (HTTPS, TLS 1.2+) or --insecure. On a store with no user
    it creates `admin` and prints its one-time password once. Ctrl-C or SIGTERM stops it (running
    requests finish first).
    """
    import logging
    import signal
    import threading

    from soc.app import App
    from soc.config import load_settings
    from soc.secrets import SecretError, mask_urls_in, redact_logs
    from soc.store import StoreError
    from soc.ui import console, zone_note
    from soc.web.serve import ApiServeError, ApiServer
    from soc.web.server import create_app, route_table

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = load_settings()
    if routes:
        typer.echo(route_table(create_app(App(settings))), nl=False)
        return
    redact_logs(settings.secret_values())
    out = console()
    try:
        with App(settings) as app:
            server = ApiServer(app, host=host, port=port, insecure=insecure)
            app.identity.ensure_first_admin(typer.echo)  # a fresh store: `admin`, shown once
            server.start()
            out.print(f"store: {settings.store_display_url()}  ({zone_note(settings.zone)})", markup=False,
                      highlight=False)
            for warning in server.warnings():
                out.print(warning, style="bold red", markup=False, highlight=False)
            out.print(f"listening on: {server.describe()}; no other port", markup=False, highlight=False)
            out.print(f"API {server.url}/api/v1 (documentation: {server.url}/api/docs); Ctrl-C to stop",
                      markup=False, highlight=False)
            stop = threading.Event()
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, lambda *_: stop.set())
            server.wait(stop)
            out.print("stopping: letting running requests finish...", markup=False, highlight=False)
            server.stop()
    except (StoreError, SecretError) as error:  # store unreachable, bad URL, secret file missing
        fail(mask_urls_in(str(error)))
    except ApiServeError as error:  # plain HTTP on a reachable address, a port in use, a bad certificate
        fail(str(error))
