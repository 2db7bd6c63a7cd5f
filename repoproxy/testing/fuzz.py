"""Property-based fuzzing of the archive reader and the ingest checks (hypothesis).

Shared by ``tests/unit/test_fuzz_archive.py`` (a bounded number of cases in CI) and
``bench/fuzz.py`` (a long run, without pytest). Each fuzzer is a hypothesis strategy plus a
check; the check feeds one generated input to the real code and says how it ended:

* ``"accepted"``: read and checked; the result is then checked for consistency (the name,
  version and build of index.json are those of the file name, the subdir is valid);
* ``"refused"``: a :class:`repoproxy.errors.RepoproxyError` (a 4xx with a message);
* anything else (another exception, a hang caught by hypothesis's deadline) fails the run.

The inputs: random bytes behind archive magic numbers; real packages (built by
:mod:`repoproxy.testing.packages`) truncated or with bytes overwritten; index.json values of
random JSON types; archives whose member names and link targets are hostile.
"""

from __future__ import annotations

import io
import json
import shutil
import tarfile
import tempfile
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from repoproxy.errors import InvalidPackage, RepoproxyError
from repoproxy.models import PackageMetadata
from repoproxy.names import is_subdir, split_filename
from repoproxy.pipeline.archive import read_metadata
from repoproxy.pipeline.ingest import Rules, check_metadata, prepare_file
from repoproxy.testing.packages import PackageSpec, build_package

EXTENSIONS = (".conda", ".tar.bz2")
MAGIC = (b"", b"PK\x03\x04", b"PK\x05\x06", b"BZh91AY&SY", b"\x28\xb5\x2f\xfd",
         b"\x1f\x8b\x08", b"ustar\x0000")

# Small bounds keep a case fast: the reader's limits are tested by the hostile-package tests
RULES = Rules()

Outcome = str  # "accepted" or "refused"


# --- inputs ---------------------------------------------------------------------------------
json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                               max_size=4),
    max_leaves=12,
)

#: index.json keys the ingest rules read, with values that are sometimes right
INDEX_KEYS: dict[str, st.SearchStrategy[Any]] = {
    "name": st.sampled_from(["fuzz", "Fuzz", "other", ""]) | json_values,
    "version": st.sampled_from(["1.0", "2.0"]) | json_values,
    "build": st.sampled_from(["0", "py_0"]) | json_values,
    "build_number": st.integers(-5, 5) | json_values,
    "depends": st.lists(st.text(max_size=12), max_size=3) | json_values,
    "constrains": st.lists(st.text(max_size=12), max_size=3) | json_values,
    "track_features_list": json_values,
    "timestamp": st.integers(0, 2**63) | st.floats() | json_values,
    "subdir": st.sampled_from(["noarch", "linux-64", "win-64", "linux", "../x"]) | json_values,
    "noarch": st.sampled_from(["generic", "python"]) | json_values,
}


@st.composite
def index_documents(draw: st.DrawFn) -> dict[str, Any]:
    """A conda-build index.json with some keys replaced by random JSON or left out."""
    index = PackageSpec("fuzz", "1.0", "0").index()
    for key, values in INDEX_KEYS.items():
        choice = draw(st.sampled_from(["keep", "replace", "drop"]))
        if choice == "replace":
            index[key] = draw(values)
        elif choice == "drop":
            index.pop(key, None)
    return index


@cache
def real_packages() -> tuple[tuple[str, bytes], ...]:
    """(file name, bytes) of a few real packages, built once per process."""
    work = Path(tempfile.mkdtemp(prefix="repoproxy-fuzz-"))
    try:
        specs = [PackageSpec("fuzz", "1.0", "0", depends=["python >=3.8"]),
                 PackageSpec("fuzz", "2.0", "py_0", subdir="linux-64",
                             about={"description": "x" * 300},
                             run_exports={"weak": ["fuzz >=2"]})]
        out = []
        for spec in specs:
            for fmt in ("conda", "tar.bz2"):
                path = build_package(spec, work, fmt)
                out.append((path.name, path.read_bytes()))
        return tuple(out)
    finally:
        shutil.rmtree(work, ignore_errors=True)


@dataclass(frozen=True)
class Member:
    """One archive member: a file (``data``), a directory, or a sym/hard link."""

    name: str
    kind: str = "file"  # file | dir | symlink | hardlink
    data: bytes = b""
    target: str = ""


NAME_PARTS = st.sampled_from(["info", "index.json", "..", ".", "", "etc", "passwd", "C:",
                              "\\..\\x", "a" * 120, "ü", "info/../..", "~"])
