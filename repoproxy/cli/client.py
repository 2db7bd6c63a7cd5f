"""Client commands: talk to a running server (``--url``/``REPOPROXY_URL``,
``--token``/``REPOPROXY_TOKEN``)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import click

from repoproxy.cli.http import Client
from repoproxy.errors import RepoproxyError


def from_env(name: str) -> bool:
    """Whether click took this parameter's value from its environment variable."""
    from click.core import ParameterSource

    ctx = click.get_current_context(silent=True)
    return ctx is not None and ctx.get_parameter_source(name) == ParameterSource.ENVIRONMENT


def client_options(func: Callable[..., Any]) -> Callable[..., Any]:
    @click.option("--url", envvar="REPOPROXY_URL", default=None,
                  help="Server URL (REPOPROXY_URL; else the config file's, else "
                       "http://127.0.0.1:8080).")
    @click.option("--token", envvar="REPOPROXY_TOKEN", default=None,
                  help="API token (REPOPROXY_TOKEN; else the config file's, for its server).")
    @wraps(func)
    def wrapper(url: str | None, token: str | None, **kwargs: Any) -> Any:
        from repoproxy.cli.userconfig import ConfigFileError, client_settings

        try:
            r_url, r_token = client_settings(url, from_env("url"), token, from_env("token"))
        except ConfigFileError as e:
            raise click.ClickException(str(e)) from None
        try:
            return func(Client(r_url.value or "", r_token.value), **kwargs)
        except RepoproxyError as e:
            raise click.ClickException(e.message) from None

    return wrapper


def default_channel(given: str | None) -> str:
    """``--channel`` (or REPOPROXY_CHANNEL), else the config file's default channel."""
    from repoproxy.cli.userconfig import ConfigFileError, load

    if given:
        return given
    try:
        found = load().get("default_channel")
    except ConfigFileError as e:
        raise click.ClickException(str(e)) from None
    if not found:
        raise click.ClickException("give --channel, or set a default channel: repoproxy login "
                                   "--channel C, or repoproxy config --set default_channel C")
    return str(found)


def _print(data: Any) -> None:
    click.echo(json.dumps(data, indent=2))


def channel_path(name: str) -> str:
    """The API path of a channel, or of a subchannel ``C/SUB``."""
    parent, sep, sub = name.partition("/")
    return (f"/api/v1/channels/{parent}/subchannels/{sub}" if sep
            else f"/api/v1/channels/{name}")


@click.group()
def channel() -> None:
    """Create, list, show and remove channels and subchannels (``C/SUB``)."""


@channel.command("create")
@click.argument("name")
@click.option("--description", default="")
@click.option("--privacy", default=None,
              type=click.Choice(["public", "authenticated", "private"]),
              help="Default public. A subchannel's privacy is its parent's (another is refused).")
@client_options
def channel_create(client: Client, name: str, description: str, privacy: str | None) -> None:
    """Create a channel (public by default), or subchannel C/SUB of channel C."""
    parent, sep, sub = name.partition("/")
    body = {"description": description, **({"privacy": privacy} if privacy else {})}
    if sep:
        _print(client.request("POST", f"/api/v1/channels/{parent}/subchannels",
                              json={"name": sub, **body}))
        return
    _print(client.request("POST", "/api/v1/channels", json={"name": name, **body}))


@channel.command("list")
@click.argument("parent", required=False)
@client_options
def channel_list(client: Client, parent: str | None) -> None:
    """List the channels you may read (subchannels included), or PARENT's subchannels:
    name, privacy, description."""
    if parent:
        found = client.request("GET", f"/api/v1/channels/{parent}/subchannels")["subchannels"]
    else:
        found = client.request("GET", "/api/v1/channels")["channels"]
    for ch in found:
        click.echo(f"{ch['name']}\t{ch['privacy']}\t{ch['description']}")


@channel.command("show")
@click.argument("name")
@client_options
def channel_show(client: Client, name: str) -> None:
    """A channel's details (JSON): privacy, owners, created and last-updated dates, counts of
    package files, artifacts, subchannels and mirrors, downloads; NAME may be C/SUB."""
    _print(client.request("GET", channel_path(name)))


@channel.command("remove")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@client_options
def channel_remove(client: Client, name: str, yes: bool) -> None:
    """Remove a channel with all its files, members and token grants."""
    if not yes:
        click.confirm(f"remove channel {name} and all its packages?", abort=True)
    _print(client.request("DELETE", channel_path(name)))


@click.command()
@click.argument("files", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--channel", "channel_name", envvar="REPOPROXY_CHANNEL", default=None,
              help="Channel (REPOPROXY_CHANNEL; default: the config file's default channel).")
@click.option("--force", is_flag=True, help="Replace files that already exist.")
@click.option("--skip-existing", is_flag=True, help="Treat 'already exists' as success.")
@click.option("--package-type", type=click.Choice(["conda", "gra"]), default=None,
              help="conda packages (default), or gra: generic artifacts (any file, "
                   "notebooks), stored under --name and --version. .ipynb files are gra.")
@click.option("--name", "artifact_name", default=None,
              help="Artifact name (gra; default for a notebook: its file name's stem).")
@click.option("--version", "artifact_version", default=None, help="Artifact version (gra).")
@click.option("--description", default="", help="Artifact description (gra).")
@client_options
def upload(client: Client, files: tuple[Path, ...], channel_name: str | None, force: bool,
           skip_existing: bool, package_type: str | None, artifact_name: str | None,
           artifact_version: str | None, description: str) -> None:
    """Upload package files, generic artifacts or notebooks to a channel."""
    channel_name = default_channel(channel_name)

    def send(path: Path) -> None:
        kind = package_type or ("gra" if path.suffix.lower() == ".ipynb" else "conda")
        if kind == "conda":
            client.upload(channel_name, path, force=force)
            return
        name = artifact_name or (path.stem if path.suffix.lower() == ".ipynb" else None)
        if not name or not artifact_version:
            raise click.UsageError("a generic artifact needs --name and --version")
        client.upload_artifact(channel_name, name, artifact_version, path, force=force,
                               description=description)

    failed = 0
    with click.progressbar(files, label=f"uploading to {channel_name}", file=sys.stderr,
                           item_show_func=lambda p: p.name if p else "") as bar:
        for path in bar:
            try:
                send(path)
            except RepoproxyError as e:
                if skip_existing and e.status == 409:
                    continue
                failed += 1
                click.echo(f"\n{path.name}: {e.message}", err=True)
                for reason in e.reasons:
                    click.echo(f"  - {reason}", err=True)
    if failed:
        raise click.ClickException(f"{failed} of {len(files)} uploads failed")
    click.echo(f"uploaded {len(files)} file(s) to {channel_name}")


@click.command()
@click.argument("channel_name")
@click.option("--subdir", "subdirs", multiple=True, help="Subdir(s); default: all of them.")
@client_options
def reindex(client: Client, channel_name: str, subdirs: tuple[str, ...]) -> None:
    """Re-read a channel's files from disk and rebuild its repodata."""
    if not subdirs:
        subdirs = tuple(client.request("GET", channel_path(channel_name))["subdirs"])
    for subdir in subdirs:
        _print(client.request("POST", f"/api/v1/reindex/{channel_name}/{subdir}"))


def register(cli: click.Group) -> None:
    for command in (channel, upload, reindex):
        cli.add_command(command)
    from repoproxy.cli import details as details_cli

    details_cli.register(cli, channel)
