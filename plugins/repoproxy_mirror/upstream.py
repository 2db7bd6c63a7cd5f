"""Talking to an upstream channel: credentials, timeouts, verified downloads.

Credentials come from settings (``repoproxy_mirror.credentials``, also from the environment as
``REPOPROXY_MIRROR__CREDENTIALS``), never from the mirror's stored definition: they are
applied per request and never appear in a log line, an error message or served metadata.
Messages name :meth:`Upstream.public` URLs, which carry no secret.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit, urlunsplit

from repoproxy.errors import NotFound, RepoproxyError

if TYPE_CHECKING:
    from urllib3 import BaseHTTPResponse as HTTPResponse

log = logging.getLogger(__name__)
CHUNK = 256 * 1024
KINDS = ("bearer", "basic", "token", "apikey")


class UpstreamError(RepoproxyError):
    """The upstream failed (down, 5xx, refused our credentials, sent corrupt bytes).

    Always a 502 to our clients: never a 401/403, which would make them ask their user for
    credentials that are not theirs to give, nor a 404, which would make them give up.
    """

    status = 502
    code = "upstream-unavailable"
    retry_after = 30


class UpstreamNotFound(NotFound):
    code = "upstream-not-found"


class Verifier:
    """Checks a download while it streams: never more bytes than announced, within the
    deadline, and at the end exactly the announced size and sha256."""

    def __init__(self, url: str, sha256: str | None, size: int | None, limit: int,
                 deadline: float) -> None:
        self.url, self.sha256, self.size = url, (sha256 or "").lower() or None, size
        self.limit = size if size is not None else limit
        self.deadline = time.monotonic() + deadline
        self.hash = hashlib.sha256()
        self.got = 0

    def feed(self, chunk: bytes) -> None:
        self.count(chunk)
        self.hash.update(chunk)

    def count(self, chunk: bytes) -> None:
        """The checks that can fail before the end (the hash is fed apart, see relay.py)."""
        self.got += len(chunk)
        if self.got > self.limit:
            raise UpstreamError(f"upstream {self.url} sent more bytes than its index "
                                "announces")
        if time.monotonic() > self.deadline:
            raise UpstreamError(f"upstream {self.url} too slow")

    def finish(self) -> None:
        if self.size is not None and self.got != self.size:
            raise UpstreamError(f"upstream {self.url}: {self.got} bytes received, its index "
                                f"announces {self.size}")
        if self.sha256 and self.hash.hexdigest() != self.sha256:
            raise UpstreamError(f"upstream {self.url}: sha256 mismatch (refused, nothing "
                                "stored)")


@dataclass(frozen=True)
class Credential:
    prefix: str
    kind: str
    secret: str


def parse_credentials(text: str) -> list[Credential]:
    """``<url-prefix>=<kind>:<secret>`` entries separated by whitespace (docs/mirrors.md)."""
    out = []
    for entry in (text or "").split():
        prefix, sep, rest = entry.partition("=")
        kind, sep2, secret = rest.partition(":")
        if not sep or not sep2 or kind not in KINDS or not secret:
            # the entry is not echoed: it holds a secret
            raise RepoproxyError("repoproxy_mirror.credentials: each entry must be "
                                 "<url-prefix>=<bearer|basic|token|apikey>:<secret>")
        out.append(Credential(prefix.rstrip("/"), kind, secret))
    return out


def credential_for(source: str, creds: list[Credential]) -> Credential | None:
    best = None
    for c in creds:
        if (source == c.prefix or source.startswith(c.prefix + "/")) and (
                best is None or len(c.prefix) > len(best.prefix)):
            best = c
    return best


def expected(rec: dict[str, Any]) -> tuple[str | None, int | None]:
    """(sha256, size) the upstream's record promises for a package, where it gives them."""
    sha = rec.get("sha256")
    size = rec.get("size")
    return (sha if isinstance(sha, str) else None,
            size if isinstance(size, int) and not isinstance(size, bool) else None)


@dataclass(frozen=True)
class UpstreamIndex:
    source: str  # the file it came from: repodata.json.zst or repodata.json
    headers: Any  # the answer's headers (validators)
    data: dict[str, Any] | None  # None: 304, the cached index is still right


def unzstd(body: bytes, limit: int) -> bytes | None:
    """The decompressed bytes, or None when ``body`` is not zstd or expands beyond ``limit``."""
    import zstandard

    parts, size = [], 0
    try:
        with zstandard.ZstdDecompressor().stream_reader(body) as reader:
            while chunk := reader.read(CHUNK * 16):
                size += len(chunk)
                if size > limit:
                    return None
                parts.append(chunk)
    except zstandard.ZstdError:
        return None
    return b"".join(parts) if size else None


