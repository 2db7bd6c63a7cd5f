"""The web UI's signed session cookie, and the identity it carries.

A session holds the signed-in user's name, the backend that knows them (``user``: local
accounts, ``htpasswd``) and a fingerprint of their stored password hash. The identity is
rebuilt from the account on every request, so removing a user or changing their password ends
their sessions at once, and their channel grants are always current.

A session cookie is honoured on safe methods (GET, HEAD) everywhere, so download links of a
private channel work in the browser, and on any method under ``/ui/`` only, where every form
checks Pyramid's CSRF token: the API's unsafe methods never act on a cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from pathlib import Path
from typing import Any

from pyramid.session import SignedCookieSessionFactory

from repoproxy.models import Identity

log = logging.getLogger(__name__)

COOKIE = "repoproxy_session"
UI_PREFIX = "/ui/"


def session_secret(services: Any) -> str:
    """The configured secret, else one derived from the root's generated secret file."""
    configured = str(services.settings["repoproxy.ui.session_secret"] or "")
    if configured:
        return configured
    # derived, not the file's bytes themselves: the same secret signs nothing else this way
    return hmac.new(services.store.secret(), b"repoproxy.ui.session", hashlib.sha256).hexdigest()


def session_factory(services: Any) -> Any:
    settings = services.settings
    max_age = int(settings["repoproxy.ui.session_max_age"])
    return SignedCookieSessionFactory(
        session_secret(services), cookie_name=COOKIE, max_age=max_age, timeout=max_age,
        # reissued at most every 10 minutes: not a Set-Cookie on every page
        reissue_time=min(600, max_age), httponly=True, samesite="Lax",
        secure=bool(settings["repoproxy.ui.secure_cookie"]), hashalg="sha512")


def fingerprint(services: Any, stored_hash: str | None) -> str:
    """A short keyed digest of the stored password hash: a new password, a new fingerprint."""
    key = session_secret(services).encode()
    return hmac.new(key, (stored_hash or "").encode(), hashlib.sha256).hexdigest()[:24]


def stored_hash(services: Any, name: str, kind: str) -> str | None:
    """The password hash the backend ``kind`` holds for ``name`` (None: the user is gone)."""
    if kind == "user":
        from repoproxy.storage.accounts import Accounts

        user = Accounts(services.db()).get_user(name)
        return None if user is None else str(user["password_hash"])
    if kind == "htpasswd":
        from repoproxy.builtin.htpasswd import entries

        setting = services.settings["repoproxy.auth.htpasswd_file"]
        if not setting:
            return None
        try:
            return entries(Path(setting)).get(name)
        except OSError:
            return None
    return None


def remember(request: Any, identity: Identity) -> None:
    """Start a fresh session for ``identity`` (a new session id: no fixation)."""
    services = request.services
    request.session.invalidate()
    request.session["user"] = identity.name
    request.session["kind"] = identity.kind
    request.session["pw"] = fingerprint(services, stored_hash(services, identity.name,
                                                              identity.kind))


def forget(request: Any) -> None:
    request.session.invalidate()


def session_identity(request: Any) -> Identity | None:
    """The identity of a valid session cookie on a request that may use it, else None."""
    if "HTTP_COOKIE" not in request.environ or COOKIE not in request.cookies:
        return None  # conda clients never send one: their requests cost nothing more
    if request.method not in ("GET", "HEAD") and not request.path.startswith(UI_PREFIX):
        return None
    session = request.session
    name, kind = session.get("user"), session.get("kind")
    if not name or kind not in ("user", "htpasswd"):
        return None
    services = request.services
    stored = stored_hash(services, name, kind)
    if stored is None or not hmac.compare_digest(fingerprint(services, stored),
                                                 str(session.get("pw", ""))):
        return None  # removed user or changed password: the session has ended
    if kind == "htpasswd":
        return Identity(name=name, kind="htpasswd")
    from repoproxy.builtin.userauth import user_identity
    from repoproxy.storage.accounts import Accounts

    accounts = Accounts(services.db())
    user = accounts.get_user(name)
    return None if user is None else user_identity(accounts, user)
