"""HTTP Basic against an htpasswd file (``repoproxy.auth.htpasswd_file``).

Supported hashes: bcrypt (``$2y$``/``$2b$``, what ``htpasswd -B`` writes) and ``{SHA}``.
Others (apr1 MD5, crypt) are refused: they are too weak to accept.

The file is parsed again only when its modification time, size or inode change, and every
check goes through the application's password guard (rate limit, bounded hashing, a cache of
verified passwords keyed by the stored hash, so editing the file ends an old password at once).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import threading
from pathlib import Path
from typing import Any

from repoproxy import hookimpl
from repoproxy.builtin.userauth import password_guard
from repoproxy.errors import CredentialsInvalid
from repoproxy.models import Credentials, Identity

log = logging.getLogger(__name__)

_lock = threading.Lock()
# path -> ((mtime_ns, size, inode), entries): one parse per version of the file
_parsed: dict[str, tuple[tuple[int, int, int], dict[str, str]]] = {}
#: how many times a file was parsed (for tests and diagnostics)
parses = 0


def _parse(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        if ":" in line and not line.startswith("#"):
            user, _, hashed = line.strip().partition(":")
            out[user] = hashed
    return out


def entries(path: Path) -> dict[str, str]:
    """The file's user -> hash entries, re-read only when the file changed."""
    global parses
    st = path.stat()
    version = (st.st_mtime_ns, st.st_size, st.st_ino)
    with _lock:
        cached = _parsed.get(str(path))
    if cached is not None and cached[0] == version:
        return cached[1]
    parsed = _parse(path.read_text())
    with _lock:
        _parsed[str(path)] = (version, parsed)
        parses += 1
    return parsed


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
    try:
        hashed = entries(Path(setting)).get(credentials.username)
    except OSError as e:  # a missing file must not turn every Basic login into a 500
        log.warning("htpasswd file %s unreadable: %s", setting, e.strerror or e)
        return None
    if hashed is None:
        return None
    guard = password_guard(request)
    address, name, password = request.client_addr or "-", credentials.username, \
        credentials.password
    guard.check(address, name)
    if not guard.verify(name, hashed, password, lambda: check(hashed, password)):
        guard.failed(address, name)
        raise CredentialsInvalid("wrong password")
    return Identity(name=name, kind="htpasswd")
