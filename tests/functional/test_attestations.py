"""An attestation always speaks for the bytes next to it.

``<file>.attestation.json`` is stored beside the package when the prefix.dev multipart upload
carries an ``attestation`` part. A forced replacement with new bytes replaces it (new
attestation) or removes it (none sent); deleting the package removes it; a refused
replacement leaves the old pair untouched.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from pathlib import Path
from typing import Any

import pytest

from repoproxy.testing.fixtures import upload_raw
from repoproxy.testing.packages import PackageSpec, build_package

CH = "att"


def multipart_upload(testapp: Any, headers: dict[str, str], path: Path,
                     attestation: bytes | None, *, force: bool = False,
                     status: int = 201, sha256: str | None = None) -> Any:
    """What rattler-build and pixi send (see repoproxy.testing.wire.upload_prefix_multipart)."""
    data = path.read_bytes()
    boundary = "att-" + secrets.token_hex(8)
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"{path.name}\"\r\nContent-Type: application/octet-stream\r\n"
            f"X-File-Name: {path.name}\r\n"
            f"X-File-SHA256: {sha256 or hashlib.sha256(data).hexdigest()}\r\n\r\n").encode()
    body += data + b"\r\n"
    if attestation is not None:
        body += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"attestation\"; "
                 "filename=\"attestation.json\"\r\nContent-Type: application/json\r\n\r\n"
                 ).encode() + attestation + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return testapp.post(f"/api/v1/upload/{CH}" + ("?force=true" if force else ""), body,
                        status=status, headers={**headers,
                                                "Content-Type": f"multipart/form-data; "
                                                                f"boundary={boundary}"})


def attestation_for(path: Path) -> bytes:
    """A stand-in sigstore bundle naming the digest of ``path``."""
    return json.dumps({"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
                       "subject": {"sha256": hashlib.sha256(path.read_bytes()).hexdigest()},
                       "nonce": secrets.token_hex(8)}).encode()


@pytest.fixture
def first(testapp: Any, make_channel: Any, admin_headers: dict[str, str],
          pkgdir: Path) -> tuple[Path, bytes]:
    """A package uploaded with its attestation."""
    make_channel(CH)
    path = build_package(PackageSpec("signed", "1.0", files={"share/v": b"1"}), pkgdir / "1")
    att = attestation_for(path)
    multipart_upload(testapp, admin_headers, path, att)
    assert testapp.get(f"/{CH}/noarch/{path.name}.attestation.json").body == att
    return path, att


def second(pkgdir: Path, first: Path) -> Path:
    """Other bytes under the same file name."""
    path = build_package(PackageSpec("signed", "1.0", files={"share/v": b"2"}), pkgdir / "2")
    assert path.name == first.name
    assert path.read_bytes() != first.read_bytes()
    return path


def stored(services: Any, filename: str) -> Path:
    return Path(services.store.root) / "channels" / CH / "noarch" / (filename + ".attestation.json")


def test_forced_replacement_without_attestation_removes_the_old_one(
    testapp: Any, services: Any, admin_headers: dict[str, str], pkgdir: Path,
    first: tuple[Path, bytes],
) -> None:
    new = second(pkgdir, first[0])
    multipart_upload(testapp, admin_headers, new, None, force=True)
    assert testapp.get(f"/{CH}/noarch/{new.name}").body == new.read_bytes()
    testapp.get(f"/{CH}/noarch/{new.name}.attestation.json", status=404)
    assert not stored(services, new.name).exists()
    assert list(stored(services, new.name).parent.glob(".bak-*")) == []


def test_forced_raw_replacement_removes_the_old_attestation(
    testapp: Any, services: Any, admin_headers: dict[str, str], pkgdir: Path,
    first: tuple[Path, bytes],
) -> None:
    """The raw form cannot carry an attestation at all: the old one must go."""
    new = second(pkgdir, first[0])
    upload_raw(testapp, CH, new, admin_headers, force=True)
    testapp.get(f"/{CH}/noarch/{new.name}.attestation.json", status=404)


def test_forced_replacement_with_attestation_replaces_it(
    testapp: Any, services: Any, admin_headers: dict[str, str], pkgdir: Path,
    first: tuple[Path, bytes],
) -> None:
    new = second(pkgdir, first[0])
    att = attestation_for(new)
    assert att != first[1]
    multipart_upload(testapp, admin_headers, new, att, force=True)
    assert testapp.get(f"/{CH}/noarch/{new.name}").body == new.read_bytes()
    assert testapp.get(f"/{CH}/noarch/{new.name}.attestation.json").body == att
    assert stored(services, new.name).read_bytes() == att


def test_refused_replacement_keeps_the_old_pair(
    testapp: Any, services: Any, admin_headers: dict[str, str], pkgdir: Path,
    first: tuple[Path, bytes],
) -> None:
    path, att = first
    new = second(pkgdir, path)
    multipart_upload(testapp, admin_headers, new, None, status=409)  # not forced
    multipart_upload(testapp, admin_headers, new, attestation_for(new), force=True,
                     status=400, sha256="0" * 64)  # forced, but the bytes are not the ones named
    assert testapp.get(f"/{CH}/noarch/{path.name}").body == path.read_bytes()
    assert testapp.get(f"/{CH}/noarch/{path.name}.attestation.json").body == att


def test_delete_removes_the_attestation(
    testapp: Any, services: Any, admin_headers: dict[str, str], first: tuple[Path, bytes],
) -> None:
    path, _ = first
    testapp.delete(f"/api/v1/delete/{CH}/noarch/{path.name}", headers=admin_headers)
    testapp.get(f"/{CH}/noarch/{path.name}", status=404)
    testapp.get(f"/{CH}/noarch/{path.name}.attestation.json", status=404)
    assert not stored(services, path.name).exists()


def test_replacement_that_fails_before_commit_restores_the_old_pair(
    services: Any, pkgdir: Path, first: tuple[Path, bytes], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Fault injection: the catalog write fails after the files moved (a full disk, say)."""
    from repoproxy.storage.catalog import Catalog

    path, att = first
    new = second(pkgdir, path)

    def disk_full(*args: Any, **kwargs: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Catalog, "upsert_packages", disk_full)
    for replacement in (attestation_for(new), None):
        with pytest.raises(OSError, match="No space left"):
            services.ingestor.ingest_file(CH, new, force=True, attestation=replacement)
        noarch = stored(services, path.name).parent
        assert (noarch / path.name).read_bytes() == path.read_bytes()
        assert stored(services, path.name).read_bytes() == att
        assert list(noarch.glob(".bak-*")) == []
