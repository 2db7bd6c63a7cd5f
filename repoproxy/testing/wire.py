"""Uploads in the exact wire forms of the clients people have (for tests and benchmarks)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import requests


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def upload_prefix_multipart(base_url: str, channel: str, path: Path, token: str,
                            attestation: bytes | None = None, force: bool = False) -> Any:
    """What rattler-build ``upload prefix`` and ``pixi upload`` send today: multipart/form-data,
    part ``file`` with part headers ``X-File-Name`` and ``X-File-SHA256``, optional
    ``attestation`` part, bearer token."""
    part_headers = {"X-File-Name": path.name, "X-File-SHA256": sha256_of(path)}
    files: dict[str, Any] = {
        "file": (path.name, path.read_bytes(), "application/octet-stream", part_headers)
    }
    if attestation is not None:
        files["attestation"] = ("attestation.json", attestation, "application/json")
    return requests.post(
        f"{base_url}/api/v1/upload/{channel}" + ("?force=true" if force else ""),
        files=files, headers={"Authorization": f"Bearer {token}"}, timeout=120,
    )


def upload_prefix_raw(base_url: str, channel: str, path: Path, token: str,
                      force: bool = False) -> Any:
    """The older prefix.dev form: the raw body with ``X-File-Name``/``X-File-SHA256`` headers."""
    with open(path, "rb") as f:
        return requests.post(
            f"{base_url}/api/v1/upload/{channel}" + ("?force=true" if force else ""),
            data=f,
            headers={"Authorization": f"Bearer {token}", "X-File-Name": path.name,
                     "X-File-SHA256": sha256_of(path),
                     "Content-Type": "application/octet-stream"},
            timeout=120,
        )
