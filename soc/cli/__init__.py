"""The ``soc`` command line (typer): one module per command group, mounted in :mod:`soc.cli.main`.

Run it as ``soc ...`` or ``python -m soc.cli ...``.
"""

from soc.cli.main import app, main

__all__ = ["app", "main"]
