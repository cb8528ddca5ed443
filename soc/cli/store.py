"""``soc store ...``: the search store as an operator sets it up (the roles its users need)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from soc.cli.common import fail
from soc.config import load_settings

app = typer.Typer(help="The search store (OpenSearch, Elasticsearch): the least-privilege roles of soc's "
                       "processes. See docs/kafka.md, 'A store user per process'.",
                  no_args_is_help=True)

ENGINES = ("opensearch", "elasticsearch")


@app.command("role")
def role(
    process: Annotated[str, typer.Option("--for", help="The process the role is for: worker (soc kafka worker), "
                                         "detect (soc detect, analyst commands) or service (soc run).",
                                         show_default=False)],
    engine: Annotated[str | None, typer.Option("--engine", help="opensearch or elasticsearch (default: the "
                                               "store_url's, else both).", show_default=False)] = None,
    prefix: Annotated[str | None, typer.Option("--index-prefix", help="Index prefix (default "
                                               "SOC_KAFKA__INDEX_PREFIX, soc).", show_default=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print only the role bodies as one JSON object "
                                          "(engine -> body), for scripts.")] = False,
) -> None:
    """Print the role a process needs on the search store, as the request that creates it (OpenSearch
    security plugin, Elasticsearch security): index privileges only on the prefix's event and
    document indices, plus what every process needs to install its index templates and retention
    policy. Create the role, then a user with it, and put that user in the process's store URL.

        soc store role --for worker --engine opensearch
    """
    from soc.store.search_roles import PROCESSES, render_role, store_role

    if process not in PROCESSES:
        fail(f"--for: unknown process {process!r}: use one of {', '.join(PROCESSES)}")
    if engine is not None and engine not in ENGINES:
        fail(f"--engine: unknown engine {engine!r}: use opensearch or elasticsearch")
    settings = load_settings()
    if engine is None:
        scheme = (settings.store_url or "").split("://", 1)[0].split("+", 1)[0]
        engines = [scheme] if scheme in ENGINES else list(ENGINES)
    else:
        engines = [engine]
    try:
        found = store_role(process, prefix or settings.kafka.index_prefix)
    except ValueError as error:
        fail(str(error))
    if as_json:
        bodies = {name: found.opensearch() if name == "opensearch" else found.elasticsearch() for name in engines}
        typer.echo(json.dumps({"role": found.name, **bodies}, indent=2))
        return
    typer.echo("\n\n".join(f"# {name}: {found.description}\n{render_role(found, name)}" for name in engines))


@app.command("reindex")
def reindex_command(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would move.")] = False,
) -> None:
    """Move the configured search store's existing indices to the current mappings (ECS types with
    case-insensitive `lc` fields, `ecs.version`), each event day index copied and counted, then
    rebuild the alerts index Kibana reads (kibana.alert.* fields, date @timestamp). Stop the
    service first; a day whose count differs is left as it was and can be moved again.

        soc store reindex --dry-run
    """
    from soc.cli.common import service_layer
    from soc.store import StoreError
    from soc.store.search_base import SearchStore
    from soc.store.search_reindex import reindex

    store = service_layer().base_store
    if not isinstance(store, SearchStore):
        fail("soc store reindex: the configured store is not a search store (OpenSearch, Elasticsearch)")
    try:
        moved = reindex(store, dry_run=dry_run)
    except StoreError as error:
        fail(str(error))
    for item in moved:
        count = "" if item.documents < 0 else f" {item.documents:,} documents"
        typer.echo(f"{item.index}: {item.action}{count}")
