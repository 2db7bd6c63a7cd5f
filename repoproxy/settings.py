"""Settings: embedded defaults <- ini file <- ``REPOPROXY_*`` environment, typed and frozen.

Every key has a default whose type says how to parse it. Plugins add keys through the
``repoproxy_settings_defaults`` hook. Keys are ``repoproxy.<key>`` for the core and
``<plugin>.<key>`` for a plugin. The environment name of a key: ``repoproxy.`` becomes
``REPOPROXY_``, other dots become ``__``, upper case (``repoproxy.max_upload_size`` ->
``REPOPROXY_MAX_UPLOAD_SIZE``, ``repoproxy_watch.root`` -> ``REPOPROXY_WATCH__ROOT``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from repoproxy.errors import ConfigError

log = logging.getLogger(__name__)

GiB = 1024**3
MiB = 1024**2

CORE_DEFAULTS: dict[str, Any] = {
    "repoproxy.root": Path("var"),
    "repoproxy.host": "127.0.0.1",
    "repoproxy.port": 8080,
    "repoproxy.threads": 8,
    # serving processes of `repoproxy serve` (its --workers); 0 = one per core
    "repoproxy.serve_workers": 0,
    # py-rattler opens hundreds of downloads at once; waitress's default of 100 would stall it.
    # 0 = sized to the open-file limit (web/server.py); a larger value is lowered to that size
    "repoproxy.connection_limit": 0,
    # glibc malloc arenas per serving process (web/heap.py); 0 = glibc's default (8 per core)
    "repoproxy.malloc_arenas": 2,
    # seconds a connection may stay silent (nothing sent yet, or between requests) before the
    # server closes it: idle connections must not keep real clients out
    "repoproxy.idle_timeout": 30,
    "repoproxy.base_url": "",
    "repoproxy.max_upload_size": GiB,
    # bounds for reading the info part of an archive (decompression bombs, huge index.json)
    "repoproxy.max_info_member_size": 32 * MiB,
    "repoproxy.max_info_total_size": 128 * MiB,
    "repoproxy.max_index_json_size": 4 * MiB,
    "repoproxy.index_max_age": 60,
    "repoproxy.shard_retention_days": 7,
    "repoproxy.future_timestamp_tolerance": 86400,
    "repoproxy.workers": 0,  # processes for bulk import; 0 = one per core
    "repoproxy.plugins.block": (),
    "repoproxy.plugins.allow": (),
    "repoproxy.plugins.dir": "",
    "repoproxy.log_requests": True,
    # behind the nginx front (`repoproxy nginx-conf`): the front's internal location for
    # package bytes, e.g. /_files/. Empty: repoproxy sends the bytes itself. Set it only
    # when every request comes through that front (web/accel.py)
    "repoproxy.accel_redirect": "",
    # role bindings (conda-store's idea): "channel-glob=read|write|manage ...";
    # safe defaults: anonymous reads public channels only, through channel privacy
    "repoproxy.auth.unauthenticated_role_bindings": "",
    "repoproxy.auth.authenticated_role_bindings": "",
    # predefined tokens: "name:token:read|write|manage|admin:chan1,chan2|* ..."
    "repoproxy.auth.predefined_tokens": "",
    "repoproxy.auth.htpasswd_file": "",
    # the reverse proxy (its address as repoproxy sees it, e.g. 127.0.0.1; "*": any peer)
    # whose X-Forwarded-For names the client: the address per-address limits and the access
    # log use. Empty: X-Forwarded-For is ignored (dropped), the peer is the client
    "repoproxy.trusted_proxy": "",
    # proxies in front that append to X-Forwarded-For (1: the nginx front alone)
    "repoproxy.trusted_proxy_count": 1,
    # password checks (HTTP Basic) are slow on purpose; these keep them from becoming a CPU
    # weapon: failed logins per user name and per client address within a window (0: no
    # limit; shared by every process of the root; behind a reverse proxy see
    # repoproxy.trusted_proxy), concurrent hashes,
    # seconds a caller waits for one (then 503), and seconds a verified password is remembered
    # (keyed by its stored hash: a new password ends it)
    "repoproxy.auth.max_failures": 10,
    "repoproxy.auth.max_failures_per_address": 10,
    "repoproxy.auth.failure_window": 60.0,
    "repoproxy.auth.verify_concurrency": 1,
    "repoproxy.auth.verify_wait": 2.0,
    "repoproxy.auth.cache_seconds": 60.0,
    # JSON request bodies of the API (a body is read into memory to be parsed)
    "repoproxy.max_json_body": MiB,
    # a notebook (.ipynb artifact) is parsed as JSON before it is kept: bound that
    "repoproxy.max_notebook_size": 64 * MiB,
    # the web UI's signed session cookie: its signing secret (empty: derived from the root's
    # generated secret file, var/secret), lifetime in seconds, and whether it is sent over
    # HTTPS only (set true behind TLS)
    "repoproxy.ui.session_secret": "",
    "repoproxy.ui.session_max_age": 43200,
    "repoproxy.ui.secure_cookie": False,
}

#: Environment variables that are not settings (client side, or switches read elsewhere).
NON_SETTING_ENV = frozenset({"REPOPROXY_URL", "REPOPROXY_TOKEN", "REPOPROXY_TRACE_HOOKS",
                             "REPOPROXY_CONFIG", "REPOPROXY_CHANNEL"})


def env_name(key: str) -> str:
    if key.startswith("repoproxy."):
        key = "repoproxy_" + key[len("repoproxy.") :]
    return key.replace(".", "__").upper()


def _parse(key: str, default: Any, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    raw = value.strip()
    try:
        if isinstance(default, bool):
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off", ""):
                return False
            raise ValueError("expected true or false")
        if isinstance(default, int):
            result = int(raw)
            if result < 0:
                raise ValueError("must not be negative")
            return result
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, Path):
            return Path(raw).expanduser()
        if isinstance(default, tuple):
            return tuple(p for p in raw.replace(",", " ").split() if p)
    except ValueError as e:
        raise ConfigError(f"{key}: invalid value {value!r} ({e})") from None
    return raw


class Settings(Mapping[str, Any]):
    """A frozen, typed view of the configuration."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = dict(values)

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    @property
    def root(self) -> Path:
        return Path(self._values["repoproxy.root"])


