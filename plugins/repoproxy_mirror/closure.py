"""The dependency closure of an active mirror's ``--only_spec`` list
(``--only_spec_dependencies True``): what installing the named packages needs.

One solve per platform subdir with py-rattler over the upstream's records of that subdir and
noarch, for the only-specs that name something there (all together; if that fails, say two
of them conflict, one solve per spec). The packages of every solution join the only-specs'
matches; the other filters and policies then apply to them as to any record. A solve picks one
version per name, the newest that fits: older versions of dependencies are not mirrored.

Bounded: each solve has a timeout (``repoproxy_mirror.solve_timeout``), and a subdir costs at
most one solve per only-spec plus one. Virtual packages stand for a recent machine of the
subdir's platform (glibc, macOS, Windows), since the mirror's own machine says nothing about
its clients'. A failed solve is logged and counted (``closure_errors``); the run goes on with
what the others found.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

from .filters import SpecList

log = logging.getLogger(__name__)

#: virtual packages of a recent machine per platform (name, version)
_VIRTUAL = {
    "linux": [("__linux", "6.1"), ("__glibc", "2.39"), ("__unix", "0")],
    "osx": [("__osx", "15.0"), ("__unix", "0")],
    "win": [("__win", "0")],
}


def _virtual(subdir: str) -> list[Any]:
    from rattler import GenericVirtualPackage, PackageName, Version
    from rattler.package.build_string import BuildString

    out = [GenericVirtualPackage(PackageName(name), Version(version), BuildString("0"))
           for name, version in _VIRTUAL.get(subdir.split("-")[0], [])]
    arch = subdir.split("-", 1)[1] if "-" in subdir else ""
    if arch:
        archspec = {"64": "x86_64", "32": "x86"}.get(arch, arch)
        out.append(GenericVirtualPackage(PackageName("__archspec"), Version("1"),
                                         BuildString(archspec)))
    return out


def _records(repodata: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {fn: r for key in ("packages", "packages.conda")
            for fn, r in (repodata.get(key) or {}).items() if isinstance(r, dict)}


def closure(source: str, indexes: dict[str, dict[str, Any]], only_specs: list[str],
            timeout: float) -> tuple[dict[str, set[str]], int]:
    """``({subdir: file names}, failed solves)`` for the upstream ``indexes`` (subdir ->
    patched repodata, noarch included when the mirror has it)."""
    found: dict[str, set[str]] = {}
    failures = 0
    noarch = indexes.get("noarch") or {}
    platforms = [sd for sd in indexes if sd != "noarch"] or ["noarch"]
    with tempfile.TemporaryDirectory(prefix="repoproxy-closure-") as tmp:
        noarch_path = _write(Path(tmp), "noarch", noarch)
        for subdir in platforms:
            pool = {**_records(noarch)}
            paths = [("noarch", noarch_path)]
            if subdir != "noarch":
                pool.update(_records(indexes[subdir]))
                paths.append((subdir, _write(Path(tmp), subdir, indexes[subdir])))
            # only the specs that name something here: a spec for another platform would
            # make the whole solve fail
            specs = [s for s in only_specs if any(
                SpecList([s]).matches(r, subdir) for r in pool.values())]
            if not specs:
                continue
            attempts = [specs] + ([[s] for s in specs] if len(specs) > 1 else [])
            for attempt in attempts:
                try:
                    solved = _solve(source, paths, attempt, subdir, timeout)
                except Exception as e:  # rattler's SolverError, a timeout
                    failures += 1
                    log.warning("mirror closure of %s in %s: no solution: %s",
                                ", ".join(attempt), subdir, str(e).splitlines()[0][:300])
                    continue
                for sd, fn in solved:
                    found.setdefault(sd, set()).add(fn)
                if attempt is specs:
                    break  # all together worked: no need for one solve per spec
    return found, failures


def _write(tmp: Path, subdir: str, repodata: dict[str, Any]) -> Path:
    path = tmp / subdir / "repodata.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"info": {"subdir": subdir}, "packages": repodata.get("packages") or {},
            "packages.conda": repodata.get("packages.conda") or {}}
    path.write_text(json.dumps(data))
    return path


def _solve(source: str, paths: list[tuple[str, Path]], specs: list[str], subdir: str,
           timeout: float) -> list[tuple[str, str]]:
    from rattler import Channel, MatchSpec, SparseRepoData, solve_with_sparse_repodata

    channel = Channel(source)
    sparse = [SparseRepoData(channel, sd, path) for sd, path in paths]
    records = asyncio.run(solve_with_sparse_repodata(
        [MatchSpec(s) for s in specs], sparse, virtual_packages=_virtual(subdir),
        timeout=datetime.timedelta(seconds=timeout), timestamp_policy="allow-missing"))
    return [(r.subdir, r.file_name) for r in records]
