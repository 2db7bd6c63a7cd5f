"""``repoproxy sbom``: download a package file's SBOM, like ``conda repo sbom``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from repoproxy.cli.client import client_options
from repoproxy.cli.http import Client


@click.command()
@click.option("--channel", required=True)
@click.option("--package", required=True)
@click.option("--version", required=True)
@click.option("--subdir", "--os", "subdir", required=True, help="e.g. linux-64, noarch")
@click.option("--build", default=None, help="Needed when several builds match.")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="Write here instead of <file>.cdx.json in the current directory.")
@client_options
def sbom(client: Client, channel: str, package: str, version: str, subdir: str,
         build: str | None, output: Path | None) -> None:
    """Download the CycloneDX SBOM of one package file."""
    params = {"version": version, "subdir": subdir, **({"build": build} if build else {})}
    files = client.request("GET", f"/api/channels/{channel}/artifacts/conda/{package}/files",
                           params=params)["files"]
    if not files:
        raise click.ClickException("no such package file")
    if len(files) > 1:
        names = ", ".join(f["filename"] for f in files)
        raise click.ClickException(f"several files match, pick one with --build: {names}")
    chosen = files[0]
    data = client.request("GET", f"/api/channels/{channel}/sbom/{subdir}/{chosen['filename']}")
    output = output or Path(f"{chosen['filename']}.cdx.json")
    output.write_text(json.dumps(data, indent=2))
    click.echo(f"SBOM of {chosen['filename']} written to {output}")
