"""Password checks that cannot be turned into a CPU weapon.

Hashing a password (argon2id, bcrypt) costs 100-300 ms of CPU on purpose. Clients send HTTP
Basic credentials with every request, so without bounds a handful of anonymous clients sending
wrong passwords starve file serving. :class:`PasswordGuard` bounds that work three ways:

- failed logins are counted per user name and per client address in a fixed window
  (``repoproxy.auth.max_failures`` and ``max_failures_per_address`` per
  ``repoproxy.auth.failure_window`` seconds); past a limit every attempt, even with the right
  password, is refused with :class:`TooManyRequests` (HTTP 429 + ``Retry-After``) until the
  window ends, without hashing anything. The counts are shared by every process serving the
  root (``storage/failures.py``), so ``serve --workers N`` does not multiply the budget.
  Behind a reverse proxy the client address is the one the proxy reports, when the proxy is
  trusted (``repoproxy.trusted_proxy``, web/server.py); otherwise every client has the
  proxy's address and the address limit counts them all together;
- at most ``repoproxy.auth.verify_concurrency`` hashes run at once (in each process: this
  bounds CPU, which each process has its own share of) and as many callers more
  may wait, for at most ``repoproxy.auth.verify_wait`` seconds; any other caller gets
  :class:`ServerBusy` (503) at once. Waiting holds a server thread, so the queue itself must
  be short, or waiting logins take every thread and starve file serving just the same;
- a successful check is remembered for ``repoproxy.auth.cache_seconds`` under an HMAC (with a
  per-process random key) of user name, *stored hash* and password. Changing the password
  changes the stored hash, so the old password stops working at once, in every process, without
  any invalidation message; the password itself is never kept.

No web framework here: callers pass the client address and user name.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cachetools import TTLCache

from repoproxy.errors import ConfigError, ServerBusy, TooManyRequests
from repoproxy.storage.failures import FailureLog

#: upper bounds on remembered entries: memory and disk stay bounded whatever clients send
MAX_TRACKED = 100_000
MAX_CACHED = 10_000


@dataclass(frozen=True)
class GuardSettings:
    max_failures: int = 10  # per window and user name; 0 disables the limit
    max_failures_per_address: int = 10  # per window and client address; 0 disables it
    failure_window: float = 60.0
    verify_concurrency: int = 1
    verify_wait: float = 2.0
    cache_seconds: float = 60.0

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> GuardSettings:
        """Read ``repoproxy.auth.*``; a value that makes no sense is a :class:`ConfigError`."""
        out = cls(
            max_failures=int(settings["repoproxy.auth.max_failures"]),
            max_failures_per_address=int(settings["repoproxy.auth.max_failures_per_address"]),
            failure_window=float(settings["repoproxy.auth.failure_window"]),
            verify_concurrency=int(settings["repoproxy.auth.verify_concurrency"]),
            verify_wait=float(settings["repoproxy.auth.verify_wait"]),
            cache_seconds=float(settings["repoproxy.auth.cache_seconds"]),
        )
        if out.failure_window <= 0:
            raise ConfigError("repoproxy.auth.failure_window: must be more than 0 seconds")
        if out.verify_concurrency < 1:
            raise ConfigError("repoproxy.auth.verify_concurrency: must be at least 1")
        if out.verify_wait < 0 or out.cache_seconds < 0:
            raise ConfigError("repoproxy.auth.verify_wait and cache_seconds: must not be "
                              "negative")
        return out


class PasswordGuard:
    """Rate limit, concurrency bound and success cache for password verification.

    ``failures`` holds the failed-login counts (shared by processes); ``clock`` is the time
    source of the windows and the cache (wall-clock seconds, which processes agree on); tests
    swap it to step over a window without sleeping.
    """

    def __init__(self, config: GuardSettings, failures: FailureLog,
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        self.failures = failures
        self._lock = threading.Lock()
        self._verified: TTLCache[str, bool] = TTLCache(
            MAX_CACHED, max(config.cache_seconds, 1e-9), timer=self._now)
        self._slots = threading.BoundedSemaphore(config.verify_concurrency)
        # hashing plus waiting callers; bounded so that logins cannot hold every server thread
        self._admitted = threading.BoundedSemaphore(2 * config.verify_concurrency)
        self._key = secrets.token_bytes(32)
        #: how many password hashes this guard has computed (for tests and diagnostics)
        self.hashes = 0

    def _now(self) -> float:
        return self.clock()

    # --- failed-login limit -------------------------------------------------------------------
    def _limits(self, address: str, user: str) -> dict[str, int]:
        return {key: limit for key, limit in ((f"addr:{address}",
                                               self.config.max_failures_per_address),
                                              (f"user:{user}", self.config.max_failures))
                if limit > 0}

    def check(self, address: str, user: str) -> None:
        """Raise :class:`TooManyRequests` while the address or the user name is locked out."""
        limits = self._limits(address, user)
        if not limits:
            return
        now = self.clock()
        waits = [until - now for key, (count, until) in self.failures.counts(limits, now).items()
                 if count >= limits[key]]
        if waits:
            raise TooManyRequests(
                f"too many failed logins from this address or for this user; try again in "
                f"{_seconds(max(waits))} s", retry_after=_seconds(max(waits)))

    def failed(self, address: str, user: str) -> None:
        """Count one failed login against the address and the user name."""
        limits = self._limits(address, user)
        if limits:
            self.failures.add(limits, self.clock(), self.config.failure_window)

    # --- verification --------------------------------------------------------------------------
    def _cache_key(self, user: str, stored: str, password: str) -> str:
        message = b"\0".join(p.encode() for p in (user, stored, password))
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def verify(self, user: str, stored: str | None, password: str,
               check: Callable[[], bool]) -> bool:
        """Whether ``password`` matches; ``check`` does the expensive hash comparison.

        ``stored`` is the stored hash (``None`` for an unknown user: ``check`` still runs, so
        timing does not tell which names exist, but nothing is cached).
        """
        key = self._cache_key(user, stored, password) if stored is not None else None
        if key is not None and self._cached(key):
            return True
        busy = ServerBusy("the server is busy checking passwords; try again shortly",
                          retry_after=1)
        if not self._admitted.acquire(blocking=False):
            raise busy
        try:
            if not self._slots.acquire(timeout=self.config.verify_wait):
                raise busy
            try:
                # the same credentials may have been verified while this request waited
                if key is not None and self._cached(key):
                    return True
                with self._lock:
                    self.hashes += 1
                ok = check()
            finally:
                self._slots.release()
        finally:
            self._admitted.release()
        if ok and key is not None and self.config.cache_seconds > 0:
            with self._lock:
                self._verified[key] = True
        return ok

    def _cached(self, key: str) -> bool:
        with self._lock:
            return self._verified.get(key, False)


def _seconds(value: float) -> int:
    """Whole seconds for ``Retry-After``, at least 1."""
    return max(1, int(value + 0.999))


_registry_lock = threading.Lock()


def guard_of(holder: Any, services: Any) -> PasswordGuard:
    """The one guard of an application, kept as ``holder.password_guard`` (created once).

    Every password backend of one application must share it, so the limits are global;
    ``services`` is the application's runtime (its settings and its root's throttle file).
    """
    guard = getattr(holder, "password_guard", None)
    if guard is None:
        with _registry_lock:
            guard = getattr(holder, "password_guard", None)
            if guard is None:
                guard = PasswordGuard(GuardSettings.from_settings(services.settings),
                                      FailureLog(services.store.throttle_path, MAX_TRACKED))
                holder.password_guard = guard
    return guard
