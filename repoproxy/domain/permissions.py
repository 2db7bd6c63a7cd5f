"""Permissions, named ``<resource>:<action>``, and the rules that grant them: in one place.

The web layer's resources turn these rules into ACLs (:mod:`repoproxy.web.resources`) and one
security policy decides; operations of the application layer that need a finer rule (who may
hold which token) read the same tables.
"""

from __future__ import annotations

from enum import StrEnum


class Permissions(StrEnum):
    CHANNEL_READ = "channel:read"
    CHANNEL_UPLOAD = "channel:upload"
    CHANNEL_DELETE = "channel:delete"
    CHANNEL_MANAGE = "channel:manage"
    #: create a channel (admins, and users who become its first owner)
    CHANNEL_CREATE = "server:create-channel"
    #: hold personal tokens, ask whoami, list one's own tokens: any authenticated identity
    SERVER_USE = "server:use"
    SERVER_ADMIN = "server:admin"


#: what each access level of a token or membership grants on a channel
ACCESS_PERMISSIONS = {
    "read": (Permissions.CHANNEL_READ,),
    "write": (Permissions.CHANNEL_READ, Permissions.CHANNEL_UPLOAD, Permissions.CHANNEL_DELETE),
    "manage": tuple(p for p in Permissions if p.value.startswith("channel:")),
}
