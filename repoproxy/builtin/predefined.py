"""Predefined tokens from settings (conda-store's ``predefined_tokens`` idea).

``repoproxy.auth.predefined_tokens = name:token:level:channels ...`` where level is read,
write, manage or admin and channels a comma list or ``*``. For automation that must not depend
on the catalog (bootstrap, CI). Compared in constant time; never logged.
"""

from __future__ import annotations

import functools
import hmac
from typing import Any

from repoproxy import hookimpl
from repoproxy.errors import ConfigError
from repoproxy.models import Access, Credentials, Identity
from repoproxy.names import TOKEN_RE


@functools.lru_cache(maxsize=4)
def parse(value: str) -> tuple[tuple[str, str, str, tuple[str, ...]], ...]:
    """Parsed once per settings value (settings are frozen; this runs for every request)."""
    out = []
    for item in value.split():
        parts = item.split(":")
        if len(parts) != 4 or not TOKEN_RE.match(parts[1]) or parts[2] not in (
                "read", "write", "manage", "admin"):
            raise ConfigError("repoproxy.auth.predefined_tokens: expected "
                              "name:token:read|write|manage|admin:channels entries")
        out.append((parts[0], parts[1], parts[2], tuple(parts[3].split(","))))
    return tuple(out)


@hookimpl
def repoproxy_identify(request: Any, credentials: Credentials) -> Identity | None:
    if credentials.token is None:
        return None
    entries = parse(request.registry.services.settings["repoproxy.auth.predefined_tokens"])
    match = None
    for name, token, level, channels in entries:
        # look at every entry so timing does not depend on which one matched
        if hmac.compare_digest(token.encode(), credentials.token.encode()):
            match = (name, level, channels)
    if match is None:
        return None
    name, level, channels = match
    if level == "admin":
        return Identity(name=f"predefined:{name}", kind="token", role="admin")
    return Identity(name=f"predefined:{name}", kind="token",
                    grants={ch: Access(level) for ch in channels})
