"""What every command module shares: the rule folder option, failing with a message, the
caller's name, opening the service layer."""

from __future__ import annotations

import getpass
import os
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from soc.config import content_dir, load_settings
from soc.ui import console

__all__ = ["ActorOption", "JsonOption", "RulesOption", "acting_user", "fail", "rule_dirs"]

RulesOption = Annotated[
    list[Path] | None,
    typer.Option("--rules", "-r", help="Sigma rule folder or file; repeat for several "
                 "(default: the project's detections/ plus SOC_RULE_DIRS).", show_default=False),
]
ActorOption = Annotated[str | None, typer.Option(
    "--actor", help="Who does this (recorded in the history; default: $SOC_ACTOR or your login).",
    show_default=False)]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def rule_dirs(rules: list[Path] | None) -> list[Path]:
    """The rule folders given, else the project's detections/ plus the configured ones."""
    if rules:
        return list(rules)
    return [content_dir("detections"), *load_settings().rule_dirs]


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code`` (2: bad input or setup)."""
    console(stderr=True).print(f"[bold red]error:[/] {message}", markup=True, highlight=False)
    raise typer.Exit(code)


def acting_user(given: str | None) -> str:
    """Who runs a command: ``--actor``, else ``$SOC_ACTOR``, else the login name."""
    if given:
        return given
    try:
        return os.environ.get("SOC_ACTOR") or getpass.getuser()
    except Exception:  # no login name in a container
        return "analyst"
