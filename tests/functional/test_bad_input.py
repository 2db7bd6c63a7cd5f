"""Hostile and malformed uploads through the real app: a precise 4xx, and nothing left behind.

Every hostile kind of :func:`repoproxy.testing.packages.build_hostile`, in both formats and
through every upload form (prefix.dev raw and multipart, quetz, Artifactory PUT), is thrown at
a public channel that already holds one good package. Each must be refused with a specific
status and a message naming the problem; afterwards the channel's files, ``root/tmp``, the
catalog and repodata.json are exactly as before and the good package still downloads.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from repoproxy.testing.fixtures import upload_raw
from repoproxy.testing.packages import HOSTILE_KINDS, PackageSpec, build_hostile, build_package

CH = "bad"
FORMATS = ("conda", "tar.bz2")
FORMS = ("raw", "multipart", "quetz", "artifactory")

MiB = 1024 * 1024
MAX_UPLOAD = 2 * MiB
MAX_MEMBER = 1 * MiB
MAX_INDEX = 64 * 1024
#: sizes handed to build_hostile: comfortably over the limits above, still fast to build
HOSTILE_SIZE = {"bomb": 8 * MiB, "huge_index": 256 * 1024}

#: kind -> (status, error code, what the message must say); per format where they differ
EXPECTED: dict[str, tuple[int, str, str | dict[str, str]]] = {
    "empty": (400, "invalid-package", "the file is empty (0 bytes)"),
    "truncated": (400, "invalid-package", "not a readable"),
    "not_archive": (400, "invalid-package", "not a readable"),
    "missing_index": (400, "invalid-package", "has no info/index.json"),
    "invalid_json": (400, "invalid-package", "index.json is not valid JSON"),
    "name_mismatch": (400, "invalid-package", "does not match the file name"),
    "wrong_subdir": (400, "invalid-package", "does not match the target subdir"),
    "traversal": (400, "invalid-package", "'..'"),
    "absolute": (400, "invalid-package", "absolute member path"),
    "zipslip": (
        400,
        "invalid-package",
        {
            "conda": "'../evil.txt' leaves the archive ('..')",
            "tar.bz2": "links outside the archive",
        },
    ),
    "bomb": (400, "invalid-package", f"over the limit of {MAX_MEMBER} bytes"),
    "huge_index": (400, "invalid-package", f"index.json unpacks to {256 * 1024} bytes, over"),
    "future_timestamp": (400, "invalid-package", "is in the future"),
}
assert set(EXPECTED) == set(HOSTILE_KINDS), "a hostile kind without an expectation"


def _cases() -> Iterator[Any]:
    for kind in HOSTILE_KINDS:
        for fmt in FORMATS:
            # only the Artifactory form names a target subdir; elsewhere a linux-64 package is
            # simply a linux-64 package
            forms = ("artifactory",) if kind == "wrong_subdir" else FORMS
            for form in forms:
                yield pytest.param(kind, fmt, form, id=f"{kind}-{fmt}-{form}")


# --- fixtures -------------------------------------------------------------------------------
@pytest.fixture
def settings(settings: dict[str, Any]) -> dict[str, Any]:
    settings.update(
        {
            "repoproxy.max_upload_size": str(MAX_UPLOAD),
            "repoproxy.max_info_member_size": str(MAX_MEMBER),
            "repoproxy.max_index_json_size": str(MAX_INDEX),
        }
    )
    return settings


@dataclass
class World:
    testapp: Any
    services: Any
    headers: dict[str, str]
    good: Path

    @property
    def root(self) -> Path:
        return Path(self.services.store.root)

    def snapshot(self) -> dict[str, Any]:
        """Everything an upload could leave behind."""
        channels = self.root / "channels"
        return {
            "files": sorted(str(p.relative_to(channels)) for p in channels.rglob("*")),
            "tmp": sorted(p.name for p in (self.root / "tmp").iterdir()),
            "rows": self.services.db().execute("SELECT COUNT(*) FROM packages").fetchone()[0],
            "repodata": (channels / CH / "noarch" / "repodata.json").read_bytes(),
        }

    def assert_unchanged(self, before: dict[str, Any]) -> None:
        after = self.snapshot()
        assert after["tmp"] == [], "a temporary file stayed behind in root/tmp"
        assert after["files"] == before["files"]
        assert after["rows"] == before["rows"]
        assert after["repodata"] == before["repodata"]
        body = self.testapp.get(f"/{CH}/noarch/{self.good.name}").body
        assert body == self.good.read_bytes()


@pytest.fixture
def world(
    testapp: Any, services: Any, make_channel: Any, admin_headers: dict[str, str], pkgdir: Path
) -> World:
    make_channel(CH)
    good = build_package(PackageSpec("good", "1.0"), pkgdir / "good", "conda")
    upload_raw(testapp, CH, good, admin_headers)
    w = World(testapp, services, admin_headers, good)
    assert w.snapshot()["rows"] == 1
    return w


# --- wire forms, built by hand --------------------------------------------------------------
def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def multipart(parts: list[tuple[dict[str, str], bytes]]) -> tuple[bytes, str]:
    """A multipart/form-data body exactly as written here, and its Content-Type."""
    boundary = "repoproxy-test-" + secrets.token_hex(12)
    out = bytearray()
    for headers, data in parts:
        out += f"--{boundary}\r\n".encode()
        for key, value in headers.items():
            out += f"{key}: {value}\r\n".encode()
        out += b"\r\n" + data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


def file_part(
    filename: str, data: bytes, sha256: str | None = None
) -> tuple[dict[str, str], bytes]:
    """The ``file`` part as rattler-build and pixi send it."""
    return {
        "Content-Disposition": f'form-data; name="file"; filename="{filename}"',
        "Content-Type": "application/octet-stream",
        "X-File-Name": filename,
        "X-File-SHA256": sha256 or sha256_hex(data),
    }, data


def attestation_part(data: bytes) -> tuple[dict[str, str], bytes]:
    return {
        "Content-Disposition": 'form-data; name="attestation"; filename="attestation.json"',
        "Content-Type": "application/json",
    }, data


def send(
    w: World,
    form: str,
    path: Path,
    *,
    status: int,
    sha256: str | None = None,
    force: bool = False,
    subdir: str = "noarch",
    headers: dict[str, str] | None = None,
    channel: str = CH,
) -> Any:
    """Upload ``path`` in one of the wire forms; returns the webtest response."""
    data = path.read_bytes()
    sha = sha256 or sha256_hex(data)
    auth = w.headers if headers is None else headers
    query = "?force=true" if force else ""
    if form == "raw":
        return w.testapp.post(
            f"/api/v1/upload/{channel}{query}",
            data,
            status=status,
            headers={
                **auth,
                "X-File-Name": path.name,
                "X-File-SHA256": sha,
                "Content-Type": "application/octet-stream",
            },
        )
    if form == "multipart":
        body, ctype = multipart([file_part(path.name, data, sha)])
        return w.testapp.post(
            f"/api/v1/upload/{channel}{query}",
            body,
            status=status,
            headers={**auth, "Content-Type": ctype},
        )
    if form == "quetz":
        extra = "&force=true" if force else ""
        return w.testapp.post(
            f"/api/channels/{channel}/upload/{path.name}?sha256={sha}{extra}",
            data,
            status=status,
            headers={**auth, "Content-Type": "application/octet-stream"},
        )
    if form == "artifactory":
        return w.testapp.put(
            f"/{channel}/{subdir}/{path.name}{query}",
            data,
            status=status,
            headers={**auth, "X-Checksum-Sha256": sha, "Content-Type": "application/octet-stream"},
        )
    raise AssertionError(form)


def error_of(response: Any, status: int, code: str | None = None) -> str:
    assert response.status_int == status
    assert response.content_type == "application/json"
    body = response.json
    if code is not None:
        assert body["error"] == code, body
    assert isinstance(body["message"], str)
    assert body["message"]
    return str(body["message"])


def random_package(dest: Path, name: str, payload: int, fmt: str = "conda", seed: int = 0) -> Path:
    import random

    data = random.Random(seed).randbytes(payload)
    return build_package(PackageSpec(name, files={f"share/{name}/blob.bin": data}), dest, fmt)


# --- every hostile kind x format x wire form --------------------------------------------------
@pytest.mark.parametrize(("kind", "fmt", "form"), list(_cases()))
def test_hostile_package_is_refused_and_leaves_nothing(
    world: World, pkgdir: Path, kind: str, fmt: str, form: str
) -> None:
    path = build_hostile(kind, pkgdir / kind, fmt=fmt, size=HOSTILE_SIZE.get(kind, 0))
    assert path.stat().st_size <= MAX_UPLOAD, "hostile test packages must stay under the limit"
    status, code, says = EXPECTED[kind]
    expected = says[fmt] if isinstance(says, dict) else says
    before = world.snapshot()

    message = error_of(send(world, form, path, status=status), status, code)

    assert expected in message
    world.assert_unchanged(before)
    world.testapp.get(f"/{CH}/noarch/{path.name}", status=404)
    world.testapp.get(f"/{CH}/linux-64/{path.name}", status=404)


def test_limits_come_from_the_settings(services: Any) -> None:
    s = services.settings
    assert (
        s["repoproxy.max_upload_size"],
        s["repoproxy.max_info_member_size"],
        s["repoproxy.max_index_json_size"],
    ) == (MAX_UPLOAD, MAX_MEMBER, MAX_INDEX)


# --- checksums --------------------------------------------------------------------------------
@pytest.mark.parametrize("form", ["raw", "multipart", "artifactory"])
def test_wrong_sha256_is_400(world: World, pkgdir: Path, form: str) -> None:
    path = build_package(PackageSpec("other", "1.0"), pkgdir, "tar.bz2")
    before = world.snapshot()
    wrong = sha256_hex(b"something else")
    message = error_of(send(world, form, path, status=400, sha256=wrong), 400, "checksum-mismatch")
    assert "sha256 mismatch" in message
    assert wrong in message
    assert sha256_hex(path.read_bytes()) in message
    world.assert_unchanged(before)


def test_quetz_wrong_sha256_is_406(world: World, pkgdir: Path) -> None:
    path = build_package(PackageSpec("other", "1.0"), pkgdir, "conda")
    before = world.snapshot()
    message = error_of(send(world, "quetz", path, status=406, sha256="0" * 64), 406)
    assert "sha256 mismatch" in message
    world.assert_unchanged(before)
    # and the right one is accepted
    assert send(world, "quetz", path, status=201).json["filename"] == path.name


# --- duplicates -----------------------------------------------------------------------------
def _repodata_record(w: World, filename: str) -> dict[str, Any]:
    repodata = w.testapp.get(f"/{CH}/noarch/repodata.json").json
    key = "packages.conda" if filename.endswith(".conda") else "packages"
    return dict(repodata[key][filename])


@pytest.mark.parametrize("form", FORMS)
def test_duplicate_is_409_and_force_replaces(world: World, pkgdir: Path, form: str) -> None:
    good = world.good
    first = _repodata_record(world, good.name)
    before = world.snapshot()

    message = error_of(send(world, form, good, status=409), 409, "exists")
    assert f"{CH}/noarch/{good.name} already exists" in message
    world.assert_unchanged(before)

    # same file name, other bytes (another payload): forced in
    other = build_package(
        PackageSpec("good", "1.0", files={"share/good/new.txt": b"v2"}), pkgdir / "v2", "conda"
    )
    assert other.name == good.name
    assert other.read_bytes() != good.read_bytes()
    created = send(world, form, other, status=201, force=True).json
    assert created["sha256"] == sha256_hex(other.read_bytes())

    after = _repodata_record(world, good.name)
    assert after["sha256"] == created["sha256"] != first["sha256"]
    assert after["size"] == other.stat().st_size
    assert after["indexed_timestamp"] == first["indexed_timestamp"]  # CEP-47: kept
    assert world.testapp.get(f"/{CH}/noarch/{good.name}").body == other.read_bytes()
    snap = world.snapshot()
    assert snap["rows"] == before["rows"]

    # a new shard for the new record (old shards are kept for a while); nothing else
    def unsharded(files: list[str]) -> list[str]:
        return [f for f in files if "/shards/" not in f]

    assert unsharded(snap["files"]) == unsharded(before["files"]), "a backup stayed behind"
    assert snap["tmp"] == []


# --- channels, sizes, malformed requests ------------------------------------------------------
@pytest.mark.parametrize("form", FORMS)
def test_unknown_channel_is_404(world: World, pkgdir: Path, form: str) -> None:
    path = build_package(PackageSpec("other", "1.0"), pkgdir, "conda")
    before = world.snapshot()
    message = error_of(
        send(world, form, path, status=404, channel="nosuchchannel"), 404, "not-found"
    )
    # the same words whatever the name (access.channel_not_found): a hidden channel and an
    # absent one must answer alike, so the message says "channel" but does not echo the name
    assert message == "channel not found"
    # anonymous callers cannot tell a missing channel from a hidden one
    send(world, form, path, status=401, channel="nosuchchannel", headers={})
    world.assert_unchanged(before)
    assert not (world.root / "channels" / "nosuchchannel").exists()


@pytest.mark.parametrize("form", FORMS)
def test_oversized_upload_is_413(world: World, pkgdir: Path, form: str) -> None:
    path = random_package(pkgdir, "huge", MAX_UPLOAD + 256 * 1024)
    before = world.snapshot()
    message = error_of(send(world, form, path, status=413), 413, "too-large")
    assert str(MAX_UPLOAD) in message
    world.assert_unchanged(before)


@pytest.mark.parametrize("form", FORMS)
def test_slightly_oversized_upload_is_413_while_streaming(
    world: World, pkgdir: Path, form: str
) -> None:
    """Just over the limit: passes the Content-Length check, refused by the hashing copy."""
    probe = random_package(pkgdir / "probe", "near", 64 * 1024)
    overhead = probe.stat().st_size - 64 * 1024
    path = random_package(pkgdir, "near", MAX_UPLOAD + 4096 - overhead, seed=1)
    assert MAX_UPLOAD < path.stat().st_size <= MAX_UPLOAD + 32 * 1024
    before = world.snapshot()
    message = error_of(send(world, form, path, status=413), 413, "too-large")
    assert f"limit of {MAX_UPLOAD} bytes" in message
    world.assert_unchanged(before)


def test_multipart_without_file_part_is_400(world: World) -> None:
    before = world.snapshot()
    body, ctype = multipart([attestation_part(b"{}")])
    r = world.testapp.post(
        f"/api/v1/upload/{CH}", body, status=400, headers={**world.headers, "Content-Type": ctype}
    )
    assert "no 'file' part" in error_of(r, 400, "bad-upload")
    world.assert_unchanged(before)


def test_multipart_without_boundary_or_truncated_is_400(world: World) -> None:
    before = world.snapshot()
    r = world.testapp.post(
        f"/api/v1/upload/{CH}",
        b"--x\r\n",
        status=400,
        headers={**world.headers, "Content-Type": "multipart/form-data"},
    )
    assert "boundary" in error_of(r, 400, "bad-upload")
    data = world.good.read_bytes()
    body, ctype = multipart([file_part("cut-1.0-0.conda", data)])
    r = world.testapp.post(
        f"/api/v1/upload/{CH}",
        body[: len(body) // 2],
        status=400,
        headers={**world.headers, "Content-Type": ctype},
    )
    assert "multipart" in error_of(r, 400, "bad-upload")
    world.assert_unchanged(before)


@pytest.mark.parametrize("attestation_first", [False, True])
def test_multipart_oversized_attestation_is_413(
    world: World, pkgdir: Path, attestation_first: bool
) -> None:
    path = build_package(PackageSpec("other", "1.0"), pkgdir, "conda")
    before = world.snapshot()
    parts = [file_part(path.name, path.read_bytes()), attestation_part(b"x" * (MiB + 1))]
    if attestation_first:
        parts.reverse()
    body, ctype = multipart(parts)
    r = world.testapp.post(
        f"/api/v1/upload/{CH}", body, status=413, headers={**world.headers, "Content-Type": ctype}
    )
    assert "'attestation' is too large" in error_of(r, 413, "too-large")
    world.assert_unchanged(before)


def test_raw_upload_without_file_name_is_400(world: World, pkgdir: Path) -> None:
    path = build_package(PackageSpec("other", "1.0"), pkgdir, "conda")
    before = world.snapshot()
    r = world.testapp.post(
        f"/api/v1/upload/{CH}",
        path.read_bytes(),
        status=400,
        headers={**world.headers, "Content-Type": "application/octet-stream"},
    )
    assert "X-File-Name" in error_of(r, 400, "bad-upload")
    world.assert_unchanged(before)


@pytest.mark.parametrize(
    "filename",
    ["../../evil-1.0-0.conda", ".hidden-1.0-0.conda", "evil-1.0-0.zip", "noversion.conda"],
)
def test_hostile_file_name_is_400(world: World, pkgdir: Path, filename: str) -> None:
    path = build_package(PackageSpec("other", "1.0"), pkgdir, "conda")
    before = world.snapshot()
    r = world.testapp.post(
        f"/api/v1/upload/{CH}",
        path.read_bytes(),
        status=400,
        headers={
            **world.headers,
            "X-File-Name": filename,
            "Content-Type": "application/octet-stream",
        },
    )
    assert repr(filename) in error_of(r, 400, "invalid-name")
    world.assert_unchanged(before)


# --- credentials ------------------------------------------------------------------------------
UNKNOWN = "rp-AbCdEfGhIj-" + "Z" * 43
MALFORMED = "not/a_token!"


def _auth_forms(token: str) -> list[tuple[str, dict[str, str], str]]:
    """(path prefix, headers, query) for every place a token may come from."""
    import base64

    basic = base64.b64encode(f"user:{token}".encode()).decode()
    return [
        ("", {"Authorization": f"Bearer {token}"}, ""),
        ("", {"X-API-Key": token}, ""),
        ("", {"Authorization": f"Basic {basic}"}, ""),
        (f"/t/{token}", {}, ""),
        ("", {}, f"?token={token}"),
    ]


@pytest.mark.parametrize(("token", "says"), [(MALFORMED, "malformed"), (UNKNOWN, "unknown token")])
def test_bad_tokens_are_401_and_never_echoed(
    world: World, pkgdir: Path, token: str, says: str
) -> None:
    path = build_package(PackageSpec("other", "1.0"), pkgdir, "conda")
    data = path.read_bytes()
    before = world.snapshot()
    for prefix, headers, query in _auth_forms(token):
        if prefix and "/" in token:
            continue  # a token with '/' cannot be a path segment
        r = world.testapp.post(
            f"{prefix}/api/v1/upload/{CH}{query}",
            data,
            status=401,
            headers={
                **headers,
                "X-File-Name": path.name,
                "X-File-SHA256": sha256_hex(data),
                "Content-Type": "application/octet-stream",
            },
        )
        message = error_of(r, 401)
        if "Basic" not in headers.get("Authorization", ""):
            assert says in message
        assert token not in r.text
        assert all(token not in v for v in r.headers.values())
        assert "WWW-Authenticate" in r.headers
        # reads with a bad token are refused too, even on a public channel
        r = world.testapp.get(
            f"{prefix}/{CH}/noarch/repodata.json{query}", headers=headers, status=401
        )
        assert token not in r.text
    world.assert_unchanged(before)


# --- the prefix.dev multipart form, with an attestation ---------------------------------------
@pytest.mark.parametrize("attestation_first", [False, True])
def test_multipart_with_attestation(world: World, pkgdir: Path, attestation_first: bool) -> None:
    path = build_package(PackageSpec("attested", "2.0"), pkgdir, "conda")
    data = path.read_bytes()
    attestation = json.dumps(
        {
            "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
            "payload": secrets.token_hex(64),
        }
    ).encode()
    parts = [file_part(path.name, data), attestation_part(attestation)]
    if attestation_first:
        parts.reverse()
    body, ctype = multipart(parts)
    r = world.testapp.post(
        f"/api/v1/upload/{CH}", body, status=201, headers={**world.headers, "Content-Type": ctype}
    )
    assert r.json == {
        "channel": CH,
        "subdir": "noarch",
        "filename": path.name,
        "sha256": sha256_hex(data),
        "size": len(data),
    }

    stored = world.root / "channels" / CH / "noarch" / (path.name + ".attestation.json")
    assert stored.read_bytes() == attestation
    assert world.testapp.get(f"/{CH}/noarch/{path.name}.attestation.json").body == attestation
    assert world.testapp.get(f"/{CH}/noarch/{path.name}").body == data
    assert _repodata_record(world, path.name)["sha256"] == sha256_hex(data)
    assert list((world.root / "tmp").iterdir()) == []


def test_multipart_file_part_without_name_headers_uses_request_headers(
    world: World, pkgdir: Path
) -> None:
    """Some clients put X-File-Name on the request instead of the part."""
    path = build_package(PackageSpec("plain", "1.0"), pkgdir, "tar.bz2")
    data = path.read_bytes()
    part = (
        {
            "Content-Disposition": 'form-data; name="file"; filename="blob"',
            "Content-Type": "application/octet-stream",
        },
        data,
    )
    body, ctype = multipart([part])
    world.testapp.post(
        f"/api/v1/upload/{CH}",
        body,
        status=201,
        headers={
            **world.headers,
            "Content-Type": ctype,
            "X-File-Name": path.name,
            "X-File-SHA256": sha256_hex(data),
        },
    )
    assert world.testapp.get(f"/{CH}/noarch/{path.name}").body == data
