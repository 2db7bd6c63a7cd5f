"""The client's own configuration file and where each client setting comes from.

``~/.config/repoproxy/config.toml`` (``$XDG_CONFIG_HOME/repoproxy/config.toml``, or the path
in ``REPOPROXY_CONFIG``) holds what ``repoproxy login`` learnt::

    url = "https://conda.example.org"
    token = "rp-..."            # file mode 0600
    token_id = "..."            # so that `repoproxy logout` can revoke a token it created
    user = "alice"
    default_channel = "team"

Each client setting is resolved from, in order: a command-line flag, the environment
(``REPOPROXY_URL``, ``REPOPROXY_TOKEN``, ``REPOPROXY_CHANNEL``), this file, a built-in default.
The file's token is only ever sent to the file's server: with a URL from a flag or the
environment that names another server, the file's token is not used.
"""

from __future__ import annotations

import os
import tempfile
import tomllib
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_URL = "http://127.0.0.1:8080"
#: setting -> environment variable
ENV = {"url": "REPOPROXY_URL", "token": "REPOPROXY_TOKEN", "default_channel": "REPOPROXY_CHANNEL"}
KEYS = ("url", "token", "token_id", "user", "default_channel")


class ConfigFileError(Exception):
    pass


def config_path() -> Path:
    given = os.environ.get("REPOPROXY_CONFIG")
    if given:
        return Path(given).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "repoproxy" / "config.toml"


def load(path: Path | None = None) -> dict[str, Any]:
    path = path or config_path()
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        return {}
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigFileError(f"{path}: not valid TOML ({e})") from None
    return {k: v for k, v in data.items() if k in KEYS and isinstance(v, str)}


def write_private(path: Path, data: bytes) -> None:
    """Write a file readable by its owner only (0600), atomically (temp, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix="-" + path.name)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            Path(tmp).unlink()
        raise


def save(data: dict[str, Any], path: Path | None = None) -> Path:
    import tomli_w

    path = path or config_path()
    clean = {k: data[k] for k in KEYS if data.get(k)}
    write_private(path, tomli_w.dumps(clean).encode())
    return path


@dataclass(frozen=True)
class Resolved:
    """One setting's value and where it came from ("flag --url", "environment ...", ...)."""

    value: str | None
    source: str


def resolve(key: str, flag: str | None, from_env: bool, file: dict[str, Any],
            default: str | None = None, path: Path | None = None) -> Resolved:
    """``flag``: the value click gave (``from_env``: it came from the environment variable)."""
    if flag is not None and flag != "":
        if from_env:
            return Resolved(flag, f"environment {ENV[key]}")
        return Resolved(flag, f"flag --{key.replace('default_', '')}")
    if os.environ.get(ENV[key]):  # a command invoked without its options parsed
        return Resolved(os.environ[ENV[key]], f"environment {ENV[key]}")
    if file.get(key):
        return Resolved(str(file[key]), f"file {path or config_path()}")
    return Resolved(default, "default" if default is not None else "unset")


def same_server(a: str, b: str) -> bool:
    return a.rstrip("/") == b.rstrip("/")


def client_settings(url: str | None, url_from_env: bool, token: str | None,
                    token_from_env: bool) -> tuple[Resolved, Resolved]:
    """(url, token) for a client command; the file's token only goes to the file's server."""
    path = config_path()
    file = load(path)
    r_url = resolve("url", url, url_from_env, file, DEFAULT_URL, path)
    r_token = resolve("token", token, token_from_env, file, None, path)
    if (r_token.source.startswith("file") and r_url.value is not None
            and not same_server(r_url.value, str(file.get("url") or ""))):
        r_token = Resolved(None, f"unset (the file's token is for {file.get('url')})")
    return r_url, r_token


def describe_token(value: str | None) -> str:
    """A token as it may be printed: never its secret."""
    if not value:
        return "(none)"
    return f"<set, {len(value)} characters>"
