"""Access commands: users and the audit log (offline, on the root); channel privacy, members,
tokens, whoami and client set-up (through the API; tokens also offline with --root)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click

from repoproxy.cli.client import channel, client_options
from repoproxy.cli.common import config_option, open_services, root_option
from repoproxy.cli.http import Client
from repoproxy.errors import RepoproxyError


def _offline(func: Any) -> Any:
    """Run a root-side action, turning domain errors into one-line CLI errors."""
    try:
        return func()
    except RepoproxyError as e:
        raise click.ClickException(e.message) from None


# --- users (offline) ---------------------------------------------------------------------
@click.group()
def user() -> None:
    """Local user accounts (on the server root)."""


def _password(stdin: bool) -> str:
    if stdin:
        return sys.stdin.readline().rstrip("\n")
    return str(click.prompt("password", hide_input=True, confirmation_prompt=True))


@user.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(["user", "admin"]), default="user", show_default=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@root_option
@config_option
def user_add(name: str, role: str, password_stdin: bool, root: Path | None,
             config: Path | None) -> None:
    """Add a local user (password prompted, or read with --password-stdin)."""
    from repoproxy.domain.users import add_user

    services = open_services(root, config)
    password = _password(password_stdin)
    _offline(lambda: add_user(services, name, password, role))
    click.echo(f"user {name} added ({role})")


@user.command("list")
@root_option
@config_option
def user_list(root: Path | None, config: Path | None) -> None:
    """List local users: name, role, creation time."""
    from repoproxy.domain.users import list_users

    for u in list_users(open_services(root, config, must_exist=True)):
        click.echo(f"{u['name']}\t{u['role']}\t{u['created']}")


@user.command("remove")
@click.argument("name")
@root_option
@config_option
def user_remove(name: str, root: Path | None, config: Path | None) -> None:
    """Remove a local user; their tokens are revoked."""
    from repoproxy.domain.users import remove_user

    services = open_services(root, config)
    _offline(lambda: remove_user(services, name))
    click.echo(f"user {name} removed; their tokens are revoked")


@user.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True)
@root_option
@config_option
def user_passwd(name: str, password_stdin: bool, root: Path | None,
                config: Path | None) -> None:
    """Change a local user's password."""
    from repoproxy.domain.users import set_password

    services = open_services(root, config)
    password = _password(password_stdin)
    _offline(lambda: set_password(services, name, password))
    click.echo(f"password of {name} changed")


# --- audit (offline) -----------------------------------------------------------------------
@click.group()
def audit() -> None:
    """The audit log."""


@audit.command("list")
@click.option("--since", default=None, help="ISO date or time, e.g. 2026-01-31.")
@click.option("--channel", "channel_name", default=None)
@root_option
@config_option
def audit_list(since: str | None, channel_name: str | None, root: Path | None,
               config: Path | None) -> None:
    """Print audit entries as JSON lines (an export format)."""
    from repoproxy.domain.audit import audit_entries

    for entry in audit_entries(open_services(root, config, must_exist=True), since,
                               channel_name):
        click.echo(json.dumps(entry, sort_keys=True))


# --- channel privacy and members (API) ---------------------------------------------------
def _privacy_command(name: str, privacy: str, help_text: str) -> click.Command:
    @click.command(name, help=help_text)
    @click.argument("channel_name")
    @client_options
    def command(client: Client, channel_name: str) -> None:
        body = client.request("PATCH", f"/api/v1/channels/{channel_name}",
                              json={"privacy": privacy})
        click.echo(f"{body['name']} is now {body['privacy']}")

    return command


@channel.group("member")
def member() -> None:
    """Channel members: owners manage the channel, members read it."""


@member.command("add")
@click.argument("channel_name")
@click.argument("user_name")
@click.option("--role", type=click.Choice(["member", "owner"]), default="member",
              show_default=True)
@client_options
def member_add(client: Client, channel_name: str, user_name: str, role: str) -> None:
    """Add a user to a channel as member (reads) or owner (manages)."""
    client.request("POST", f"/api/v1/channels/{channel_name}/members",
                   json={"user": user_name, "role": role})
    click.echo(f"{user_name} is {role} of {channel_name}")


@member.command("remove")
@click.argument("channel_name")
@click.argument("user_name")
@client_options
def member_remove(client: Client, channel_name: str, user_name: str) -> None:
    """Remove a user from a channel (a channel keeps at least one owner)."""
    client.request("DELETE", f"/api/v1/channels/{channel_name}/members/{user_name}")
    click.echo(f"{user_name} removed from {channel_name}")


