"""Read the metadata of a conda package (info part only) with libarchive, with hard bounds.

``.conda`` (CEP-34): a stored ZIP. Its table of contents is read with :mod:`zipfile` (names
only, to refuse zip-slip entries) and the ``info-*.tar.zst`` member is streamed into libarchive;
the payload tarball is never decompressed. ``.tar.bz2``: a bzip2 tar; every member header is
checked (paths, links, declared sizes) and only ``info/`` members we need are read.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

import libarchive
import libarchive.exception

from repoproxy.errors import InvalidPackage
from repoproxy.models import PackageMetadata

WANTED = {
    "info/index.json": "index",
    "info/about.json": "about",
    "info/run_exports.json": "run_exports",
    "info/paths.json": "paths",
}


#: a .conda's info member up to this size (compressed) is read into memory, larger ones are
#: streamed
IN_MEMORY = 4 * 1024**2


@dataclass(frozen=True)
class Limits:
    member: int = 32 * 1024**2  # largest info member we agree to unpack
    total: int = 128 * 1024**2  # all info members together
    index_json: int = 4 * 1024**2
    unpacked: int = 16 * 1024**3  # declared size of a whole .tar.bz2


def hostile_name(name: str) -> str | None:
    """Why a member name is unsafe to extract, or None."""
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return f"absolute member path {name!r}"
    # split by hand: a PurePosixPath per member was a tenth of reading a small package
    if ".." in name.replace("\\", "/").split("/"):
        return f"member path {name!r} leaves the archive ('..')"
    return None


def _hostile_link(name: str, target: str, hard: bool = False) -> str | None:
    if target.startswith("/"):
        return f"member {name!r} links to absolute path {target!r}"
    # a symlink's target is relative to the link's folder; a hard link's to the archive root
    # (a hard link 'info/a' -> 'info/../../x' leaves it; found by the fuzz tests)
    depth = 0
    for part in (PurePosixPath(target) if hard else PurePosixPath(name).parent / target).parts:
        depth += -1 if part == ".." else (0 if part == "." else 1)
        if depth < 0:
            return f"member {name!r} links outside the archive ({target!r})"
    return None


class _InfoReader:
    """Walks the entries of one tar stream, keeping the info members we want."""

    def __init__(self, limits: Limits, only_info: bool) -> None:
        self.limits = limits
        self.only_info = only_info
        self.found: dict[str, bytes] = {}
        self.members: list[str] = []
        self.info_total = 0
        self.declared_total = 0

    def walk(self, entries: Iterable[Any]) -> None:
        for entry in entries:
            name = entry.pathname or ""
            if name.startswith("./"):
                name = name[2:]
            problem = hostile_name(name)
            if problem is None and (entry.issym or entry.islnk):
                problem = _hostile_link(name, entry.linkpath or "", hard=entry.islnk)
            if problem:
                raise InvalidPackage(f"hostile archive: {problem}")
            size = entry.size or 0
            self.declared_total += size
            if self.declared_total > self.limits.unpacked:
                raise InvalidPackage(
                    f"archive would unpack to more than {self.limits.unpacked} bytes"
                )
            if not name.startswith("info/"):
                continue  # payload: skipped, its data is never kept
            self.members.append(name)
            limit = self.limits.index_json if name == "info/index.json" else self.limits.member
            if size > limit:
                what = "index.json" if name == "info/index.json" else f"member {name!r}"
                raise InvalidPackage(
                    f"{what} unpacks to {size} bytes, over the limit of {limit} bytes "
                    "(decompression bomb?)"
                )
            self.info_total += size
            if self.info_total > self.limits.total:
                raise InvalidPackage(
                    f"info part unpacks to more than {self.limits.total} bytes "
                    "(decompression bomb?)"
                )
            if name in WANTED:
                chunks, got = [], 0
                for block in entry.get_blocks():
                    got += len(block)
                    if got > limit:  # a header that lied about the size
                        raise InvalidPackage(f"member {name!r} is larger than it declares")
                    chunks.append(block)
                self.found[name] = b"".join(chunks)


def _json(found: dict[str, bytes], member: str, *, required: bool) -> Any:
    raw = found.get(member)
    if raw is None:
        if required:
            raise InvalidPackage(f"the package has no {member}")
        return None
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, ValueError) as e:
        raise InvalidPackage(f"{member} is not valid JSON: {e}") from None


def read_info(path: Path, filename: str,
              limits: Limits | None = None) -> tuple[dict[str, bytes], list[str]]:
    """The raw bytes of the info members in :data:`WANTED`, and every info member's name.

    Reads the info part only, with the same bounds and hostile-path checks as ingest; plugins
    (SBOMs) use it to get at ``info/paths.json`` without unpacking anything else.
    """
    limits = limits or Limits()
    reader = _InfoReader(limits, only_info=True)
    try:
        if filename.endswith(".conda"):
            _read_conda(path, reader)
        elif filename.endswith(".tar.bz2"):
            with libarchive.file_reader(str(path), "tar", "bzip2") as archive:
                reader.walk(archive)
        else:
            raise InvalidPackage(f"{filename!r}: not a .conda or .tar.bz2 file")
    except libarchive.exception.ArchiveError as e:
        raise InvalidPackage(f"not a readable {_kind(filename)} archive: {_msg(e)}") from None
    return reader.found, reader.members


def read_metadata(path: Path, filename: str, limits: Limits | None = None) -> PackageMetadata:
    """Read and minimally check the info part of the package at ``path``."""
    found, members = read_info(path, filename, limits)
    index = _json(found, "info/index.json", required=True)
    if not isinstance(index, dict):
        raise InvalidPackage("info/index.json is not a JSON object")
    about = _json(found, "info/about.json", required=False) or {}
    run_exports = _json(found, "info/run_exports.json", required=False)
    paths = _json(found, "info/paths.json", required=False)
    if isinstance(paths, dict):
        for entry in paths.get("paths") or []:
            p = entry.get("_path", "") if isinstance(entry, dict) else ""
            problem = hostile_name(str(p))
            if problem:
                raise InvalidPackage(f"hostile info/paths.json: {problem}")
    return PackageMetadata(
        index=index,
        about=about if isinstance(about, dict) else {},
        run_exports=run_exports if isinstance(run_exports, dict) else None,
        info_members=tuple(members),
    )


def _kind(filename: str) -> str:
    return ".conda" if filename.endswith(".conda") else ".tar.bz2"


def _msg(e: Exception) -> str:
    return str(getattr(e, "msg", None) or e).strip() or type(e).__name__


# what zipfile raises on a damaged zip besides BadZipFile (found by fuzzing): an unsupported
# "version needed" (NotImplementedError), an encrypted member (RuntimeError), a name that is
# not UTF-8 though flagged so (UnicodeDecodeError, a ValueError)
ZIP_ERRORS = (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError,
              ValueError)


def _read_conda(path: Path, reader: _InfoReader) -> None:
    try:
        zf = zipfile.ZipFile(path)
    except ZIP_ERRORS as e:
        raise InvalidPackage(f"not a readable .conda archive (zip): {e}") from None
    with zf:
        infos = zf.infolist()
        for info in infos:
            problem = hostile_name(info.filename)
            if problem:
                raise InvalidPackage(f"hostile archive: {problem}")
        info_members = [
            i for i in infos if i.filename.startswith("info-") and i.filename.endswith(".tar.zst")
        ]
        if len(info_members) != 1:
            raise InvalidPackage(".conda archive has no info-*.tar.zst member")
        member = info_members[0]
        if member.compress_type != zipfile.ZIP_STORED:
            raise InvalidPackage(".conda members must be stored, not compressed (CEP-34)")
        try:
            if max(member.file_size, member.compress_size) <= IN_MEMORY:
                # read whole (zipfile checks its CRC) and handed to libarchive at once: half
                # the time of feeding it through Python read callbacks, for the usual
                # info part of a few kB
                with libarchive.memory_reader(zf.read(member), "tar", "zstd") as archive:
                    reader.walk(archive)
            else:
                with zf.open(member) as stream:
                    _stream_tar(stream, reader)
        except EOFError:
            raise InvalidPackage("truncated .conda archive") from None
        except ZIP_ERRORS as e:
            raise InvalidPackage(f"corrupt .conda archive: {e}") from None


def _stream_tar(stream: IO[bytes], reader: _InfoReader) -> None:
    read: Callable[[int], bytes] = stream.read
    source = _Reader(read)
    try:
        with libarchive.stream_reader(source, "tar", "zstd", block_size=65536) as archive:
            reader.walk(archive)
    except libarchive.exception.ArchiveError:
        if source.error is not None:  # the zip member itself is bad (CRC, truncated...)
            raise InvalidPackage(f"corrupt .conda archive: {source.error}") from None
        raise


class _Reader:
    """Adapts a read callable to the file-like libarchive.stream_reader expects."""

    def __init__(self, read: Callable[[int], bytes]) -> None:
        self._read = read
        self.error: Exception | None = None

    def seekable(self) -> bool:
        return False  # forward-only: seeking inside a zip member would re-read it

    def readinto(self, buf: Any) -> int:
        # This runs inside libarchive's read callback (C, through ctypes): an exception
        # cannot cross it. ctypes would print it and hand libarchive an undefined length,
        # which crashed the process (segfault) on a .conda with a bad CRC (found by
        # tests/unit/test_fuzz_archive.py). Keep it; -1 makes libarchive fail cleanly.
        try:
            data = self._read(len(buf))
        except Exception as e:
            self.error = e
            return -1
        buf[: len(data)] = data
        return len(data)
