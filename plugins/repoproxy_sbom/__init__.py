"""repoproxy_sbom: a CycloneDX 1.6 SBOM for every package file, and for a whole subdir.

Publishing a file only queues its SBOM (``repoproxy_packages_added`` adds a row to the
plugin's ``sbom_queue`` table right after the package's commit); ``repoproxy serve``'s
background worker builds it off the publish path (see :mod:`repoproxy_sbom.queue` for retries
and crash recovery), stored atomically under ``<root>/sbom/<channel>/<subdir>/<file>.cdx.json``
and served with validators at ``/api/channels/<ch>/sbom/<subdir>/<file>``. A document asked for
before the worker got to it (or of a file from before the plugin was enabled) is built on
request. ``repoproxy import`` leaves its files queued for the server.
"""

from __future__ import annotations

import os
from contextlib import suppress
from pathlib import Path
from types import ModuleType
from typing import Any

import click

from repoproxy import hookimpl

__version__ = "0.1.0"


def _queue() -> ModuleType:
    # sqlite-utils loads on first use, not with the plugin: `repoproxy --help` stays instant
    from . import queue

    return queue


@hookimpl
def repoproxy_settings_defaults() -> dict[str, Any]:
    return {"repoproxy_sbom.worker_interval": 1.0, "repoproxy_sbom.max_attempts": 5}


@hookimpl
def repoproxy_migrations() -> Any:
    return _queue().migrations


@hookimpl
def repoproxy_background_workers(services: Any) -> Any:
    settings = services.settings
    return [_queue().SbomWorker(services, float(settings["repoproxy_sbom.worker_interval"]),
                                int(settings["repoproxy_sbom.max_attempts"]))]


def sbom_path(services: Any, channel: str, subdir: str, filename: str) -> Path:
    return Path(_sbom_file(str(services.store.root / "sbom"), channel, subdir, filename))


def _sbom_file(base: str, channel: str, subdir: str, filename: str) -> str:
    return f"{base}/{channel}/{subdir}/{filename}.cdx.json"


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
def repoproxy_packages_added(services: Any, channel: Any, records: list[Any]) -> None:
    # a replaced file's old document is stale: it goes now, the new one is queued; all the
    # files of one publish in one transaction (a bulk import has thousands)
    # str paths: a Path per file was most of this hook's time in a bulk import's publish
    base = str(services.store.root / "sbom")
    for record in records:
        with suppress(FileNotFoundError):
            os.unlink(_sbom_file(base, record.channel, record.subdir, record.filename))  # noqa: PTH108
    _queue().enqueue_many(services, [(r.channel, r.subdir, r.filename, r.sha256)
                                     for r in records])


@hookimpl
def repoproxy_package_removed(services: Any, channel: Any, record: Any) -> None:
    sbom_path(services, channel.name, record.subdir, record.filename).unlink(missing_ok=True)
    _queue().dequeue(services, channel.name, record.subdir, record.filename)


@hookimpl
def repoproxy_channel_removed(services: Any, channel: Any) -> None:
    import shutil

    shutil.rmtree(services.store.root / "sbom" / channel.name, ignore_errors=True)
    _queue().forget_channel(services, channel.name)


@hookimpl
def repoproxy_configure(config: Any) -> None:
    config.include("repoproxy_sbom.views")


@hookimpl
def repoproxy_package_extra(request: Any, channel: Any, record: Any) -> dict[str, Any]:
    from repoproxy.web.resources import channel_url

    return {"sbom_url": channel_url(request, "sbom.file", channel=channel.name,
                                    subdir=record.subdir, filename=record.filename)}


@hookimpl
def repoproxy_register_commands(cli: click.Group) -> None:
    from .cli import sbom

    cli.add_command(sbom)
