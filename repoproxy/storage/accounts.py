"""Users, channel members and the audit log: the only SQL for those tables.

Passwords are hashed with argon2id (memory-hard), via argon2-cffi.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlite_utils import Database

from repoproxy.errors import Conflict, InvalidName, NotFound
from repoproxy.models import Access
from repoproxy.storage.catalog import utcnow
from repoproxy.storage.generation import access_changed

ROLES = ("admin", "user")
MEMBER_ROLES = {"owner": Access.MANAGE, "member": Access.READ}
_hasher = PasswordHasher()


def check_username(name: str) -> str:
    import re

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name or ""):
        raise InvalidName(f"invalid user name {name!r}: letters, digits, '_', '.', '-'")
    return name


class Accounts:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- users ----------------------------------------------------------------------------
    def add_user(self, name: str, password: str, role: str = "user") -> None:
        check_username(name)
        if role not in ROLES:
            raise InvalidName(f"invalid role {role!r}: use admin or user")
        if self.get_user(name) is not None:
            raise Conflict(f"user {name!r} already exists")
        if len(password) < 8:
            raise InvalidName("the password must have at least 8 characters")
        self.db.table("users").insert({"name": name, "password_hash": _hasher.hash(password),
                                       "role": role, "created": utcnow()})
        access_changed(self.db)

    def get_user(self, name: str) -> dict[str, Any] | None:
        rows = list(self.db.table("users").rows_where("name = ?", [name]))
        return rows[0] if rows else None

    def require_user(self, name: str) -> dict[str, Any]:
        user = self.get_user(name)
        if user is None:
            raise NotFound(f"user {name!r} does not exist")
        return user

    def list_users(self) -> list[dict[str, Any]]:
        return [{"name": u["name"], "role": u["role"], "created": u["created"]}
                for u in self.db.table("users").rows_where(order_by="name")]

    def remove_user(self, name: str) -> None:
        self.require_user(name)
        for channel in [r[0] for r in self.db.execute(
                "SELECT channel FROM members WHERE user = ? AND role = 'owner'", [name])]:
            self._ensure_other_owner(channel, name)
        self.db.execute("DELETE FROM members WHERE user = ?", [name])
        self.db.execute("UPDATE tokens SET revoked = 1 WHERE owner = ?", [name])
        self.db.execute("DELETE FROM users WHERE name = ?", [name])
        access_changed(self.db)

    def set_password(self, name: str, password: str) -> None:
        self.require_user(name)
        if len(password) < 8:
            raise InvalidName("the password must have at least 8 characters")
        self.db.table("users").update(name, {"password_hash": _hasher.hash(password)})
        access_changed(self.db)

    def verify_password(self, name: str, password: str) -> dict[str, Any] | None:
        user = self.get_user(name)
        ok = check_password(user["password_hash"] if user else None, password)
        return user if ok else None

    # --- members --------------------------------------------------------------------------
    def members(self, channel: str) -> list[dict[str, Any]]:
        return list(self.db.table("members").rows_where("channel = ?", [channel],
                                                        order_by="user"))

    def last_change(self, channel: str) -> str | None:
        """When the channel last changed: its newest audit row (every write leaves one)."""
        row = self.db.execute("SELECT MAX(at) FROM audit WHERE channel = ?", [channel]).fetchone()
        return str(row[0]) if row and row[0] else None

    def grants_of(self, user: str) -> dict[str, Access]:
        return {ch: MEMBER_ROLES[role] for ch, role in self.db.execute(
            "SELECT channel, role FROM members WHERE user = ?", [user])}

    def add_member(self, channel: str, user: str, role: str) -> None:
        if role not in MEMBER_ROLES:
            raise InvalidName(f"invalid member role {role!r}: use owner or member")
        self.require_user(user)
        current = self._role(channel, user)
        if current == "owner" and role != "owner":
            self._ensure_other_owner(channel, user)
        self.db.execute("INSERT OR REPLACE INTO members VALUES (?, ?, ?, ?)",
                        [channel, user, role, utcnow()])
        access_changed(self.db)

    def remove_member(self, channel: str, user: str) -> None:
        role = self._role(channel, user)
        if role is None:
            raise NotFound(f"{user!r} is not a member of channel {channel!r}")
        if role == "owner":
            self._ensure_other_owner(channel, user)
        self.db.execute("DELETE FROM members WHERE channel = ? AND user = ?", [channel, user])
        access_changed(self.db)

    def _role(self, channel: str, user: str) -> str | None:
        row = self.db.execute("SELECT role FROM members WHERE channel = ? AND user = ?",
                              [channel, user]).fetchone()
        return row[0] if row else None

    def _ensure_other_owner(self, channel: str, user: str) -> None:
        owners = {r[0] for r in self.db.execute(
            "SELECT user FROM members WHERE channel = ? AND role = 'owner'", [channel])}
        if owners and owners <= {user}:
            raise Conflict(f"channel {channel!r} must keep at least one owner")

    # --- audit ----------------------------------------------------------------------------
    def audit(self, actor: str, action: str, channel: str | None = None,
              target: str | None = None, **details: Any) -> None:
        access_changed(self.db)  # every audited operation may change who sees what
        # plain SQL: sqlite_utils' insert introspects the table each time (one row per
        # imported file makes that count)
        self.db.execute(
            "INSERT INTO audit (at, actor, action, channel, target, details) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [utcnow(), actor, action, channel, target, json.dumps(details, sort_keys=True)])

    def audit_entries(self, since: str | None = None,
                      channel: str | None = None) -> list[dict[str, Any]]:
        where, args = ["1 = 1"], []
        if since:
            where.append("at >= ?")
            args.append(since)
        if channel:
            where.append("channel = ?")
            args.append(channel)
        rows = self.db.table("audit").rows_where(" AND ".join(where), args, order_by="id")
        return [dict(r, details=json.loads(r["details"] or "{}")) for r in rows]


def check_password(stored: str | None, password: str) -> bool:
    """Whether ``password`` matches the stored argon2 hash (the slow part of a login).

    ``None`` (an unknown user) is hashed against a dummy so timing does not tell which names
    exist, and is never a match.
    """
    try:
        _hasher.verify(stored or _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return False
    return stored is not None


@functools.cache
def _dummy_hash() -> str:
    return _hasher.hash("not a real password: equalises timing for unknown users")
