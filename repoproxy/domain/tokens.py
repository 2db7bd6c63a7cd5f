"""API tokens: the token operations (create, edit, revoke) with the rules of who may hold which
token, hashed storage, constant-time verification.

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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from repoproxy.domain.audit import CLI, Actor, audit, is_trusted
from repoproxy.domain.permissions import Permissions
from repoproxy.errors import Forbidden, NotFound, RepoproxyError
from repoproxy.models import Access, Identity
from repoproxy.storage.catalog import Catalog, utcnow
from repoproxy.storage.db import write_transaction

if TYPE_CHECKING:
    from repoproxy.domain.core import Core

#: ``may(channel, permission)``: whether the caller holds ``permission`` on ``channel``; the
#: web layer answers it with its security policy (plugins' ACL entries and privacy included)
ChannelCheck = Callable[[str, str], bool]
#: identity kinds that may hold personal tokens (tokens that follow a user's memberships)
PERSONAL_KINDS = ("user", "token", "htpasswd")

ALPHABET = string.ascii_letters + string.digits
PREFIX = "rp"
#: a token may live 100 years at most (a date past year 9999 cannot even be written)
MAX_TOKEN_DAYS = 36500


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


def store_token(
    catalog: Catalog,
    *,
    name: str,
    admin: bool = False,
    channels: list[str] | None = None,
    access: Access = Access.READ,
    owner: str | None = None,
    expires_in_days: int | None = None,
) -> tuple[str, TokenRow]:
    """Insert a token row (no rules, no audit: :func:`create_token` is the operation); the
    secret is returned once and never stored."""
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


# --- the operations --------------------------------------------------------------------------
def parse_access(value: object) -> Access:
    try:
        return Access(str(value))
    except ValueError:
        raise RepoproxyError("permission must be read, write or manage") from None


def _grant_check(actor: Identity) -> ChannelCheck:
    """Without the web's policy: what the identity's own grants say."""
    def may(channel: str, permission: str) -> bool:
        level = actor.access(channel)
        if level is None:
            return False
        needed = Access.READ if permission == Permissions.CHANNEL_READ else Access.MANAGE
        return level.rank >= needed.rank
    return may


def create_token(core: Core, *, actor: Actor = CLI, name: str, admin: bool = False,
                 channels: list[str] | None = None, access: Access | str = Access.READ,
                 owner: str | None = None, expires_in_days: int | None = None,
                 may: ChannelCheck | None = None) -> tuple[str, TokenRow]:
    """Create a token and its audit row; the secret is returned once.

    Who may hold which token: an admin token, or a token for another user, only by an admin
    (or on the root); a service token (``channels``) only by who manages every one of its
    channels; a personal token (no channels) only for a user account that exists.
    """
    name = (name or "").strip()
    if not name:
        raise RepoproxyError("'name' is required")
    channels = sorted(set(channels or []))
    level = parse_access(access or "read")
    if expires_in_days is not None and (
            not isinstance(expires_in_days, int) or isinstance(expires_in_days, bool)
            or not 1 <= expires_in_days <= MAX_TOKEN_DAYS):
        raise RepoproxyError(f"expires_in_days must be a whole number of days from 1 to "
                             f"{MAX_TOKEN_DAYS}")
    trusted = is_trusted(actor)
    if isinstance(actor, Identity) and owner is None and not channels and not admin:
        owner = actor.name  # a personal token for the caller
    if not admin and not channels and not owner:
        raise RepoproxyError("give admin, a user or at least one channel")
    if not trusted:
        assert isinstance(actor, Identity)
        if admin or (owner and owner != actor.name):
            raise Forbidden("this needs an admin token")
        check = may or _grant_check(actor)
        for channel in channels:
            if not check(channel, Permissions.CHANNEL_READ):
                raise NotFound("channel not found")
            if not check(channel, Permissions.CHANNEL_MANAGE):
                raise Forbidden(f"you may not manage on channel {channel!r}")
        if not channels and not admin and actor.kind not in PERSONAL_KINDS:
            raise Forbidden("only users may hold personal tokens")
    from repoproxy.storage.accounts import Accounts  # argon2: not at plugin load

    db = core.db()
    with write_transaction(db):
        if owner and Accounts(db).get_user(owner) is None:
            raise (NotFound(f"user {owner!r} does not exist") if channels or admin or trusted
                   else RepoproxyError(f"user {owner!r} does not exist; give channels for a "
                                       "service token"))
        secret, row = store_token(Catalog(db), name=name, admin=admin, channels=channels,
                                  access=level, owner=owner, expires_in_days=expires_in_days)
        audit(db, actor, "token.create", ",".join(channels) or None, row.id, name=name,
              permission=str(row.access), admin=admin)
    return secret, row


def may_manage_token(actor: Actor, row: TokenRow) -> bool:
    """Admins manage every token; a user their personal tokens; a channel's managers the
    service tokens of channels they all manage."""
    if is_trusted(actor):
        return True
    assert isinstance(actor, Identity)
    if row.owner and row.owner == actor.name and not row.channels:
        return True
    return bool(row.channels) and all(
        (actor.access(ch) or Access.READ).rank >= Access.MANAGE.rank for ch in row.channels)


def visible_tokens(core: Core, actor: Actor, *, channel: str | None = None,
                   owner: str | None = None) -> list[TokenRow]:
    """Tokens the actor may manage; ``channel``: only service tokens covering it; ``owner``:
    only tokens of that user id."""
    rows = [TokenRow.from_row(r) for r in core.catalog().list_tokens()]
    return [r for r in rows if may_manage_token(actor, r)
            and (channel is None or channel in r.channels)
            and (owner is None or r.owner == owner)]


def _managed(catalog: Catalog, actor: Actor, token_id: str) -> TokenRow:
    row = catalog.get_token(token_id)
    token = TokenRow.from_row(row) if row else None
    if token is None or not may_manage_token(actor, token):
        raise NotFound("token not found")  # one answer: absent and not yours look alike
    return token


def edit_token(core: Core, token_id: str, access: Access | str | None = None, *,
               name: str | None = None, actor: Actor = CLI) -> TokenRow:
    """Change a token's permission and/or name (one ``token.edit`` audit row)."""
    fields: dict[str, str] = {}
    if access is not None:
        fields["access"] = str(parse_access(access))
    if name is not None:
        if not name.strip() or len(name) > 200:
            raise RepoproxyError("'name' must be 1 to 200 characters")
        fields["name"] = name.strip()
    if not fields:
        raise RepoproxyError("nothing to change: give permission and/or name")
    db = core.db()
    with write_transaction(db):
        catalog = Catalog(db)
        token = _managed(catalog, actor, token_id)
        catalog.update_token(token.id, **fields)
        details = {"permission": fields["access"]} if "access" in fields else {}
        if "name" in fields:
            details["name"] = fields["name"]
        audit(db, actor, "token.edit", ",".join(token.channels) or None, token.id, **details)
        return TokenRow.from_row(catalog.get_token(token.id) or {})


def revoke_token(core: Core, token_id: str, *, actor: Actor = CLI) -> TokenRow:
    db = core.db()
    with write_transaction(db):
        catalog = Catalog(db)
        token = _managed(catalog, actor, token_id)
        catalog.update_token(token.id, revoked=1)
        audit(db, actor, "token.revoke", ",".join(token.channels) or None, token.id)
        return token