def _repodata(text: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    for key in ("packages", "packages.conda"):
        if not isinstance(data.get(key, {}), dict):
            return None
    return data


#: headers that carry a credential: never sent on to another origin by a redirect
CREDENTIAL_HEADERS = ("authorization", "x-api-key", "proxy-authorization")
#: errors meaning "the connection was closed under the request", before any answer
_DROPPED = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)
REDIRECTS = (301, 302, 303, 307, 308)
MAX_REDIRECTS = 10


def _dropped(error: BaseException) -> bool:
    """Whether ``error`` (urllib3's, wrapping the socket's) comes from a connection closed
    before the answer began."""
    from http.client import RemoteDisconnected

    todo: list[BaseException] = [error]
    looked: set[int] = set()
    while todo:
        e = todo.pop()
        if id(e) in looked:
            continue
        looked.add(id(e))
        if isinstance(e, (RemoteDisconnected, *_DROPPED)):
            return True
        todo += [a for a in e.args if isinstance(a, BaseException)]
        todo += [c for c in (e.__cause__, e.__context__, getattr(e, "reason", None))
                 if isinstance(c, BaseException)]
    return False


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


def _same_origin(url: str, target: str) -> bool:
    """Whether a redirect from ``url`` to ``target`` stays with the upstream (as ``requests``
    judges it: the same scheme, host and port, or http upgraded to https on the default
    ports), so that its credentials may follow."""
    a, b = _origin(url), _origin(target)
    if a == b:
        return True
    return (a[1] == b[1] and a[0] == "http" and b[0] == "https"
            and a[2] in (80, None) and b[2] in (443, None))


def _manager(url: str, connections: int) -> Any:
    """A urllib3 pool manager for ``url``'s origin, set up from the environment as
    ``requests`` reads it (``HTTP(S)_PROXY``, ``ALL_PROXY``, ``NO_PROXY``,
    ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE``, else certifi's bundle): requests' own helpers
    decide, so the documented behaviour is requests', read once per origin."""
    import urllib3
    from requests.utils import (
        DEFAULT_CA_BUNDLE_PATH,
        get_auth_from_url,
        get_environ_proxies,
        select_proxy,
    )

    ca = (os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
          or DEFAULT_CA_BUNDLE_PATH)
    tls: dict[str, Any] = {"cert_reqs": "CERT_REQUIRED",
                           ("ca_cert_dir" if Path(ca).is_dir() else "ca_certs"): ca}
    pools: dict[str, Any] = {"num_pools": 2, "maxsize": max(1, connections), "block": False}
    proxy = select_proxy(url, get_environ_proxies(url))
    if not proxy:
        return urllib3.PoolManager(**pools, **tls)
    if proxy.lower().startswith("socks"):
        try:
            from urllib3.contrib.socks import SOCKSProxyManager
        except ImportError:  # PySocks is not installed
            raise UpstreamError("the environment names a SOCKS proxy for the upstream: "
                                "that needs the PySocks package") from None
        return SOCKSProxyManager(proxy, **pools, **tls)
    user, password = get_auth_from_url(proxy)
    headers = (urllib3.make_headers(proxy_basic_auth=f"{user}:{password}") if user
               else None)
    return urllib3.ProxyManager(proxy, proxy_headers=headers, **pools, **tls)


class Pools:
    """The connections to one mirror's upstream, shared by every thread that talks to it
    (urllib3's pools are thread-safe), keeping up to ``connections`` idle ones per origin:
    with a pool per thread, a first fetch landing on a thread that had not talked to the
    upstream yet opened a new connection (a TCP and perhaps a TLS handshake more than a
    kept-alive one); waitress hands requests to its threads in turn, so most first fetches
    of a quiet server did. One manager per origin (the upstream's, and a redirect's CDN),
    each set up from the environment once."""

    def __init__(self, connections: int = 1) -> None:
        self.connections = connections
        self._managers: dict[tuple[str, str, int | None], Any] = {}
        self._lock = threading.Lock()

    #: origins kept at most (an upstream may redirect to any number of hosts)
    MAX_ORIGINS = 16

    def manager(self, url: str) -> Any:
        key = _origin(url)
        got = self._managers.get(key)
        if got is None:
            with self._lock:
                got = self._managers.get(key)
                if got is None:
                    if len(self._managers) >= self.MAX_ORIGINS:
                        # the oldest after the upstream's own (the first): its connections
                        # close once their answers are read
                        oldest = list(self._managers)[1]
                        self._managers.pop(oldest).clear()
                    got = self._managers[key] = _manager(url, self.connections)
        return got

    def close(self) -> None:
        with self._lock:
            managers, self._managers = list(self._managers.values()), {}
        for m in managers:
            m.clear()


