"""HTTP Basic against an htpasswd file (``repoproxy.auth.htpasswd_file``).

Supported hashes: bcrypt (``$2y$``/``$2b$``, what ``htpasswd -B`` writes) and ``{SHA}``.
Others (apr1 MD5, crypt) are refused: they are too weak to accept.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from pathlib import Path
from typing import Any

from repoproxy import hookimpl
from repoproxy.errors import CredentialsInvalid
from repoproxy.models import Credentials, Identity

log = logging.getLogger(__name__)


def _entries(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        if ":" in line and not line.startswith("#"):
            user, _, hashed = line.strip().partition(":")
            out[user] = hashed
    return out


def check(hashed: str, password: str) -> bool:
    if hashed.startswith(("$2y$", "$2b$", "$2a$")):
        import bcrypt

        return bool(bcrypt.checkpw(password.encode(), hashed.replace("$2y$", "$2b$", 1).encode()))
    if hashed.startswith("{SHA}"):
        digest = base64.b64encode(hashlib.sha1(password.encode()).digest()).decode()  # noqa: S324
        return hmac.compare_digest(digest, hashed[5:])
    log.warning("htpasswd: unsupported hash scheme refused")
    return False


@hookimpl
def repoproxy_identify(request: Any, credentials: Credentials) -> Identity | None:
    setting = request.registry.services.settings["repoproxy.auth.htpasswd_file"]
    if not setting or credentials.username is None or credentials.password is None:
        return None
    entries = _entries(Path(setting))
    hashed = entries.get(credentials.username)
    if hashed is None:
        return None
    if not check(hashed, credentials.password):
        raise CredentialsInvalid("wrong password")
    return Identity(name=credentials.username, kind="htpasswd")
