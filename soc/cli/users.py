"""``soc users ...``: local users of the web console and the API, a thin shell over
:mod:`soc.identity.users`.

Who runs these commands on the server acts as ``local:LOGIN`` (every right: whoever can run
``soc`` there can read the store's files anyway). A password soc makes up is printed once and
must be changed at the first login; a password of your own comes from a file
(``--password-file``) or, for ``passwd`` on a terminal, from a prompt -- never from the command
line, where the shell history and the process list would keep it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.table import Table
from rich.text import Text

from soc.cli.common import JsonOption, fail, local_principal, service_layer
from soc.cli.listing import page_of
from soc.cli.timeargs import cli_now
from soc.ui import cell, console, json_text, show_time, zone_note

if TYPE_CHECKING:
    from soc.access import Principal
    from soc.app import App
    from soc.identity.service import Identity

app = typer.Typer(
    help="Users of the web console and the API: add, list, disable, enable, set passwords and roles.\n\n"
         "Roles: admin, analyst, responder, reporter, auditor, agency (docs: soc/access.py); an --agency "
         "limits what a user sees to that agency and the ones below it.\n\n"
         "Examples:\n\n"
         "  soc users add an --role analyst --email an@soc.example.vn\n\n"
         "  soc users add yte --role agency --agency so-tttt\n\n"
         "  soc users passwd an\n\n"
         "  soc users disable an",
    no_args_is_help=True, rich_markup_mode="rich")

T = TypeVar("T")

PasswordFileOption = Annotated[Path | None, typer.Option(
    "--password-file", help="Read the password from this file (its first line). Without it soc makes up a "
    "one-time password, prints it once and the user must change it at the first login.", show_default=False)]
MustChangeOption = Annotated[bool | None, typer.Option(
    "--must-change/--no-must-change", help="Whether the user must change the password at the next login "
    "(default: yes for a password soc made up, no for one from --password-file).", show_default=False)]
RoleOption = Annotated[list[str] | None, typer.Option(
    "--role", help="A role (repeat for several): admin, analyst, responder, reporter, auditor, agency.",
    show_default=False)]


def identity(layer: App | None = None) -> Identity:
    """The identity services over the configured store (or ``layer``'s), on the CLI clock."""
    return (layer or service_layer()).identity


def actor() -> Principal:
    """Who runs the command: the shell user (``local:LOGIN``)."""

    return local_principal()


def call(action: Callable[[], T]) -> T:
    """Run a service call; refusals (which say why) become ``error: ...`` and exit 2."""
    from soc.access import Forbidden
    from soc.agencies import AgencyError
    from soc.identity.model import IdentityError

    try:
        return action()
    except (IdentityError, Forbidden, AgencyError) as error:
        fail(str(error))


def read_password_file(path: Path) -> str:
    """The first line of ``path`` (without its line break); exits 2 when unreadable or empty."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        fail(f"cannot read the password file {path}: {error}")
    password = text.splitlines()[0] if text.splitlines() else ""
    if not password:
        fail(f"the password file {path} is empty")
    return password


def stdin_is_terminal() -> bool:
    """Whether a person can be prompted (tests replace this)."""
    return sys.stdin.isatty()


def show_one_time(name: str, password: str) -> None:
    """Print a one-time password, once, on its own line (easy to copy, nothing else on it)."""
    console().print(f"one-time password of {name} (shown only now; it must be changed at the first login):",
                    markup=False, highlight=False)
    typer.echo(f"\n    {password}\n")


@app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="Login name: letters a-z, digits, '.', '_', '-' (lowercased).")],
    role: RoleOption = None,
    agency: Annotated[str | None, typer.Option(help="Limit the user to this agency (an id of "
                                               "ingest/agencies.yml) and the ones below it.")] = None,
    email: Annotated[str | None, typer.Option(help="E-mail address.")] = None,
    display_name: Annotated[str | None, typer.Option("--display-name", help="Full name shown in the console.")] = None,
    password_file: PasswordFileOption = None,
    must_change: MustChangeOption = None,
) -> None:
    """Add a user with one or several roles."""
    password = read_password_file(password_file) if password_file else None
    ids = identity()
    added = call(lambda: ids.users.add(actor(), name, role or [], agency=agency, email=email,
                                       display_name=display_name, password=password,
                                       must_change_password=must_change))
    user = added.user
    scope = f"; agency {user.agency}" if user.agency else ""
    console().print(f"added user {user.name} ({', '.join(user.roles)}{scope})", markup=False, highlight=False)
    if added.one_time_password:
        show_one_time(user.name, added.one_time_password)


@app.command("list")
def users_list(
    limit: Annotated[int, typer.Option(min=1, help="At most this many, by name.")] = 100,
    as_json: JsonOption = False,
) -> None:
    """List the users (no password hashes), by name."""
    layer = service_layer()
    ids, zone, now = identity(layer), layer.settings.zone, cli_now()
    page = page_of(ids.users.list(), limit)
    if as_json:
        for user in page.items:
            print(json_text(user.public(now)))
        return
    table = Table(title=page.title("users", "by name"), caption=zone_note(zone))
    for column in ("name", "display name", "roles", "agency", "e-mail", "status", "last login", "created"):
        table.add_column(column, overflow="fold", no_wrap=column == "name")
    for user in page.items:
        status = ("disabled", "red") if user.disabled else ("locked", "yellow") if user.locked(now) else ("active", "green")
        flags = Text(status[0], status[1])
        if user.must_change_password:
            flags.append(", must change password", "dim")
        table.add_row(cell(user.name), cell(user.display_name), cell(", ".join(user.roles)), cell(user.agency or "-"),
                      cell(user.email or "-"), flags, show_time(user.last_login_at, zone),
                      show_time(user.created_at, zone))
    console().print(table)


@app.command("disable")
def users_disable(name: Annotated[str, typer.Argument(help="The user.")]) -> None:
    """Disable a user: their sessions end, they cannot log in and their API tokens stop working."""
    ids = identity()
    user = call(lambda: ids.users.disable(actor(), name))
    console().print(f"disabled user {user.name}: sessions ended, API tokens stopped", markup=False, highlight=False)


@app.command("enable")
def users_enable(name: Annotated[str, typer.Argument(help="The user.")]) -> None:
    """Enable a disabled user again (also clears a lockout after failed logins)."""
    ids = identity()
    user = call(lambda: ids.users.enable(actor(), name))
    console().print(f"enabled user {user.name}", markup=False, highlight=False)


@app.command("passwd")
def users_passwd(
    name: Annotated[str, typer.Argument(help="The user.")],
    password_file: PasswordFileOption = None,
    must_change: MustChangeOption = None,
) -> None:
    """Set a user's password: from --password-file, else typed twice at a prompt on a terminal,
    else a one-time password printed once. The user's sessions end."""
    ids = identity()
    user = call(lambda: ids.users.require(name))
    generated = False
    if password_file is not None:
        password: str | None = read_password_file(password_file)
    elif stdin_is_terminal():
        password = typer.prompt(f"new password for {user.name}", hide_input=True, confirmation_prompt=True)
    else:
        password, generated = None, True
    changed = call(lambda: ids.users.set_password(actor(), user.name, password, must_change_password=must_change))
    console().print(f"password of {changed.user.name} set; their sessions ended", markup=False, highlight=False)
    if generated and changed.one_time_password:
        show_one_time(changed.user.name, changed.one_time_password)


@app.command("roles")
def users_roles(
    name: Annotated[str, typer.Argument(help="The user.")],
    role: RoleOption = None,
    agency: Annotated[str | None, typer.Option(help="Limit the user to this agency and the ones below it.")] = None,
    no_agency: Annotated[bool, typer.Option("--no-agency", help="Remove the agency limit.")] = False,
) -> None:
    """Change a user's roles (--role replaces them all) and/or agency; their sessions end."""
    if role is None and agency is None and not no_agency:
        fail("give --role (repeat for several), --agency or --no-agency")
    if agency is not None and no_agency:
        fail("give --agency or --no-agency, not both")
    ids = identity()
    user = call(lambda: ids.users.set_roles(actor(), name, role, agency=agency, clear_agency=no_agency))
    scope = f"agency {user.agency}" if user.agency else "every agency"
    console().print(f"user {user.name}: {', '.join(user.roles)}; {scope}", markup=False, highlight=False)
