"""Which upstream records a mirror keeps: subdirs, MatchSpec lists, licenses, dates.

The spec lists combine by :func:`decide`, whose truth table is docs/mirrors.md's (a test reads
the table from the docs and checks every cell against this function).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any

from .model import Mirror


def decide(only: bool | None, exclude: bool | None, include: bool | None) -> bool:
    """Keep a record? Each argument: None = the list is empty, else whether one spec matched.

    ``only`` narrows (a record must match one only-spec when there are any); ``exclude`` drops;
    ``include`` overrides ``exclude`` and nothing else: it never widens ``only``.
    """
    if only is False:
        return False
    if exclude:
        return bool(include)
    return True


class SpecList:
    """MatchSpecs compiled once; a record is matched by name first (cheap), then by rattler."""

    def __init__(self, specs: Iterable[str]) -> None:
        from rattler import MatchSpec

        self.specs = [MatchSpec(s) for s in specs]

    def __bool__(self) -> bool:
        return bool(self.specs)

    def matches(self, rec: dict[str, Any], subdir: str) -> bool:
        from rattler import PackageRecord as RattlerRecord
        from rattler.package.build_string import BuildString

        name = str(rec.get("name", ""))
        candidates = [s for s in self.specs if s.name is None or s.name.normalized == name]
        if not candidates:
            return False
        try:
            rr = RattlerRecord(name, str(rec.get("version", "")), BuildString(
                str(rec.get("build", ""))), int(rec.get("build_number") or 0), subdir)
        except Exception:  # a record rattler cannot read is matched by nothing
            return False
        return any(s.matches(rr) for s in candidates)


def _day(ts: Any) -> date | None:
    if not isinstance(ts, (int, float)) or isinstance(ts, bool):
        return None
    seconds = ts / 1000 if ts > 1e11 else ts
    return datetime.fromtimestamp(seconds, tz=UTC).date()


class MirrorFilter:
    def __init__(self, mirror: Mirror) -> None:
        self.subdirs = set(mirror.subdirs)
        self.only = SpecList(mirror.only_specs)
        self.exclude = SpecList(mirror.exclude_specs)
        self.include = SpecList(mirror.include_specs)
        self.lic_in = {x for x in mirror.licenses if not x.startswith("-")}
        self.lic_out = {x[1:] for x in mirror.licenses if x.startswith("-")}
        self.date_from = date.fromisoformat(mirror.date_from) if mirror.date_from else None
        self.date_to = date.fromisoformat(mirror.date_to) if mirror.date_to else None
        #: subdir -> file names that count as matching an only-spec (the dependency closure,
        #: closure.py)
        self.also: dict[str, set[str]] = {}

    def wants_subdir(self, subdir: str) -> bool:
        return not self.subdirs or subdir in self.subdirs

    def keep(self, rec: dict[str, Any], subdir: str, filename: str = "") -> bool:
        only = (self.only.matches(rec, subdir)
                or filename in self.also.get(subdir, ())) if self.only else None
        exclude = self.exclude.matches(rec, subdir) if self.exclude else None
        include = self.include.matches(rec, subdir) if self.include else None
        if not decide(only, exclude, include):
            return False
        if self.lic_in or self.lic_out:
            names = {_norm(rec.get("license_family")), _norm(rec.get("license"))} - {""}
            if not names:
                names = {"none"}
            if names & self.lic_out:
                return False
            if self.lic_in and not names & self.lic_in:
                return False
        if self.date_from or self.date_to:
            # a record without a timestamp cannot be shown to be in the range: left out
            day = _day(rec.get("timestamp"))
            if day is None:
                return False
            if self.date_from and day < self.date_from:
                return False
            if self.date_to and day > self.date_to:
                return False
        return True

    def select(self, repodata: dict[str, Any], subdir: str) -> dict[str, dict[str, Any]]:
        """``{filename: record}`` of the kept files of an upstream repodata.json."""
        out: dict[str, dict[str, Any]] = {}
        for key in ("packages", "packages.conda"):
            for fn, rec in (repodata.get(key) or {}).items():
                if isinstance(rec, dict) and self.keep(rec, subdir, fn):
                    out[fn] = rec
        return out


def _norm(value: Any) -> str:
    return str(value or "").strip().lower().replace("-", "_").replace(" ", "_")
