"""The request class of the app: what views may rely on, typed, so mypy checks every use.

The attributes are set in one place (:func:`repoproxy.web.app.make_app`, with
``add_request_method(..., reify=True)``); this class only declares them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pyramid.request import Request as PyramidRequest

if TYPE_CHECKING:
    from repoproxy.domain.core import Core
    from repoproxy.domain.reads import ReadModel
    from repoproxy.models import Identity


class Request(PyramidRequest):
    services: Core
    reads: ReadModel
    repoproxy_identity: Identity
    context: Any
    matchdict: dict[str, Any]
