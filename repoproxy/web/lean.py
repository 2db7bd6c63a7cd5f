"""The conda requests answered in front of Pyramid: a WSGI callable around the router.

What conda clients send all day, a GET or HEAD of a subdir's index files (``repodata.json``,
its ``.zst``, the shard index, ``run_exports.json``), of its shards and of its package files,
is decided here from in-memory state, the access generation (read from a shared mapping of its
stamp, no system call) and one stat of the file (or its open; a package file's subdir's hidden
list is stat'ed too), with none of Pyramid's per-request work (a request object, the tweens,
the router, the security policy walking an ACL, the view's hooks):

* the route: the router's own conda route objects, matched in its order
  (``FastHandler.route``), once per request path (the answers are kept, bounded);
* the caller: no credentials (anonymous with its role bindings), or a token the token
  backend verified under the current access generation (``tokenauth.known_identity``);
* the access decision: the security policy's ACL helper over the channel's ACL and the
  caller's principals, computed once per (caller, channel) and kept in a :class:`Plan`
  built per access generation from the channel snapshot (a change by any process makes a new
  plan on the next request);
* the answer: ``web/files.py``'s candidates, validators and headers, made once per version
  of a file (its mtime and size) and kept.

Anything else goes to the Pyramid application, untouched, which answers it from scratch
exactly as it would have: every refusal (no access, an absent channel, a credentials error,
a token not in the cache yet, an expired or revoked one), any other route or method, a query
string, a cookie, HTTP Basic, a Range or a conditional header other than a matching
If-None-Match, an absent file (the 404 body, or the noarch index built on demand), a
policy-hidden package file, package files when a download observer other than the first-party
ones is loaded (``KNOWN_DOWNLOAD_OBSERVERS``: another one may read anything of Pyramid's
request), and the files of a channel a plugin claims (``repoproxy_channel_file_claims``: a
passive mirror), but those the claiming plugin names to be answered here
(``repoproxy_channel_file_lean``: a passive mirror's cached, fresh indexes and its shards, with
the headers ``file_response`` gives them; never its package files). A refused
request therefore costs the same here whether its channel is private or absent: a dict lookup
each, then the same path through Pyramid.

The lean path is off as a whole, and Pyramid answers everything, when it could not reproduce
the application exactly: the fast path is off (web/fastpath.py: routing or views changed by a
plugin), a tween or a response subscriber other than the core's, a ``repoproxy_acl_entries``
implementation, or a ``repoproxy_channel_file`` implementation without a claim. Token requests
alone go to Pyramid when an identity backend other than the built-in ones is loaded, or
predefined tokens are configured (they answer the identity hook before the token backend).

What a request answered here leaves behind is the same as through the tweens: the request
observers' call (metrics, by route name and status) and the access log line (formatted only
when the ``repoproxy.access`` logger writes INFO); for a package GET, the download observers'
call (``repoproxy_file_served``, as the view makes it), and behind the nginx front its
``X-Accel-Redirect`` answer (web/accel.py) in place of the bytes.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pyramid.interfaces import IRequestFactory, ISecurityPolicy, ITweens
from pyramid.response import FileIter

from repoproxy.builtin import tokenauth
from repoproxy.domain.permissions import Permissions
from repoproxy.domain.tokens import token_hash
from repoproxy.errors import CredentialsInvalid, InvalidName
from repoproxy.models import Channel, Credentials, Identity, LeanFile, Privacy
from repoproxy.names import is_package_filename, is_subdir
from repoproxy.pipeline.repodata import HIDDEN
from repoproxy.plugins import DEFAULT_PLUGINS
from repoproxy.web.accel import accel_headers, is_regular_file
from repoproxy.web.files import (
    BLOCK,
    body_headers,
    cache_control,
    candidates,
    stat_etag,
    validators,
)
from repoproxy.web.redact import redact
from repoproxy.web.request import Request
from repoproxy.web.resources import channel_acl
from repoproxy.web.security import (
    SecurityPolicy,
    anonymous_identity,
    credentials_of,
    principals,
    token_credentials,
    with_authenticated_bindings,
)
from repoproxy.web.tweens import TOKEN_PATH, AccessRecorder
from repoproxy.web.views.channel import INDEX_FILES, file_served

log = logging.getLogger(__name__)

#: the tweens whose work this module does itself (the rest of Pyramid's chain is the router)
CORE_TWEENS = frozenset({
    "repoproxy.web.tweens.logging_tween_factory",
    "repoproxy.web.tweens.url_check_tween_factory",
    "repoproxy.web.tweens.token_path_tween_factory",
    "pyramid.tweens.excview_tween_factory",
})
#: request headers that make webob's conditional answering (or a 416) possible: Pyramid's
#: (If-None-Match is handled here when it names the file's own tag)
PYRAMID_CONDITIONALS = ("HTTP_RANGE", "HTTP_IF_MODIFIED_SINCE", "HTTP_IF_MATCH",
                        "HTTP_IF_UNMODIFIED_SINCE", "HTTP_IF_RANGE")
#: at most this many (caller, channel) decisions per plan (a flood of tokens cannot grow it)
MAX_DECISIONS = 1 << 16
#: at most this many request paths remembered (a flood of paths cannot grow it)
MAX_TARGETS = 1 << 14
_HEX = frozenset("0123456789abcdef")
#: no credentials at all
ANONYMOUS = Credentials()
#: the download observers (``repoproxy_file_served``) known to read no more of the request
#: than the lean path gives them (its environ, ``services``, ``identity``): with any other one
#: loaded, package files are the application's
KNOWN_DOWNLOAD_OBSERVERS = frozenset({"repoproxy_stats", "repoproxy_metrics"})


@dataclass(frozen=True)
class Target:
    """What a request path names: an index file, a shard or a package file of a channel's
    subdir."""

    route: str
    channel: str
    subdir: str
    filename: str
    shard: bool
    #: the file in the tree
    file: str
    #: a package file: the subdir's hidden list (the policy's), else None
    hidden: str | None = None


def _is_shard(filename: str) -> bool:
    """The shard view's check of a shard's name: 64 lower-case hex digits, then the suffix."""
    digest = filename.removesuffix(".msgpack.zst")
    return len(digest) == 64 and _HEX.issuperset(digest)


@dataclass(frozen=True)
class Headers:
    """A file's headers for one version of it (``web/files.py`` makes them)."""

    mtime: float
    size: int
    #: the Cache-Control they were made with (a channel's privacy may change)
    cache: str
    #: the ETag they were made with when not the file's stamp (a plugin's LeanFile)
    given_tag: str | None
    quoted_tag: str
    not_modified: list[tuple[str, str]]
    body: list[tuple[str, str]]


