"""Policy decisions against the catalog, and re-applying them after a change.

Re-applying compares what each subdir hides now with what it would hide and rebuilds only the
subdirs that differ, each with the core's atomic build (``Indexer.build(force=True)``): a
reader sees the old repodata.json or the new one, never a mix. Files stay stored.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from repoproxy.models import Channel, PackageRecord

from .engine import CveFact, Key, evaluate
from .model import Policy
from .store import policy_store

if TYPE_CHECKING:
    from repoproxy.domain.core import Core

log = logging.getLogger(__name__)


def cve_facts(services: Core, channel: Channel, records: list[PackageRecord]
              ) -> dict[Key, list[CveFact]]:
    hook = getattr(services.pm.hook, "repoproxy_cve_facts", None)
    out: dict[Key, list[CveFact]] = {}
    if hook is None or not records:
        return out
    for result in hook(services=services, channel=channel, records=records):
        for k, facts in (result or {}).items():
            out.setdefault((k[0], k[1]), []).extend(facts)
    return out


def decide(services: Core, policy: Policy, channel: Channel,
           extra: list[PackageRecord] | None = None) -> dict[Key, list[str]]:
    """Reasons per file of the channel (plus ``extra`` candidates) under ``policy``.

    Only the dependency rules look at other names: without them, checking candidates needs
    only the files of their own names (a bulk import into a big channel stays linear).
    """
    uses_deps = policy.get("include_dependencies") or policy.get("exclude_dependencies")
    if extra and not uses_deps:
        records = [r for name in {e.name for e in extra}
                   for r in services.catalog().packages(channel.name, name=name)]
    else:
        records = list(services.catalog().packages(channel.name))
    if extra:
        keys = {(r.subdir, r.filename) for r in extra}
        records = [r for r in records if (r.subdir, r.filename) not in keys] + extra
    facts = cve_facts(services, channel, records) if policy.uses_cves else {}
    return evaluate(policy, records, facts)


def channel_hidden(services: Core, channel: Channel) -> dict[str, set[str]]:
    """subdir -> hidden file names under the channel's current policy."""
    policy = policy_store(services).for_channel(channel.name)
    out: dict[str, set[str]] = {}
    if policy is None:
        return out
    for (subdir, filename), why in decide(services, policy, channel).items():
        if why:
            out.setdefault(subdir, set()).add(filename)
    return out


def reapply(services: Core, channels: list[str]) -> dict[str, list[str]]:
    """Rebuild the subdirs of ``channels`` whose hidden files change; channel -> subdirs."""
    rebuilt: dict[str, list[str]] = {}
    catalog = services.catalog()
    for name in channels:
        channel = catalog.get_channel(name)
        if channel is None:
            continue
        wanted = channel_hidden(services, channel)
        for subdir in catalog.subdirs(name):
            if wanted.get(subdir, set()) != services.indexer.hidden_files(name, subdir):
                services.indexer.build(name, subdir, force=True)
                rebuilt.setdefault(name, []).append(subdir)
        if name in rebuilt:
            services.indexer.build_channeldata(name)
            log.info("policy re-applied to %s: rebuilt %s", name, ", ".join(rebuilt[name]))
    return rebuilt


def cve_channels(services: Core) -> list[str]:
    """Channels whose policy uses CVE filters."""
    return [ch for p in policy_store(services).list() if p.uses_cves for ch in p.channels]
