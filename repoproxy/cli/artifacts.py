"""``repoproxy download``: fetch a notebook or a generic artifact (family ``gra``) of a channel.
Uploading them is ``repoproxy upload FILE --package-type gra --name N --version V``."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import click

from repoproxy.cli.client import client_options, default_channel
from repoproxy.cli.http import Client


def _pick(files: list[dict[str, Any]], version: str | None, notebook: bool,
          wanted: str | None) -> dict[str, Any]:
    """The newest matching file (the API lists them newest first)."""
    if version:
        files = [f for f in files if f["version"] == version]
    if notebook:
        files = [f for f in files if f.get("kind") == "notebook"]
    if wanted:
        files = [f for f in files if f["filename"] == wanted]
    if not files:
        raise click.ClickException("no such file" + (f" in version {version}" if version else ""))
    return files[0]


@click.command()
@click.option("--channel", "channel_name", envvar="REPOPROXY_CHANNEL", default=None,
              help="Channel (default: the config file's default channel).")
@click.option("--notebook", default=None, help="Name of a notebook to download.")
@click.option("--name", "artifact_name", default=None, help="Name of a generic artifact.")
@click.option("--version", "version", default=None, help="Version (default: the newest).")
@click.option("--file", "wanted", default=None,
              help="File name, when a version has several files.")
@click.option("--filename", "target", type=click.Path(path_type=Path), default=None,
              help="Where to save it: a file path, or a directory to keep its own name "
                   "(default: the current directory).")
@client_options
def download(client: Client, channel_name: str | None, notebook: str | None,
             artifact_name: str | None, version: str | None, wanted: str | None,
             target: Path | None) -> None:
    """Download a notebook or a generic artifact from a channel."""
    if bool(notebook) == bool(artifact_name):
        raise click.UsageError("give one of --notebook NAME or --name NAME")
    channel = default_channel(channel_name)
    name = str(notebook or artifact_name)
    files: list[dict[str, Any]] = []
    offset = 0
    while True:  # bounded by the API's total
        page = client.request("GET", f"/api/channels/{channel}/artifacts/gra/{quote(name)}/files",
                              params={"offset": offset, "limit": 1000})
        files += page["files"]
        offset += len(page["files"])
        if offset >= page["total"] or not page["files"]:
            break
    chosen = _pick(files, version, bool(notebook), wanted)
    dest = target if target is not None else Path.cwd()
    if dest.is_dir() or str(dest).endswith(("/", "\\")):
        dest = dest / chosen["filename"]
    path = (f"/api/channels/{channel}/artifacts/gra/{quote(chosen['name'])}/"
            f"{quote(chosen['version'])}/{quote(chosen['filename'])}")
    size = client.download(path, dest)
    click.echo(f"saved {chosen['name']} {chosen['version']} to {dest} ({size} bytes)")
