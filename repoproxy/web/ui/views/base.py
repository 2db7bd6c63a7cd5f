"""What every page's layout needs (the caller, navigation, the CSRF token, flash messages),
added to the values of UI templates only."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from pyramid.csrf import get_csrf_token
from pyramid.events import BeforeRender, subscriber

from repoproxy.domain.permissions import Permissions
from repoproxy.web.resources import ServerResource
from repoproxy.web.ui import helpers


class Layout:
    """Lazily computed: a page that shows no form creates no session."""

    def __init__(self, request: Any) -> None:
        self.request = request
        self.human_size = helpers.human_size
        self.when = helpers.when

    @cached_property
    def identity(self) -> Any:
        return self.request.identity

    @property
    def signed_in(self) -> bool:
        return bool(self.identity.kind != "anonymous")

    @cached_property
    def is_admin(self) -> bool:
        return bool(self.request.has_permission(Permissions.SERVER_ADMIN,
                                                ServerResource(self.request)))

    @cached_property
    def csrf_token(self) -> str:
        return str(get_csrf_token(self.request))

    def flashes(self, queue: str = "") -> list[str]:
        from repoproxy.web.ui.session import COOKIE

        if COOKIE not in self.request.cookies:
            return []
        return [str(m) for m in self.request.session.pop_flash(queue)]

    def url(self, route: str, /, **kw: Any) -> str:
        query = kw.pop("_query", None)
        return str(self.request.route_path(route, _query=query, **kw) if query
                   else self.request.route_path(route, **kw))

    def static(self, path: str) -> str:
        return str(self.request.static_path(f"repoproxy.web.ui:static/{path}"))


@subscriber(BeforeRender)
def add_layout(event: Any) -> None:
    if str(event.get("renderer_name", "")).endswith(".jinja2"):
        request = event.get("request")
        if request is not None:
            event["ui"] = Layout(request)
