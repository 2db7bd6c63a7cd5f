"""``repoproxy sbom``: download a package file's SBOM, like ``conda repo sbom``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from repoproxy.cli.client import client_options
from repoproxy.cli.http import Client


@click.command()
@click.option("--channel", required=True)
@click.option("--package", required=True)
@click.option("--version", default=None, help="Version (needed unless --ckey names the file).")
@click.option("--subdir", "--os", "subdir", default=None, help="e.g. linux-64, noarch")
@click.option("--build", default=None, help="Build string, when several builds match.")
@click.option("--family", type=click.Choice(["conda"]), default="conda", show_default=True,
              help="Artifact family: SBOMs exist for conda packages.")
@click.option("--ckey", default=None,
              help="The file's ckey (repoproxy channel list-files --full-details).")
@click.option("--package-format", "fmt", type=click.Choice(["conda", "tar.bz2"]),
              default=None, help="conda or tar.bz2 when a build exists in both (default: "
                                 ".conda, as conda prefers).")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="Write here instead of <file>.cdx.json in the current directory.")
@client_options
def sbom(client: Client, channel: str, package: str, version: str | None, subdir: str | None,
         build: str | None, family: str, ckey: str | None, fmt: str | None,
         output: Path | None) -> None:
    """Download the CycloneDX SBOM of one package file."""
    if not ckey and not (version and subdir):
        raise click.UsageError("give --version and --subdir, or --ckey")
    params = {k: v for k, v in (("version", version), ("subdir", subdir), ("build", build))
              if v}
    files = _all_files(client, channel, family, package, params)
    chosen = pick(files, ckey, fmt)
    data = client.request("GET", f"/api/channels/{channel}/sbom/{chosen['subdir']}/"
                                 f"{chosen['filename']}")
    output = output or Path(f"{chosen['filename']}.cdx.json")
    output.write_text(json.dumps(data, indent=2))
    click.echo(f"SBOM of {chosen['filename']} written to {output}")


def _all_files(client: Client, channel: str, family: str, package: str,
               params: dict[str, str]) -> list[dict[str, Any]]:
    files: list[dict[str, Any]] = []
    while True:  # bounded by the API's total
        page = client.request("GET", f"/api/channels/{channel}/artifacts/{family}/{package}/files",
                              params={**params, "offset": len(files), "limit": 1000})
        files += page["files"]
        if len(files) >= page["total"] or not page["files"]:
            return files


def pick(files: list[dict[str, Any]], ckey: str | None, fmt: str | None) -> dict[str, Any]:
    """One file: by ckey, then by format; one build in both formats means its .conda."""
    if ckey:
        files = [f for f in files if f.get("ckey") == ckey]
    if fmt:
        files = [f for f in files if f["filename"].endswith("." + fmt)]
    if not files:
        raise click.ClickException("no such package file")
    builds = {(f["subdir"], f["name"], f["version"], f["build"]) for f in files}
    if len(builds) > 1:
        names = ", ".join(sorted(f"{f['subdir']}/{f['filename']}" for f in files))
        raise click.ClickException(f"several files match, pick one with --subdir, --build or "
                                   f"--ckey: {names}")
    if len(files) > 1:  # the same build as .conda and .tar.bz2: conda's preferred format
        return next(f for f in files if f["filename"].endswith(".conda"))
    return files[0]