@dataclass(frozen=True)
class ChannelPlan:
    """What serving a channel's index files needs, fixed for one access generation."""

    channel: Channel
    acl: list[tuple[str, str, Any]]
    #: Cache-Control of its index files and of its shards
    index_cache: str
    shard_cache: str
    #: a plugin answers its files (``repoproxy_channel_file_claims``)
    claimed: bool
    #: the files of those it lets this module answer (``repoproxy_channel_file_lean``)
    lean: Callable[[str, str, str], LeanFile | None] | None = None


@dataclass
class Plan:
    """The channels of one access generation and the access decisions made under it."""

    generation: int
    #: the channel snapshot of that generation
    channels: Mapping[str, Channel]
    #: name -> its plan, made on the channel's first request (not all at once: a server of
    #: many channels would pay for all of them after every change of access)
    prepared: dict[str, ChannelPlan] = field(default_factory=dict)
    #: (token digest or "" for anonymous, channel) -> may read
    decisions: dict[tuple[str, str], bool] = field(default_factory=dict)


@dataclass
class _Acl:
    """The context the ACL helper walks: a channel and its ACL, no parent."""

    channel: Channel
    __acl__: list[tuple[str, str, Any]]


class LeanApp:
    """The WSGI app: conda index requests answered here, the rest by ``router`` (Pyramid's);
    ``registry`` is the router's, for what takes the app for its registry."""

    def __init__(self, router: Any) -> None:
        self.router = router
        self.registry = router.registry
        services = self.registry.services
        self.services = services
        self.routing = getattr(router, "fast_handler", None)
        self.recorder: AccessRecorder = self.registry.access_recorder
        self.max_age = int(services.settings["repoproxy.index_max_age"])
        self.policy_helper = self._acl_helper()
        self.verified = tokenauth.verified_tokens(services)
        self.hidden_lists = self.registry.hidden_cache
        self.accel = str(services.settings["repoproxy.accel_redirect"] or "")
        self.request_factory = self.registry.queryUtility(IRequestFactory, default=Request)
        self.anonymous_name = anonymous_identity(services.settings).name
        self._lock = threading.Lock()
        self._plan: Plan | None = None
        self._targets: dict[str, Target | None] = {}
        self._known: dict[str, Headers] = {}
        # what the app's configuration allows (fixed once the app is built)
        self.possible = self._static_check()
        # what the plugins allow: read again whenever a plugin is registered or unregistered
        # (tests do it on a running app), one integer compared per request
        self._seen = -1
        self.enabled = self.tokens = self.packages = False
        # (claims, the same plugin's lean answers or None), one per claiming plugin
        self.claims: list[tuple[Callable[[str], bool],
                                Callable[[str, str, str], LeanFile | None] | None]] = []
        self._allowed_by_plugins()

    # --- set-up ----------------------------------------------------------------------------
    def _acl_helper(self) -> Any:
        """The core security policy's ACL helper (None under another policy)."""
        policy = self.registry.queryUtility(ISecurityPolicy)
        return policy.helper if isinstance(policy, SecurityPolicy) else None

    def _static_check(self) -> bool:
        """Whether the app's configuration lets the lean path reproduce it (module doc)."""
        registry = self.registry
        reasons = []
        if self.routing is None or not self.routing.enabled:
            reasons.append("the fast path is off")
        if self.policy_helper is None:
            reasons.append("not the core's security policy")
        tweens = registry.queryUtility(ITweens)
        names = {name for name, _ in (tweens.implicit() + tweens.explicit)} if tweens else set()
        if names - CORE_TWEENS:
            reasons.append(f"tweens {sorted(names - CORE_TWEENS)}")
        subscribed = {i for item in registry.introspector.get_category("subscribers") or ()
                      for i in item["introspectable"]["interfaces"]}
        if not subscribed <= _harmless_events():
            reasons.append("a subscriber to NewRequest, NewResponse or ContextFound")
        if reasons:
            log.info("lean path off: %s", "; ".join(reasons))
        return not reasons

    def _allowed_by_plugins(self) -> bool:
        """Whether the lean path is on, what the plugins allow read again when the loaded
        plugins changed."""
        pm = self.services.pm
        changes = pm.changes  # repoproxy.plugins.PluginManager counts (un)registrations
        if changes == self._seen:
            return self.enabled
        with self._lock:
            hook = pm.hook
            reasons = []
            if hook.repoproxy_acl_entries.get_hookimpls():
                reasons.append("a plugin adds ACL entries")
            answering = {i.plugin_name for i in hook.repoproxy_channel_file.get_hookimpls()}
            claiming = {i.plugin_name for i in hook.repoproxy_channel_file_claims.get_hookimpls()}
            if answering - claiming:
                reasons.append(f"repoproxy_channel_file without a claim: "
                               f"{sorted(answering - claiming)}")
            if reasons:
                log.info("lean path off: %s", "; ".join(reasons))
            self.claims = self._claims()
            self.enabled = self.possible and not reasons
            self.tokens = self.enabled and _tokens_answered_here(self.services)
            observers = {i.plugin_name for i in hook.repoproxy_file_served.get_hookimpls()}
            self.packages = self.enabled and observers <= KNOWN_DOWNLOAD_OBSERVERS
            if self.enabled and not self.packages:
                log.info("lean path: package files go to the application (download "
                         "observers %s)", sorted(observers - KNOWN_DOWNLOAD_OBSERVERS))
            self._plan = None  # made again with the claims of these plugins
            self._seen = changes
        return self.enabled

    def _claims(self) -> list[tuple[Callable[[str], bool],
                                    Callable[[str, str, str], LeanFile | None] | None]]:
        """Each claiming plugin's claims with its lean answers (by plugin: only the plugin
        that claims a channel may have its files answered here)."""
        hook = self.services.pm.hook
        leans = {impl.plugin_name: impl.function(services=self.services)
                 for impl in hook.repoproxy_channel_file_lean.get_hookimpls()}
        out = []
        for impl in hook.repoproxy_channel_file_claims.get_hookimpls():
            claims = impl.function(services=self.services)
            if claims is not None:
                out.append((claims, leans.get(impl.plugin_name)))
        return out

    # --- per request -----------------------------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if (environ["REQUEST_METHOD"] in ("GET", "HEAD") and not environ.get("QUERY_STRING")
                and self.possible and self._allowed_by_plugins()):
            start = time.perf_counter()
            try:
                answer = self._answer(environ, start_response, start)
            except CredentialsInvalid:
                answer = None  # a credentials error: the application refuses it
            if answer is not None:
                return answer
        return self.router(environ, start_response)

    def _answer(self, environ: dict[str, Any], start_response: Callable[..., Any],
                start: float) -> Any:
        path = environ.get("PATH_INFO") or "/"
        log_path = None
        bearer = None
        if path.startswith("/t/"):
            match = TOKEN_PATH.match(path)
            if match is None:
                return None
            creds = token_credentials(match.group(1), "path")
            path = match.group(2) or "/"
            log_path = "/t/<redacted>" + path
        elif auth := environ.get("HTTP_AUTHORIZATION"):
            # what credentials_of takes from it (it wins over X-API-Key), less the token's
            # shape check and the Credentials: only a token verified before (so well-formed)
            # is answered here, any other goes to the application, which checks it
            scheme, _, value = auth.partition(" ")
            if scheme.lower() != "bearer":
                return None  # Basic, another scheme: the application
            creds, bearer = ANONYMOUS, value.strip()
        elif "HTTP_AUTHORIZATION" in environ or "HTTP_X_API_KEY" in environ:
            creds = credentials_of(environ)
        else:
            creds = ANONYMOUS  # no credentials (the query string is empty)
        try:
            target = self._targets[path]
        except KeyError:
            target = self._target(path)
        if target is None:
            return None
        # the caller, from the environ and in-memory caches only
        generation = self.services.generation()
        if bearer is None and creds.token is not None and creds.username is None:
            bearer = creds.token  # a /t/ path token or an X-API-Key
        if bearer is not None:
            if not self.tokens:
                return None
            key = token_hash(bearer)
            identity = tokenauth.known_identity(self.services, key, generation, self.verified)
            if identity is None:
                return None  # not verified under this generation: the application verifies
        elif creds.empty:
            if "HTTP_COOKIE" in environ:
                return None  # perhaps the web UI's session: the application reads it
            key, identity = "", None
        else:
            return None  # HTTP Basic: the application
        plan = self._plan
        if plan is None or plan.generation != generation:
            plan = self._replan(generation)
            if plan is None:
                return None
        name = target.channel
        channel = plan.prepared.get(name)
        if channel is None and name in plan.channels:
            channel = plan.prepared[name] = self._channel_plan(plan.channels[name])
        allowed = plan.decisions.get((key, name))
        if allowed is None:
            allowed = self._decide(plan, key, identity, channel)
        if not allowed or channel is None:
            return None
        file, tag, answered = target.file, None, None
        if target.hidden is not None:  # a package file
            sent = self._send_package(environ, start_response, target, channel)
            if sent is None:
                return None
            if environ["REQUEST_METHOD"] == "GET":  # counted as the view counts it
                self._served(environ, identity, channel.channel, target)
            return self._done(environ, target, sent, start, log_path or path, identity)
        if channel.claimed:  # a plugin answers its files (repoproxy_channel_file)
            if channel.lean is None:
                return None
            lean = channel.lean(name, target.subdir, f"shards/{target.filename}"
                                if target.shard else target.filename)
            if lean is None:
                return None  # the plugin's own answer (a stale index, a first fetch)
            file, tag, answered = lean.path, lean.etag, lean.answered
        sent = self._send(environ, start_response, file, target.filename,
                          channel.shard_cache if target.shard else channel.index_cache, tag)
        if sent is None:
            return None
        if answered is not None:
            answered()
        return self._done(environ, target, sent, start, log_path or path, identity)

    def _done(self, environ: dict[str, Any], target: Target, sent: tuple[int, Any],
              start: float, path: str, identity: Identity | None) -> Any:
        """What an answer leaves behind (the request observers, the access log line); its
        body."""
        status, body = sent
        seconds = time.perf_counter() - start
        self.recorder.observe(target.route, status, seconds)
        if self.recorder.logging():
            self.recorder.line(_client_addr(environ), environ["REQUEST_METHOD"],
                               redact(path), status, seconds,
                               identity.name if identity is not None else "anonymous")
        return body

    def _send_package(self, environ: dict[str, Any], start_response: Callable[..., Any],
                      target: Target, channel: ChannelPlan) -> tuple[int, Any] | None:
        """A package file's answer as the view makes it, or None where the application must
        answer (a claimed channel's, a hidden or absent file's, one with conditionals webob
        decides)."""
        if channel.claimed or not self.packages:
            return None
        if target.filename in self.hidden_lists.get(target.hidden):
            return None  # the view's 404, which names the file
        if self.accel:  # behind the nginx front: it sends the bytes (web/accel.py)
            if not is_regular_file(target.file):
                return None
            start_response("200 OK", accel_headers(self.accel, channel.channel,
                                                   target.subdir, target.filename))
            return 200, []
        return self._send(environ, start_response, target.file, target.filename,
                          channel.shard_cache)

    def _served(self, environ: dict[str, Any], identity: Identity | None, channel: Channel,
                target: Target) -> None:
        """The download observers, given what the application's request would give them."""
        request = self.request_factory(environ)
        request.registry = self.registry
        environ["repoproxy.identity_name"] = (
            identity.name if identity is not None else self.anonymous_name)
        file_served(request, channel, target.subdir, target.filename)

    def _target(self, path: str) -> Target | None:
        """The index file or shard ``path`` names, as the router and the view would find it;
        None for any other path (kept: the same paths come again and again)."""
        target = None
        found = self.routing.route(path) if path.isascii() else None  # type: ignore[union-attr]
        if found is not None:
            route, md = found
            subdir, filename = md.get("subdir", ""), md.get("filename", "")
            shard = route.name == "channel.shard"
            package = route.name == "channel.file" and is_package_filename(filename)
            if (is_subdir(subdir) and (_is_shard(filename) if shard else (
                    route.name == "channel.file" and (filename in INDEX_FILES or package)))):
                try:
                    directory = self.services.store.subdir_path(md["channel"], subdir)
                except InvalidName:
                    directory = None  # no channel can have this name: the application's 404
                if directory is not None:
                    file = (f"{directory}/shards/{filename}" if shard
                            else f"{directory}/{filename}")
                    target = Target(route.name, md["channel"], subdir, filename, shard, file,
                                    f"{directory}/{HIDDEN}" if package else None)
        if len(self._targets) >= MAX_TARGETS:
            self._targets.clear()
        self._targets[path] = target
        return target

    def _send(self, environ: dict[str, Any], start_response: Callable[..., Any], file: str,
              name: str, cache: str, tag: str | None = None) -> tuple[int, Any] | None:
        """(status, body) of the file's answer as ``files.file_response`` makes it (with
        ``etag=tag``), or None where the application must answer (no such file, webob's
        conditional answering)."""
        if not environ.keys().isdisjoint(PYRAMID_CONDITIONALS):
            return None
        if_none_match = environ.get("HTTP_IF_NONE_MATCH")
        for candidate, encoding in candidates(file, name, environ):
            if if_none_match is not None:
                try:
                    st = os.stat(candidate)  # noqa: PTH116 (hot path: str paths)
                except FileNotFoundError:
                    continue
                except OSError:
                    return None  # unreadable: the application answers (and logs) it
                known = self._headers(candidate, st, name, encoding, cache, tag)
                if if_none_match != known.quoted_tag:
                    return None  # another tag, a list, W/, *: webob's parsing decides
                # decided from the stat alone: the file is not opened for a 304
                start_response("304 Not Modified", list(known.not_modified))
                return 304, []
            # a body: the file opened at once (its headers come from the open file anyway,
            # which may be a newer version than a stat before the open would have seen)
            try:
                f = open(candidate, "rb")  # noqa: SIM115 - owned by the body (or closed below)
            except FileNotFoundError:
                continue
            except OSError:
                return None  # a directory, no permission: the application answers (and logs) it
            known = self._headers(candidate, os.fstat(f.fileno()), name, encoding, cache, tag)
            start_response("200 OK", list(known.body))
            if environ["REQUEST_METHOD"] == "HEAD":
                f.close()
                return 200, []
            wrapper = environ.get("wsgi.file_wrapper")
            return 200, wrapper(f, BLOCK) if wrapper else FileIter(f, BLOCK)
        return None

    def _headers(self, file: str, st: os.stat_result, name: str, encoding: str | None,
                 cache: str, given: str | None = None) -> Headers:
        """The file's headers (``web/files.py``'s, with ETag ``given`` or the file's stamp),
        made again only when its stamp changed."""
        known = self._known.get(file)
        if (known is None or known.mtime != st.st_mtime or known.size != st.st_size
                or known.cache != cache or known.given_tag != given):
            tag = given or stat_etag(st)
            known = Headers(st.st_mtime, st.st_size, cache, given, f'"{tag}"',
                            validators(tag, st, name, encoding, cache),
                            body_headers(tag, st, name, encoding, cache))
            if len(self._known) >= MAX_TARGETS:
                self._known.clear()
            self._known[file] = known
        return known

    def _replan(self, generation: int) -> Plan | None:
        with self._lock:
            plan = self._plan
            if plan is None or plan.generation != generation:
                stamp, channels = self.services.channel_snapshot()
                plan = Plan(stamp, channels)
                self._plan = plan
        # the generation moved on while the snapshot was read: the application answers
        return plan if plan.generation == generation else None

    def _channel_plan(self, channel: Channel) -> ChannelPlan:
        public = channel.privacy == Privacy.PUBLIC
        claiming = [lean for claims, lean in self.claims if claims(channel.name)]
        return ChannelPlan(channel, channel_acl(channel, True, []),
                           cache_control(public, False, self.max_age),
                           cache_control(public, True, self.max_age),
                           bool(claiming),
                           # one plugin's files only: with several, which one answers is
                           # the application's hook order
                           claiming[0] if len(claiming) == 1 else None)

    def _decide(self, plan: Plan, key: str, caller: Identity | None,
                target: ChannelPlan | None) -> bool:
        """The security policy's answer for this caller (None: anonymous) and channel, kept
        in the plan."""
        if target is None:
            return False  # not kept: a flood of absent names would fill the plan
        settings = self.services.settings
        identity = (anonymous_identity(settings) if caller is None
                    else with_authenticated_bindings(caller, settings))
        context = _Acl(target.channel, target.acl)
        allowed = bool(self.policy_helper.permits(context, principals(identity, context),
                                                  Permissions.CHANNEL_READ))
        if len(plan.decisions) >= MAX_DECISIONS:
            plan.decisions.clear()
        plan.decisions[(key, target.channel.name)] = allowed
        return allowed


