"""What every command module shares: the rule folder option, failing with a message, the
caller's name, opening the service layer."""

from __future__ import annotations

import getpass
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.text import Text

from soc.config import content_dir, load_settings
from soc.config_errors import ConfigError
from soc.ui import console, literal

if TYPE_CHECKING:
    from soc.access import Principal
    from soc.app import App

__all__ = ["JsonOption", "RulesOption", "config_error_exit", "fail", "local_principal",
           "rule_dirs", "service_layer"]

RulesOption = Annotated[
    list[Path] | None,
    typer.Option("--rules", "-r", help="Sigma rule folder or file; repeat for several "
                 "(default: the project's detections/ plus SOC_RULE_DIRS).", show_default=False),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def rule_dirs(rules: list[Path] | None) -> list[Path]:
    """The rule folders given, else the project's detections/ plus the configured ones."""
    if rules:
        return list(rules)
    return [content_dir("detections"), *load_settings().rule_dirs]


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code`` (2: bad input or setup). The
    message is printed literally (it often quotes input or data): no markup, control characters
    escaped, its own line breaks kept."""
    console(stderr=True).print(Text.assemble(("error:", "bold red"), " ", literal(message, newlines=True)),
                               highlight=False)
    raise typer.Exit(code)


def config_error_exit(error: ConfigError, debug: bool = False) -> NoReturn:
    """Print a configuration error -- ``error: soc.yml:3: ...``, one line per problem, no
    traceback unless ``debug`` (``soc --debug``, ``SOC_DEBUG=1``) -- and exit 2."""
    from rich.markup import escape

    if debug:
        traceback.print_exception(error)
    err = console(stderr=True)
    problems = [str(p) for p in error.problems] or [str(error)]
    if len(problems) == 1:
        err.print(f"[bold red]error:[/] {escape(problems[0])}", soft_wrap=True, highlight=False)
    else:
        err.print(f"[bold red]error:[/] the configuration has {len(problems)} problems:", highlight=False)
        for problem in problems:
            err.print(f"  {problem}", soft_wrap=True, highlight=False, markup=False)
    raise typer.Exit(2)


def local_principal() -> Principal:
    """The shell user running the command, as a principal: ``local:LOGIN`` with every right
    (whoever can run ``soc`` on the server can read the store's files anyway). The OS login,
    not a name given on the command line: histories and approvals name who really acted."""
    from soc.access import Principal

    try:
        login = getpass.getuser()
    except Exception:  # no login name in a container
        login = "unknown"
    return Principal.local(login)


def service_layer(**options: Any) -> App:
    """The service layer (:class:`soc.app.App`) over the configured store acting as the shell user
    (:func:`local_principal`: every right, every change in the audit trail as ``local:LOGIN``),
    opened now: a store that cannot be reached, a wrong URL or a missing password file is
    reported here (exit 2), with any password masked. ``options`` go to :class:`~soc.app.App`."""
    from soc.app import App
    from soc.cli.timeargs import cli_now
    from soc.secrets import SecretError, mask_urls_in
    from soc.store import StoreError

    app = App(load_settings(), clock=cli_now, **options).acting_as(local_principal())
    try:
        app.store  # noqa: B018 -- open it now
    except (StoreError, SecretError) as error:
        fail(mask_urls_in(str(error)))
    return app
