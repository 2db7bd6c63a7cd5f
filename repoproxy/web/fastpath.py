"""The conda file routes without Pyramid's router: a handler under the same tweens.

Pyramid's router finds a route by trying every pattern in order (some 50 before the conda
routes), then looks the view up through zope adapters and wraps it in view derivers: about
half of a 304's time. For a GET or HEAD of ``channel.file`` or ``channel.shard``, the
:class:`FastHandler` (put where the router's handler was, under every tween: the access log,
metrics, the URL check, ``/t/<token>/``, plugins' tweens) does what those steps amount to
itself: the same route objects matched in the same order, the same resource factory, the
same security policy's ``permits`` with the view's permission, the same view function.

It calls the view only when access is granted; a refusal (no permission, a credentials
error) or a route it does not handle goes to Pyramid's handler from scratch, which answers it
exactly as without this class: a refusal costs the fast attempt plus the ordinary path, the
same for an absent and a private channel (no oracle in timing either). What a granted view
raises (``NotFound`` for a missing or policy-hidden file) goes up to the exception view
tween, as it would from the router.

It is switched off (everything goes to the router) when the routing cannot be reproduced
exactly: a route before the conda routes whose first path segment is not a fixed word, a
route with predicates among the conda routes, or a GET view on ``channel.file`` /
``channel.shard`` that is not the core's (a plugin overriding it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from pyramid.interfaces import IRoutesMapper, ISecurityPolicy

from repoproxy.domain.permissions import Permissions
from repoproxy.web.resources import channel_factory
from repoproxy.web.views.channel import channel_file, channel_shard

log = logging.getLogger(__name__)

#: the routes answered here, with their view and the permission the view declares
VIEWS: dict[str, Callable[[Any], Any]] = {"channel.file": channel_file,
                                           "channel.shard": channel_shard}
PERMISSION = Permissions.CHANNEL_READ
FIRST_CONDA_ROUTE = "channel.root"
#: view options that would change what the router does around the view
EXTRA_VIEW_OPTIONS = ("context", "containment", "request_param", "attr", "xhr", "accept",
                      "header", "path_info", "match_param", "http_cache", "require_csrf",
                      "mapper", "decorator")


class FastHandler:
    """``handler(request) -> response``: the conda file routes directly, the rest via
    ``router_handler`` (Pyramid's own ``Router.handle_request``)."""

    def __init__(self, registry: Any, router_handler: Callable[[Any], Any]) -> None:
        self.router_handler = router_handler
        self.policy = registry.queryUtility(ISecurityPolicy)
        plan = routing_plan(registry)
        self.enabled = plan is not None and self.policy is not None
        self.words, self.routes = plan or (frozenset(), [])

    def __call__(self, request: Any) -> Any:
        if self.enabled and request.method in ("GET", "HEAD"):
            response = self._answer(request)
            if response is not None:
                return response
        return self.router_handler(request)

    def route(self, path: str) -> tuple[Any, dict[str, Any]] | None:
        """(route, match) of the conda route the router would match ``path`` to, or None
        where it would match an earlier route or none (the lean path shares this)."""
        first = path[1:].partition("/")[0]
        if first in self.words:
            return None  # a route before the conda routes may match it: the router decides
        for route in self.routes:
            match = route.match(path)
            if match is not None:
                return route, match
        return None

    def _answer(self, request: Any) -> Any:
        found = self.route(request.path_info)
        if found is None:
            return None
        route, match = found
        view = VIEWS.get(route.name)
        if view is None:
            return None
        request.matchdict = match
        request.matched_route = route
        try:
            context = channel_factory(request)
            request.context = context
            if not self.policy.permits(request, context, PERMISSION):
                return None
        except Exception:
            # a refusal or a credentials error: Pyramid's path answers it from scratch (the
            # identity's verdict is kept on the request: web/request.py)
            return None
        # granted: what the view raises (a missing or hidden file, a mirror's upstream
        # error) goes up to the exception view tween above, as from the router's call of the
        # same view; running it again would repeat its side effects (a mirror's fetch)
        return view(request)


def routing_plan(registry: Any) -> tuple[frozenset[str], list[Any]] | None:
    """(first path words of the routes before the conda routes, the routes from the first
    conda route on), or None where the router's choice cannot be reproduced that way."""
    mapper = registry.queryUtility(IRoutesMapper)
    if mapper is None:
        return None
    routes = list(mapper.get_routes())
    names = [r.name for r in routes]
    if FIRST_CONDA_ROUTE not in names or any(n not in names for n in VIEWS):
        return None
    start = names.index(FIRST_CONDA_ROUTE)
    words = set()
    for route in routes[:start]:
        word = route.pattern.lstrip("/").partition("/")[0]
        if any(c in word for c in "{}*:"):
            log.info("fast path off: route %s starts with a variable", route.name)
            return None
        words.add(word)
    tail = routes[start:]
    if any(r.predicates for r in tail):
        log.info("fast path off: a conda route has predicates")
        return None
    if not _core_views_only(registry):
        log.info("fast path off: a plugin adds a view on a conda file route")
        return None
    if not _events_unaffected(registry):
        log.info("fast path off: a subscriber to an event of routing (NewRequest, ...)")
        return None
    return frozenset(words), tail


def _events_unaffected(registry: Any) -> bool:
    """True when no subscriber waits for an event the router sends and this handler does
    not (NewRequest, BeforeTraversal, ContextFound): only the ones it leaves as they are
    (NewResponse, sent around every handler; BeforeRender, sent by renderers, which these
    views do not use; ApplicationCreated)."""
    from pyramid.events import ApplicationCreated, BeforeRender, NewResponse
    from pyramid.interfaces import IApplicationCreated, IBeforeRender, INewResponse

    harmless = {ApplicationCreated, BeforeRender, NewResponse, IApplicationCreated,
                IBeforeRender, INewResponse}
    for item in registry.introspector.get_category("subscribers") or ():
        if not set(item["introspectable"]["interfaces"]) <= harmless:
            return False
    return True


def _core_views_only(registry: Any) -> bool:
    """True when the only GET views on the fast routes are the core's, as the core declares
    them: a request-method predicate, the view's permission, nothing else."""
    from pyramid.predicates import RequestMethodPredicate

    for item in registry.introspector.get_category("views") or ():
        intr = item["introspectable"]
        if intr["route_name"] not in VIEWS:
            continue
        methods = intr["request_methods"]
        methods = {methods} if isinstance(methods, str) else set(methods or ("GET",))
        if not {"GET", "HEAD"} & methods:
            continue  # an upload (PUT) view on the same route
        permissions = [r["value"] for r in item["related"] if r.category_name == "permissions"]
        if (intr["callable"] is not VIEWS[intr["route_name"]] or permissions != [PERMISSION]
                or any(intr[k] is not None for k in EXTRA_VIEW_OPTIONS)
                or any(not isinstance(p, RequestMethodPredicate)
                       for p in intr["predicates"])):
            return False
    return True


def install(router: Any) -> Any:
    """Put a :class:`FastHandler` under the router's tweens; returns the router."""
    from pyramid.interfaces import ITweens

    registry = router.registry
    handler = FastHandler(registry, router.orig_handle_request)
    if not handler.enabled:
        return router
    tweens = registry.queryUtility(ITweens)
    router.handle_request = tweens(handler, registry) if tweens is not None else handler
    router.fast_handler = handler
    return router


def uninstall(router: Any) -> Any:
    """Pyramid's own handler back under the tweens (tests compare both paths)."""
    from pyramid.interfaces import ITweens

    tweens = router.registry.queryUtility(ITweens)
    orig = router.orig_handle_request
    router.handle_request = tweens(orig, router.registry) if tweens is not None else orig
    router.fast_handler = None
    return router
