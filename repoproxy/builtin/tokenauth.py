"""The built-in token backend (essential): API tokens from the catalog.

A verified token is kept in a bounded in-memory cache keyed by its SHA-256 digest, so that a
request with a known token costs neither a catalog query nor a hash comparison against a row.
An entry is good while the access generation (``storage/generation.py``: bumped after every
change to tokens, users, members or channels, by any process) is the one it was verified
under, and its token has not expired: a revoke is seen by every process on its next request.
Failures are never cached (they cost what they cost before).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import OrderedDict
from datetime import datetime
from typing import Any

from repoproxy import hookimpl
from repoproxy.errors import CredentialsInvalid
from repoproxy.models import Credentials, Identity


@hookimpl(trylast=True)
def repoproxy_identify(request: Any, credentials: Credentials) -> Identity | None:
    # imported here, not at module level: loading plugins (as `repoproxy --help` does) stays cheap
    from repoproxy.domain.tokens import parse_id, token_hash

    token = credentials.token
    if token is None or parse_id(token) is None:
        return None  # not one of ours: another backend may know it
    services = request.registry.services
    cache = verified_tokens(services)
    digest = token_hash(token)
    generation = services.generation()
    hit = cache.get(digest, generation)
    if hit is not None:
        owner, identity = hit
        if credentials.username is not None and owner and credentials.username != owner:
            raise CredentialsInvalid("token does not belong to this user")
        if identity.token_id:
            cache.touch(services, identity.token_id)
        return identity
    identity = _verify(request, token, credentials)
    cache.put(digest, generation, _owner_of(identity), identity)
    return identity


def known_identity(services: Any, digest: str, generation: int,
                   cache: VerifiedTokens | None = None) -> Identity | None:
    """The identity of a token (by its ``token_hash``) verified under ``generation`` and not
    expired since, from the cache alone: None when it would take the catalog (a miss, a
    revoked or expired token). The server's lean path (web/lean.py) asks this for a bearer
    token, where this backend answers the hook (``cache``: :func:`verified_tokens`, looked
    up once by the caller)."""
    cache = cache or verified_tokens(services)
    hit = cache.get(digest, generation)
    if hit is None:
        return None
    identity = hit[1]
    if identity.token_id:
        cache.touch(services, identity.token_id)
    return identity


def verified_tokens(services: Any) -> VerifiedTokens:
    cache: VerifiedTokens = services.plugin_state("tokenauth.verified", VerifiedTokens)
    return cache


def _owner_of(identity: Identity) -> str | None:
    return None if identity.name.startswith("token:") else identity.name


def _verify(request: Any, token: str, credentials: Credentials) -> Identity:
    from repoproxy.domain.tokens import verify
    from repoproxy.storage.accounts import Accounts

    catalog = request.registry.services.catalog()
    row = verify(catalog, token)
    if row is None:
        raise CredentialsInvalid("unknown token")
    if row.revoked:
        raise CredentialsInvalid("token revoked")
    if row.expired:
        raise CredentialsInvalid("token expired")
    if credentials.username is not None and row.owner and credentials.username != row.owner:
        raise CredentialsInvalid("token does not belong to this user")
    verified_tokens(request.registry.services).touch(request.registry.services, row.id)
    if row.role == "admin":
        return Identity(name=row.owner or f"token:{row.name}", kind="token", role="admin",
                        token_id=row.id, expires=row.expires)
    if row.channels:  # a service-account token: exactly its channels, at its level
        grants = dict.fromkeys(row.channels, row.access)
        role = "user"
    elif row.owner:  # a personal token: whatever its user may do, now
        accounts = Accounts(request.registry.services.db())
        user = accounts.get_user(row.owner)
        if user is None:
            raise CredentialsInvalid("token of a removed user")
        grants, role = accounts.grants_of(row.owner), user["role"] or "user"
    else:
        grants, role = {}, "user"
    return Identity(
        name=row.owner or f"token:{row.name}",
        kind="token",
        role=role,
        grants=grants,
        token_id=row.id,
        expires=row.expires,
    )


class VerifiedTokens:
    """digest -> (generation, expiry, owner, identity), at most ``MAX`` entries (oldest out)."""

    MAX = 4096

    def __init__(self) -> None:
        self._entries: OrderedDict[str, tuple[int, float, str | None, Identity]] = OrderedDict()
        self._lock = threading.Lock()
        self._last_used: dict[str, float] = {}  # token id -> when last_used was written

    def get(self, digest: str, generation: int) -> tuple[str | None, Identity] | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        stamp, expiry, owner, identity = entry
        if stamp != generation or time.time() >= expiry:
            with self._lock:
                self._entries.pop(digest, None)
            return None
        return owner, identity

    def put(self, digest: str, generation: int, owner: str | None, identity: Identity) -> None:
        expiry = (datetime.fromisoformat(identity.expires).timestamp() if identity.expires
                  else float("inf"))
        with self._lock:
            self._entries[digest] = (generation, expiry, owner, identity)
            while len(self._entries) > self.MAX:
                self._entries.popitem(last=False)

    def touch(self, services: Any, token_id: str) -> None:
        """Remember when a token was last used, at most once a minute (no write per request)."""
        now = time.monotonic()
        if now - self._last_used.get(token_id, -1e9) < 60:
            return
        self._last_used[token_id] = now
        from repoproxy.storage.catalog import utcnow

        # bookkeeping must never fail a request (e.g. the database is busy with a long write)
        with contextlib.suppress(Exception):
            services.catalog().update_token(token_id, last_used=utcnow())
