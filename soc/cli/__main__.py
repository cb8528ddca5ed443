"""``python -m soc.cli ...``: the same as the ``soc`` command."""

from soc.cli.main import main

main()
