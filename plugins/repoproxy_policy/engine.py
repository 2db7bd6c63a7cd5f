"""Decide which files of a channel a policy hides, and why (pure: no I/O).

Every rule that hides a file adds one reason, so ``--explain`` and upload refusals can give
them all at once. Rules are documented in docs/policies.md.
"""

from __future__ import annotations

import datetime
import operator
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from rattler import MatchSpec
from rattler import PackageRecord as RattlerRecord
from rattler.package.build_string import BuildString

from repoproxy.models import PackageRecord

from .licenses import license_family
from .model import Policy

Key = tuple[str, str]  # (subdir, filename)
CveFact = Mapping[str, Any]  # {"id", "score", "status"}; status None = uncurated
COMPARE: dict[str, Callable[[float, float], bool]] = {
    "==": operator.eq, "<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt,
}
NAME_RULE = "package_name"


def key(rec: PackageRecord) -> Key:
    return (rec.subdir, rec.filename)


def _timestamp_ms(rec: PackageRecord) -> int:
    ts = rec.record.get("timestamp") or rec.indexed_timestamp or 0
    ts = int(ts)
    return ts if ts > 10**11 else ts * 1000  # old packages carry seconds


def _day_ms(value: str, end: bool) -> int:
    day = datetime.date.fromisoformat(value)
    start = datetime.datetime(day.year, day.month, day.day, tzinfo=datetime.UTC)
    if end:
        start += datetime.timedelta(days=1)
    return int(start.timestamp() * 1000) - (1 if end else 0)


def _cve_reasons(policy: Policy, facts: Iterable[CveFact]) -> list[str]:
    allow = set(policy.get("cve_allowlist") or ())
    threshold = policy.get("cve_score")
    compare = COMPARE[policy.get("cve_score_comparator")]
    include = set(policy.get("cve_status") or ())
    exclude = set(policy.get("exclude_cve_status") or ())
    link_or = policy.get("cve_link_status_and_score") == "or"
    status_set = bool(include or exclude)
    out = []
    for fact in facts:
        cve_id, status, score = fact["id"], fact.get("status"), fact.get("score")
        if cve_id in allow:
            continue
        if policy.get("exclude_uncurated_cve_packages") and not status:
            out.append(f"cve: {cve_id} is uncurated")
            continue
        tests = []
        if threshold is not None:
            # a CVE without a score cannot fail the score test
            tests.append(score is None or compare(float(score), float(threshold)))
        if status_set:
            tests.append((not include or status in include) and status not in exclude)
        if tests and not (any(tests) if link_or else all(tests)):
            out.append(f"cve: {cve_id} (score {score}, status {status or 'uncurated'}) fails "
                       f"score {policy.get('cve_score_comparator')} {threshold} "
                       f"{'or' if link_or else 'and'} status filters")
    return out


def _other_reasons(policy: Policy, rec: PackageRecord, conda_twins: set[Key],
                   cve_facts: Mapping[Key, list[CveFact]]) -> list[str]:
    """Every rule except the package-name include (dependencies may lift that one)."""
    out = []
    platforms, platforms_not = policy.get("platform"), policy.get("platform_not")
    if platforms and rec.subdir != "noarch" and rec.subdir not in platforms:
        out.append(f"platform: {rec.subdir} is not in {','.join(platforms)}")
    if platforms_not and rec.subdir in platforms_not:
        out.append(f"platform_not: {rec.subdir} is excluded")
    licenses, licenses_not = policy.get("license"), policy.get("license_not")
    if licenses or licenses_not:
        lic = rec.record.get("license") or rec.about.get("license")
        family = license_family(lic, rec.record.get("license_family"))
        if licenses and family not in licenses:
            out.append(f"license: {lic!r} is {family}, not in {','.join(licenses)}")
        if licenses_not and family in licenses_not:
            out.append(f"license_not: {lic!r} is {family}, which is excluded")
    excluded = set(policy.get("exclude_package_name") or ())
    exceptions = set(policy.get("exclude_package_name_exception") or ())
    if rec.name in excluded and rec.name not in exceptions:
        out.append(f"exclude_package_name: {rec.name} is excluded")
    if not policy.get("keep_legacy_packages") and key(rec) in conda_twins:
        out.append("keep_legacy_packages: a .conda twin exists, the .tar.bz2 is dropped")
    start, end = policy.get("package_created_from"), policy.get("package_created_to")
    if start or end:
        ts = _timestamp_ms(rec)
        if start and ts < _day_ms(start, end=False):
            out.append(f"package_created_from: created before {start}")
        if end and ts > _day_ms(end, end=True):
            out.append(f"package_created_to: created after {end}")
    out += _cve_reasons(policy, cve_facts.get(key(rec), ()))
    return out


