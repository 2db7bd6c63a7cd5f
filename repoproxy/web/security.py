"""One security policy: identity from the ``repoproxy_identify`` hook, ACLs from resources.

Credentials are looked for in this order: the ``/t/<token>/`` path prefix (stripped by the
tween before routing), ``Authorization: Bearer``, ``Authorization: Basic`` (user + password or
user + token), ``X-API-Key``, then ``?token=``. A query token (it lands in logs and browser
history) is accepted only on GET and HEAD and only for a read-only identity. Malformed
credentials are refused (401), never silently ignored:
a client that believes it is authenticated must learn that it is not.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import functools
from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Any

from pyramid.authorization import ACLHelper, Authenticated, Everyone

from repoproxy.errors import ConfigError, CredentialsInvalid
from repoproxy.models import Access, Credentials, Identity
from repoproxy.names import TOKEN_RE


def extract_credentials(request: Any) -> Credentials:
    """The request's credentials (none: ``Credentials()``); raises CredentialsInvalid."""
    return credentials_of(request.environ)


def credentials_of(environ: Mapping[str, Any]) -> Credentials:
    """:func:`extract_credentials` from the WSGI environ alone (the headers' own keys:
    webob's header mapping costs more); the server's lean path (web/lean.py) calls it."""
    path_token = environ.get("repoproxy.path_token")
    if path_token is not None:
        return token_credentials(path_token, "path")
    auth = environ.get("HTTP_AUTHORIZATION")
    if auth:
        scheme, _, value = auth.partition(" ")
        scheme = scheme.lower()
        value = value.strip()
        if scheme == "bearer":
            return token_credentials(value, "bearer")
        if scheme == "basic":
            try:
                user, sep, password = base64.b64decode(value, validate=True).decode().partition(
                    ":"
                )
            except (binascii.Error, UnicodeDecodeError):
                raise CredentialsInvalid("malformed Basic credentials") from None
            if not sep:
                raise CredentialsInvalid("malformed Basic credentials")
            return Credentials(
                token=password if TOKEN_RE.match(password) else None,
                username=user,
                password=password,
                source="basic",
            )
        raise CredentialsInvalid("unsupported Authorization scheme")
    api_key = environ.get("HTTP_X_API_KEY")
    if api_key:
        return token_credentials(api_key, "api-key")
    query_token = environ.get("repoproxy.query_token")
    if query_token is not None:
        return token_credentials(query_token, "query")
    return Credentials()


def token_credentials(value: str, source: str) -> Credentials:
    if not TOKEN_RE.match(value):
        raise CredentialsInvalid("malformed token")
    return Credentials(token=value, source=source)


ANONYMOUS = Identity(name="anonymous", kind="anonymous")
LEVELS = ("read", "write", "manage")


@functools.lru_cache(maxsize=16)
def parse_bindings(value: str, key: str) -> Mapping[str, Access]:
    """``"glob=level ..."`` -> {glob: Access}; a bad entry is a configuration error.

    Cached: settings are frozen, and this runs for every request.
    """
    out = {}
    for item in value.replace(",", " ").split():
        pattern, sep, level = item.partition("=")
        if not sep or level not in LEVELS or not pattern:
            raise ConfigError(f"{key}: expected channel-glob=read|write|manage, got {item!r}")
        out[pattern] = Access(level)
    return MappingProxyType(out)


def identify(request: Any) -> Identity:
    """The caller's identity (reified on the request); raises CredentialsInvalid."""
    creds = extract_credentials(request)
    settings = request.registry.services.settings
    if creds.empty:
        # the web UI's signed session cookie (browsers): no credentials sent, a signed-in user
        from repoproxy.web.ui.session import session_identity

        identity = session_identity(request)
        if identity is None:
            return anonymous_identity(settings)
    else:
        identity = request.registry.services.pm.hook.repoproxy_identify(
            request=request, credentials=creds
        )
        if identity is None:
            raise CredentialsInvalid()
        if creds.source == "query":
            _check_query_token(request, identity)
    return with_authenticated_bindings(identity, settings)


def anonymous_identity(settings: Mapping[str, Any]) -> Identity:
    """Who sends no credentials: anonymous, with ``unauthenticated_role_bindings``."""
    key = "repoproxy.auth.unauthenticated_role_bindings"
    grants = parse_bindings(settings[key], key)
    return replace(ANONYMOUS, grants=dict(grants)) if grants else ANONYMOUS


def with_authenticated_bindings(identity: Identity, settings: Mapping[str, Any]) -> Identity:
    """An identified caller's grants, raised to ``authenticated_role_bindings`` where lower."""
    key = "repoproxy.auth.authenticated_role_bindings"
    bindings = parse_bindings(settings[key], key)
    if bindings:
        grants = dict(bindings)
        for channel, access in identity.grants.items():
            if channel not in grants or access.rank > grants[channel].rank:
                grants[channel] = access
        identity = replace(identity, grants=grants)
    return identity


def _check_query_token(request: Any, identity: Identity) -> None:
    """Only read-only identities, on GET and HEAD, may come from ``?token=`` (as badges)."""
    if request.method not in ("GET", "HEAD"):
        raise CredentialsInvalid("a ?token= query parameter is accepted on GET and HEAD "
                                 "only; send the token in an Authorization header")
    if identity.is_admin or any(a != Access.READ for a in identity.grants.values()):
        raise CredentialsInvalid("only a read-only token may be given as ?token=; send this "
                                 "token in an Authorization header")


def principals(identity: Identity, context: Any = None) -> list[str]:
    out = [Everyone]
    if identity.kind != "anonymous":
        out += [Authenticated, f"identity:{identity.name}", f"role:{identity.role}",
                f"kind:{identity.kind}"]
    channel = getattr(getattr(context, "channel", None), "name", None)
    # a subchannel's access follows its parent: globs are matched against both names
    names = [] if channel is None else list(dict.fromkeys((channel, channel.partition("/")[0])))
    for pattern, access in identity.grants.items():
        if pattern == "*" or not any(c in pattern for c in "*?["):
            out.append(f"channel:{pattern}:{access}")
        else:
            out.extend(f"channel:{n}:{access}" for n in names
                       if fnmatch.fnmatchcase(n, pattern))
    return out


class SecurityPolicy:
    def __init__(self) -> None:
        self.helper = ACLHelper()

    def identity(self, request: Any) -> Identity:
        return request.repoproxy_identity

    def authenticated_userid(self, request: Any) -> str | None:
        ident = self.identity(request)
        return None if ident.kind == "anonymous" else ident.name

    def permits(self, request: Any, context: Any, permission: str) -> Any:
        return self.helper.permits(context, principals(self.identity(request), context),
                                   permission)

    def remember(self, request: Any, userid: str, **kw: Any) -> list[Any]:
        return []

    def forget(self, request: Any, **kw: Any) -> list[Any]:
        return []
