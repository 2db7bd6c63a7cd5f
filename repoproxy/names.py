"""Name rules of CEP-26 (channels, packages, builds, file names) and conda subdirs."""

from __future__ import annotations

import re

from repoproxy.errors import InvalidName

CHANNEL_RE = re.compile(r"^[a-z0-9_][a-z0-9_.-]*$")
PACKAGE_RE = re.compile(r"^(([a-z0-9])|([a-z0-9_](?!_)))[._-]?([a-z0-9]+(\.|-|_|$))*$")
BUILD_RE = re.compile(r"^[a-zA-Z0-9_.+]+$")
VERSION_RE = re.compile(r"^[a-zA-Z0-9_.+!*]+$")
SUBDIR_RE = re.compile(r"^[a-z0-9]+-[a-z0-9]+$")
TOKEN_RE = re.compile(r"^[A-Za-z0-9-]{1,200}$")

#: Top-level path words the server's own routes use: a channel may not take them.
RESERVED_CHANNELS = frozenset({"api", "t", "-", "static", "label"})
EXTENSIONS = (".conda", ".tar.bz2")


def check_channel_name(name: str) -> str:
    if not name or len(name) > 128 or not CHANNEL_RE.match(name):
        raise InvalidName(
            f"invalid channel name {name!r}: use lowercase letters, digits, '_', '.', '-' "
            "(CEP-26), at most 128 characters, not starting with '.' or '-'"
        )
    if name in RESERVED_CHANNELS:
        raise InvalidName(f"channel name {name!r} is reserved")
    return name


def is_subdir(subdir: str) -> bool:
    return subdir == "noarch" or (len(subdir) <= 32 and bool(SUBDIR_RE.match(subdir)))


def check_subdir(subdir: str) -> str:
    if not is_subdir(subdir):
        raise InvalidName(f"invalid subdir {subdir!r}: expected 'noarch' or '<os>-<arch>'")
    return subdir


def split_filename(filename: str) -> tuple[str, str, str, str]:
    """Split ``name-version-build.ext`` into its parts, or raise :class:`InvalidName`."""
    ext = next((e for e in EXTENSIONS if filename.endswith(e)), None)
    if ext is None:
        raise InvalidName(f"{filename!r} is not a conda package file name (.conda or .tar.bz2)")
    if len(filename) > 211 or "/" in filename or "\\" in filename or filename.startswith("."):
        raise InvalidName(f"invalid package file name {filename!r}")
    stem = filename[: -len(ext)]
    parts = stem.rsplit("-", 2)
    if len(parts) != 3 or not all(parts):
        raise InvalidName(f"{filename!r} is not of the form <name>-<version>-<build>{ext}")
    name, version, build = parts
    if not PACKAGE_RE.match(name) or len(name) > 64:
        raise InvalidName(f"invalid package name {name!r} in {filename!r} (CEP-26)")
    if not VERSION_RE.match(version):
        raise InvalidName(f"invalid version {version!r} in {filename!r}")
    if not BUILD_RE.match(build):
        raise InvalidName(f"invalid build string {build!r} in {filename!r}")
    return name, version, build, ext


def is_package_filename(filename: str) -> bool:
    try:
        split_filename(filename)
    except InvalidName:
        return False
    return True