@member.command("list")
@click.argument("channel_name")
@client_options
def member_list(client: Client, channel_name: str) -> None:
    """List a channel's members and their roles."""
    for m in client.request("GET", f"/api/v1/channels/{channel_name}/members")["members"]:
        click.echo(f"{m['user']}\t{m['role']}")


# --- tokens ------------------------------------------------------------------------------
@click.group(invoke_without_command=True)
@click.option("--list-user-ids", is_flag=True,
              help="With --channel: the user ids holding service tokens of the channel.")
@click.option("--channel", "channel_name", default=None, help="The channel (--list-user-ids).")
@click.pass_context
def token(ctx: click.Context, list_user_ids: bool, channel_name: str | None) -> None:
    """API tokens: offline on the root with --root/-c, else through the API (--url)."""
    if ctx.invoked_subcommand is not None:
        return
    if not list_user_ids:
        click.echo(ctx.get_help())
        return
    if not channel_name:
        raise click.UsageError("--list-user-ids needs --channel")
    ctx.invoke(token_user_ids, channel_name=channel_name, url=None, token=None)


@token.command("list-user-ids")
@click.option("--channel", "channel_name", required=True)
@client_options
def token_user_ids(client: Client, channel_name: str) -> None:
    """The user ids holding service tokens of a channel (channel managers), with counts."""
    rows = client.request("GET", "/api/v1/tokens", params={"channel": channel_name})["tokens"]
    counts: dict[str, int] = {}
    for row in rows:
        if not row["revoked"]:
            key = row["owner"] or "(none)"
            counts[key] = counts.get(key, 0) + 1
    for user_id, n in sorted(counts.items()):
        click.echo(json.dumps({"user_id": user_id, "tokens": n}))


@token.command("create")
@click.option("--name", required=True, help="A name to recognise the token by.")
@click.option("--admin", is_flag=True, help="May do everything.")
@click.option("--channel", "channels", multiple=True, help="A channel it covers (repeat).")
@click.option("--token-channels", default="", help="Channels it covers, comma-separated.")
@click.option("--user-id", default=None, help="The user the token belongs to.")
@click.option("--permission", type=click.Choice(["read", "write", "manage"]), default="read",
              show_default=True)
@click.option("--expires-in", "--max-days", "expires_in", type=int, default=None,
              help="Days until it expires.")
@click.option("--url", envvar="REPOPROXY_URL", default=None, help="Server URL (API mode).")
@click.option("--token", "auth", envvar="REPOPROXY_TOKEN", default=None,
              help="Your token (API mode).")
@root_option
@config_option
def token_create(name: str, admin: bool, channels: tuple[str, ...], token_channels: str,
                 user_id: str | None, permission: str, expires_in: int | None,
                 url: str | None, auth: str | None, root: Path | None,
                 config: Path | None) -> None:
    """Create a token and print it (only the token, on stdout)."""
    chans = [*channels, *[c for c in token_channels.split(",") if c]]
    if root is not None or config is not None or url is None:
        from repoproxy.domain.tokens import create_token

        if not admin and not chans and not user_id:
            raise click.ClickException("give --admin, --user-id or at least one --channel")
        services = open_services(root, config)
        secret, _ = _offline(lambda: create_token(
            services, name=name, admin=admin, channels=chans, access=permission,
            owner=user_id, expires_in_days=expires_in))
        click.echo(secret)
        return
    body = {"name": name, "admin": admin, "channels": chans, "permission": permission,
            "user_id": user_id, "expires_in_days": expires_in}
    try:
        click.echo(Client(url, auth).request("POST", "/api/v1/tokens", json=body)["token"])
    except RepoproxyError as e:
        raise click.ClickException(e.message) from None


@token.command("list")
@click.option("--channel", "channel_name", default=None,
              help="Only service tokens covering this channel.")
@click.option("--user-id", default=None, help="Only tokens of this user id.")
@click.option("--url", envvar="REPOPROXY_URL", default=None)
@click.option("--token", "auth", envvar="REPOPROXY_TOKEN", default=None)
@root_option
@config_option
def token_list(channel_name: str | None, user_id: str | None, url: str | None,
               auth: str | None, root: Path | None, config: Path | None) -> None:
    """List tokens (never their secrets)."""
    from repoproxy.domain.tokens import visible_tokens

    if root is not None or config is not None or url is None:
        rows = [r.as_json() for r in visible_tokens(
            open_services(root, config, must_exist=True), "cli", channel=channel_name,
            owner=user_id)]
    else:
        params = {k: v for k, v in (("channel", channel_name), ("user_id", user_id)) if v}
        try:
            rows = Client(url, auth).request("GET", "/api/v1/tokens", params=params)["tokens"]
        except RepoproxyError as e:
            raise click.ClickException(e.message) from None
    for row in rows:
        click.echo(json.dumps(row))


