"""Resources with ``__acl__``: what the security policy checks permissions against."""

from __future__ import annotations

from typing import Any

from pyramid.authorization import ALL_PERMISSIONS, Allow, Authenticated, Deny, Everyone

from repoproxy.domain.permissions import ACCESS_PERMISSIONS
from repoproxy.models import Channel, Privacy


class ChannelResource:
    def __init__(self, request: Any, channel: Channel) -> None:
        self.request = request
        self.channel = channel

    @property
    def __acl__(self) -> list[tuple[str, str, Any]]:
        name = self.channel.name
        extra: list[tuple[str, str, Any]] = []
        for entries in self.request.registry.services.pm.hook.repoproxy_acl_entries(
            request=self.request, context=self
        ):
            extra.extend(entries or ())
        acl: list[tuple[str, str, Any]] = [e for e in extra if e[0] == Deny]
        acl.append((Allow, "role:admin", ALL_PERMISSIONS))
        acl.extend(e for e in extra if e[0] != Deny)
        if self.channel.privacy == Privacy.PUBLIC:
            acl.append((Allow, Everyone, ACCESS_PERMISSIONS["read"]))
        elif self.channel.privacy == Privacy.AUTHENTICATED:
            acl.append((Allow, Authenticated, ACCESS_PERMISSIONS["read"]))
        for level, perms in ACCESS_PERMISSIONS.items():
            acl.append((Allow, f"channel:{name}:{level}", perms))
            acl.append((Allow, f"channel:*:{level}", perms))
        return acl


class ServerResource:
    __acl__ = [(Allow, "role:admin", ALL_PERMISSIONS)]

    def __init__(self, request: Any = None) -> None:
        self.request = request
