"""Child process that drives py-rattler for :mod:`repoproxy.testing.rattler_client`.

Run as ``python _rattler_child.py '<json request>'``.  It never imports repoproxy, so it
works from any working directory.

py-rattler 0.28 can crash while the interpreter shuts down even after its work
succeeded, so this script writes exactly one JSON line to the *original* stdout,
flushes, and leaves with ``os._exit`` (0 on success, 1 with ``{"error": ...}``)
before any interpreter teardown can run.  Everything else that would reach stdout
(Python prints, Rust logging, progress bars) is redirected to stderr so the parent
can trust the last stdout line.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any, NoReturn

# Keep a private handle on the real stdout, then point fd 1 (and sys.stdout) at
# stderr: native code that writes to fd 1 can no longer corrupt the JSON result.
_RESULT_FD = os.dup(1)
os.dup2(2, 1)
sys.stdout = sys.stderr


def _emit(payload: dict[str, Any], code: int) -> NoReturn:
    """Write the single JSON result line and leave without interpreter teardown."""
    data = (json.dumps(payload, sort_keys=True) + "\n").encode()
    while data:
        written = os.write(_RESULT_FD, data)
        data = data[written:]
    sys.stderr.flush()
    os._exit(code)


def _record_dict(record: Any) -> dict[str, Any]:
    # Several attributes are rattler wrapper types (BuildString, Version, ...),
    # so stringify everything that goes into the JSON result.
    return {
        "name": record.name.normalized,
        "version": str(record.version),
        "build": str(record.build),
        "url": str(record.url),
        "file_name": str(record.file_name),
        "subdir": str(record.subdir),
        "channel": None if record.channel is None else str(record.channel),
    }


def _gateway(request: dict[str, Any]) -> Any:
    import rattler
    from rattler.networking import Client

    # default_client() carries AuthenticationMiddleware, which reads the
    # credentials named by RATTLER_AUTH_FILE; pass it explicitly rather than
    # relying on whatever the gateway would build on its own.
    return rattler.Gateway(
        cache_dir=Path(request["cache_dir"]) / "repodata",
        default_config=rattler.SourceConfig(sharded_enabled=request["use_shards"]),
        client=Client.default_client(),
        show_progress=False,
    )


def _target_platform(platforms: list[str]) -> str | None:
    """The first non-noarch platform: the one an environment is built for."""
    return next((p for p in platforms if p != "noarch"), None)


def _virtual_packages(platforms: list[str]) -> list[Any]:
    import rattler

    # Detected virtual packages only describe this machine; for any other target
    # (or if detection fails in a sandbox) solve with none, which is enough for
    # the noarch/plain packages tests serve.
    target = _target_platform(platforms)
    if target is None or target != str(rattler.Subdir.current()):
        return []
    try:
        return list(rattler.VirtualPackage.detect())
    except Exception as exc:
        print(f"virtual package detection failed, using none: {exc}", file=sys.stderr)
        return []


async def _solve(request: dict[str, Any], gateway: Any) -> list[Any]:
    import rattler

    return await rattler.solve(
        sources=request["channels"],
        specs=request["specs"],
        gateway=gateway,
        platforms=request["platforms"],
        virtual_packages=_virtual_packages(request["platforms"]),
    )


async def _run(request: dict[str, Any]) -> dict[str, Any]:
    import rattler
    from rattler.networking import Client

    gateway = _gateway(request)
    action = request["action"]
    if action == "fetch_repodata":
        result = await gateway.query(
            request["channels"], request["platforms"], request["names"], recursive=False
        )
        return {"records": [_record_dict(r) for per_source in result for r in per_source]}
    records = await _solve(request, gateway)
    out: dict[str, Any] = {"records": [_record_dict(r) for r in records]}
    if action == "install":
        target = _target_platform(request["platforms"])
        await rattler.install(
            records,
            target_prefix=request["prefix"],
            cache_dir=Path(request["cache_dir"]) / "pkgs",
            platform=rattler.Subdir(target) if target else None,
            show_progress=False,
            client=Client.default_client(),
        )
        out["prefix"] = request["prefix"]
    return out


def main() -> None:
    try:
        request = json.loads(sys.argv[1])
        payload = asyncio.run(_run(request))
    except BaseException as exc:
        traceback.print_exc(file=sys.stderr)
        _emit({"error": f"{type(exc).__name__}: {exc}"}, 1)
    _emit(payload, 0)


if __name__ == "__main__":
    main()