@token.command("edit")
@click.argument("token_id")
@click.option("--permission", type=click.Choice(["read", "write", "manage"]), default=None)
@click.option("--name", default=None, help="A new name.")
@client_options
def token_edit(client: Client, token_id: str, permission: str | None,
               name: str | None) -> None:
    """Change a token's permission and/or name."""
    if permission is None and name is None:
        raise click.UsageError("give --permission and/or --name")
    body = {k: v for k, v in (("permission", permission), ("name", name)) if v is not None}
    row = client.request("PATCH", f"/api/v1/tokens/{token_id}", json=body)
    click.echo(f"token {token_id}: {row['name']}, {row['permission']}")


@token.command("delete")
@click.argument("token_id")
@client_options
def token_delete(client: Client, token_id: str) -> None:
    """Revoke a token."""
    client.request("DELETE", f"/api/v1/tokens/{token_id}")
    click.echo(f"token {token_id} revoked")


# --- whoami and client set-up --------------------------------------------------------------
@click.command()
@client_options
def whoami(client: Client) -> None:
    """Who the server thinks you are: name, role, channels, token expiry."""
    click.echo(json.dumps(client.request("GET", "/api/v1/whoami"), indent=2))


@click.command("client-config")
@click.option("--channel", "channel_name", required=True)
@click.option("--url", envvar="REPOPROXY_URL", default="http://127.0.0.1:8080",
              show_default=True, help="Server URL, with its path prefix if it has one.")
@click.option("--token", envvar="REPOPROXY_TOKEN", default=None,
              help="The token clients should use (shown in the output unless it is an admin "
                   "token; public channels need none).")
def client_config(channel_name: str, url: str, token: str | None) -> None:
    """Print the configuration lines for conda, micromamba and pixi/rattler.

    Asks the server whether the channel exists and is public, and never prints an admin token
    (``REPOPROXY_TOKEN`` is often one): clients get a placeholder for a read token instead.
    """
    base = url.rstrip("/")  # keeps a path prefix (http://host/prefix)
    name = channel_name.strip("/")
    client = Client(base, token)
    try:
        info = client.request("GET", f"/api/v1/channels/{name}")
        admin = bool(token) and client.request("GET", "/api/v1/whoami").get("role") == "admin"
    except RepoproxyError as e:
        if e.status in (401, 403, 404):
            raise click.ClickException(
                f"channel {name!r} not found at {base} (or not readable with this token): "
                f"{e.message}") from None
        raise click.ClickException(e.message) from None
    if info.get("privacy") == "public":
        click.echo(f"""# {name} is public: clients need no token
# conda: ~/.condarc
channels:
  - {base}/{name}

# micromamba / mamba
micromamba install -c {base}/{name} <package>

# pixi / rattler
# pixi project channel add {base}/{name}""")
        return
    tok = "<TOKEN>" if admin or not token else token
    if tok == "<TOKEN>":
        click.echo(f"# {name} is {info.get('privacy')}: replace <TOKEN> with a read token, e.g. "
                   f"repoproxy token create --name NAME --channel {name} --permission read")
    host = urlsplit(base).hostname or "localhost"
    click.echo(f"""# conda: ~/.condarc
channels:
  - {base}/t/{tok}/{name}
# or, with a channel alias:  conda config --set channel_alias {base}/t/{tok}

# micromamba / mamba
micromamba auth login {base} --bearer {tok}
micromamba install -c {base}/{name} <package>

# pixi / rattler: RATTLER_AUTH_FILE (rattler keys credentials by host, without the port)
{json.dumps({host: {"BearerToken": tok}}, indent=2)}
# pixi project channel add {base}/{name}""")


def register(cli: click.Group) -> None:
    for command in (user, audit, token, whoami, client_config):
        cli.add_command(command)
    channel.add_command(_privacy_command("lock", "private", "Make a channel private."))
    channel.add_command(_privacy_command("soft-lock", "authenticated",
                                         "Any authenticated identity may read the channel."))
    channel.add_command(_privacy_command("unlock", "public", "Make a channel public."))
