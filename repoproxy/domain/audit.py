"""Who does an operation, and the audit row every write operation leaves.

An operation's actor is the caller's :class:`~repoproxy.models.Identity` (web requests) or a
plain name for callers that act with the root's authority: ``"cli"`` for commands run on the
server root, a plugin's name for its background work (``"watch"``). The audit row is written
with the operation's own connection, inside its transaction: the change and its record commit
or roll back together.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from repoproxy.models import Identity

if TYPE_CHECKING:
    from sqlite_utils import Database

    from repoproxy.domain.core import Core

#: an operation's actor: who is calling, or the name of a trusted local caller
Actor = Identity | str
#: the actor of commands run on the server root
CLI = "cli"


def actor_name(actor: Actor) -> str:
    return actor.name if isinstance(actor, Identity) else str(actor)


def is_trusted(actor: Actor) -> bool:
    """Local callers (CLI on the root, plugins' workers) and admins may do anything."""
    return not isinstance(actor, Identity) or actor.is_admin


def audit_entries(core: Core, since: str | None = None,
                  channel: str | None = None) -> list[dict[str, Any]]:
    """The audit log, oldest first (an export: JSON lines in the API and the CLI)."""
    from repoproxy.storage.accounts import Accounts

    return Accounts(core.db()).audit_entries(since, channel)


def audit(db: Database, actor: Actor, action: str, channel: str | None = None,
          target: str | None = None, **details: Any) -> None:
    """Write the audit row; call it inside the operation's write transaction."""
    from repoproxy.storage.accounts import Accounts  # argon2: only when something is written

    Accounts(db).audit(actor_name(actor), action, channel, target, **details)
