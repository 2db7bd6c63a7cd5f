"""API tokens: creation, hashed storage, constant-time verification.

A token is ``rp-<id>-<secret>`` using only ``[A-Za-z0-9-]`` (conda's ``/t/<token>/`` pattern
does not accept ``_``). The catalog keeps ``sha256(token)`` and looks the row up by ``<id>``;
the hash is compared with :func:`hmac.compare_digest`. Tokens are random (256 bits), so a fast
hash is enough: there is nothing to brute-force that a slow KDF would protect.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import string
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from repoproxy.models import Access
from repoproxy.storage.catalog import Catalog, utcnow

ALPHABET = string.ascii_letters + string.digits
PREFIX = "rp"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> tuple[str, str]:
    token_id = "".join(secrets.choice(ALPHABET) for _ in range(10))
    secret = "".join(secrets.choice(ALPHABET) for _ in range(43))
    return token_id, f"{PREFIX}-{token_id}-{secret}"


def parse_id(token: str) -> str | None:
    parts = token.split("-")
    if len(parts) != 3 or parts[0] != PREFIX or len(parts[1]) != 10:
        return None
    return parts[1]


@dataclass(frozen=True)
class TokenRow:
    id: str
    name: str
    owner: str | None
    role: str
    channels: list[str]
    access: Access
    created: str
    expires: str | None
    last_used: str | None
    revoked: bool

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> TokenRow:
        return cls(
            id=row["id"],
            name=row["name"],
            owner=row["owner"],
            role=row["role"] or "user",
            channels=json.loads(row["channels"] or "[]"),
            access=Access(row["access"] or "read"),
            created=row["created"],
            expires=row["expires"],
            last_used=row["last_used"],
            revoked=bool(row["revoked"]),
        )

    @property
    def expired(self) -> bool:
        return bool(self.expires) and datetime.fromisoformat(str(self.expires)) <= datetime.now(
            UTC
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "owner": self.owner,
            "role": self.role,
            "channels": self.channels,
            "permission": str(self.access),
            "created": self.created,
            "expires": self.expires,
            "last_used": self.last_used,
            "revoked": self.revoked,
        }


def create_token(
    catalog: Catalog,
    *,
    name: str,
    admin: bool = False,
    channels: list[str] | None = None,
    access: Access = Access.READ,
    owner: str | None = None,
    expires_in_days: int | None = None,
) -> tuple[str, TokenRow]:
    """Create a token; the secret is returned once and never stored."""
    token_id, token = new_token()
    expires = (
        (datetime.now(UTC) + timedelta(days=expires_in_days)).isoformat(timespec="seconds")
        if expires_in_days
        else None
    )
    row = {
        "id": token_id,
        "name": name,
        "hash": token_hash(token),
        "owner": owner,
        "role": "admin" if admin else "user",
        "channels": json.dumps(sorted(channels or [])),
        "access": str(Access.MANAGE if admin else access),
        "created": utcnow(),
        "expires": expires,
        "last_used": None,
        "revoked": 0,
    }
    catalog.insert_token(row)
    return token, TokenRow.from_row(row)


def verify(catalog: Catalog, token: str) -> TokenRow | None:
    """The token's row if ``token`` is genuine (revocation/expiry are the caller's to judge)."""
    token_id = parse_id(token)
    row = catalog.get_token(token_id) if token_id else None
    # compare even when there is no row so that timing does not tell ids apart
    stored = row["hash"] if row else "0" * 64
    if not hmac.compare_digest(stored, token_hash(token)) or row is None:
        return None
    return TokenRow.from_row(row)
