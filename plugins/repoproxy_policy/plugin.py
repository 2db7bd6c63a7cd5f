"""The policy plugin's hook implementations."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pluggy

from repoproxy import hookimpl
from repoproxy.models import Channel, PackageMetadata, PackageRecord, Rejection

from . import hookspecs

if TYPE_CHECKING:
    from repoproxy.domain.core import Core

    from .store import PolicyStore

PLUGIN = "repoproxy_policy"


def _service() -> ModuleType:
    # the policy engine (rattler) and its store (sqlite-utils) load on first use, not with the
    # plugin: `repoproxy --help` loads every plugin and must stay instant
    from . import service

    return service


def _policies(services: Core) -> PolicyStore:
    # the store alone: a channel without a policy (the common case, asked on every upload and
    # index build) never loads the engine and rattler, ~40 ms of a process's first import,
    # upload or build
    from .store import policy_store

    return policy_store(services)


@hookimpl
def repoproxy_addhooks(pluginmanager: pluggy.PluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


@hookimpl
def repoproxy_migrations() -> Any:
    from .store import migrations

    return migrations


@hookimpl
def repoproxy_configure(config: Any) -> None:
    config.include("repoproxy_policy.views")


@hookimpl
def repoproxy_register_commands(cli: Any) -> None:
    from .commands import policy

    cli.add_command(policy)


@hookimpl
def repoproxy_excluded_files(channel: Channel, subdir: str, records: list[PackageRecord],
                             services: Core) -> list[str] | None:
    policy = _policies(services).for_channel(channel.name)
    if policy is None:
        return None
    decided = _service().decide(services, policy, channel)
    # records the catalog does not hold (a proxy channel's upstream files) are judged as
    # candidates, exactly like a file being uploaded
    outside = [r for r in records if (r.subdir, r.filename) not in decided]
    if outside:
        decided.update(_service().decide(services, policy, channel, extra=outside))
    return [fn for (sd, fn), why in decided.items() if sd == subdir and why]


@hookimpl
def repoproxy_policy_judge(services: Core, channel: Channel, records: list[PackageRecord],
                           policy: str | None, filters: dict[str, Any]
                           ) -> dict[tuple[str, str], list[str]]:
    from .model import FILTERS, Policy, PolicyError, parse_filter

    judges = []
    if policy is not None:
        judges.append(_policies(services).get(policy))
    if filters:
        unknown = sorted(set(filters) - set(FILTERS))
        if unknown:
            raise PolicyError(f"unknown policy filter(s): {', '.join(unknown)}")
        checked = {k: parse_filter(k, v) for k, v in filters.items()}
        judges.append(Policy(id=0, name="ad hoc", filters={
            k: v for k, v in checked.items() if v is not None}))
    wanted = {(r.subdir, r.filename) for r in records}
    out: dict[tuple[str, str], list[str]] = {}
    for judge in judges:
        if not records:
            continue
        for k, why in _service().decide(services, judge, channel, extra=records).items():
            if why and k in wanted:
                out.setdefault(k, []).extend(why)
    return out


def candidate_record(channel: Channel, metadata: PackageMetadata, path: Path) -> PackageRecord:
    """The record a package being uploaded would get (enough for the policy rules)."""
    index = dict(metadata.index)
    ext = ".tar.bz2" if path.name.endswith(".tar.bz2") else ".conda"
    filename = f"{index['name']}-{index['version']}-{index['build']}{ext}"
    return PackageRecord(
        channel=channel.name, subdir=str(index.get("subdir") or "noarch"), filename=filename,
        name=str(index["name"]), version=str(index["version"]), build=str(index["build"]),
        build_number=int(index.get("build_number") or 0), size=0, sha256="", md5="",
        indexed_timestamp=0, record=json.loads(json.dumps(index)), about=dict(metadata.about),
    )


@hookimpl
def repoproxy_validate_package(channel: Channel, metadata: PackageMetadata, path: Path,
                               services: Core) -> list[Rejection]:
    policy = _policies(services).for_channel(channel.name)
    if policy is None:
        return []
    rec = candidate_record(channel, metadata, path)
    decided = _service().decide(services, policy, channel, extra=[rec])
    why = decided.get((rec.subdir, rec.filename), [])
    return [Rejection(PLUGIN, f"policy {policy.name!r}: {reason}") for reason in why]


@hookimpl
def repoproxy_channel_removed(services: Core, channel: Channel) -> None:
    # a channel created later under the same name starts without a policy
    _policies(services).forget_channel(channel.name)


@hookimpl(optionalhook=True)
def repoproxy_cve_data_changed(services: Core) -> None:
    _service().reapply(services, _service().cve_channels(services))
