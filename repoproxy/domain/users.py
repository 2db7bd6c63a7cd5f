"""Local user accounts: add, remove (their memberships go, their tokens are revoked), set a
password. Each operation writes its audit row in its own transaction; a password never
reaches the audit log."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from repoproxy.domain.audit import CLI, Actor, audit
from repoproxy.storage.accounts import Accounts
from repoproxy.storage.db import write_transaction

if TYPE_CHECKING:
    from repoproxy.domain.core import Core


def list_users(core: Core) -> list[dict[str, Any]]:
    """Name, role and creation time of every user (never the password hash)."""
    return Accounts(core.db()).list_users()


def add_user(core: Core, name: str, password: str, role: str = "user", *,
             actor: Actor = CLI) -> None:
    db = core.db()
    with write_transaction(db):
        Accounts(db).add_user(name, password, role)
        audit(db, actor, "user.add", None, name, role=role)


def remove_user(core: Core, name: str, *, actor: Actor = CLI) -> None:
    db = core.db()
    with write_transaction(db):
        Accounts(db).remove_user(name)
        audit(db, actor, "user.remove", None, name)


def set_password(core: Core, name: str, password: str, *, actor: Actor = CLI) -> None:
    db = core.db()
    with write_transaction(db):
        Accounts(db).set_password(name, password)
        audit(db, actor, "user.password", None, name)
