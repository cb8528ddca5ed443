"""``soc tokens ...``: API tokens for scripts and other systems, a thin shell over
:mod:`soc.identity.tokens`.

A token is printed once, when it is created; the store keeps only its digest. It acts as its
user with at most the user's rights, narrowed to its scopes, until it expires or is revoked.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from soc.cli.common import JsonOption, fail, service_layer
from soc.cli.listing import page_of
from soc.cli.timeargs import cli_now
from soc.cli.users import actor, call, identity
from soc.ui import cell, console, json_text, show_time, zone_note

app = typer.Typer(
    help="API tokens: create (printed once), list, revoke. A token has its user's rights at most, "
         "narrowed to its scopes: a permission (alerts:read), RESOURCE:* (reports:*) or "
         "taxii:COLLECTION:read|write.\n\n"
         "Examples:\n\n"
         "  soc tokens create ci-export --user an --scope events:read --scope events:export --expires 30d\n\n"
         "  soc tokens list --user an\n\n"
         "  soc tokens revoke ci-export --user an",
    no_args_is_help=True, rich_markup_mode="rich")


@app.command("create")
def tokens_create(
    name: Annotated[str, typer.Argument(help="A name for the token (unique among the user's live tokens).")],
    user: Annotated[str, typer.Option("--user", help="The user the token acts as.")],
    scope: Annotated[list[str] | None, typer.Option("--scope", help="What the token may do (repeat): a "
                     "permission such as alerts:read, RESOURCE:* or taxii:COLLECTION:read|write.",
                     show_default=False)] = None,
    expires: Annotated[str | None, typer.Option(help="Lifetime: 12h, 90d, 2w (default: auth.token_default_days; "
                                                "at most auth.token_max_days).", show_default=False)] = None,
) -> None:
    """Create a token and print it once."""
    from soc.identity.tokens import parse_lifetime

    layer = service_layer()
    ids = identity(layer)
    lifetime = call(lambda: parse_lifetime(expires)) if expires else None
    created = call(lambda: ids.tokens.create(actor(), user, name, scope or [], lifetime))
    token, zone = created.token, layer.settings.zone
    console().print(f"created token {token.name} (id {token.id}) of {token.user}: {', '.join(token.scopes)}; "
                    f"expires {show_time(token.expires_at, zone)}", markup=False, highlight=False)
    console().print("the token (shown only now; keep it in a secret store, send it as "
                    "'Authorization: Bearer TOKEN'):", markup=False, highlight=False)
    typer.echo(f"\n    {created.secret}\n")


@app.command("list")
def tokens_list(
    user: Annotated[str | None, typer.Option("--user", help="Only this user's tokens.")] = None,
    active: Annotated[bool, typer.Option("--active", help="Only tokens that work now.")] = False,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first.")] = 100,
    as_json: JsonOption = False,
) -> None:
    """List API tokens (never the tokens themselves), newest first."""
    layer = service_layer()
    ids, zone, now = identity(layer), layer.settings.zone, cli_now()
    tokens = [t for t in ids.tokens.list(user) if not active or t.status(now) == "active"]
    page = page_of(tokens, limit)
    if as_json:
        for token in page.items:
            print(json_text(token.public(now)))
        return
    table = Table(title=page.title("API tokens" + (" that work now" if active else ""), "newest first"),
                  caption=zone_note(zone))
    for column in ("id", "name", "user", "scopes", "status", "expires", "last used", "created"):
        table.add_column(column, overflow="fold", no_wrap=column == "id")
    styles = {"active": "green", "expired": "yellow", "revoked": "dim"}
    for token in page.items:
        status = token.status(now)
        table.add_row(cell(token.id), cell(token.name), cell(token.user), cell(", ".join(token.scopes)),
                      Text(status, styles[status]), show_time(token.expires_at, zone),
                      show_time(token.last_used_at, zone), show_time(token.created_at, zone))
    console().print(table)


@app.command("revoke")
def tokens_revoke(
    token: Annotated[str, typer.Argument(help="The token's id (or soc_ID_ prefix), or its name.")],
    user: Annotated[str | None, typer.Option("--user", help="The user whose token NAME is meant.")] = None,
) -> None:
    """Revoke a token: it stops working at once."""
    ids = identity()
    revoked = call(lambda: ids.tokens.revoke(actor(), token, user))
    if revoked.revoked_at is None:
        fail(f"token {revoked.id} was not revoked")
    console().print(f"revoked token {revoked.name} (id {revoked.id}) of {revoked.user}", markup=False,
                    highlight=False)
