"""The WSGI application factory (PasteDeploy ``egg:repoproxy`` and ``repoproxy serve``)."""

from __future__ import annotations

from typing import Any

from pyramid.config import Configurator
from pyramid.tweens import INGRESS

from repoproxy.domain.core import Core, load_core
from repoproxy.domain.permissions import Permissions
from repoproxy.domain.reads import ReadModel
from repoproxy.web.request import Request
from repoproxy.web.resources import ChannelResource
from repoproxy.web.security import SecurityPolicy, identify


def make_app(services: Core) -> Any:
    """Build the WSGI app around existing services (the CLI and tests share them)."""
    config = Configurator(settings=dict(services.settings))
    config.registry.services = services
    # the conda file views and the read model share the indexer's cache of hidden sets
    config.registry.hidden_cache = services.indexer.hidden_cache
    # request properties, all in one place
    config.set_request_factory(Request)
    config.add_request_method(lambda r: r.registry.services, "services", reify=True)
    config.add_request_method(_identity, "repoproxy_identity", reify=True)
    config.add_request_method(_reads, "reads", reify=True)
    config.set_security_policy(SecurityPolicy())
    # tweens, outermost first: access log, URL decoding check, /t/<token>/ stripping, routing
    config.add_tween("repoproxy.web.tweens.logging_tween_factory", under=INGRESS)
    config.add_tween("repoproxy.web.tweens.url_check_tween_factory",
                     under="repoproxy.web.tweens.logging_tween_factory")
    config.add_tween("repoproxy.web.tweens.token_path_tween_factory",
                     under="repoproxy.web.tweens.url_check_tween_factory")
    config.include(".routes")
    config.scan(".views")
    # plugins last: core routes and views win on equal patterns
    services.pm.hook.repoproxy_configure(config=config)
    return config.make_wsgi_app()


def _identity(request: Any) -> Any:
    ident = identify(request)
    request.environ["repoproxy.identity_name"] = ident.name
    return ident


def _reads(request: Any) -> ReadModel:
    """What this caller may see: the one read model, asking the security policy per channel."""
    def may_read(channel: Any) -> bool:
        return bool(request.has_permission(Permissions.CHANNEL_READ,
                                           ChannelResource(request, channel)))

    return ReadModel(request.services, may_read)


def main(global_config: dict[str, Any] | None = None, **settings: Any) -> Any:
    """PasteDeploy entry point: ``[app:main] use = egg:repoproxy``."""
    return make_app(load_core(settings))
