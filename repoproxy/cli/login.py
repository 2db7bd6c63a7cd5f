"""``repoproxy login``, ``logout`` and ``config``: the client's configuration file
(:mod:`repoproxy.cli.userconfig`)."""

from __future__ import annotations

import socket
import sys
from typing import Any

import click

from repoproxy.cli.client import from_env
from repoproxy.cli.http import Client
from repoproxy.cli.userconfig import (
    DEFAULT_URL,
    ENV,
    KEYS,
    ConfigFileError,
    client_settings,
    config_path,
    describe_token,
    load,
    resolve,
    save,
)
from repoproxy.errors import RepoproxyError


def _load() -> dict[str, Any]:
    try:
        return load()
    except ConfigFileError as e:
        raise click.ClickException(str(e)) from None


def _whoami(client: Client) -> dict[str, Any]:
    me: dict[str, Any] = client.request("GET", "/api/v1/whoami")
    if me.get("kind") == "anonymous" or not me.get("name"):
        raise click.ClickException("the server did not accept these credentials")
    return me


@click.command()
@click.option("--url", envvar="REPOPROXY_URL", default=None,
              help="Server URL (REPOPROXY_URL; default: the config file's, else "
                   f"{DEFAULT_URL}).")
@click.option("--token", default=None, help="Store this token (no password needed).")
@click.option("--username", default=None,
              help="Sign in with this user's password; a personal token is created for you.")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@click.option("--channel", "channel_name", default=None,
              help="Default channel of `repoproxy upload` and `download`.")
@click.option("--token-name", default=None,
              help="Name of the token created for you (default: repoproxy-cli@<host>).")
def login(url: str | None, token: str | None, username: str | None, password_stdin: bool,
          channel_name: str | None, token_name: str | None) -> None:
    """Sign in: store the server URL, a token (file mode 0600) and a default channel in
    the config file (~/.config/repoproxy/config.toml, or REPOPROXY_CONFIG)."""
    if token and username:
        raise click.UsageError("give --token or --username, not both")
    data = _load()
    server = (url or data.get("url") or DEFAULT_URL).rstrip("/")
    token_id = None
    try:
        if not token:
            username = username or str(click.prompt("username"))
            password = (sys.stdin.readline().rstrip("\n") if password_stdin
                        else str(click.prompt("password", hide_input=True)))
            basic = Client(server)
            basic.session.auth = (username, password)
            name = token_name or f"repoproxy-cli@{socket.gethostname()}"
            created = basic.request("POST", "/api/v1/tokens", json={"name": name})
            token, token_id = created["token"], created["id"]
        me = _whoami(Client(server, token))
    except RepoproxyError as e:
        raise click.ClickException(f"login failed: {e.message}") from None
    if not same_file_server(data, server):
        data = {}  # another server: nothing of the old one carries over
    data.update(url=server, token=token, user=me["name"])
    data.pop("token_id", None)
    if token_id:
        data["token_id"] = token_id
    if channel_name:
        data["default_channel"] = channel_name
    path = save(data)
    click.echo(f"logged in to {server} as {me['name']} ({me.get('role') or me.get('kind')}); "
               f"saved to {path}")


def same_file_server(data: dict[str, Any], server: str) -> bool:
    return not data.get("url") or str(data["url"]).rstrip("/") == server


@click.command()
@click.option("--keep-token", is_flag=True,
              help="Do not revoke the token `login` created (only forget it here).")
def logout(keep_token: bool) -> None:
    """Forget the stored token (revoking it on the server if `login` created it)."""
    data = _load()
    if not data.get("token"):
        click.echo("not logged in")
        return
    if data.get("token_id") and not keep_token:
        try:
            Client(str(data.get("url") or DEFAULT_URL), str(data["token"])).request(
                "DELETE", f"/api/v1/tokens/{data['token_id']}")
        except RepoproxyError as e:  # the local logout still happens
            click.echo(f"warning: the token could not be revoked: {e.message}", err=True)
    for key in ("token", "token_id", "user"):
        data.pop(key, None)
    save(data)
    click.echo(f"logged out of {data.get('url') or DEFAULT_URL}")


@click.command("config")
@click.option("--show-sources", is_flag=True,
              help="Show each setting with where it comes from (flag, environment, file).")
@click.option("--set", "set_", nargs=2, metavar="KEY VALUE", default=None,
              help="Set url or default_channel in the config file.")
@click.option("--unset", default=None, metavar="KEY", help="Remove a key from the config file.")
@click.option("--url", envvar="REPOPROXY_URL", default=None, help="As client commands take it.")
@click.option("--token", envvar="REPOPROXY_TOKEN", default=None,
              help="As client commands take it.")
@click.option("--channel", "channel_name", envvar="REPOPROXY_CHANNEL", default=None,
              help="As upload and download take it.")
def config_cmd(show_sources: bool, set_: tuple[str, str] | None, unset: str | None,
               url: str | None, token: str | None, channel_name: str | None) -> None:
    """Show or change the client configuration (tokens are never printed)."""
    path = config_path()
    if set_ is not None or unset is not None:
        data = _load()
        if set_ is not None:
            key, value = set_
            if key not in ("url", "default_channel"):
                raise click.UsageError("--set takes url or default_channel (use `repoproxy "
                                       "login` for tokens)")
            data[key] = value.rstrip("/") if key == "url" else value
        if unset is not None:
            if unset not in KEYS:
                raise click.UsageError(f"unknown key {unset!r}: {', '.join(KEYS)}")
            data.pop(unset, None)
        save(data, path)
        click.echo(f"saved {path}")
        return
    r_url, r_token = client_settings(url, from_env("url"), token, from_env("token"))
    r_channel = resolve("default_channel", channel_name, from_env("channel_name"), _load(),
                        None, path)
    rows = (("url", r_url.value or "", r_url.source),
            ("token", describe_token(r_token.value), r_token.source),
            ("default_channel", r_channel.value or "(none)", r_channel.source))
    click.echo(f"config file: {path}" + ("" if path.exists() else " (absent)"))
    for key, value, source in rows:
        click.echo(f"{key:<16} {value:<40} " + (f"# {source}" if show_sources else ""))
    if show_sources:
        click.echo("precedence: flag > environment (" + ", ".join(ENV.values()) +
                   ") > file > default")
