"""``soc taxii ...``: the collections the TAXII 2.1 server of ``soc serve`` offers
(``taxii.collections``), and publishing an incident's STIX bundle into one -- a thin shell over
:mod:`soc.intel.taxii_collections` (docs/taxii.md).
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from soc.cli.common import JsonOption, fail, service_layer
from soc.ui import cell, console, json_text

app = typer.Typer(
    help="The TAXII 2.1 server's collections (served by `soc serve` under /taxii2/), and publishing into them.\n\n"
         "Examples:\n\n"
         "  soc taxii collections\n\n"
         "  soc taxii publish-incident INC-2026-0042 --collection national-amber\n\n"
         "Clients read a collection with an API token scoped to it: "
         "soc tokens create center --user center --scope taxii:COLLECTION-ID:read",
    no_args_is_help=True, rich_markup_mode="rich")


@app.command("collections")
def taxii_collections(as_json: JsonOption = False) -> None:
    """List the configured collections: id, alias, title, TLP, what they carry, who may write."""
    from soc.config import load_settings

    settings = load_settings()
    rows = [{"id": c.id, "alias": c.alias, "title": c.title, "tlp": c.tlp, "content": c.content,
             "can_read": c.can_read, "can_write": c.can_write, "recipient": c.recipient}
            for c in settings.taxii.collections]
    if as_json:
        for row in rows:
            print(json_text(row))
        return
    root = f"/taxii2/{settings.taxii.api_root}/" + ("" if settings.taxii.enabled else " (taxii.enabled is false)")
    table = Table(title=f"TAXII collections of {root}", caption="tokens: taxii:<id>:read / taxii:<id>:write")
    for column in ("id", "alias", "title", "TLP", "content", "clients", "recipient"):
        table.add_column(column, overflow="fold", no_wrap=column == "id")
    for row in rows:
        clients = "/".join(x for x, on in (("read", row["can_read"]), ("write", row["can_write"])) if on) or "-"
        table.add_row(cell(row["id"]), cell(row["alias"] or ""), cell(row["title"]), cell(str(row["tlp"]).upper()),
                      cell(", ".join(row["content"])), clients, cell(row["recipient"] or ""))
    console().print(table)
    if not rows:
        console().print("no collections: add them under taxii.collections in the settings", markup=False)


@app.command("publish-incident")
def taxii_publish_incident(
    incident: Annotated[str, typer.Argument(help="The incident id.")],
    collection: Annotated[str, typer.Option("--collection", help="The collection's id or alias.")],
    report: Annotated[str | None, typer.Option("--report", help="This report of the incident (default: its "
                                               "newest).", show_default=False)] = None,
) -> None:
    """Publish the STIX bundle of an incident's report (as the report's .stix.json has it, with its
    TLP) into a collection. Publishing the same report again adds nothing."""
    from soc.intel.taxii_collections import TaxiiPublishError, publish_incident

    layer = service_layer()
    assert layer.principal is not None
    try:
        report_no, result = publish_incident(layer.base_store, layer.settings, collection, incident,
                                             actor=layer.principal, audit=layer.audit, report_no=report,
                                             clock=layer.clock)
    except (TaxiiPublishError, ValueError) as error:  # ValueError: no such report, an invalid object
        fail(str(error))
    added = f"added at {result.date_added}" if result.date_added else "nothing new (already published)"
    console().print(f"published report {report_no} of incident {incident}: {len(result.successes)} objects, "
                    f"{added}", markup=False, highlight=False)
