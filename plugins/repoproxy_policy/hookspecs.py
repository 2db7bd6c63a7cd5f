# mypy: disable-error-code="empty-body"
"""Hooks the policy plugin adds (``repoproxy_addhooks``): its contract with CVE data sources,
and the policy engine offered to other plugins (a mirror's own policy).

The dependency is one-way: ``repoproxy_policy`` declares these hooks and never imports a CVE
plugin; a CVE plugin (``repoproxy_cve``) implements them with ``optionalhook=True`` and never
imports ``repoproxy_policy``, so either may be disabled alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

from repoproxy.models import Channel, PackageRecord

if TYPE_CHECKING:
    from repoproxy.domain.core import Core

hookspec = pluggy.HookspecMarker("repoproxy")


@hookspec
def repoproxy_cve_facts(
    services: Core, channel: Channel, records: list[PackageRecord]
) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Tell which CVEs affect which package files.

    Called by the policy plugin while it decides what a channel with CVE filters hides (during
    a subdir build, an upload check or an explain), outside any transaction. ``records`` may
    include a file being uploaded that is not stored yet.

    :param services: the shared services.
    :param channel: the channel.
    :param records: the files to look up.
    :return: ``{(subdir, filename): [{"id", "score", "status"}, ...]}``; ``status`` is None
        for an uncurated CVE. All results are merged.
    """


@hookspec
def repoproxy_cve_data_changed(services: Core) -> None:
    """Event: CVE data (scores, statuses, affected files) changed.

    Called by a CVE data source after an import or a curation change committed. The policy
    plugin re-applies the policies that use CVE filters. Failures are logged and isolated.

    :param services: the shared services.
    """


@hookspec(firstresult=True)
def repoproxy_policy_judge(
    services: Core, channel: Channel, records: list[PackageRecord], policy: str | None,
    filters: dict[str, Any],
) -> dict[tuple[str, str], list[str]] | None:
    """Judge files under a policy other than the channel's (a mirror's own policy).

    Implemented by the policy plugin; callers find the hook with ``getattr(pm.hook, ...)`` and
    so never import it. ``records`` are judged as candidates of ``channel``, exactly like files
    being uploaded, by the stored policy ``policy`` (its id or name, None for none) and by the
    ad-hoc ``filters`` (a policy's filter keys, docs/policies.md); a file either hides is hidden.

    :param services: the shared services.
    :param channel: the channel the files would be served from.
    :param records: the files to judge.
    :param policy: a stored policy's id or name, or None.
    :param filters: policy filters to apply besides it, or ``{}``.
    :return: ``{(subdir, filename): [reason, ...]}`` for the hidden files among ``records``.
    :raises RepoproxyError: the policy does not exist (404) or a filter is invalid (400).
    """
