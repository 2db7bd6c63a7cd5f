"""A channel's overview for ``channel show`` and ``GET /api/v1/channels/<name>``: owners,
creation and last-change dates, and counts (package files, generic artifacts, subchannels,
mirrors).

``subchannel_count`` and ``mirror_count`` are 0 here: the features that own subchannels and
mirrors set the real numbers through ``repoproxy_channel_extra`` (merged after this), so a
server without them still answers with the field.
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
        "subchannel_count": 0,
        "mirror_count": 0,
    }
