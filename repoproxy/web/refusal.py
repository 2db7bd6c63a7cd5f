"""What a caller denied a permission is told, in one place: the forbidden view answers with it,
and so does the early upload check that runs before a request's body is read.

Anonymous callers are asked to authenticate (401), whether the channel exists or not. A channel
the caller may not read answers exactly like an absent one (404). A channel the caller reads but
may not change answers 403, naming the action.
"""

from __future__ import annotations

from typing import Any

from repoproxy.domain.permissions import Permissions
from repoproxy.errors import Forbidden, NotFound, RepoproxyError
from repoproxy.web.resources import ChannelResource


class AuthenticationRequired(RepoproxyError):
    status = 401
    code = "authentication-required"


def refusal(request: Any, context: Any, permission: str) -> RepoproxyError:
    """The error for ``permission`` denied on ``context`` (the caller's identity is known)."""
    if request.identity.kind == "anonymous":
        return AuthenticationRequired("authentication required")
    if isinstance(context, ChannelResource):
        # asked whether the channel exists or not (no short cut): a hidden channel must not
        # cost one ACL evaluation more than an absent one (a timing oracle)
        readable = request.has_permission(Permissions.CHANNEL_READ, context)
        if not context.exists or not readable:
            return NotFound("channel not found")
        action = str(permission or Permissions.CHANNEL_READ).split(":", 1)[-1]
        return Forbidden(f"you may not {action} on channel {context.channel.name!r}")
    return Forbidden("this needs an admin token")
