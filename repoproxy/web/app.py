"""The WSGI application factory (PasteDeploy ``egg:repoproxy`` and ``repoproxy serve``)."""

from __future__ import annotations

from typing import Any

from pyramid.config import Configurator
from pyramid.tweens import INGRESS

from repoproxy.domain.core import Core, load_core
from repoproxy.web.fastpath import install as install_fast_path
from repoproxy.web.lean import install as install_lean_path
from repoproxy.web.request import Request
from repoproxy.web.security import SecurityPolicy
from repoproxy.web.tweens import AccessRecorder
from repoproxy.web.urlcache import bound_segment_cache


def make_app(services: Core) -> Any:
    """Build the WSGI app around existing services (the CLI and tests share them)."""
    # Pyramid remembers every URL segment it ever quoted; a listing of a big channel would
    # keep one entry per file name for the process's life (web/urlcache.py)
    bound_segment_cache()
    config = Configurator(settings=dict(services.settings))
    config.registry.services = services
    # the conda file views and the read model share the indexer's cache of hidden sets
    config.registry.hidden_cache = services.indexer.hidden_cache
    # request properties, all in one place: the Request class (web/request.py)
    config.set_request_factory(Request)
    config.set_security_policy(SecurityPolicy())
    # the access log line and the request observers (metrics), for the tween and the lean path
    config.registry.access_recorder = AccessRecorder(services)
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
    # the conda file routes skip the router's route and view lookup (web/fastpath.py), and
    # the conda index requests are answered in front of Pyramid (web/lean.py)
    return install_lean_path(install_fast_path(config.make_wsgi_app()))


def main(global_config: dict[str, Any] | None = None, **settings: Any) -> Any:
    """PasteDeploy entry point: ``[app:main] use = egg:repoproxy``."""
    return make_app(load_core(settings))
