"""Resources with ``__acl__``: what the one security policy checks permissions against.

Routes name their resource with ``factory=``: :func:`channel_factory` for everything under a
channel (the channel's name is the ``channel`` or ``name`` match), :class:`ServerResource` for
the rest. A channel that does not exist gets a resource too, with the ACL of a private channel
and nothing granted: the same work as a hidden channel, then the same refusal (no existence
oracle in bytes or in timing).
"""

from __future__ import annotations

from typing import Any

from pyramid.authorization import ALL_PERMISSIONS, Allow, Authenticated, Deny, Everyone

from repoproxy.domain.permissions import ACCESS_PERMISSIONS, Permissions
from repoproxy.models import Channel, Privacy


class ChannelResource:
    def __init__(self, request: Any, channel: Channel | None, name: str = "") -> None:
        self.request = request
        self.exists = channel is not None
        # a stand-in for an absent channel, so that its ACL costs what a real one costs
        self.channel: Channel = channel or Channel(name=name, privacy=Privacy.PRIVATE)

    @property
    def __acl__(self) -> list[tuple[str, str, Any]]:
        name = self.channel.name
        extra: list[tuple[str, str, Any]] = []
        for entries in self.request.registry.services.pm.hook.repoproxy_acl_entries(
            request=self.request, context=self
        ):
            extra.extend(entries or ())
        acl: list[tuple[str, str, Any]] = [e for e in extra if e[0] == Deny]
        if not self.exists:
            acl = [(Deny, Everyone, ALL_PERMISSIONS)]
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


def channel_factory(request: Any) -> ChannelResource:
    """The channel named by the route (``{channel}`` or ``{name}``), existing or not."""
    md = request.matchdict or {}
    name = md.get("channel") or md.get("name") or ""
    return ChannelResource(request, request.services.catalog().get_channel(name), name)


class ServerResource:
    __acl__ = [
        (Allow, "role:admin", ALL_PERMISSIONS),
        # users create channels and become their first owner (the operation checks the user)
        (Allow, "kind:user", Permissions.CHANNEL_CREATE),
        (Allow, "kind:token", Permissions.CHANNEL_CREATE),
        (Allow, Authenticated, Permissions.SERVER_USE),
    ]

    def __init__(self, request: Any = None) -> None:
        self.request = request
