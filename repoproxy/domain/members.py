"""Channel membership operations: owners manage a channel, members read it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from repoproxy.domain.audit import CLI, Actor, audit
from repoproxy.errors import RepoproxyError
from repoproxy.storage.accounts import Accounts
from repoproxy.storage.catalog import Catalog
from repoproxy.storage.db import write_transaction

if TYPE_CHECKING:
    from repoproxy.domain.core import Core


def list_members(core: Core, channel: str) -> list[dict[str, Any]]:
    return Accounts(core.db()).members(channel)


def add_member(core: Core, channel: str, user: str, role: str = "member", *,
               actor: Actor = CLI) -> None:
    """Make ``user`` a member (or owner) of ``channel``; a channel keeps at least one owner."""
    if "/" in channel:
        raise RepoproxyError("a subchannel's access follows its parent: add the member to "
                             f"{channel.partition('/')[0]!r}")
    db = core.db()
    with write_transaction(db):
        Catalog(db).require_channel(channel)
        Accounts(db).add_member(channel, user, role)
        audit(db, actor, "member.add", channel, user, role=role)


def remove_member(core: Core, channel: str, user: str, *, actor: Actor = CLI) -> None:
    db = core.db()
    with write_transaction(db):
        Catalog(db).require_channel(channel)
        Accounts(db).remove_member(channel, user)
        audit(db, actor, "member.remove", channel, user)
