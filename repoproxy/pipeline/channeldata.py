"""channeldata.json (CEP-38) at a channel's root: one entry per package name, each from the
name's latest file.

A publish redoes the entries of the names it touched only, and patches the file the previous
write left (:mod:`repoproxy.pipeline.jsonindex`): no whole encoding of the channel's entries
and no copy of them kept in memory between publishes. Without a layout of the file (the
first write of this process) the file is scanned once for where its entries lie; without a
readable file, or when asked for all names, every record of the channel is read.
"""

from __future__ import annotations

import json
import logging
import os
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from repoproxy.models import PackageRecord
from repoproxy.pipeline.jsonindex import (
    Layout,
    Section,
    WholeWriter,
    identity,
    plan,
    set_aside_twin,
    stage_twin,
    write_planned,
)
from repoproxy.storage.catalog import Catalog
from repoproxy.storage.store import Staging, sync_written, wait_freed

log = logging.getLogger(__name__)

HEAD = b'{"channeldata_version":1,"packages":{'


def _member(name: str, entry: dict[str, Any]) -> bytes:
    # compact and sorted: json's indent switches to its pure-Python encoder
    return (f"{json.dumps(name)}:"
            f"{json.dumps(entry, sort_keys=True, separators=(',', ':'))}").encode()


def scan(data: bytes) -> Layout | None:
    """Where the entries of a channeldata.json this server wrote lie (compact, ASCII, keys
    sorted), or None if the file is not of that shape."""
    if not data.startswith(HEAD) or not data.isascii():
        return None
    text = data.decode("ascii")  # ASCII: string offsets are byte offsets
    decoder = json.JSONDecoder()
    section = Section()
    i = len(HEAD)
    try:
        while text[i] != "}":
            if section.keys:
                if text[i] != ",":
                    return None
                i += 1
            key, colon = decoder.raw_decode(text, i)
            if not isinstance(key, str) or text[colon] != ":":
                return None
            _, end = decoder.raw_decode(text, colon + 1)
            section.add(key, i, end - i)
            i = end
    except (IndexError, ValueError):
        return None
    if section.keys != sorted(section.keys):
        return None
    return Layout([section])


class ChanneldataWriter:
    """Writes channels' channeldata.json; keeps where the entries of each file it wrote lie."""

    def __init__(self) -> None:
        self._layouts: dict[Path, Layout] = {}

    def write(self, catalog: Catalog, directory: Path, channel: str, subdirs: list[str],
              hidden: dict[str, set[str]], names: Iterable[str] | None) -> None:
        """Write ``directory``/channeldata.json; the caller holds the channel's lock."""
        path = directory / "channeldata.json"
        pieces = [HEAD, f'}},"subdirs":{json.dumps(subdirs)}}}'.encode()]
        layout = None
        with Staging() as staging:
            fd = self._previous(path) if names is not None else None
            try:
                if fd is not None and names is not None:
                    layout = self._patch(staging, catalog, path, channel, hidden, pieces, fd,
                                         set(names))
            finally:
                if fd is not None:
                    os.close(fd)
            if layout is None:
                with staging.open(path) as f:
                    writer = WholeWriter(f, pieces)
                    entries = _entries(channel, catalog.packages(channel), hidden)
                    for name in sorted(entries):
                        writer.member(name, _member(name, entries[name]))
                    layout = writer.close()
            set_aside_twin(path)
            written = staging.install()
        fd = os.open(path, os.O_RDONLY)
        try:
            layout.ident = identity(fd)
            written += stage_twin(fd, path).install()
        finally:
            os.close(fd)
        # recovery rewrites channeldata.json whole at every start: nothing to mark
        sync_written(written)
        wait_freed()
        self._layouts[path] = layout

    def _previous(self, path: Path) -> int | None:
        """The current file, open, with its layout known (noted or scanned), else None."""
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        ident = identity(fd)
        layout = self._layouts.get(path)
        if layout is None or layout.ident != ident:
            with os.fdopen(os.dup(fd), "rb") as f:
                layout = scan(f.read())
            if layout is None:
                os.close(fd)
                return None
            layout.ident = ident
            self._layouts[path] = layout
        return fd

    def _patch(self, staging: Staging, catalog: Catalog, path: Path, channel: str,
               hidden: dict[str, set[str]], pieces: list[bytes], fd: int,
               names: set[str]) -> Layout:
        entries = _entries(channel, catalog.packages_named(channel, names), hidden)
        changes: dict[str, bytes | None] = {
            name: _member(name, entries[name]) if name in entries else None for name in names}
        segments, layout, size = plan(self._layouts[path], pieces, [changes])
        with staging.open(path) as f:
            write_planned(f, None, fd, segments, size, 0)
        return layout


def _entries(channel: str, records: Iterable[PackageRecord],
                         hidden: dict[str, set[str]]) -> dict[str, Any]:
    """channeldata.json entries of the packages of ``records``: each name's latest file."""
    from rattler import Version  # conda's version ordering, not a hand-written one

    latest: dict[str, tuple[Any, dict[str, Any], dict[str, Any], dict[str, Any] | None]] = {}
    platforms: dict[str, set[str]] = defaultdict(set)
    for rec in records:
        if rec.subdir not in hidden or rec.filename in hidden[rec.subdir]:
            continue
        try:
            version = Version(rec.version)
        except Exception:  # rattler's InvalidVersionError
            # a row ingest would refuse today (an older server, a hand edit): one such row
            # must not take channeldata.json away from every other package of the channel
            log.warning("channeldata of %s leaves out %s/%s: version %r does not parse",
                        channel, rec.subdir, rec.filename, rec.version)
            continue
        platforms[rec.name].add(rec.subdir)
        key = (version, rec.build_number, rec.record.get("timestamp", 0))
        if rec.name not in latest or key > latest[rec.name][0]:
            latest[rec.name] = (key, rec.record, rec.about, rec.run_exports)
    packages: dict[str, Any] = {}
    for name, (_, record, about, run_exports) in sorted(latest.items()):
        entry = {
            "version": record.get("version"),
            "subdirs": sorted(platforms[name]),
            "license": about.get("license") or record.get("license"),
            "summary": about.get("summary"),
            "description": about.get("description"),
            "home": about.get("home"),
            "dev_url": about.get("dev_url"),
            "doc_url": about.get("doc_url"),
            "source_url": about.get("source_url"),
            "timestamp": record.get("timestamp"),
            "run_exports": {record["version"]: run_exports} if run_exports else {},
        }
        packages[name] = {k: v for k, v in entry.items() if v not in (None, "")}
    return packages
