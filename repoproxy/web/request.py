"""The request class of the app: what views may rely on, typed, so mypy checks every use.

``services``, ``repoproxy_identity`` and ``reads`` are reified properties of this class, not
``add_request_method`` properties: pyramid applies those by making a new class for every
request, which cost the 304 path about a tenth of its time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pyramid.decorator import reify
from pyramid.request import Request as PyramidRequest

if TYPE_CHECKING:
    from repoproxy.domain.core import Core
    from repoproxy.domain.reads import ReadModel
    from repoproxy.models import Identity


class Request(PyramidRequest):
    context: Any
    matchdict: dict[str, Any]

    if TYPE_CHECKING:
        services: Core
        reads: ReadModel
        repoproxy_identity: Identity
    else:

        @reify
        def services(self):
            return self.registry.services

        @reify
        def repoproxy_identity(self):
            from repoproxy.web.security import identify

            # identified once per request, a refusal included: the fast path
            # (web/fastpath.py) may hand a request it could not answer to the router, and a
            # failed password must be hashed and counted once, not once per attempt
            failed = self.environ.get("repoproxy.identity_error")
            if failed is not None:
                raise failed
            try:
                ident = identify(self)
            except Exception as e:
                self.environ["repoproxy.identity_error"] = e
                raise
            self.environ["repoproxy.identity_name"] = ident.name
            return ident

        @reify
        def reads(self):
            """What this caller may see: the one read model, asking the security policy per
            channel."""
            from repoproxy.domain.permissions import Permissions
            from repoproxy.domain.reads import ReadModel
            from repoproxy.web.resources import ChannelResource

            def may_read(channel: Any) -> bool:
                return bool(self.has_permission(Permissions.CHANNEL_READ,
                                                ChannelResource(self, channel)))

            return ReadModel(self.services, may_read)
