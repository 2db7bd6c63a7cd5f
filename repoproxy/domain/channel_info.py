"""A channel's overview for ``channel show`` and ``GET /api/v1/channels/<name>``: owners,
creation and last-change dates, and counts (package files, generic artifacts, subchannels,
mirrors).

``mirror_count`` is 0 here: the feature that owns mirrors sets the real number through
``repoproxy_channel_extra`` (merged after this), so a server without it still answers with the
field. Subchannels are the core's (a subchannel has none of its own).
"""

from __future__ import annotations

from typing import Any

from repoproxy.domain.artifacts import artifact_count
from repoproxy.domain.reads import ChannelRef, ReadModel


def channel_overview(reads: ReadModel, ref: ChannelRef, *, show_owners: bool
                     ) -> dict[str, Any]:
    """``show_owners``: anonymous callers of a public channel are not told user names."""
    from repoproxy.storage.accounts import Accounts  # argon2: only when asked

    channel = reads.channel(ref)
    accounts = Accounts(reads.core.db())
    owners = ([m["user"] for m in accounts.members(channel.name) if m["role"] == "owner"]
              if show_owners else [])
    return {
        "owners": owners,
        "created": channel.created,
        "last_updated": accounts.last_change(channel.name) or channel.created,
        "package_count": sum(reads.subdir_counts(channel).values()),
        "artifact_count": artifact_count(reads, channel),
        "subchannel_count": len(reads.catalog.subchannels(channel.name)),
        "mirror_count": 0,
    }
