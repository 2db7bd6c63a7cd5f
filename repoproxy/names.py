"""Name rules of CEP-26 (channels, packages, builds, file names) and conda subdirs.

One rule, the clients' rule: versions, package names and build strings must also parse with
rattler's own parsers (what pixi, rattler-build and conda-libmamba read repodata with), so the
server never stores what a client cannot read back. Every pattern is anchored with ``\\A`` and
``\\Z`` and applied with ``fullmatch``: ``$`` would also accept a trailing newline.
"""

from __future__ import annotations

import functools
import re

from repoproxy.errors import InvalidName

CHANNEL_RE = re.compile(r"\A[a-z0-9_][a-z0-9_.-]*\Z")
PACKAGE_RE = re.compile(r"\A(([a-z0-9])|([a-z0-9_](?!_)))[._-]?([a-z0-9]+(\.|-|_|\Z))*\Z")
BUILD_RE = re.compile(r"\A[a-zA-Z0-9_.+]+\Z")
VERSION_RE = re.compile(r"\A[a-zA-Z0-9_.+!]+\Z")
SUBDIR_RE = re.compile(r"\A[a-z0-9]+-[a-z0-9]+\Z")
TOKEN_RE = re.compile(r"\A[A-Za-z0-9-]{1,200}\Z")

#: Top-level path words the server's own routes use: a channel may not take them.
RESERVED_CHANNELS = frozenset({"api", "t", "-", "static", "label", "ui"})
#: Words that follow a channel in the server's own paths (``/<channel>/channeldata.json``,
#: ``/api/channels/<channel>/artifacts/...``): a subchannel may not take them, so that
#: ``<channel>/<sub>`` is never read as a channel followed by one of these paths.
RESERVED_SUBCHANNELS = RESERVED_CHANNELS | frozenset({
    "shards", "channeldata.json", "artifacts", "subchannels", "files", "members", "upload",
    "badges", "sbom", "downloads", "cves", "sbom.json",
})
EXTENSIONS = (".conda", ".tar.bz2")


def split_channel(name: str) -> tuple[str, str | None]:
    """``"C/SUB"`` -> ``("C", "SUB")``; ``"C"`` -> ``("C", None)`` (no check)."""
    parent, sep, sub = name.partition("/")
    return parent, (sub if sep else None)


def parent_channel(name: str) -> str:
    """The channel whose access governs ``name``: itself, or a subchannel's parent."""
    return name.partition("/")[0]


def check_subchannel_name(sub: str) -> str:
    """A subchannel's own name: a channel name that no subdir and no server path word takes.

    ``/<channel>/<sub>/<subdir>/...`` and ``/<channel>/<subdir>/shards/...`` must never be
    confused, so a name shaped like a subdir (``noarch``, ``<os>-<arch>``, whatever its
    length: the server accepts any such subdir) is refused.
    """
    if not sub or len(sub) > 128 or not CHANNEL_RE.fullmatch(sub):
        raise InvalidName(
            f"invalid subchannel name {sub!r}: use lowercase letters, digits, '_', '.', '-', "
            "at most 128 characters, not starting with '.' or '-'")
    if sub == "noarch" or SUBDIR_RE.fullmatch(sub):
        raise InvalidName(f"subchannel name {sub!r} is shaped like a subdir (noarch or "
                          "<os>-<arch>) and would be confused with one")
    if sub in RESERVED_SUBCHANNELS:
        raise InvalidName(f"subchannel name {sub!r} is reserved")
    return sub


def check_channel_name(name: str) -> str:
    """A channel name, or ``<channel>/<subchannel>`` (one level of subchannels)."""
    if isinstance(name, str) and "/" in name:
        parent, sub = split_channel(name)
        check_channel_name(parent)
        check_subchannel_name(sub or "")
        return name
    if not isinstance(name, str) or not name or len(name) > 128 or not CHANNEL_RE.fullmatch(name):
        raise InvalidName(
            f"invalid channel name {name!r}: use lowercase letters, digits, '_', '.', '-' "
            "(CEP-26), at most 128 characters, not starting with '.' or '-'"
        )
    if name in RESERVED_CHANNELS:
        raise InvalidName(f"channel name {name!r} is reserved")
    return name