class _Matcher:
    """Depends strings -> records of the channel, through rattler's MatchSpec."""

    def __init__(self, records: list[PackageRecord]) -> None:
        self.by_name: dict[str, list[PackageRecord]] = {}
        for rec in records:
            self.by_name.setdefault(rec.name, []).append(rec)
        self._specs: dict[str, MatchSpec | None] = {}
        self._rattler: dict[Key, RattlerRecord] = {}

    def matches(self, spec_text: str) -> list[PackageRecord]:
        if spec_text not in self._specs:
            try:
                self._specs[spec_text] = MatchSpec(spec_text)
            except Exception:  # an unparsable depends entry matches nothing
                self._specs[spec_text] = None
        spec = self._specs[spec_text]
        if spec is None or spec.name is None:
            return []
        out = []
        for rec in self.by_name.get(spec.name.normalized, ()):
            rr = self._rattler.get(key(rec))
            if rr is None:
                rr = self._rattler[key(rec)] = RattlerRecord(
                    rec.name, rec.version, BuildString(rec.build), rec.build_number, rec.subdir)
            if spec.matches(rr):
                out.append(rec)
        return out


def _closure(start: Iterable[PackageRecord], matcher: _Matcher,
             allowed: Callable[[PackageRecord], bool]) -> set[Key]:
    seen: set[Key] = set()
    todo = list(start)
    while todo:
        rec = todo.pop()
        for dep in rec.record.get("depends") or ():
            for cand in matcher.matches(dep):
                if key(cand) not in seen and allowed(cand):
                    seen.add(key(cand))
                    todo.append(cand)
    return seen


def evaluate(policy: Policy, records: list[PackageRecord],
             cve_facts: Mapping[Key, list[CveFact]] | None = None) -> dict[Key, list[str]]:
    """The reasons each record is hidden for; records that stay have an empty list.

    ``records`` are every file of the channel (all subdirs: dependencies cross subdirs).
    """
    facts = cve_facts or {}
    stems = {(r.subdir, r.filename.removesuffix(".conda")) for r in records
             if r.filename.endswith(".conda")}
    twins = {key(r) for r in records if r.filename.endswith(".tar.bz2")
             and (r.subdir, r.filename.removesuffix(".tar.bz2")) in stems}
    reasons = {key(r): _other_reasons(policy, r, twins, facts) for r in records}
    matcher: _Matcher | None = None

    names = set(policy.get("package_name") or ())
    if names:
        named = [r for r in records if r.name in names and not reasons[key(r)]]
        lifted: set[Key] = set()
        if policy.get("include_dependencies"):
            matcher = _Matcher(records)
            lifted = _closure(named, matcher, lambda r: not reasons[key(r)])
        for rec in records:
            if rec.name not in names and key(rec) not in lifted:
                reasons[key(rec)].append(
                    f"{NAME_RULE}: {rec.name} is not named"
                    + (" nor a dependency of a named package"
                       if policy.get("include_dependencies") else ""))

    excluded = set(policy.get("exclude_package_name") or ())
    if excluded and policy.get("exclude_dependencies"):
        keep = names | set(policy.get("exclude_package_name_exception") or ())
        matcher = matcher or _Matcher(records)
        start = [r for r in records if r.name in excluded and r.name not in keep]
        for k in _closure(start, matcher, lambda r: r.name not in keep):
            reasons[k].append("exclude_dependencies: a dependency of an excluded package")
    return reasons


def hidden(policy: Policy, records: list[PackageRecord],
           cve_facts: Mapping[Key, list[CveFact]] | None = None) -> set[Key]:
    return {k for k, why in evaluate(policy, records, cve_facts).items() if why}
