"""``copy``, ``move`` and ``remove``: a package's files between channels and subchannels,
through the API of a running server (the seed CLI's ``CHANNEL[/SUB]::PACKAGE[==VERSION]``)."""

from __future__ import annotations

import json
from typing import Any

import click

from repoproxy.cli.client import client_options
from repoproxy.cli.http import Client

SPEC_HELP = "CHANNEL[/SUB]::PACKAGE[==VERSION]"


def _narrow(func: Any) -> Any:
    func = click.option("--file", "filename", default=None,
                        help="Only this file (its file name).")(func)
    return click.option("--subdir", default=None, help="Only this subdir, e.g. linux-64.")(func)


def _body(spec: str, subdir: str | None, filename: str | None) -> tuple[str, dict[str, Any]]:
    channel, sep, rest = spec.partition("::")
    if not sep or not channel or not rest:
        raise click.BadParameter(f"expected {SPEC_HELP}, got {spec!r}", param_hint="SPEC")
    package, sep, version = rest.partition("==")
    body: dict[str, Any] = {"package": package}
    if sep:
        body["version"] = version
    for key, value in (("subdir", subdir), ("file", filename)):
        if value:
            body[key] = value
    return channel, body


def _report(result: dict[str, Any]) -> None:
    click.echo(json.dumps(result, indent=2))
    for dup in result.get("duplicates", []):
        click.echo(f"duplicate (already there, left as is): {dup}", err=True)


@click.command("copy", help=f"Copy a package's files to another channel or subchannel. "
                            f"SPEC is {SPEC_HELP}; the origin keeps them.")
@click.argument("spec")
@click.option("--destination", required=True, help="Destination channel, C or C/SUB.")
@_narrow
@client_options
def copy_cmd(client: Client, spec: str, destination: str, subdir: str | None,
             filename: str | None) -> None:
    channel, body = _body(spec, subdir, filename)
    _report(client.request("POST", f"/api/v1/copy/{channel}",
                           json={**body, "destination": destination}))


@click.command("move", help=f"Move a package's files to another channel or subchannel. "
                            f"SPEC is {SPEC_HELP}; the origin loses them in the same commit.")
@click.argument("spec")
@click.option("--destination", required=True, help="Destination channel, C or C/SUB.")
@_narrow
@client_options
def move_cmd(client: Client, spec: str, destination: str, subdir: str | None,
             filename: str | None) -> None:
    channel, body = _body(spec, subdir, filename)
    _report(client.request("POST", f"/api/v1/move/{channel}",
                           json={**body, "destination": destination}))


@click.command("remove", help=f"Remove a package's files from a channel or subchannel. "
                              f"SPEC is {SPEC_HELP}.")
@click.argument("spec")
@_narrow
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@client_options
def remove_cmd(client: Client, spec: str, subdir: str | None, filename: str | None,
               yes: bool) -> None:
    channel, body = _body(spec, subdir, filename)
    if not yes:
        click.confirm(f"remove {spec}" + (f" ({subdir})" if subdir else "")
                      + (f" file {filename}" if filename else "") + "?", abort=True)
    _report(client.request("POST", f"/api/v1/remove/{channel}", json=body))


def register(cli: click.Group) -> None:
    for command in (copy_cmd, move_cmd, remove_cmd):
        cli.add_command(command)
