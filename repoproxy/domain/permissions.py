"""Permissions, named ``<resource>:<action>``."""

from __future__ import annotations

from enum import StrEnum


class Permissions(StrEnum):
    CHANNEL_READ = "channel:read"
    CHANNEL_UPLOAD = "channel:upload"
    CHANNEL_DELETE = "channel:delete"
    CHANNEL_MANAGE = "channel:manage"
    SERVER_ADMIN = "server:admin"


#: what each access level of a token or membership grants on a channel
ACCESS_PERMISSIONS = {
    "read": (Permissions.CHANNEL_READ,),
    "write": (Permissions.CHANNEL_READ, Permissions.CHANNEL_UPLOAD, Permissions.CHANNEL_DELETE),
    "manage": tuple(p for p in Permissions if p.value.startswith("channel:")),
}
