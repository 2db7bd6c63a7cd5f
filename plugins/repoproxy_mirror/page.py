"""The channel page's "Mirrors" section (``repoproxy_channel_page_sections``).

Readers of the channel see where its content comes from and how fresh it is; the last error
of a run (upstream names, HTTP statuses) only those who manage the channel. Mirrors are
managed by admins through the CLI and the API (docs/mirrors.md), so the section lists and
does not edit.
"""

from __future__ import annotations

from typing import Any

from repoproxy.domain.permissions import Permissions
from repoproxy.models import Channel, PageSection

from .service import mirror_store

MODES = {"active": "copy (scheduled)", "passive": "pull-through proxy"}


def _schedule(mirror: Any) -> str:
    if mirror.mode == "passive":
        return "on request"
    return f"cron {mirror.cron}" if mirror.cron else "on demand"


def mirrors_section(request: Any, channel: Channel) -> PageSection | None:
    mirrors = mirror_store(request.services).list(channel.name)
    if not mirrors:
        return None
    manages = bool(request.has_permission(Permissions.CHANNEL_MANAGE, request.context))
    columns = ("Mirror", "Mode", "Upstream", "Subdirs", "Schedule", "State", "Last run")
    rows = []
    for m in mirrors:
        row = (m.name, MODES.get(m.mode, m.mode), m.source,
               ", ".join(m.subdirs) or "all", _schedule(m), m.state, m.last_run_at or "never")
        rows.append(row + ((m.last_error or "",) if manages else ()))
    return PageSection(
        id="mirrors", title="Mirrors", columns=columns + (("Last error",) if manages else ()),
        rows=tuple(rows),
        intro="Packages of this channel come from these upstream channels, filtered by the "
              "mirror's rules and the channel's policy.")
