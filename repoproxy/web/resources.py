"""Resources with ``__acl__``: what the one security policy checks permissions against.

Routes name their resource with ``factory=``: :func:`channel_factory` for everything under a
channel (the channel's name is the ``channel`` or ``name`` match, ``C/SUB`` for a
subchannel), :class:`ServerResource` for the rest. A channel that does not exist gets a
resource too, with the ACL of a private channel and nothing granted: the same work as a
hidden channel, then the same refusal (no existence oracle in bytes or in timing).
"""

from __future__ import annotations

from typing import Any

from pyramid.authorization import ALL_PERMISSIONS, Allow, Authenticated, Deny, Everyone

from repoproxy.domain.permissions import ACCESS_PERMISSIONS, Permissions
from repoproxy.models import Channel, Privacy

#: a principal no identity ever holds
NOBODY = "system:nobody"


class ChannelResource:
    def __init__(self, request: Any, channel: Channel | None, name: str = "") -> None:
        self.request = request
        self.exists = channel is not None
        # a stand-in for an absent channel, so that its ACL costs what a real one costs
        self.channel: Channel = channel or Channel(name=name, privacy=Privacy.PRIVATE)

    @property
    def __acl__(self) -> list[tuple[str, str, Any]]:
        extra: list[tuple[str, str, Any]] = []
        for entries in self.request.registry.services.pm.hook.repoproxy_acl_entries(
            request=self.request, context=self
        ):
            extra.extend(entries or ())
        return channel_acl(self.channel, self.exists, extra)


def channel_acl(channel: Channel, exists: bool, extra: list[tuple[str, str, Any]]
                ) -> list[tuple[str, str, Any]]:
    """A channel's ACL, with the ``repoproxy_acl_entries`` answers ``extra`` (Deny first)."""
    name = channel.name
    # an absent channel grants nothing to anyone, admins included, yet its ACL is built
    # and walked entry for entry like a hidden channel's (same entries, none matching),
    # so that refusing either costs the same (no timing oracle)
    acl: list[tuple[str, str, Any]] = [e for e in extra if e[0] == Deny]
    acl.append((Allow, "role:admin" if exists else NOBODY, ALL_PERMISSIONS))
    acl.extend((a, p if exists else NOBODY, perms) for a, p, perms in extra if a != Deny)
    if channel.privacy == Privacy.PUBLIC:
        acl.append((Allow, Everyone, ACCESS_PERMISSIONS["read"]))
    elif channel.privacy == Privacy.AUTHENTICATED:
        acl.append((Allow, Authenticated, ACCESS_PERMISSIONS["read"]))
    # a subchannel's access follows its parent's: grants on the parent cover it (its
    # privacy is kept equal to the parent's by the channel operations)
    parent = name.partition("/")[0]
    for level, perms in ACCESS_PERMISSIONS.items():
        acl.append((Allow, f"channel:{name}:{level}" if exists else NOBODY, perms))
        if parent != name:
            acl.append((Allow, f"channel:{parent}:{level}" if exists else NOBODY, perms))
        acl.append((Allow, f"channel:*:{level}" if exists else NOBODY, perms))
    # the last entry refuses everybody an absent channel; for a real one it matches nobody
    acl.append((Deny, NOBODY if exists else Everyone, ALL_PERMISSIONS))
    return acl


def channel_factory(request: Any) -> ChannelResource:
    """The channel named by the route (``{channel}`` or ``{name}``), existing or not."""
    md = request.matchdict or {}
    name = md.get("channel") or md.get("name") or ""
    if md.get("sub"):  # /api/v1/channels/<channel>/subchannels/<sub>
        name = f"{name}/{md['sub']}"
    # one lookup in the in-memory snapshot (no catalog query per request), the same dict
    # lookup for a present and an absent channel (no timing oracle)
    return ChannelResource(request, request.services.channel_map().get(name), name)


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


def channel_url(request: Any, route_name: str, **kw: Any) -> str:
    """``request.route_url`` for a route under a channel, with a subchannel's ``/`` kept.

    Pyramid quotes a match value as one path segment (``C%2FSUB``); a subchannel is two.
    Channel names hold no ``%``, so the only ``%2F`` is the one Pyramid made.
    """
    url: str = request.route_url(route_name, **kw)
    return url.replace("%2F", "/")
