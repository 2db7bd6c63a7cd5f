"""The policy plugin's tables (its own ``Migrations("repoproxy_policy")``) and their only SQL."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlite_utils import Database, Migrations

from repoproxy.errors import Conflict
from repoproxy.storage.catalog import utcnow
from repoproxy.storage.db import write_transaction

from .model import Policy, PolicyNotFound, merge_filters

if TYPE_CHECKING:
    from repoproxy.domain.core import Core

migrations = Migrations("repoproxy_policy")

#: ``audit(db, policy_id)``: writes the change's audit row inside the change's transaction
Audit = Callable[[Database, int], None]


def _audit(audit: Audit | None, db: Database, policy_id: int) -> None:
    if audit is not None:
        audit(db, policy_id)


@migrations()
def m001_policies(db: Database) -> None:
    db.table("policies").create(
        {"id": int, "name": str, "description": str, "filters": str, "created": str,
         "updated": str}, pk="id",
    )
    db.table("policies").create_index(["name"], unique=True)
    # one policy per channel at most: assigning another one replaces it
    db.table("policy_channels").create({"channel": str, "policy_id": int}, pk="channel",
                                       foreign_keys=[("policy_id", "policies", "id")])


def policy_store(services: Core) -> PolicyStore:
    return PolicyStore(services.db())


class PolicyStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def _policy(self, row: Any) -> Policy:
        channels = [r[0] for r in self.db.execute(
            "SELECT channel FROM policy_channels WHERE policy_id = ? ORDER BY channel", [row[0]])]
        return Policy(id=row[0], name=row[1], description=row[2] or "",
                      filters=json.loads(row[3] or "{}"), channels=channels, created=row[4],
                      updated=row[5])

    _SELECT = "SELECT id, name, description, filters, created, updated FROM policies"

    def list(self) -> list[Policy]:
        rows = self.db.execute(self._SELECT + " ORDER BY id").fetchall()
        return [self._policy(r) for r in rows]

    def get(self, ref: int | str) -> Policy:
        """A policy by id or by name."""
        row = self.db.execute(self._SELECT + " WHERE id = ? OR name = ?",
                              [ref, str(ref)]).fetchone()
        if row is None:
            raise PolicyNotFound(f"policy {ref!r} not found")
        return self._policy(row)

    def for_channel(self, channel: str) -> Policy | None:
        row = self.db.execute(
            "SELECT id, name, description, filters, created, updated FROM policies WHERE id = "
            "(SELECT policy_id FROM policy_channels WHERE channel = ?)", [channel]).fetchone()
        return self._policy(row) if row else None

    def create(self, name: str, description: str, filters: dict[str, Any],
               channel: str | None = None, audit: Audit | None = None) -> Policy:
        """Create a policy (assigned to ``channel`` if given) in one transaction."""
        clean = merge_filters({}, filters)
        now = utcnow()
        with write_transaction(self.db):
            if self.db.execute("SELECT 1 FROM policies WHERE name = ?", [name]).fetchone():
                raise Conflict(f"a policy named {name!r} already exists")
            cur = self.db.execute(
                "INSERT INTO policies (name, description, filters, created, updated) "
                "VALUES (?, ?, ?, ?, ?)", [name, description, json.dumps(clean), now, now])
            new_id = int(cur.lastrowid or 0)
            if channel:
                self._assign(new_id, channel)
            _audit(audit, self.db, new_id)
        return self.get(new_id)

    def update(self, policy: Policy, *, name: str | None = None, description: str | None = None,
               changes: dict[str, Any] | None = None, channel: str | None = None,
               audit: Audit | None = None) -> Policy:
        filters = merge_filters(policy.filters, changes or {})
        with write_transaction(self.db):
            if name and name != policy.name and self.db.execute(
                    "SELECT 1 FROM policies WHERE name = ?", [name]).fetchone():
                raise Conflict(f"a policy named {name!r} already exists")
            self.db.execute(
                "UPDATE policies SET name = ?, description = ?, filters = ?, updated = ? "
                "WHERE id = ?",
                [name or policy.name, policy.description if description is None else description,
                 json.dumps(filters), utcnow(), policy.id])
            if channel:
                self._assign(policy.id, channel)
            _audit(audit, self.db, policy.id)
        return self.get(policy.id)

    def delete(self, policy: Policy, audit: Audit | None = None) -> None:
        with write_transaction(self.db):
            self.db.execute("DELETE FROM policy_channels WHERE policy_id = ?", [policy.id])
            self.db.execute("DELETE FROM policies WHERE id = ?", [policy.id])
            _audit(audit, self.db, policy.id)

    def _assign(self, policy_id: int, channel: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO policy_channels (channel, policy_id) "
                        "VALUES (?, ?)", [channel, policy_id])

    def assign(self, policy: Policy, channel: str, audit: Audit | None = None) -> None:
        with write_transaction(self.db):
            self._assign(policy.id, channel)
            _audit(audit, self.db, policy.id)

    def forget_channel(self, channel: str) -> None:
        with write_transaction(self.db):
            self.db.execute("DELETE FROM policy_channels WHERE channel = ?", [channel])

    def unassign(self, policy: Policy, channel: str, audit: Audit | None = None) -> bool:
        """Remove the assignment; False (and nothing written) if there was none."""
        with write_transaction(self.db):
            cur = self.db.execute(
                "DELETE FROM policy_channels WHERE channel = ? AND policy_id = ?",
                [channel, policy.id])
            if cur.rowcount:
                _audit(audit, self.db, policy.id)
        return bool(cur.rowcount)
