"""Local users: HTTP Basic with user name + password (argon2id hashes in the catalog)."""

from __future__ import annotations

import hashlib
import threading
import time
from typing import Any

from repoproxy import hookimpl
from repoproxy.errors import CredentialsInvalid
from repoproxy.models import Credentials, Identity
from repoproxy.storage.accounts import Accounts

# argon2 is slow on purpose; clients send Basic credentials on every request, so a verified
# (user, password) pair is remembered for a short while, keyed by a hash, never the password
_CACHE_SECONDS = 300
_cache: dict[str, float] = {}
_lock = threading.Lock()


def user_identity(accounts: Accounts, user: dict[str, Any], kind: str = "user",
                  **extra: Any) -> Identity:
    return Identity(name=user["name"], kind=kind, role=user["role"] or "user",
                    grants=accounts.grants_of(user["name"]), **extra)


@hookimpl(trylast=True)
def repoproxy_identify(request: Any, credentials: Credentials) -> Identity | None:
    if credentials.username is None or credentials.password is None:
        return None
    if credentials.token is not None and credentials.password.startswith("rp-"):
        return None  # user + API token: the token backend's
    accounts = Accounts(request.registry.services.db())
    key = hashlib.sha256(f"{credentials.username}\0{credentials.password}".encode()).hexdigest()
    with _lock:
        fresh = _cache.get(key, 0) > time.monotonic()
    user = accounts.get_user(credentials.username) if fresh else accounts.verify_password(
        credentials.username, credentials.password)
    if user is None:
        return None  # maybe an htpasswd user; the security policy refuses if nobody knows it
    with _lock:
        _cache[key] = time.monotonic() + _CACHE_SECONDS
    return user_identity(accounts, user)


def forget_cached_passwords() -> None:
    with _lock:
        _cache.clear()


__all__ = ["CredentialsInvalid", "forget_cached_passwords", "repoproxy_identify"]
