"""The watch folder on disk: which files are candidates, and where they go when done.

Layout::

    <root>/<channel>/<file>              the subdir comes from the package's index.json
    <root>/<channel>/<subdir>/<file>     index.json must name this subdir
    <root>/<channel>/<sub>/[<subdir>/]<file>  the same for subchannel <channel>/<sub>
    <root>/.rejected/<channel>/<file>    refused files, each with <file>.reason.json
    <root>/.lock                         held by the one worker that processes the root

Dotfiles and dot-folders, and the temporary names of downloaders and copy tools, are never
touched: they are files still being written.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repoproxy.errors import InvalidName
from repoproxy.names import check_channel_name, is_subdir, split_filename
from repoproxy.storage.store import atomic_write

from .config import WatchConfig

#: suffixes of files that are still being written (browsers, curl/wget, rsync, scp, editors)
TEMP_SUFFIXES = (".part", ".partial", ".tmp", ".temp", ".crdownload", ".download",
                 ".filepart", ".swp", "~")


def is_temporary(name: str) -> bool:
    return name.startswith(".") or name.lower().endswith(TEMP_SUFFIXES)


@dataclass(frozen=True)
class Candidate:
    """A file in the watch folder that is not a temporary one."""

    path: Path
    rel: str  # relative to the watch root, for messages
    channel: str | None  # the channel folder's name (None: the file lies in the root)
    subdir: str | None  # the subdir folder, when the file lies in one
    problem: str | None = None  # a layout problem: refused without reading the file

    @property
    def name(self) -> str:
        return self.path.name


def _layout_problem(channel: str | None, subdir_dir: str | None, depth: int, name: str,
                    is_link: bool) -> str | None:
    if is_link:
        return f"{name} is a symbolic link; links are not followed, drop the file itself"
    if channel is None:
        return (f"{name} is not in a channel folder: drop files into <watch root>/<channel>/ "
                "or <watch root>/<channel>/<subdir>/")
    try:
        check_channel_name(channel)
    except InvalidName as e:
        return f"folder {channel!r} cannot be a channel: {e.message}"
    if depth > 3:
        return (f"{name} is nested too deep: use <channel>[/<sub>]/<file> or "
                "<channel>[/<sub>]/<subdir>/<file>")
    if subdir_dir is not None and not is_subdir(subdir_dir):
        return (f"folder {subdir_dir!r} is not a conda subdir (noarch, linux-64, osx-arm64, "
                "win-64, ...)")
    try:
        split_filename(name)
    except InvalidName as e:
        return e.message
    return None


def scan(config: WatchConfig) -> Iterator[Candidate]:
    """Every candidate file under the root (a snapshot; files may change meanwhile)."""
    root = config.root
    skip = {config.rejected_dir}
    if config.processed_dir is not None:
        skip.add(config.processed_dir)

    def walk(directory: Path, parts: tuple[str, ...]) -> Iterator[Candidate]:
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError:
            return  # vanished or unreadable meanwhile: the next scan sees it again
        for entry in entries:
            if is_temporary(entry.name):
                continue
            path = Path(entry.path)
            if entry.is_dir(follow_symlinks=False):
                if path not in skip:
                    yield from walk(path, (*parts, entry.name))
                continue
            if not (entry.is_file(follow_symlinks=False) or entry.is_symlink()):
                continue  # sockets, fifos: nothing a package could be
            channel = parts[0] if parts else None
            rest = parts[1:]
            if rest and not is_subdir(rest[0]):
                # <channel>/<sub>/...: a subchannel (its name is never a subdir's)
                channel, rest = f"{channel}/{rest[0]}", rest[1:]
            subdir_dir = rest[0] if rest else None
            problem = _layout_problem(channel, subdir_dir, len(rest) + 2, entry.name,
                                      entry.is_symlink())
            subdir = subdir_dir if len(rest) == 1 and problem is None else None
            yield Candidate(path, "/".join((*parts, entry.name)), channel, subdir, problem)

    yield from walk(root, ())


def channel_folders(config: WatchConfig) -> list[str]:
    """Names of the folders directly under the root that may hold a channel's files."""
    try:
        entries = list(os.scandir(config.root))
    except OSError:
        return []
    return sorted(e.name for e in entries
                  if e.is_dir(follow_symlinks=False) and not is_temporary(e.name)
                  and Path(e.path) != config.processed_dir)


# --- outcomes ---------------------------------------------------------------------------
def utc_iso(ts: float | None = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def reject(config: WatchConfig, cand: Candidate, reason: str, *, code: str = "rejected",
           reasons: list[str] | None = None, extra: dict[str, Any] | None = None) -> Path:
    """Move a refused file to ``.rejected/<channel>/`` beside a ``<file>.reason.json``.

    The reason is written first: a crash in between leaves the file where it was, to be
    looked at again, never a file without its reason.
    """
    dest_dir = config.rejected_dir / cand.channel if cand.channel else config.rejected_dir
    dest = dest_dir / cand.name
    doc = {
        "file": cand.name,
        "path": cand.rel,
        "channel": cand.channel,
        "subdir": cand.subdir,
        "when": utc_iso(),
        "error": code,
        "reason": reason,
        "reasons": list(reasons or [reason]),
        **(extra or {}),
    }
    atomic_write(dest.with_name(dest.name + ".reason.json"),
                 json.dumps(doc, indent=2, sort_keys=True).encode() + b"\n")
    os.replace(cand.path, dest)  # same filesystem: .rejected lives under the root
    return dest


def finish(config: WatchConfig, cand: Candidate, channel: str, subdir: str) -> None:
    """A file is in the channel: delete it, or keep it under the processed folder."""
    if config.processed_dir is None:
        cand.path.unlink(missing_ok=True)
        return
    dest = config.processed_dir / channel / subdir / cand.name
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(cand.path), str(dest))  # a copy when the folder is on another filesystem
