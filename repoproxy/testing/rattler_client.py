"""Drive the real py-rattler client against a conda channel server, from tests and benchmarks.

Every call runs ``sys.executable`` on :file:`_rattler_child.py` (next to this module) in a
fresh subprocess, because py-rattler 0.28 can crash during interpreter shutdown after its
work succeeded; the child prints one JSON line and leaves with ``os._exit``.  The parent
parses the last stdout line into :attr:`RattlerResult.data`.

``cache_dir`` (a fresh temporary directory unless given) holds ``repodata/`` (the
gateway cache), ``pkgs/`` (the package cache) and ``xdg/`` (``XDG_CACHE_HOME``); pass
the same directory to two calls to watch rattler revalidate instead of refetch.

Facts about py-rattler 0.28 this module relies on (checked by
``tests/unit/testing/test_rattler_client.py``):

* ``rattler.Gateway(client=None)`` and ``rattler.install(client=None)`` send **no**
  credentials at all; the child passes ``rattler.networking.Client.default_client()``
  (whose ``AuthenticationMiddleware`` reads ``RATTLER_AUTH_FILE``) to both.
* Credentials in the auth file are keyed by host only: ``"127.0.0.1"`` matches every port,
  ``"127.0.0.1:8080"`` matches nothing.
* ``SourceConfig(sharded_enabled=False)`` makes the gateway skip
  ``repodata_shards.msgpack.zst`` and fetch flat ``repodata.json(.zst)``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["CHILD_SCRIPT", "RattlerResult", "fetch_repodata", "install", "solve"]

CHILD_SCRIPT = Path(__file__).with_name("_rattler_child.py")


@dataclass
class RattlerResult:
    """Outcome of one child run; ``data`` holds ``{"error": ...}`` when it failed."""

    returncode: int
    data: dict[str, Any] = field(default_factory=dict)
    stdout: str = ""
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and "error" not in self.data

    @property
    def records(self) -> list[dict[str, Any]]:
        return list(self.data.get("records", []))


def solve(
    channels: list[str],
    specs: list[str],
    platforms: list[str],
    *,
    auth_file: Path | None = None,
    use_shards: bool = True,
    cache_dir: Path | None = None,
    timeout: float = 180,
) -> RattlerResult:
    """Solve ``specs`` against ``channels``; ``data = {"records": [...]}``."""
    request = {"action": "solve", "channels": channels, "specs": specs, "platforms": platforms}
    return _run(request, auth_file, use_shards, cache_dir, timeout)


def install(
    channels: list[str],
    specs: list[str],
    prefix: Path,
    platforms: list[str],
    *,
    auth_file: Path | None = None,
    use_shards: bool = True,
    cache_dir: Path | None = None,
    timeout: float = 300,
) -> RattlerResult:
    """Solve, then download and link into ``prefix``; ``data = {"records", "prefix"}``."""
    request = {
        "action": "install",
        "channels": channels,
        "specs": specs,
        "platforms": platforms,
        "prefix": str(Path(prefix).absolute()),
    }
    return _run(request, auth_file, use_shards, cache_dir, timeout)


def fetch_repodata(
    channels: list[str],
    platforms: list[str],
    names: list[str],
    *,
    auth_file: Path | None = None,
    use_shards: bool = True,
    cache_dir: Path | None = None,
    timeout: float = 120,
) -> RattlerResult:
    """Gateway query (not recursive) returning every record of ``names`` in ``data["records"]``."""
    request = {
        "action": "fetch_repodata",
        "channels": channels,
        "platforms": platforms,
        "names": names,
    }
    return _run(request, auth_file, use_shards, cache_dir, timeout)


def _run(
    request: dict[str, Any],
    auth_file: Path | None,
    use_shards: bool,
    cache_dir: Path | None,
    timeout: float,
) -> RattlerResult:
    with tempfile.TemporaryDirectory(prefix="rattler-client-") as scratch_name:
        scratch = Path(scratch_name)
        # A fresh cache per call unless the caller shares one: then every call
        # really reaches the server instead of being answered from ~/.cache.
        cache = Path(cache_dir) if cache_dir is not None else scratch / "cache"
        cache.mkdir(parents=True, exist_ok=True)
        request = {**request, "use_shards": use_shards, "cache_dir": str(cache.absolute())}

        env = dict(os.environ)
        if auth_file is not None:
            env["RATTLER_AUTH_FILE"] = str(Path(auth_file).absolute())
        else:
            # Pointing at an empty store keeps the child hermetic: without
            # RATTLER_AUTH_FILE rattler would consult the keyring, ~/.rattler and
            # ~/.netrc, so a developer's credentials could leak into the test.
            empty = scratch / "no-credentials.json"
            empty.write_text("{}")
            env["RATTLER_AUTH_FILE"] = str(empty)
        # Anything rattler caches by default (e.g. virtual package detection)
        # stays inside the cache this call owns.
        env["XDG_CACHE_HOME"] = str(cache / "xdg")

        argv = [sys.executable, str(CHILD_SCRIPT), json.dumps(request)]
        try:
            proc = subprocess.run(
                argv,
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            # run() has already killed and reaped the child.
            return RattlerResult(
                returncode=-signal.SIGKILL,
                data={"error": f"rattler child timed out after {timeout}s"},
                stdout=_text(exc.stdout),
                stderr=_text(exc.stderr),
            )
    return RattlerResult(
        returncode=proc.returncode,
        data=_parse_last_line(proc.stdout, proc.returncode),
        stdout=proc.stdout,
        stderr=proc.stderr,
    )


def _text(output: str | bytes | None) -> str:
    # TimeoutExpired carries bytes even when run() was asked for text.
    if output is None:
        return ""
    if isinstance(output, bytes):
        return output.decode("utf-8", errors="replace")
    return output


def _parse_last_line(stdout: str, returncode: int) -> dict[str, Any]:
    lines = [line for line in stdout.splitlines() if line.strip()]
    if lines:
        try:
            parsed = json.loads(lines[-1])
        except json.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict):
            return parsed
    return {"error": f"rattler child printed no JSON result (exit code {returncode})"}
