"""Client commands over the package details and search APIs: ``channel list-packages``,
``channel list-files [--full-details]`` and ``search``."""

from __future__ import annotations

import json
from typing import Any

import click

from repoproxy.cli.client import client_options
from repoproxy.cli.http import Client

BRIEF = ("filename", "name", "version", "platform", "ckey")


@click.command("list-packages")
@click.argument("channel_name")
@client_options
def list_packages(client: Client, channel_name: str) -> None:
    """List the packages of a channel (JSON)."""
    data = client.request("GET", f"/api/channels/{channel_name}/artifacts")
    click.echo(json.dumps(data["packages"], indent=2))


@click.command("list-files")
@click.argument("channel_name")
@click.option("--full-details", is_flag=True, help="Every field, plugins' ones included.")
@click.option("-f", "--family", type=click.Choice(["conda", "gra"]), default=None,
              help="Only this artifact family (default: all).")
@client_options
def list_files(client: Client, channel_name: str, full_details: bool,
               family: str | None) -> None:
    """List every file of a channel (JSON): file name, name, version, platform, ckey."""
    out: list[dict[str, Any]] = []
    packages = client.request("GET", f"/api/channels/{channel_name}/artifacts")["packages"]
    for pkg in packages:
        kind = pkg.get("family", "conda")
        if family and kind != family:
            continue
        offset = 0
        while True:
            page = client.request(
                "GET", f"/api/channels/{channel_name}/artifacts/{kind}/{pkg['name']}/files",
                params={"offset": offset, "limit": 1000})
            for f in page["files"]:
                # CVE fields appear once a plugin provides them (repoproxy_package_extra)
                keep = f if full_details or kind != "conda" else {
                    k: v for k, v in f.items() if k in BRIEF or k.startswith("cve")}
                out.append(keep)
            offset += len(page["files"])
            if offset >= page["total"] or not page["files"]:
                break
    click.echo(json.dumps(out, indent=2))


@click.command()
@click.argument("name")
@click.option("-f", "--family", default="conda", show_default=True,
              type=click.Choice(["conda", "gra"]),
              help="conda packages, or gra: generic artifacts and notebooks.")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
@client_options
def search(client: Client, name: str, family: str, as_json: bool) -> None:
    """Find a package (or a generic artifact) in every channel you may read."""
    data = client.request("GET", "/api/v1/search", params={"q": name, "family": family})
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    head = ("Channel", "Name", "Version", "Family", "Build", "License", "Platforms")
    widths = (30, 40, 8, 12, 10, 15, 15)
    click.echo(" | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)))
    click.echo(" | ".join("-" * w for w in widths))
    for r in data["results"]:
        cells = (r["channel"], r["name"], r["version"], r["family"], r["build"], r["license"],
                 ", ".join(r["platforms"]))
        click.echo(" | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)))
    n = data["count"]
    click.echo(f"\n{n} package{'s' if n != 1 else ''} found.")


def register(cli: click.Group, channel: click.Group) -> None:
    channel.add_command(list_packages)
    channel.add_command(list_files)
    cli.add_command(search)
