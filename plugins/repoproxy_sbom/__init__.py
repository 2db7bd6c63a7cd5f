"""repoproxy_sbom: a CycloneDX 1.6 SBOM for every package file, and for a whole subdir.

Each file's SBOM is built once after ingest (``repoproxy_package_added``, outside any
transaction), stored atomically under ``<root>/sbom/<channel>/<subdir>/<file>.cdx.json`` and
served with validators at ``/api/channels/<ch>/sbom/<subdir>/<file>``. Files that entered a
channel before the plugin was enabled get theirs on first request.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from repoproxy import hookimpl

__version__ = "0.1.0"


def sbom_path(services: Any, channel: str, subdir: str, filename: str) -> Path:
    return services.store.root / "sbom" / channel / subdir / f"{filename}.cdx.json"


def channel_url(services: Any, channel: str) -> str:
    base = str(services.settings["repoproxy.base_url"] or "").rstrip("/")
    return f"{base}/{channel}" if base else channel


def write_sbom(services: Any, record: Any, path: Path) -> Path:
    from repoproxy.storage.store import atomic_write

    from .build import build_sbom

    url = channel_url(services, record.channel)
    text = build_sbom(record, path, url, f"{url}/{record.subdir}/{record.filename}")
    dest = sbom_path(services, record.channel, record.subdir, record.filename)
    dest.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(dest, text.encode())
    return dest


@hookimpl
def repoproxy_package_added(services: Any, channel: Any, record: Any, path: Path) -> None:
    write_sbom(services, record, path)


@hookimpl
def repoproxy_package_removed(services: Any, channel: Any, record: Any) -> None:
    sbom_path(services, channel.name, record.subdir, record.filename).unlink(missing_ok=True)


@hookimpl
def repoproxy_channel_removed(services: Any, channel: Any) -> None:
    import shutil

    shutil.rmtree(services.store.root / "sbom" / channel.name, ignore_errors=True)


@hookimpl
def repoproxy_configure(config: Any) -> None:
    config.include("repoproxy_sbom.views")


@hookimpl
def repoproxy_package_extra(request: Any, channel: Any, record: Any) -> dict[str, Any]:
    return {"sbom_url": request.route_url("sbom.file", channel=channel.name,
                                          subdir=record.subdir, filename=record.filename)}


@hookimpl
def repoproxy_register_commands(cli: click.Group) -> None:
    from .cli import sbom

    cli.add_command(sbom)