def is_subdir(subdir: str) -> bool:
    return subdir == "noarch" or (len(subdir) <= 32 and bool(SUBDIR_RE.fullmatch(subdir)))


def check_subdir(subdir: str) -> str:
    if not is_subdir(subdir):
        raise InvalidName(f"invalid subdir {subdir!r}: expected 'noarch' or '<os>-<arch>'")
    return subdir


def check_file_name(filename: str) -> str:
    """A file name that stays inside its directory (no separator, not hidden, not ``..``),
    or :class:`InvalidName`. The one check every stored file name passes, package or not."""
    if not filename or "/" in filename or "\\" in filename or filename.startswith("."):
        raise InvalidName(f"invalid file name {filename!r}")
    return filename


@functools.lru_cache(maxsize=4096)
def split_filename(filename: str) -> tuple[str, str, str, str]:
    """Split ``name-version-build.ext`` into its parts, or raise :class:`InvalidName`.

    Cached (a refusal is not): an ingest checks a name three times (its worker's filter,
    the receive, the metadata check), at ~0.05 ms each with rattler's parsers."""
    ext = next((e for e in EXTENSIONS if filename.endswith(e)), None)
    if ext is None:
        raise InvalidName(f"{filename!r} is not a conda package file name (.conda or .tar.bz2)")
    if len(filename) > 211:
        raise InvalidName(f"invalid package file name {filename!r} (longer than 211 characters)")
    check_file_name(filename)
    stem = filename[: -len(ext)]
    parts = stem.rsplit("-", 2)
    if len(parts) != 3 or not all(parts):
        raise InvalidName(f"{filename!r} is not of the form <name>-<version>-<build>{ext}")
    name, version, build = parts
    for problem in (package_name_problem(name), version_problem(version),
                    build_problem(build)):
        if problem:
            raise InvalidName(f"{problem} in {filename!r}")
    return name, version, build, ext


def package_name_problem(name: str) -> str | None:
    """Why ``name`` is not a package name (CEP-26 and rattler's ``PackageName``), or None."""
    if len(name) > 64 or not PACKAGE_RE.fullmatch(name):
        return f"invalid package name {name!r} (CEP-26: lowercase ASCII letters, digits, " \
               "'_', '.', '-')"
    from rattler import PackageName  # here: the CLI's --help must not load rattler

    try:
        PackageName(name)
    except Exception as e:  # rattler raises its own exception classes
        return f"invalid package name {name!r}: {e}"
    return None


def version_problem(version: str) -> str | None:
    """Why ``version`` is not a conda version rattler can parse, or None."""
    if not VERSION_RE.fullmatch(version):
        return (f"invalid version {version!r}: use ASCII letters, digits, '.', '_', '+', '!'")
    from rattler import Version

    try:
        Version(version)
    except Exception as e:  # rattler's InvalidVersionError
        return f"invalid version {version!r}: {_first_line(e)}"
    return None


def build_problem(build: str) -> str | None:
    """Why ``build`` is not a CEP-26 build string, or None."""
    if not BUILD_RE.fullmatch(build):
        return f"invalid build string {build!r}: use ASCII letters, digits, '_', '.', '+'"
    from rattler import BuildString

    try:
        BuildString(build)
    except Exception as e:  # rattler's ValueError
        return f"invalid build string {build!r}: {_first_line(e)}"
    return None


def _first_line(e: Exception) -> str:
    # rattler quotes the input in its message; a newline in it must not split ours
    return " ".join(str(e).split()) or type(e).__name__


def is_package_filename(filename: str) -> bool:
    try:
        split_filename(filename)
    except InvalidName:
        return False
    return True