def raw_settings(
    given: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Merge ini/given values with the environment (environment wins), still unparsed."""
    environ = os.environ if environ is None else environ
    merged: dict[str, Any] = {k: v for k, v in (given or {}).items() if "." in k}
    by_env = {env_name(k): k for k in CORE_DEFAULTS}
    for name, value in environ.items():
        if name.startswith("REPOPROXY_") and name not in NON_SETTING_ENV:
            key = by_env.get(name)
            if key is None:  # maybe a plugin key: resolved against plugin defaults later
                key = "env:" + name
            merged[key] = value
    return merged


def build_settings(
    raw: Mapping[str, Any], plugin_defaults: Iterable[Mapping[str, Any]] = ()
) -> Settings:
    """Parse raw values against every known default; warn about unknown keys."""
    defaults = dict(CORE_DEFAULTS)
    for extra in plugin_defaults:
        defaults.update(extra)
    by_env = {env_name(k): k for k in defaults}
    values = dict(defaults)
    for key, value in raw.items():
        if key.startswith("env:"):
            known = by_env.get(key[4:])
            if known is None:
                log.warning("unknown environment setting %s ignored", key[4:])
                continue
            key = known
        if key not in defaults:
            if key.startswith("repoproxy") or key.split(".")[0] in _plugin_prefixes(defaults):
                log.warning("unknown setting %s ignored", key)
            continue
        values[key] = _parse(key, defaults[key], value)
    port = values["repoproxy.port"]
    if not 0 <= port <= 65535:
        raise ConfigError(f"repoproxy.port: {port} is not a TCP port")
    if values["repoproxy.threads"] < 1:
        raise ConfigError("repoproxy.threads: must be at least 1")
    if values["repoproxy.serve_workers"] < 0:
        raise ConfigError("repoproxy.serve_workers: must be 0 (one per core) or more")
    if values["repoproxy.malloc_arenas"] < 0:
        raise ConfigError("repoproxy.malloc_arenas: must be 0 (glibc's default) or more")
    return Settings(values)


def _plugin_prefixes(defaults: Mapping[str, Any]) -> set[str]:
    return {k.split(".")[0] for k in defaults}