member_names = (
    st.lists(NAME_PARTS | st.text(st.characters(codec="utf-8",
                                                exclude_characters="\x00"), max_size=10),
             min_size=1, max_size=5).map("/".join)
    | st.sampled_from(["/etc/evil", "info/../../evil", "../evil", "./info/index.json",
                       "info\\..\\..\\evil", "C:\\evil", "info/index.json"])
)


@st.composite
def members(draw: st.DrawFn) -> list[Member]:
    """The info members of a real package plus hostile ones, in random order."""
    index = json.dumps(PackageSpec("fuzz", "1.0", "0").index()).encode()
    out = [Member("info/index.json", data=index)]
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["file", "dir", "symlink", "hardlink"]))
        out.append(Member(draw(member_names), kind, draw(st.binary(max_size=64)),
                          draw(member_names)))
    return draw(st.permutations(out))


def tar_bytes(items: list[Member]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for m in items:
            info = tarfile.TarInfo(m.name)
            if m.kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif m.kind in ("symlink", "hardlink"):
                info.type = tarfile.SYMTYPE if m.kind == "symlink" else tarfile.LNKTYPE
                info.linkname = m.target
                tar.addfile(info)
            else:
                info.size = len(m.data)
                tar.addfile(info, io.BytesIO(m.data))
    return buf.getvalue()


CONDA_ENTRIES = ("metadata.json", "pkg-fuzz-1.0-0.tar.zst", "info-fuzz-1.0-0.tar.zst")


def archive_bytes(items: list[Member], ext: str, zip_names: list[str]) -> bytes:
    """A ``.tar.bz2`` of ``items``, or a ``.conda`` with them in its info tarball."""
    import bz2

    tar = tar_bytes(items)
    if ext == ".tar.bz2":
        return bz2.compress(tar)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        meta, pkg, info = CONDA_ENTRIES
        zf.writestr(meta, '{"conda_pkg_format_version": 2}')
        zf.writestr(pkg, zstandard.compress(tar_bytes([])))
        zf.writestr(info, zstandard.compress(tar))
        for name in zip_names:
            zf.writestr(name, b"zip entry")
    return buf.getvalue()


def is_hostile(name: str) -> bool:
    """The oracle, written apart from the reader's own rule: absolute, or leaves with '..'."""
    posix = name.replace("\\", "/")
    return posix.startswith("/") or (len(name) > 1 and name[1] == ":") or ".." in posix.split("/")


def link_escapes(member: Member) -> bool:
    """A link whose target is absolute or outside the archive: a symlink's target is relative
    to the link's folder, a hard link's to the archive's root (tar's rules)."""
    if member.kind not in ("symlink", "hardlink"):
        return False
    if member.target.startswith("/"):
        return True
    base = PurePosixPath(member.name.removeprefix("./")).parent
    target = base / member.target if member.kind == "symlink" else PurePosixPath(member.target)
    depth = 0
    for part in target.parts:
        depth += -1 if part == ".." else (0 if part == "." else 1)
        if depth < 0:
            return True
    return False


# --- checks ----------------------------------------------------------------------------------
def ingest(data: bytes, filename: str, work: Path) -> tuple[Outcome, Any]:
    """``read_metadata`` then ``prepare_file`` on ``data``: both must agree, and leave nothing."""
    src, tmp = work / "src", work / "tmp"
    src.write_bytes(data)
    meta: PackageMetadata | RepoproxyError
    try:
        meta = read_metadata(src, filename, RULES.limits)
    except RepoproxyError as e:
        meta = e
    try:
        prepared = prepare_file(src, tmp, RULES, filename=filename)
    except RepoproxyError as e:
        # nothing half-written stays behind
        assert not any(tmp.iterdir()), f"left in tmp: {list(tmp.iterdir())}"
        return "refused", e
    assert isinstance(meta, PackageMetadata), f"read_metadata refused, ingest took it: {meta}"
    try:
        name, version, build, _ = split_filename(filename)
        index = prepared.metadata.index
        assert (index["name"], index["version"], index["build"]) == (name, version, build)
        assert is_subdir(prepared.subdir), prepared.subdir
        assert prepared.size == len(data)
    finally:
        prepared.tmp_path.unlink()
    return "accepted", prepared


def check_random_bytes(case: tuple[bytes, str], work: Path) -> Outcome:
    data, ext = case
    outcome, _ = ingest(data, "fuzz-1.0-0" + ext, work)
    return outcome


def check_truncated(case: tuple[int, float], work: Path) -> Outcome:
    index, fraction = case
    filename, data = real_packages()[index % len(real_packages())]
    cut = int(len(data) * fraction)
    outcome, _ = ingest(data[:cut], filename, work)
    # a package that lost bytes is never taken
    assert outcome == "refused", f"{filename} cut to {cut} of {len(data)} bytes was accepted"
    return outcome


def check_mutated(case: tuple[int, list[tuple[float, int]]], work: Path) -> Outcome:
    index, changes = case
    filename, data = real_packages()[index % len(real_packages())]
    buf = bytearray(data)
    for where, value in changes:
        buf[int(where * (len(buf) - 1))] = value
    outcome, _ = ingest(bytes(buf), filename, work)
    return outcome


def check_index(case: tuple[dict[str, Any], str, str | None], work: Path) -> Outcome:
    """Random index.json values, through a real package and through check_metadata alone."""
    index, ext, target = case
    filename = "fuzz-1.0-0" + ext
    items = [Member("info/index.json", data=json.dumps(index).encode())]
    outcome, _ = ingest(archive_bytes(items, ext, []), filename, work)
    if not isinstance(index, dict):
        assert outcome == "refused", "an index.json that is not an object was accepted"
        return outcome
    try:
        subdir = check_metadata(filename, target, PackageMetadata(index=index), RULES)
    except InvalidPackage as e:
        if not e.reasons:
            raise AssertionError(f"a refusal without reasons: {e.message}") from None
        return "refused"
    assert is_subdir(subdir), subdir
    assert target is None or subdir == target, (subdir, target)
    return outcome


def check_members(case: tuple[list[Member], str, list[str]], work: Path) -> Outcome:
    items, ext, zip_names = case
    data = archive_bytes(items, ext, zip_names)
    outcome, _ = ingest(data, "fuzz-1.0-0" + ext, work)
    hostile = [m.name for m in items if is_hostile(m.name.removeprefix("./"))
               or link_escapes(m)]
    if ext == ".conda":
        hostile += [n for n in zip_names if is_hostile(n)]
    if hostile:
        assert outcome == "refused", f"hostile members {hostile} were accepted"
    return outcome


@dataclass(frozen=True)
class Fuzzer:
    strategy: st.SearchStrategy[Any]
    check: Callable[[Any, Path], Outcome]


EXT = st.sampled_from(EXTENSIONS)

FUZZERS: dict[str, Fuzzer] = {
    "random_bytes": Fuzzer(
        st.tuples(st.tuples(st.sampled_from(MAGIC), st.binary(max_size=2048))
                  .map(lambda t: t[0] + t[1]), EXT),
        check_random_bytes),
    "truncated": Fuzzer(st.tuples(st.integers(0, 3), st.floats(0, 1, exclude_max=True)),
                        check_truncated),
    "mutated": Fuzzer(st.tuples(st.integers(0, 3),
                                st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)),
                                         min_size=1, max_size=8)),
                      check_mutated),
    "index_json": Fuzzer(st.tuples(index_documents() | json_values, EXT,
                                   st.sampled_from([None, "noarch", "linux-64"])),
                         check_index),
    "hostile_members": Fuzzer(
        st.tuples(members(), EXT,
                  st.lists(member_names.filter(lambda n: n and n not in CONDA_ENTRIES), max_size=2,
                           unique=True)),
        check_members),
}


def run(fuzzer: Fuzzer, work: Path, cases: int, seed: int | None = None) -> Counter[Outcome]:
    """Run ``cases`` inputs of ``fuzzer`` (in ``work``, emptied before each); count outcomes.

    ``seed=None`` derandomizes (the same cases every run, for CI); a seed picks other cases,
    reproducibly. A failing case raises, after hypothesis has shrunk it.
    """
    outcomes: Counter[Outcome] = Counter()

    # generous deadline: it catches a hang, not a slow machine (2 cores, shared)
    @settings(max_examples=cases, deadline=timedelta(seconds=20), derandomize=seed is None,
              database=None, suppress_health_check=[HealthCheck.too_slow,
                                                    HealthCheck.data_too_large])
    @given(fuzzer.strategy)
    def one(case: Any) -> None:
        shutil.rmtree(work, ignore_errors=True)
        (work / "tmp").mkdir(parents=True)
        outcomes[fuzzer.check(case, work)] += 1

    (one if seed is None else hypothesis_seed(seed)(one))()
    shutil.rmtree(work, ignore_errors=True)
    return outcomes
