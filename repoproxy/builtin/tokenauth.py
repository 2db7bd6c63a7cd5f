"""The built-in token backend (essential): API tokens from the catalog."""

from __future__ import annotations

import contextlib
import time
from typing import Any

from repoproxy import hookimpl
from repoproxy.errors import CredentialsInvalid
from repoproxy.models import Credentials, Identity


@hookimpl(trylast=True)
def repoproxy_identify(request: Any, credentials: Credentials) -> Identity | None:
    # imported here, not at module level: loading plugins (as `repoproxy --help` does) stays cheap
    from repoproxy.domain.tokens import parse_id, verify
    from repoproxy.storage.accounts import Accounts

    token = credentials.token
    if token is None or parse_id(token) is None:
        return None  # not one of ours: another backend may know it
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
    _touch(request, row.id)
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


def _touch(request: Any, token_id: str) -> None:
    from repoproxy.storage.catalog import utcnow

    """Remember when a token was last used, at most once a minute (no write per request)."""
    cache: dict[str, float] = request.registry.__dict__.setdefault("token_last_used", {})
    now = time.monotonic()
    if now - cache.get(token_id, -1e9) < 60:
        return
    cache[token_id] = now
    services = request.registry.services
    # bookkeeping must never fail a request (e.g. the database is busy with a long write)
    with contextlib.suppress(Exception):
        services.catalog().update_token(token_id, last_used=utcnow())
