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
import time
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from repoproxy.errors import NotFound, RepoproxyError

if TYPE_CHECKING:
    import requests

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


#: headers that carry a credential (``requests`` itself drops only Authorization when a
#: redirect leaves the upstream's origin)
CREDENTIAL_HEADERS = ("Authorization", "X-API-Key", "Proxy-Authorization")
#: errors meaning "the connection was closed under the request", before any answer
_DROPPED = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


def _session() -> requests.Session:
    """A ``requests`` session whose credential headers never follow a redirect to another
    origin (a CDN holding an upstream's packages must not get its API key), and which reads
    the environment's settings (``HTTP(S)_PROXY``, ``NO_PROXY``, ``REQUESTS_CA_BUNDLE``)
    once per origin: ``requests`` reads them again for every request, ~170 us of a first
    fetch's fixed cost (``urllib``'s proxy lookup walks the whole environment twice).
    A redirect's target is still looked up by ``requests`` itself."""
    import requests

    class Session(requests.Session):
        def __init__(self) -> None:
            super().__init__()
            self._environment: dict[tuple[str, str, Any], Any] = {}

        def merge_environment_settings(self, url: Any, proxies: Any, stream: Any,
                                       verify: Any, cert: Any) -> Any:
            if proxies or verify is not None or cert is not None:  # never: as requests does
                return super().merge_environment_settings(url, proxies, stream, verify, cert)
            # what requests derives depends on the URL's scheme, host and port only
            parts = urlsplit(str(url))
            key = (parts.scheme, parts.netloc, stream)
            got = self._environment.get(key)
            if got is None:
                got = self._environment[key] = super().merge_environment_settings(
                    url, {}, stream, None, None)
            return {**got, "proxies": dict(got["proxies"])}

        def rebuild_auth(self, prepared_request: Any, response: Any) -> None:
            if self.should_strip_auth(response.request.url, prepared_request.url):
                for name in CREDENTIAL_HEADERS:
                    prepared_request.headers.pop(name, None)
            super().rebuild_auth(prepared_request, response)

    return Session()


def _dropped(error: BaseException) -> bool:
    """Whether ``error`` (requests' ConnectionError, wrapping urllib3's) comes from a
    connection closed before the answer began."""
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
        todo += [c for c in (e.__cause__, e.__context__) if c is not None]
    return False


def shared_pool(connections: int) -> Any:
    """A connection pool (``requests``' HTTPAdapter, thread-safe: urllib3's pools are) for
    the per-thread :class:`Upstream` clients of one mirror, keeping up to ``connections``
    idle connections to its upstream. With a pool per thread, a first fetch landing on a
    thread that had not talked to the upstream yet opened a new connection (a TCP and
    perhaps a TLS handshake more than a kept-alive one); waitress hands requests to its
    threads in turn, so most first fetches of a quiet server did."""
    from requests.adapters import HTTPAdapter

    return HTTPAdapter(pool_connections=1, pool_maxsize=max(1, connections))


