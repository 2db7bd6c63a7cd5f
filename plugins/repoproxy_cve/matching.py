"""Which package files a CVE affects: by conda name and version, and by PyPI PURLs.

Conda entries carry a conda version spec matched with rattler's ``MatchSpec``; OSV entries
carry events (``introduced``/``fixed``/``last_affected``) and explicit versions, compared in
their ecosystem's order: PEP 440 (``packaging.version``) for PyPI, where ``2.0.dev0`` comes
before ``2.0rc1``, and rattler's ``Version`` (conda ordering) for conda. A PyPI entry matches
a record whose ``purls`` name the project; the version is the PURL's ``@version``, else the
conda version.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from packaging.version import InvalidVersion
from packaging.version import Version as Pep440Version
from rattler import MatchSpec, Version
from rattler import PackageRecord as RattlerRecord
from rattler.package.build_string import BuildString

from repoproxy.models import PackageRecord

from .importer import pypi_name
from .store import CveStore


def _conda_version(text: str) -> Any:
    try:
        return Version(text)
    except Exception:  # rattler's InvalidVersionError
        return None


def _pypi_version(text: str) -> Any:
    try:
        return Pep440Version(text)
    except InvalidVersion:
        return None


#: ecosystem -> the parser whose order its ranges are written in
PARSERS: dict[str, Callable[[str], Any]] = {"pypi": _pypi_version, "conda": _conda_version}


def in_events(version: str, events: list[dict[str, str]], versions: list[str],
              ecosystem: str = "conda") -> bool:
    """Whether ``version`` is affected by OSV ``events`` or listed in ``versions``."""
    parse = PARSERS.get(ecosystem, _conda_version)
    if version in versions:
        return True
    v = parse(version)
    if v is None:
        return False
    if any(parse(listed) == v for listed in versions):  # "1.0" and "1.0.0" are one version
        return True
    affected = False
    for event in events:
        if "introduced" in event:
            start = event["introduced"]
            if start == "0" or ((s := parse(start)) is not None and v >= s):
                affected = True
        elif "fixed" in event:
            fixed = parse(event["fixed"])
            if fixed is not None and v >= fixed:
                affected = False
        elif "last_affected" in event:
            last = parse(event["last_affected"])
            if last is not None and v > last:
                affected = False
    return affected


def _purls(rec: PackageRecord) -> list[tuple[str, str]]:
    out = []
    for purl in rec.record.get("purls") or ():
        if isinstance(purl, str) and purl.startswith("pkg:pypi/"):
            name, _, version = purl[len("pkg:pypi/"):].partition("@")
            out.append((pypi_name(name), version.split("?")[0] or rec.version))
    return out


def facts_for(store: CveStore, records: Iterable[PackageRecord]
              ) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """(subdir, filename) -> [{"id", "score", "status"}] for every affected record."""
    records = list(records)
    conda_names = {r.name for r in records}
    pypi_names = {n for r in records for n, _ in _purls(r)}
    rows: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    found_rows = [*store.affected("conda", conda_names), *store.affected("pypi", pypi_names)]
    for row in found_rows:
        rows[(row["ecosystem"], row["name"])].append(row)
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for rec in records:
        found: dict[str, dict[str, Any]] = {}
        rattler_rec = None
        for row in rows.get(("conda", rec.name), ()):
            if row["spec"]:
                rattler_rec = rattler_rec or RattlerRecord(
                    rec.name, rec.version, BuildString(rec.build), rec.build_number, rec.subdir)
                hit = MatchSpec(f"{rec.name} {row['spec']}").matches(rattler_rec)
            else:
                hit = in_events(rec.version, json.loads(row["ranges"]),
                                json.loads(row["versions"]), "conda")
            if hit:
                found[row["cve_id"]] = row
        for name, version in _purls(rec):
            for row in rows.get(("pypi", name), ()):
                if in_events(version, json.loads(row["ranges"]), json.loads(row["versions"]),
                             "pypi"):
                    found[row["cve_id"]] = row
        if found:
            out[(rec.subdir, rec.filename)] = [
                {"id": r["cve_id"], "score": r["score"], "status": r["status"]}
                for r in sorted(found.values(), key=lambda r: r["cve_id"])]
    return out