class Upstream:
    """A client of one upstream channel, safe to share between threads (it keeps no state
    per request; its :class:`Pools` are thread-safe).

    urllib3 directly, not ``requests``: a first fetch's request cost 2.0-2.1 ms of CPU
    through a ``requests`` session against 0.55-0.9 ms through urllib3 (measured on the
    project's machine, loopback), most of a proxied first fetch's fixed cost."""

    def __init__(self, source: str, settings: Any, pools: Pools | None = None) -> None:
        """``pools``: shared with the mirror's other clients (its own otherwise)."""
        import urllib3

        self.source = source.rstrip("/")
        timeout = float(settings["repoproxy_mirror.timeout"])
        self.timeout = urllib3.Timeout(connect=timeout, read=timeout)
        self.deadline = float(settings["repoproxy_mirror.download_deadline"])
        self.cred = credential_for(self.source,
                                   parse_credentials(settings["repoproxy_mirror.credentials"]))
        self.pools = pools if pools is not None else Pools()
        self._errors: tuple[type[BaseException], ...] = (urllib3.exceptions.HTTPError, OSError)
        # as requests sends them (an upstream may gzip its JSON indexes)
        self.headers = {"User-Agent": "repoproxy-mirror", "Accept-Encoding": "gzip, deflate",
                        "Accept": "*/*"}
        if self.cred is not None:
            if self.cred.kind == "bearer":
                self.headers["Authorization"] = f"Bearer {self.cred.secret}"
            elif self.cred.kind == "apikey":
                self.headers["X-API-Key"] = self.cred.secret
            elif self.cred.kind == "basic":
                self.headers.update(urllib3.make_headers(basic_auth=self.cred.secret))

    def public(self, path: str) -> str:
        return f"{self.source}/{path}"

    def _url(self, path: str) -> str:
        url = self.public(path)
        if self.cred is not None and self.cred.kind == "token":
            parts = urlsplit(url)
            url = urlunsplit(parts._replace(path=f"/t/{self.cred.secret}{parts.path}"))
        return url

    def get(self, path: str, headers: dict[str, str] | None = None) -> HTTPResponse:
        """GET with timeouts, following redirects (credentials stay with the upstream's
        origin); 401/403/5xx and transport errors become :class:`UpstreamError`, 404/410
        :class:`UpstreamNotFound`; 200 and 304 are returned unread (the caller reads the body
        and closes the answer: a fully read answer's connection goes back to the pool)."""
        url = self._url(path)
        send = {**self.headers, **(headers or {})}
        for _ in range(MAX_REDIRECTS + 1):
            r = self._send(url, send, path)
            location = r.headers.get("Location") if r.status in REDIRECTS else None
            if not location:
                break
            r.drain_conn()
            r.release_conn()
            target = urljoin(url, location)
            if not _same_origin(url, target):
                send = {k: v for k, v in send.items() if k.lower() not in CREDENTIAL_HEADERS}
            url = target
        else:
            raise UpstreamError(f"upstream {self.public(path)} redirects too often")
        if r.status in (404, 410):
            r.close()
            raise UpstreamNotFound(f"{path} not found upstream")
        if r.status in (401, 403):
            r.close()
            raise UpstreamError(f"upstream {self.public(path)} refused the mirror's "
                                f"credentials ({r.status})")
        if r.status not in (200, 304):
            r.close()
            raise UpstreamError(f"upstream {self.public(path)} answered {r.status}")
        return r

    def _send(self, url: str, headers: dict[str, str], path: str) -> HTTPResponse:
        for attempt in (1, 2):
            try:
                return self.pools.manager(url).urlopen(
                    "GET", url, headers=headers, preload_content=False, decode_content=False,
                    retries=False, redirect=False, timeout=self.timeout)
            except self._errors as e:
                # the pool keeps connections to the upstream open between requests; one the
                # upstream closed just as it was reused fails before any answer: a GET is
                # safe to send again, on a new connection (the failed one is discarded)
                if attempt == 1 and _dropped(e):
                    log.info("upstream %s closed a kept-alive connection: retrying",
                             self.public(path))
                    continue
                raise UpstreamError(f"upstream {self.public(path)} unreachable: "
                                    f"{type(e).__name__}") from None
        raise AssertionError("unreachable: the second attempt returns or raises")

    def fetch_bytes(self, path: str, limit: int,
                    headers: dict[str, str] | None = None) -> tuple[HTTPResponse, bytes]:
        r = self.get(path, headers=headers)
        if r.status == 304:  # no body: the connection is kept for the next request
            r.drain_conn()
            r.release_conn()
            return r, b""
        chunks, size, start = [], 0, time.monotonic()
        try:
            for chunk in r.stream(CHUNK, decode_content=True):
                size += len(chunk)
                if size > limit:
                    raise UpstreamError(f"upstream {self.public(path)} is larger than "
                                        f"{limit} bytes")
                if time.monotonic() - start > self.deadline:
                    raise UpstreamError(f"upstream {self.public(path)} too slow")
                chunks.append(chunk)
        except self._errors as e:
            raise UpstreamError(f"upstream {self.public(path)} broke off: "
                                f"{type(e).__name__}") from None
        finally:
            r.close()
        return r, b"".join(chunks)

    def index(self, subdir: str, limit: int, previous: str | None = None,
              validators: dict[str, str] | None = None) -> UpstreamIndex:
        """The subdir's patched index: ``repodata.json.zst`` when the upstream has it (a tenth
        of the transfer), else ``repodata.json``. A 404 for the .zst, or a body that is not
        zstd holding a JSON object (an HTML page, a login form), means "none": the JSON is
        fetched instead, and nothing of the bad body is kept. ``validators`` (If-None-Match,
        If-Modified-Since) are sent only for the file ``previous`` names, whose validators
        they are; a 304 then returns no data. 404 for the JSON raises
        :class:`UpstreamNotFound`; other failures :class:`UpstreamError`."""
        for name in ("repodata.json.zst", "repodata.json"):
            path = f"{subdir}/{name}"
            headers = dict(validators or {}) if previous == name else {}
            try:
                r, body = self.fetch_bytes(path, limit, headers)
            except UpstreamNotFound:
                if name.endswith(".zst"):
                    continue
                raise
            if r.status == 304:
                if not headers:
                    raise UpstreamError(f"upstream {self.public(path)} answered 304 to a "
                                        "request without validators")
                return UpstreamIndex(name, r.headers, None)
            if name.endswith(".zst"):
                text = unzstd(body, limit)
                data = _repodata(text) if text is not None else None
                if data is None:
                    log.info("upstream %s is not a zstd repodata object: using repodata.json",
                             self.public(path))
                    continue
                return UpstreamIndex(name, r.headers, data)
            data = _repodata(body)
            if data is None:
                raise UpstreamError(f"upstream {self.public(path)} is not a repodata object")
            return UpstreamIndex(name, r.headers, data)
        raise AssertionError("unreachable: repodata.json answers or raises")

    def body(self, r: HTTPResponse, path: str, chunk: int = CHUNK) -> Iterator[bytes]:
        """The chunks of a streamed answer; a broken transfer becomes :class:`UpstreamError`."""
        try:
            yield from r.stream(chunk, decode_content=True)
        except self._errors as e:
            raise UpstreamError(f"upstream {self.public(path)} broke off: "
                                f"{type(e).__name__}") from None

    def arriving(self, r: HTTPResponse, path: str, most: int = CHUNK) -> Iterator[bytes]:
        """The chunks of a streamed answer as they arrive: each is what the connection had,
        at most ``most`` bytes (:meth:`body` waits for ``most`` bytes each time), so a relay
        passes bytes on without waiting for a full chunk. A broken transfer becomes
        :class:`UpstreamError`."""
        # decoded only when encoded: urllib3's decoding path gathers the bytes in a buffer of
        # its own, one more copy of each
        decode = r.headers.get("Content-Encoding", "identity").lower() != "identity"
        try:
            while chunk := r.read1(most, decode_content=decode):
                yield chunk
        except self._errors as e:
            raise UpstreamError(f"upstream {self.public(path)} broke off: "
                                f"{type(e).__name__}") from None

    def verifier(self, path: str, sha256: str | None, size: int | None,
                 limit: int) -> Verifier:
        return Verifier(self.public(path), sha256, size, limit, self.deadline)

    def download(self, path: str, directory: Path, sha256: str | None,
                 size: int | None, limit: int, *, sync: bool = True) -> Path:
        """Download into a temporary file of ``directory``, verified against the record's
        sha256 and size while it streams; on any failure nothing is left behind."""
        r = self.get(path)
        try:
            try:
                fd, name = tempfile.mkstemp(dir=directory, prefix=".dl-")
            except FileNotFoundError:  # made once here, not checked for every download
                directory.mkdir(parents=True, exist_ok=True)
                fd, name = tempfile.mkstemp(dir=directory, prefix=".dl-")
        except BaseException:
            r.close()  # no file to write to: the answer's connection is not kept
            raise
        tmp = Path(name)
        check = self.verifier(path, sha256, size, limit)
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in self.body(r, path):
                    check.feed(chunk)
                    out.write(chunk)
                check.finish()
                if sync:
                    out.flush()
                    os.fsync(out.fileno())
            return tmp
        except BaseException:
            with suppress(OSError):
                tmp.unlink()
            raise
        finally:
            r.close()

    def close(self) -> None:
        self.pools.close()