class Upstream:
    def __init__(self, source: str, settings: Any, pool: Any = None) -> None:
        """``pool``: a :func:`shared_pool` the session sends through (its own otherwise)."""
        import requests

        self.source = source.rstrip("/")
        self.timeout = float(settings["repoproxy_mirror.timeout"])
        self.deadline = float(settings["repoproxy_mirror.download_deadline"])
        self.cred = credential_for(self.source,
                                   parse_credentials(settings["repoproxy_mirror.credentials"]))
        self.session = _session()
        self.session.headers["User-Agent"] = "repoproxy-mirror"
        if pool is not None:
            for prefix in ("http://", "https://"):
                self.session.mount(prefix, pool)
        self._errors = requests.RequestException
        if self.cred is not None:
            if self.cred.kind == "bearer":
                self.session.headers["Authorization"] = f"Bearer {self.cred.secret}"
            elif self.cred.kind == "apikey":
                self.session.headers["X-API-Key"] = self.cred.secret
            elif self.cred.kind == "basic":
                user, _, password = self.cred.secret.partition(":")
                self.session.auth = (user, password)

    def public(self, path: str) -> str:
        return f"{self.source}/{path}"

    def _url(self, path: str) -> str:
        url = self.public(path)
        if self.cred is not None and self.cred.kind == "token":
            parts = urlsplit(url)
            url = urlunsplit(parts._replace(path=f"/t/{self.cred.secret}{parts.path}"))
        return url

    def get(self, path: str, headers: dict[str, str] | None = None,
            stream: bool = False) -> requests.Response:
        """GET with timeouts; 401/403/5xx and transport errors become :class:`UpstreamError`,
        404/410 :class:`UpstreamNotFound`; 200 and 304 are returned."""
        for attempt in (1, 2):
            try:
                r = self.session.get(self._url(path), headers=headers or {}, stream=stream,
                                     timeout=(self.timeout, self.timeout),
                                     allow_redirects=True)
                break
            except self._errors as e:
                # the session keeps connections to the upstream open between requests; one
                # the upstream closed just as it was reused fails before any answer: a GET
                # is safe to send again, on a new connection (the failed one is discarded)
                if attempt == 1 and _dropped(e):
                    log.info("upstream %s closed a kept-alive connection: retrying",
                             self.public(path))
                    continue
                raise UpstreamError(f"upstream {self.public(path)} unreachable: "
                                    f"{type(e).__name__}") from None
        if r.status_code in (404, 410):
            r.close()
            raise UpstreamNotFound(f"{path} not found upstream")
        if r.status_code in (401, 403):
            r.close()
            raise UpstreamError(f"upstream {self.public(path)} refused the mirror's "
                                f"credentials ({r.status_code})")
        if r.status_code not in (200, 304):
            r.close()
            raise UpstreamError(f"upstream {self.public(path)} answered {r.status_code}")
        return r

    def fetch_bytes(self, path: str, limit: int,
                    headers: dict[str, str] | None = None) -> tuple[requests.Response, bytes]:
        r = self.get(path, headers=headers, stream=True)
        if r.status_code == 304:
            r.close()
            return r, b""
        chunks, size, start = [], 0, time.monotonic()
        try:
            for chunk in r.iter_content(CHUNK):
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
            if r.status_code == 304:
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

    def body(self, r: requests.Response, path: str, chunk: int = CHUNK) -> Iterator[bytes]:
        """The chunks of a streamed answer; a broken transfer becomes :class:`UpstreamError`."""
        try:
            yield from r.iter_content(chunk)
        except self._errors as e:
            raise UpstreamError(f"upstream {self.public(path)} broke off: "
                                f"{type(e).__name__}") from None

    def arriving(self, r: requests.Response, path: str, most: int = CHUNK) -> Iterator[bytes]:
        """The chunks of a streamed answer as they arrive: each is what the connection had,
        at most ``most`` bytes (:meth:`body` waits for ``most`` bytes each time), so a relay
        passes bytes on without waiting for a full chunk. A broken transfer becomes
        :class:`UpstreamError`."""
        from urllib3.exceptions import HTTPError

        # decoded only when encoded (as iter_content would): urllib3's decoding path gathers
        # the bytes in a buffer of its own, one more copy of each
        decode = r.headers.get("Content-Encoding", "identity").lower() != "identity"
        try:
            while chunk := r.raw.read1(most, decode_content=decode):
                yield chunk
        except (HTTPError, OSError, self._errors) as e:
            raise UpstreamError(f"upstream {self.public(path)} broke off: "
                                f"{type(e).__name__}") from None

    def verifier(self, path: str, sha256: str | None, size: int | None,
                 limit: int) -> Verifier:
        return Verifier(self.public(path), sha256, size, limit, self.deadline)

    def download(self, path: str, directory: Path, sha256: str | None,
                 size: int | None, limit: int, *, sync: bool = True) -> Path:
        """Download into a temporary file of ``directory``, verified against the record's
        sha256 and size while it streams; on any failure nothing is left behind."""
        r = self.get(path, stream=True)
        directory.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=directory, prefix=".dl-")
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
        self.session.close()
