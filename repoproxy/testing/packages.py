"""Build real conda packages (``.conda`` and ``.tar.bz2``) at test time.

The test-suite and the benchmarks need packages that real clients (conda, mamba, pixi,
py-rattler) index and install, plus deliberately broken ones to throw at the server.
Checking binary fixtures into the repository would hide what is in them, so this module
builds them on demand, deterministically: same :class:`PackageSpec`, same bytes.

Layout follows conda-build / conda-package-handling:

* ``info/index.json``, ``info/about.json``, ``info/paths.json``, ``info/files`` and, when
  asked for, ``info/run_exports.json``; JSON is written with ``indent=2, sort_keys=True``.
* ``.tar.bz2``: one bzip2 tarball, ``info/`` members first, then the payload.
* ``.conda`` (CEP-34): an uncompressed zip holding, in this order, ``metadata.json``,
  ``pkg-<stem>.tar.zst`` (payload) and ``info-<stem>.tar.zst`` (``info/``).

Every tar member gets uid/gid 0, no user/group names, mode 0o644 (0o755 for payload files
that start with ``#!``) and ``mtime`` = the package timestamp, so builds are reproducible.

:func:`build_hostile` writes the malformed and malicious variants listed in
:data:`HOSTILE_KINDS`; large ones (``bomb``) are streamed and never held in memory.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import tarfile
import time
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import zstandard

__all__ = [
    "DEFAULT_TIMESTAMP",
    "HOSTILE_KINDS",
    "PackageSpec",
    "build_conda",
    "build_hostile",
    "build_many",
    "build_package",
    "build_tar_bz2",
]

#: Default ``index.json`` timestamp (ms): fixed and in the past, so builds are reproducible.
DEFAULT_TIMESTAMP = 1_700_000_000_000

# conda-build's ``arch`` value per subdir platform suffix; ``platform`` is the prefix.
_ARCH = {
    "64": "x86_64",
    "32": "x86",
    "aarch64": "aarch64",
    "arm64": "arm64",
    "armv6l": "armv6l",
    "armv7l": "armv7l",
    "ppc64le": "ppc64le",
    "ppc64": "ppc64",
    "s390x": "s390x",
    "riscv64": "riscv64",
}

_EXTENSIONS = {"conda": ".conda", "tar.bz2": ".tar.bz2"}

# Level 3 is zstd's default: far faster than conda-package-handling's 19 and the
# packages are tiny, so the size difference does not matter for tests.
_ZSTD_LEVEL = 3

_TEN_YEARS_MS = int(10 * 365.25 * 24 * 3600 * 1000)

HOSTILE_KINDS: tuple[str, ...] = (
    "empty",
    "truncated",
    "not_archive",
    "missing_index",
    "invalid_json",
    "name_mismatch",
    "wrong_subdir",
    "traversal",
    "absolute",
    "zipslip",
    "bomb",
    "huge_index",
    "future_timestamp",
)

_DEFAULT_BOMB_SIZE = 64 * 1024**2
_DEFAULT_HUGE_INDEX_SIZE = 16 * 1024**2
_DEFAULT_NOISE_SIZE = 4096


@dataclass
class PackageSpec:
    """What goes into one package; every field maps onto a file in ``info/`` or the payload."""

    name: str
    version: str = "1.0"
    build: str = "0"
    build_number: int = 0
    subdir: str = "noarch"
    depends: list[str] = field(default_factory=list)
    constrains: list[str] = field(default_factory=list)
    license: str | None = "MIT"
    license_family: str | None = None
    # Payload files by relative path; empty means one small text file (see payload()).
    files: dict[str, bytes] = field(default_factory=dict)
    # Merged over the defaults (summary, home, license) of info/about.json.
    about: dict[str, Any] = field(default_factory=dict)
    # Written to info/run_exports.json when not None.
    run_exports: dict[str, Any] | None = None
    # Milliseconds since the epoch; None means DEFAULT_TIMESTAMP.
    timestamp: int | None = None
    # Written to index.json as "purls" when not None.
    purls: list[str] | None = None
    # Merged into index.json last, so it may override anything above.
    extra_index: dict[str, Any] = field(default_factory=dict)

    @property
    def stem(self) -> str:
        """The file name without extension: ``<name>-<version>-<build>``."""
        return f"{self.name}-{self.version}-{self.build}"

    @property
    def effective_timestamp(self) -> int:
        """The ``index.json`` timestamp in ms (the default when none was given)."""
        return DEFAULT_TIMESTAMP if self.timestamp is None else self.timestamp

    def payload(self) -> dict[str, bytes]:
        """The payload files, the default one when :attr:`files` is empty."""
        if self.files:
            return dict(self.files)
        text = f"{self.name} {self.version} build {self.build} ({self.subdir})\n"
        return {f"share/{self.name}/{self.version}.txt": text.encode()}

    def index(self) -> dict[str, Any]:
        """The ``info/index.json`` document, shaped the way conda-build writes it."""
        noarch = self.subdir == "noarch"
        platform, _, suffix = self.subdir.partition("-")
        index: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "build": self.build,
            "build_number": self.build_number,
            # conda-build always writes depends, even empty, but constrains only if set.
            "depends": list(self.depends),
            "subdir": self.subdir,
            "timestamp": self.effective_timestamp,
            "arch": None if noarch else _ARCH.get(suffix, suffix or None),
            "platform": None if noarch else platform,
        }
        if self.constrains:
            index["constrains"] = list(self.constrains)
        if self.license is not None:
            index["license"] = self.license
        if self.license_family is not None:
            index["license_family"] = self.license_family
        if noarch:
            index["noarch"] = "generic"
        if self.purls is not None:
            index["purls"] = list(self.purls)
        index.update(self.extra_index)
        return index

    def about_json(self) -> dict[str, Any]:
        """The ``info/about.json`` document."""
        about: dict[str, Any] = {
            "summary": f"{self.name} {self.version}, a package built for tests",
            "home": f"https://example.org/{self.name}",
        }
        if self.license is not None:
            about["license"] = self.license
        about.update(self.about)
        return about


@dataclass(frozen=True)
class _Member:
    """One tar member: regular file (``data`` or ``zeros`` bytes of NUL) or a symlink."""

    name: str
    data: bytes = b""
    zeros: int = 0  # > 0: stream this many zero bytes instead of ``data``
    symlink_to: str | None = None


def _dumps(document: Any) -> bytes:
    # conda-build's json.dump(..., indent=2, sort_keys=True): no trailing newline.
    return json.dumps(document, indent=2, sort_keys=True).encode()


def _check_payload_path(path: str) -> None:
    # A normal build must be installable; hostile paths belong in build_hostile().
    parts = path.split("/")
    if not path or path.startswith("/") or ".." in parts or "" in parts or parts[0] == "info":
        raise ValueError(f"payload path {path!r} must be relative, inside the prefix, not info/")


def _payload_members(spec: PackageSpec) -> list[_Member]:
    payload = spec.payload()
    for path in payload:
        _check_payload_path(path)
    return [_Member(path, data) for path, data in sorted(payload.items())]


def _info_members(
    spec: PackageSpec,
    payload: list[_Member],
    *,
    index_bytes: bytes | None,
) -> list[_Member]:
    """``info/`` members; ``index_bytes=None`` leaves out index.json (hostile builds)."""
    paths = {
        "paths": [
            {
                "_path": m.name,
                "path_type": "hardlink",
                "sha256": hashlib.sha256(m.data).hexdigest(),
                "size_in_bytes": len(m.data),
            }
            for m in payload
        ],
        "paths_version": 1,
    }
    members = [
        _Member("info/about.json", _dumps(spec.about_json())),
        _Member("info/files", "".join(f"{m.name}\n" for m in payload).encode()),
        _Member("info/paths.json", _dumps(paths)),
    ]
    if index_bytes is not None:
        members.append(_Member("info/index.json", index_bytes))
    if spec.run_exports is not None:
        members.append(_Member("info/run_exports.json", _dumps(spec.run_exports)))
    return sorted(members, key=lambda m: m.name)


class _Zeros(io.RawIOBase):
    """A readable stream of ``size`` NUL bytes that never materialises them all."""

    _CHUNK = bytes(1024 * 1024)

    def __init__(self, size: int) -> None:
        self._left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        n = min(len(view), self._left, len(self._CHUNK))
        view[:n] = self._CHUNK[:n]
        self._left -= n
        return n


def _add(tar: tarfile.TarFile, member: _Member, mtime: int) -> None:
    # TarInfo is built by hand (not tar.add) so names are written verbatim: tarfile does
    # not sanitise names on write, which is what the hostile builds rely on.
    info = tarfile.TarInfo(member.name)
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if member.symlink_to is not None:
        info.type = tarfile.SYMTYPE
        info.linkname = member.symlink_to
        info.mode = 0o777
        tar.addfile(info)
        return
    # Scripts keep their executable bit so an installed bin/ entry point can run.
    info.mode = 0o755 if member.data.startswith(b"#!") else 0o644
    if member.zeros:
        info.size = member.zeros
        tar.addfile(info, io.BufferedReader(_Zeros(member.zeros)))
    else:
        info.size = len(member.data)
        tar.addfile(info, io.BytesIO(member.data))


def _zip_info(name: str, mtime: int) -> zipfile.ZipInfo:
    # Fixed date and attributes so the zip is byte-for-byte reproducible; the DOS date
    # format cannot go below 1980.
    stamp = time.gmtime(max(mtime, 315_532_800))[:6]
    info = zipfile.ZipInfo(name, date_time=stamp)
    info.compress_type = zipfile.ZIP_STORED
    info.create_system = 3
    info.external_attr = 0o644 << 16
    return info


def _write_tar_zst(
    archive: zipfile.ZipFile, name: str, members: Iterable[_Member], mtime: int
) -> None:
    # Streamed tar -> zstd -> zip entry: the bomb's gigabytes of zeros never sit in memory.
    # zipfile seeks back to fill in the local header, so no data descriptor is written,
    # which streaming zip readers (rattler's among them) need.
    compressor = zstandard.ZstdCompressor(level=_ZSTD_LEVEL)
    with (
        archive.open(_zip_info(name, mtime), "w") as entry,
        compressor.stream_writer(entry, closefd=False) as zst,
        tarfile.open(fileobj=zst, mode="w|", format=tarfile.PAX_FORMAT) as tar,
    ):
        for member in members:
            _add(tar, member, mtime)


def _write_conda(
    path: Path,
    stem: str,
    info: list[_Member],
    payload: list[_Member],
    mtime: int,
    extra_entries: Iterable[tuple[str, bytes]] = (),
) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr(
            _zip_info("metadata.json", mtime), json.dumps({"conda_pkg_format_version": 2})
        )
        _write_tar_zst(archive, f"pkg-{stem}.tar.zst", payload, mtime)
        _write_tar_zst(archive, f"info-{stem}.tar.zst", info, mtime)
        for name, data in extra_entries:
            archive.writestr(_zip_info(name, mtime), data)


def _write_tar_bz2(path: Path, info: list[_Member], payload: list[_Member], mtime: int) -> None:
    # info/ first, as conda-package-handling does, so readers find metadata early.
    with tarfile.open(path, "w:bz2", format=tarfile.PAX_FORMAT) as tar:
        for member in [*info, *payload]:
            _add(tar, member, mtime)


def _extension(fmt: str) -> str:
    try:
        return _EXTENSIONS[fmt.lstrip(".")]
    except KeyError:
        raise ValueError(f"unknown package format {fmt!r}: use 'conda' or 'tar.bz2'") from None


def _write(
    spec: PackageSpec,
    dest_dir: Path,
    fmt: str,
    *,
    index_bytes: bytes | None,
    extra_info: Iterable[_Member] = (),
    extra_zip_entries: Iterable[tuple[str, bytes]] = (),
) -> Path:
    ext = _extension(fmt)
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    path = dest_dir / f"{spec.stem}{ext}"
    payload = _payload_members(spec)
    # Extra (hostile) members go after the regular ones: index.json stays readable first.
    info = [*_info_members(spec, payload, index_bytes=index_bytes), *extra_info]
    mtime = spec.effective_timestamp // 1000
    if ext == ".conda":
        _write_conda(path, spec.stem, info, payload, mtime, extra_zip_entries)
    else:
        _write_tar_bz2(path, info, payload, mtime)
    return path


def build_conda(spec: PackageSpec, dest_dir: Path) -> Path:
    """Write ``<dest_dir>/<stem>.conda`` and return its path."""
    return _write(spec, dest_dir, "conda", index_bytes=_dumps(spec.index()))


def build_tar_bz2(spec: PackageSpec, dest_dir: Path) -> Path:
    """Write ``<dest_dir>/<stem>.tar.bz2`` and return its path."""
    return _write(spec, dest_dir, "tar.bz2", index_bytes=_dumps(spec.index()))


def build_package(spec: PackageSpec, dest_dir: Path, fmt: str = "conda") -> Path:
    """Write the package in ``fmt`` (``"conda"`` or ``"tar.bz2"``) and return its path."""
    return _write(spec, dest_dir, fmt, index_bytes=_dumps(spec.index()))


def build_many(
    dest_dir: Path,
    count: int,
    fmt: str = "conda",
    subdir: str = "noarch",
    prefix: str = "pkg",
) -> list[Path]:
    """Write ``count`` distinct small packages: names ``<prefix>N``, five versions each.

    Package ``i`` is ``<prefix>{i // 5}`` version ``1.{i % 5}``, so a channel built from
    them has several versions per name, as a real one does.
    """
    return [
        build_package(PackageSpec(f"{prefix}{i // 5}", f"1.{i % 5}", subdir=subdir), dest_dir, fmt)
        for i in range(count)
    ]


def _padded_index(index: dict[str, Any], size: int) -> bytes:
    """``index`` plus a ``"padding"`` string so the JSON is ``size`` bytes (if it can be)."""
    base = len(_dumps({**index, "padding": ""}))
    return _dumps({**index, "padding": "x" * max(0, size - base)})


def build_hostile(
    kind: str,
    dest_dir: Path,
    *,
    name: str = "bad",
    version: str = "1.0",
    build: str = "0",
    subdir: str = "noarch",
    fmt: str = "conda",
    size: int = 0,
) -> Path:
    """Write a malformed or malicious package of ``kind`` (one of :data:`HOSTILE_KINDS`).

    The file is always named ``<name>-<version>-<build>.<ext>``, so only its content is
    wrong. ``size`` (0 = the kind's default) sets the length of ``not_archive`` (4 KiB),
    the unpacked size of the ``bomb`` member (64 MiB) and of ``huge_index`` (16 MiB).
    Hostile ``info/`` members live in the info tarball of a ``.conda``, the part a server
    reads. Kinds:

    ``empty``: 0 bytes. ``truncated``: a valid package cut to half its length.
    ``not_archive``: text then random bytes. ``missing_index``: no ``info/index.json``.
    ``invalid_json``: index.json is not JSON. ``name_mismatch``: index.json names
    ``not-<name>``. ``wrong_subdir``: index.json says ``linux-64`` (``win-64`` if
    ``subdir`` is ``linux-64``). ``traversal``: extra member ``info/../../evil.txt``.
    ``absolute``: extra member ``/etc/evil.txt``. ``zipslip``: ``.conda``: a zip entry
    ``../evil.txt`` after the regular three; ``.tar.bz2``: symlink ``info/link`` to
    ``../../../etc/passwd``. ``bomb``: valid, plus ``info/bomb.bin`` of ``size`` zeros.
    ``huge_index``: index.json padded to ``size`` bytes, still valid JSON.
    ``future_timestamp``: timestamp ten years from now.
    """
    if kind not in HOSTILE_KINDS:
        raise ValueError(f"unknown hostile kind {kind!r}; one of {', '.join(HOSTILE_KINDS)}")
    ext = _extension(fmt)
    spec = PackageSpec(name, version, build, subdir=subdir)
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    path = dest_dir / f"{spec.stem}{ext}"
    index = spec.index()

    if kind == "empty":
        path.write_bytes(b"")
        return path
    if kind == "not_archive":
        # Seeded: reproducible, and the text head rules out any archive magic number.
        noise = random.Random(f"{spec.stem}{ext}").randbytes(size or _DEFAULT_NOISE_SIZE)
        path.write_bytes((b"this is not a conda package\n" + noise)[: size or None])
        return path
    if kind == "truncated":
        _write(spec, dest_dir, fmt, index_bytes=_dumps(index))
        os.truncate(path, path.stat().st_size // 2)
        return path

    index_bytes: bytes | None = _dumps(index)
    extra_info: list[_Member] = []
    extra_zip: list[tuple[str, bytes]] = []
    if kind == "missing_index":
        index_bytes = None
    elif kind == "invalid_json":
        index_bytes = b'{"name": "' + name.encode() + b'", "version": oops,'
    elif kind == "name_mismatch":
        index_bytes = _dumps({**index, "name": f"not-{name}"})
    elif kind == "wrong_subdir":
        other = "win-64" if subdir == "linux-64" else "linux-64"
        index_bytes = _dumps(replace(spec, subdir=other).index())
    elif kind == "traversal":
        extra_info.append(_Member("info/../../evil.txt", b"escaped the package\n"))
    elif kind == "absolute":
        extra_info.append(_Member("/etc/evil.txt", b"absolute path\n"))
    elif kind == "zipslip":
        if ext == ".conda":
            extra_zip.append(("../evil.txt", b"escaped the zip\n"))
        else:
            extra_info.append(_Member("info/link", symlink_to="../../../etc/passwd"))
    elif kind == "bomb":
        extra_info.append(_Member("info/bomb.bin", zeros=size or _DEFAULT_BOMB_SIZE))
    elif kind == "huge_index":
        index_bytes = _padded_index(index, size or _DEFAULT_HUGE_INDEX_SIZE)
    elif kind == "future_timestamp":
        # The tar/zip mtimes move with it, as they would in a real build made then.
        spec = replace(spec, timestamp=int(time.time() * 1000) + _TEN_YEARS_MS)
        index_bytes = _dumps(spec.index())
    return _write(
        spec,
        dest_dir,
        fmt,
        index_bytes=index_bytes,
        extra_info=extra_info,
        extra_zip_entries=extra_zip,
    )