def _client_addr(environ: Mapping[str, Any]) -> str | None:
    """webob's ``Request.client_addr`` (the first X-Forwarded-For entry, which waitress left
    only when it came from the trusted proxy, else the peer)."""
    forwarded = environ.get("HTTP_X_FORWARDED_FOR")
    if forwarded is not None:
        return str(forwarded.split(",")[0].strip())
    addr = environ.get("REMOTE_ADDR")
    return None if addr is None else str(addr)


def _harmless_events() -> set[Any]:
    """Events whose subscribers see nothing of a request answered here: ApplicationCreated,
    and BeforeRender (sent by renderers, which the conda file views do not use)."""
    from pyramid.events import ApplicationCreated, BeforeRender
    from pyramid.interfaces import IApplicationCreated, IBeforeRender

    return {ApplicationCreated, BeforeRender, IApplicationCreated, IBeforeRender}


def _tokens_answered_here(services: Any) -> bool:
    """True when the token backend alone answers the identity hook for a bearer token: only
    the built-in backends are loaded (the password ones answer Basic credentials only) and no
    predefined token is configured."""
    names = {i.plugin_name for i in services.pm.hook.repoproxy_identify.get_hookimpls()}
    if not names <= set(DEFAULT_PLUGINS) or "repoproxy.builtin.tokenauth" not in names:
        log.info("lean path: token requests go to the application (identity backends %s)",
                 sorted(names - set(DEFAULT_PLUGINS)))
        return False
    if str(services.settings["repoproxy.auth.predefined_tokens"]).strip():
        log.info("lean path: token requests go to the application (predefined tokens)")
        return False
    return True


def install(router: Any) -> Any:
    """The app to serve: the router behind a :class:`LeanApp`."""
    return LeanApp(router)

