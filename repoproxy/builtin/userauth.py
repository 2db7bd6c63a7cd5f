"""Local users: HTTP Basic with user name + password (argon2id hashes in the catalog).

Clients send Basic credentials on every request and argon2 is slow on purpose, so every check
goes through the application's :class:`~repoproxy.domain.throttle.PasswordGuard`: failed logins
are rate limited per address and per user name, hashes run in a small bounded pool, and a
verified password is remembered under its stored hash (``repoproxy user passwd`` changes that
hash, which ends the old password at once, in every process).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from repoproxy import hookimpl
from repoproxy.errors import CredentialsInvalid
from repoproxy.models import Credentials, Identity

if TYPE_CHECKING:
    from repoproxy.domain.throttle import PasswordGuard
    from repoproxy.storage.accounts import Accounts


def user_identity(accounts: Accounts, user: dict[str, Any], kind: str = "user",
                  **extra: Any) -> Identity:
    return Identity(name=user["name"], kind=kind, role=user["role"] or "user",
                    grants=accounts.grants_of(user["name"]), **extra)


def password_guard(request: Any) -> PasswordGuard:
    """The guard every password backend of this application shares."""
    from repoproxy.domain.throttle import guard_of

    return guard_of(request.registry, request.registry.services)


@hookimpl
def repoproxy_configure(config: Any) -> None:
    from repoproxy.domain.throttle import guard_of

    # create the guard at start-up, so bad repoproxy.auth.* values stop the server at once
    guard_of(config.registry, config.registry.services)


@hookimpl(trylast=True)
def repoproxy_identify(request: Any, credentials: Credentials) -> Identity | None:
    # imported here, not at module level: loading plugins (as `repoproxy --help` does) stays cheap
    from repoproxy.storage.accounts import Accounts, check_password

    if credentials.username is None or credentials.password is None:
        return None
    if credentials.token is not None and credentials.password.startswith("rp-"):
        return None  # user + API token: the token backend's
    guard = password_guard(request)
    address, name = request.client_addr or "-", credentials.username
    guard.check(address, name)
    accounts = Accounts(request.registry.services.db())
    user = accounts.get_user(name)
    stored = user["password_hash"] if user else None
    password = credentials.password
    if user is None or not guard.verify(name, stored, password,
                                        lambda: check_password(stored, password)):
        if user is None:  # hash anyway: timing must not tell which names exist
            guard.verify(name, None, password, lambda: check_password(None, password))
        # htpasswd (which runs first) did not know the name either: a failed login
        guard.failed(address, name)
        return None  # the security policy refuses (401) if no other backend knows it
    return user_identity(accounts, user)


__all__ = ["CredentialsInvalid", "password_guard", "repoproxy_identify"]
