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
) -> None:
    """Run the embedded service: every source of ingest/sources/ (syslog, inbox, tail, file, evtx,
    kafka), SQLite store, scheduled rules, playbooks and reports.

    Drop log files into <data-dir>/inbox to ingest them; point agency devices at the syslog
    port. Ctrl-C stops cleanly (pending batches are stored first). The start-up lines say where
    the store is (password masked), what each source reads or listens on, and on which addresses
    and ports the service listens; one line per file says what became of its records
    (docs/sources.md).
    """
    import logging

    from soc.app import App
    from soc.identity.bootstrap import ensure_first_admin
    from soc.ingest.sourcedefs import SourceDefinitionError
    from soc.ingest.sources import SourceError
    from soc.secrets import SecretError, mask_urls_in
    from soc.service import run_service
    from soc.store import StoreError

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
    try:
        with App(settings, rule_dirs=rules) as app:
            ensure_first_admin(app.store, typer.echo, settings=settings.auth)  # a fresh store: `admin`, shown once
            run_service(app, once=once)
    except (StoreError, SecretError) as error:  # store unreachable, bad URL, secret file missing
        fail(mask_urls_in(str(error)))
    except (SourceDefinitionError, SourceError) as error:  # a bad source file; a port in use, Kafka down
        fail(str(error))


