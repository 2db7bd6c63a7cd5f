"""The web UI: server-rendered pages for people, under ``/ui/`` (never sharing a cache key
with a conda endpoint).

Pages are Jinja2 templates (``templates/``, through pyramid_jinja2, autoescaped) over the same
read model and operations as the API; ``static/`` holds a stylesheet and a little plain
JavaScript (copy buttons, drag-and-drop upload with progress): every page reads without it.
Every route names its resource (``factory=``), every view declares its permission, every form
checks Pyramid's CSRF token, and a channel the caller may not read answers the same 404 page
as an absent one.
"""

from __future__ import annotations

import pyramid_jinja2
from pyramid.config import Configurator
from pyramid.security import NO_PERMISSION_REQUIRED

from repoproxy.web.resources import ServerResource, channel_factory

TEMPLATES = "repoproxy.web.ui:templates/"


def includeme(config: Configurator) -> None:
    from repoproxy.web.ui.predicates import (
        BrowserPredicate,
        NamesSubdirPredicate,
        UiPathPredicate,
    )
    from repoproxy.web.ui.session import session_factory

    services = config.registry.services
    settings = config.registry.settings
    # strict: a misspelt variable is an error in tests, not an empty string on a page
    settings.setdefault("jinja2.undefined", "strict")
    settings.setdefault("jinja2.autoescape", "true")
    config.include(pyramid_jinja2)
    config.set_session_factory(session_factory(services))
    config.add_view_predicate("browser", BrowserPredicate)
    config.add_view_predicate("ui_page", UiPathPredicate)
    config.add_view_predicate("names_subdir", NamesSubdirPredicate)
    config.add_static_view("ui/static", "repoproxy.web.ui:static", cache_max_age=3600,
                           permission=NO_PERMISSION_REQUIRED)

    def server(name: str, pattern: str) -> None:
        config.add_route(name, pattern, factory=ServerResource)

    def channel(name: str, pattern: str) -> None:
        config.add_route(name, pattern, factory=channel_factory)

    # people who open the server's own URLs in a browser (conda clients see no change)
    server("ui.people_root", "/")
    server("ui.bare", "/ui")
    server("ui.home", "/ui/")
    server("ui.login", "/ui/login")
    server("ui.logout", "/ui/logout")
    server("ui.tokens", "/ui/tokens")
    server("ui.token_revoke", "/ui/tokens/{id}/revoke")
    server("ui.admin_users", "/ui/admin/users")
    server("ui.admin_user_remove", "/ui/admin/users/{user}/remove")
    server("ui.admin_audit", "/ui/admin/audit")
    channel("ui.channel", "/ui/channels/{channel}/")
    channel("ui.upload", "/ui/channels/{channel}/upload")
    channel("ui.members", "/ui/channels/{channel}/members")
    channel("ui.member_remove", "/ui/channels/{channel}/members/{user}/remove")
    channel("ui.service_tokens", "/ui/channels/{channel}/tokens")
    channel("ui.package", "/ui/channels/{channel}/packages/{name}/")
    channel("ui.package_tab", "/ui/channels/{channel}/packages/{name}/{tab}")
    config.scan("repoproxy.web.ui.views")


def renderer(name: str) -> str:
    return TEMPLATES + name


__all__ = ["includeme", "renderer"]
