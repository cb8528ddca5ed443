"""``soc run``: the embedded service (every source of ``ingest/sources/``, SQLite, scheduled rules)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from soc.cli.common import RulesOption, fail
from soc.config import load_settings


def run(
    rules: RulesOption = None,
    udp: Annotated[str | None, typer.Option(help="Syslog UDP listen address (default from settings: 0.0.0.0:5514); '' disables.")] = None,
    tcp: Annotated[str | None, typer.Option(help="Syslog TCP listen address (RFC 6587 framing); '' disables.")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Where the store and the inbox live (default: ./soc-data).")] = None,
    once: Annotated[bool, typer.Option(help="Read what the file sources hold (inbox, file, evtx, tail: up to "
                                             "their end), run every rule once, then stop; listeners and Kafka "
                                             "sources are not started.")] = False,
    api: Annotated[str | None, typer.Option(help="HTTP API listen address HOST:PORT (default from settings: "
                                            "api.host and api.port, 127.0.0.1:8080); '' turns it off.",
                                            show_default=False)] = None,
    insecure_api: Annotated[bool, typer.Option("--insecure-api", help="Serve the API over plain HTTP on an "
                                               "address other machines can reach (behind a TLS proxy only).")] = False,
) -> None:
    """Run the embedded service: every source of ingest/sources/ (syslog, inbox, tail, file, evtx,
    kafka), SQLite store, scheduled rules, playbooks and reports.

    Drop log files into <data-dir>/inbox to ingest them; point agency devices at the syslog
    port. The HTTP API (docs/api.md) is served too, on 127.0.0.1:8080 unless api.host/api.port or
    --api say otherwise (any other address needs api.certificate, or --insecure-api). Ctrl-C
    stops cleanly (pending batches are stored first). The start-up lines say where the store is
    (password masked), what each source reads or listens on, and on which addresses and ports the
    service listens; one line per file says what became of its records (docs/sources.md).
    """
    import logging

    from soc.app import App
    from soc.ingest.sourcedefs import SourceDefinitionError
    from soc.ingest.sources import SourceError
    from soc.secrets import SecretError, mask_urls_in
    from soc.service import run_service
    from soc.store import StoreError
    from soc.web.serve import ApiServeError, ApiServer

    # before the settings are read: their warnings (a password in clear text...) are logged
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    overrides = {}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    settings = load_settings(**overrides)
    if udp is not None:
        settings.syslog.udp = udp or None
    if tcp is not None:
        settings.syslog.tcp = tcp or None
    host, port = _api_address(api, settings.api.host if settings.api.enabled else None, settings.api.port)
    try:
        with App(settings, rule_dirs=rules) as app:
            server = None if once or host is None else ApiServer(app, host=host, port=port, insecure=insecure_api,
                                                                  option="--insecure-api")
            app.identity.ensure_first_admin(typer.echo)  # a fresh store: `admin`, shown once
            run_service(app, once=once, api=server)
    except (StoreError, SecretError) as error:  # store unreachable, bad URL, secret file missing
        fail(mask_urls_in(str(error)))
    except ApiServeError as error:  # plain HTTP on a reachable address, the API's port in use
        fail(str(error))
    except (SourceDefinitionError, SourceError) as error:  # a bad source file; a port in use, Kafka down
        fail(str(error))


def _api_address(option: str | None, host: str | None, port: int) -> tuple[str | None, int]:
    """The API's host and port from ``--api`` (``HOST:PORT``, ``[::1]:PORT``, ``''``: off), else
    the settings' (``host`` None: the API is off)."""
    if option is None:
        return host, port
    if not option:
        return None, port
    name, _, number = option.rpartition(":")
    if not name or not number.isdigit() or int(number) > 65535:
        fail(f"--api {option!r}: give HOST:PORT, e.g. 127.0.0.1:8080 or [::1]:8080 ('' turns the API off)")
    return name.strip("[]"), int(number)
