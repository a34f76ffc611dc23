"""``stream-al desk``: the labelling desk, a web page for engineers answering queries;
``stream-al desk users add|list|remove``: its accounts.

``desk`` is a group whose callback serves when no subcommand is given, so
``stream-al desk [options]`` starts the desk exactly as it did before it had accounts.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from consumers.cli import Cli
from consumers.commands import _options as shared

if TYPE_CHECKING:
    from consumers.oracle.desk.accounts import Accounts

#: Options that override the settings' ``desk`` section (STREAM_AL_DESK__*) when given.
LabelerOption = Annotated[str | None, typer.Option(
    help="name on every label, no login: for one trusted operator (default: desk.labeler; "
    "unset: each person logs in)")]
ClaimMinutesOption = Annotated[float | None, typer.Option(
    min=0.05, help="minutes a card stays reserved for whoever opened it (default: "
    "desk.claim_minutes, 5)")]
LocalClaimsOption = Annotated[bool | None, typer.Option(
    "--local-claims/--shared-claims", help="keep claims in this process only (then run no "
    "other desk or terminal on these topics); default: share them on topics.claims")]
NameArgument = Annotated[str, typer.Argument(help="the person's name, as it signs labels")]


def desk_overrides(**given: Any) -> dict[str, Any]:
    """The desk options that were given, as a settings override."""
    chosen = {name: value for name, value in given.items() if value is not None}
    return {"desk": chosen} if chosen else {}


def register(cli: Cli) -> None:
    desk_app = typer.Typer(name="desk", invoke_without_command=True, add_completion=False)
    desk_app.callback()(serve_desk)
    desk_app.add_typer(users_group())
    cli.app.add_typer(desk_app)


def serve_desk(
    ctx: typer.Context,
    config: shared.ConfigOption = None,
    bootstrap_servers: shared.BootstrapOption = None,
    host: Annotated[str | None, typer.Option(
        help="address to listen on (default: desk.host, 127.0.0.1; 0.0.0.0: the LAN)")] = None,
    port: Annotated[int | None, typer.Option(
        min=0, max=65535, help="default: desk.port, 8765; 0 picks a free port")] = None,
    labeler: LabelerOption = None,
    claim_minutes: ClaimMinutesOption = None,
    local_claims: LocalClaimsOption = None,
) -> None:
    """Serve the labelling desk: a live queue of oracle requests, one key per class.

    People log in with accounts made by `stream-al desk users add NAME`, unless
    desk.labeler or desk.trusted_user_header names them instead.
    """
    if ctx.invoked_subcommand is not None:
        return
    from consumers.kafka.reach import EXIT_NO_BROKER, announce
    from consumers.oracle.desk.serve import serve
    from stream_al.errors import BrokerUnavailable, StreamAlError

    shared.setup_logging(fmt="%(asctime)s %(levelname)s %(message)s")
    settings = shared.settings_or_exit("desk", config, bootstrap_servers, **desk_overrides(
        host=host, port=port, labeler=labeler, claim_minutes=claim_minutes,
        local_claims=local_claims))
    announce(settings.kafka)
    try:
        serve(settings)
    except BrokerUnavailable as error:
        shared.fail("desk", error, EXIT_NO_BROKER)
    except (StreamAlError, OSError) as error:
        shared.fail("desk", error)


def users_group() -> typer.Typer:
    users = typer.Typer(name="users", no_args_is_help=True, add_completion=False,
                        help="Desk accounts: names and argon2 password hashes, in "
                        "desk.users_file (default: state_dir/desk-users.json, mode 0600).")
    users.command("add")(add_user)
    users.command("list")(list_users)
    users.command("remove")(remove_user)
    return users


def add_user(
    name: NameArgument,
    config: shared.ConfigOption = None,
    password_stdin: Annotated[bool, typer.Option(
        "--password-stdin", help="read the password from the first line of stdin (scripts)")]
    = False,
    replace: Annotated[bool, typer.Option(
        "--replace", help="set a new password for an existing account")] = False,
) -> None:
    """Add an account (asks for the password twice, or reads it with --password-stdin)."""
    from consumers.oracle.desk.accounts import AccountError

    accounts = _accounts("desk users add", config)
    password = _password_from_stdin() if password_stdin else _typed_password()
    try:
        accounts.add(name, password, replace=replace)
    except AccountError as error:
        shared.fail("desk users add", error)
    typer.echo(f"{name}: {'new password set' if replace else 'account added'} "
               f"({accounts.path})")


def list_users(config: shared.ConfigOption = None) -> None:
    """Print the account names, one a line."""
    from consumers.oracle.desk.accounts import AccountError

    accounts = _accounts("desk users list", config)
    try:
        accounts.check()
    except AccountError as error:
        shared.fail("desk users list", error)
    for name in accounts.names():
        typer.echo(name)


def remove_user(name: NameArgument, config: shared.ConfigOption = None) -> None:
    """Remove an account; its sessions end at their next request."""
    from consumers.oracle.desk.accounts import AccountError

    accounts = _accounts("desk users remove", config)
    try:
        accounts.remove(name)
    except AccountError as error:
        shared.fail("desk users remove", error)
    typer.echo(f"{name}: account removed ({accounts.path})")


def _accounts(command: str, config: Path | None) -> Accounts:
    from consumers.oracle.desk.accounts import Accounts, users_path

    return Accounts(users_path(shared.settings_or_exit(command, config)))


def _password_from_stdin() -> str:
    line = typer.get_text_stream("stdin").readline().rstrip("\r\n")
    if not line:
        shared.fail("desk users add", "--password-stdin: stdin held no password")
    return line


def _typed_password() -> str:
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password
