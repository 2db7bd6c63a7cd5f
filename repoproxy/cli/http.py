"""A small HTTP client of the repoproxy API, for the CLI."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from repoproxy.errors import RepoproxyError


class ClientError(RepoproxyError):
    pass


class Client:
    def __init__(self, url: str, token: str | None = None, timeout: float = 600) -> None:
        self.url = url.rstrip("/")
        import requests  # here, not at import: `repoproxy --help` must stay instant

        self.session = requests.Session()
        self._errors = requests.RequestException
        self.timeout = timeout
        self.token = token
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            r = self.session.request(method, self.url + path, timeout=self.timeout, **kwargs)
        except self._errors as e:
            raise ClientError(f"cannot reach {self.url}: {type(e).__name__}") from None
        if r.status_code >= 400:
            try:
                message = r.json().get("message") or r.text
                reasons = r.json().get("reasons") or []
            except ValueError:
                message, reasons = r.text.strip() or r.reason, []
            err = ClientError(f"{r.status_code}: {message}", reasons=reasons)
            err.status = r.status_code
            raise err
        return r.json() if r.content else None

    def upload(self, channel: str, path: Path, force: bool = False) -> Any:
        sha = _sha256(path)
        with open(path, "rb") as f:
            # the raw-body form streams the file (requests would build a multipart body in
            # memory). requests sets Content-Length from the file itself; an empty file would
            # make it announce a chunked body instead, which a length set by hand contradicts
            # (the server then waits for a body that never comes), so that one is sent as b""
            return self.request(
                "POST",
                f"/api/v1/upload/{channel}" + ("?force=true" if force else ""),
                data=f if path.stat().st_size else b"",
                headers={"X-File-Name": path.name, "X-File-SHA256": sha,
                         "Content-Type": "application/octet-stream"},
            )


    def upload_artifact(self, channel: str, name: str, version: str, path: Path, *,
                        force: bool = False, description: str = "") -> Any:
        """A generic artifact (or notebook): raw body, streamed, with its sha256."""
        from urllib.parse import quote

        params = {"force": "true"} if force else {}
        if description:
            params["description"] = description
        with open(path, "rb") as f:
            return self.request(
                "POST",
                f"/api/channels/{channel}/artifacts/gra/{quote(name)}/{quote(version)}/"
                f"{quote(path.name)}",
                params=params, data=f if path.stat().st_size else b"",
                headers={"X-File-SHA256": _sha256(path),
                         "Content-Type": "application/octet-stream"})

    def download(self, path: str, dest: Path) -> int:
        """GET ``path`` into ``dest`` atomically (temp file, fsync, rename); the byte count."""
        import os
        import tempfile

        try:
            r = self.session.get(self.url + path, timeout=self.timeout, stream=True)
        except self._errors as e:
            raise ClientError(f"cannot reach {self.url}: {type(e).__name__}") from None
        if r.status_code >= 400:
            try:
                message = r.json().get("message") or r.text
            except ValueError:
                message = r.text.strip() or r.reason
            err = ClientError(f"{r.status_code}: {message}")
            err.status = r.status_code
            raise err
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".tmp-", suffix="-" + dest.name)
        size = 0
        try:
            with os.fdopen(fd, "wb") as f:
                for chunk in r.iter_content(1024 * 1024):
                    size += len(chunk)
                    f.write(chunk)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return size


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    for chunk in _chunks(path):
        h.update(chunk)
    return h.hexdigest()


def _chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(1024 * 1024):
            yield chunk
