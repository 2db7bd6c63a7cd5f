"""Generic artifacts and notebooks (family ``gra``) through the API: upload, list, details,
search, download, delete; never in conda indexes; the channel's access rules."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from repoproxy.testing.fixtures import make_token

FILE = "/api/channels/{}/artifacts/gra/{}/{}/{}"
NOTEBOOK = json.dumps({"cells": [{"cell_type": "markdown", "metadata": {},
                                  "source": ["# hi"]}],
                       "metadata": {}, "nbformat": 4, "nbformat_minor": 5}).encode()


def put(testapp: Any, channel: str, name: str, version: str, filename: str, data: bytes,
        headers: dict[str, str], status: int = 201, query: str = "",
        sha: str | None = None) -> Any:
    return testapp.post(FILE.format(channel, name, version, filename) + query, data,
                        headers={**headers, "Content-Type": "application/octet-stream",
                                 "X-File-SHA256": sha or hashlib.sha256(data).hexdigest()},
                        status=status)


@pytest.fixture
def channels(make_channel: Any) -> None:
    make_channel("main")
    make_channel("secret", privacy="private")


def test_artifact_round_trip_and_never_in_conda_indexes(
        testapp: Any, channels: None, admin_headers: dict[str, str], root: Path) -> None:
    data = bytes(range(256)) * 40
    body = put(testapp, "main", "dataset", "1.0", "data.bin", data, admin_headers).json
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    assert (body["family"], body["kind"], body["size"]) == ("gra", "file", len(data))
    put(testapp, "main", "report", "2024.1", "report.ipynb", NOTEBOOK, admin_headers)

    listed = testapp.get("/api/channels/main/artifacts").json["packages"]
    assert {(p["name"], p["family"]) for p in listed} == {("dataset", "gra"), ("report", "gra")}
    summary = testapp.get("/api/channels/main/artifacts/gra/report").json
    assert summary["kinds"] == ["notebook"]
    assert summary["latest_version"] == "2024.1"
    files = testapp.get("/api/channels/main/artifacts/gra/dataset/files").json
    assert files["total"] == 1
    assert files["files"][0]["filename"] == "data.bin"

    got = testapp.get(FILE.format("main", "dataset", "1.0", "data.bin"))
    assert got.body == data
    assert got.headers["Content-Disposition"] == 'attachment; filename="data.bin"'
    assert testapp.get(FILE.format("main", "report", "2024.1", "report.ipynb")).body == NOTEBOOK

    hits = testapp.get("/api/v1/search?q=data&family=gra").json
    assert [(h["channel"], h["name"], h["family"]) for h in hits["results"]] == [
        ("main", "dataset", "gra")]
    assert testapp.get("/api/v1/search?q=data").json["count"] == 0  # conda search: none

    # never in what conda clients read
    for path in ("/main/noarch/repodata.json", "/main/channeldata.json"):
        text = testapp.get(path).text
        assert "dataset" not in text
        assert "report" not in text
    import msgpack
    import zstandard

    shards = testapp.get("/main/noarch/repodata_shards.msgpack.zst").body
    assert msgpack.unpackb(zstandard.ZstdDecompressor().decompressobj().decompress(shards)
                           )["shards"] == {}
    assert not [p for p in (root / "channels").rglob("*") if p.suffix in (".bin", ".ipynb")]

    # delete one file, then a whole name through the details route
    assert testapp.delete(FILE.format("main", "dataset", "1.0", "data.bin"),
                          headers=admin_headers).json == {"deleted": "dataset/1.0/data.bin"}
    testapp.get(FILE.format("main", "dataset", "1.0", "data.bin"), status=404)
    assert not (root / "channels" / "main" / ".artifacts" / body["sha256"]).exists()
    testapp.delete("/api/channels/main/artifacts/gra/report", headers=admin_headers)
    assert testapp.get("/api/channels/main/artifacts").json["packages"] == []
    audit = testapp.get("/api/v1/audit", headers=admin_headers).text.splitlines()
    actions = [json.loads(line)["action"] for line in audit]
    assert actions.count("artifact.upload") == 2
    assert "artifact.delete" in actions
    assert "artifact.remove" in actions


def test_duplicates_force_and_bad_input_leave_nothing_behind(
        testapp: Any, channels: None, admin_headers: dict[str, str], root: Path) -> None:
    put(testapp, "main", "tool", "1", "tool.tgz", b"one", admin_headers)
    put(testapp, "main", "tool", "1", "tool.tgz", b"two", admin_headers, status=409)
    put(testapp, "main", "tool", "1", "tool.tgz", b"two", admin_headers, query="?force=true")
    assert testapp.get(FILE.format("main", "tool", "1", "tool.tgz")).body == b"two"
    blobs = list((root / "channels" / "main" / ".artifacts").iterdir())
    assert [b.name for b in blobs] == [hashlib.sha256(b"two").hexdigest()]  # old one gone

    put(testapp, "main", "tool", "2", "tool.tgz", b"x", admin_headers, status=400,
        sha="0" * 64)
    bad_notebook = put(testapp, "main", "nb", "1", "nb.ipynb", b"{not json", admin_headers,
                       status=400).json
    assert "not a notebook" in bad_notebook["message"]
    put(testapp, "main", "nb", "1", "nb.ipynb", b'{"a": 1}', admin_headers, status=400)
    for name, version, filename in ((".hidden", "1", "f"), ("ok", "..", "f"),
                                    ("ok", "1", ".."), ("ok", "1", "%2e%2e"),
                                    ("ok", "1", "a%2fb"), ("ok", "1", "a%5cb")):
        testapp.post(FILE.format("main", name, version, filename), b"x",
                     headers={**admin_headers, "Content-Type": "application/octet-stream"},
                     status=(400, 404))
    assert [r["name"] for r in testapp.get("/api/channels/main/artifacts").json["packages"]
            ] == ["tool"]
    assert list((root / "tmp").iterdir()) == []


def test_size_limit(settings: dict[str, Any], request: pytest.FixtureRequest,
                    root: Path) -> None:
    settings["repoproxy.max_upload_size"] = "1000"  # before the app starts (below)
    testapp = request.getfixturevalue("testapp")
    admin_headers = request.getfixturevalue("admin_headers")
    request.getfixturevalue("make_channel")("main")
    put(testapp, "main", "big", "1", "big.bin", b"x" * 200_000, admin_headers, status=413)
    assert testapp.get("/api/channels/main/artifacts").json["packages"] == []
    assert list((root / "tmp").iterdir()) == []


def test_access_rules_are_the_packages_rules(testapp: Any, services: Any, channels: None,
                                             admin_headers: dict[str, str]) -> None:
    put(testapp, "secret", "plan", "1", "plan.pdf", b"%PDF", admin_headers)
    path = FILE.format("secret", "plan", "1", "plan.pdf")
    other = {"Authorization": "Bearer " + make_token(services, "o", channels=["main"])}
    reader = {"Authorization": "Bearer " + make_token(services, "r", channels=["secret"])}
    writer = {"Authorization": "Bearer " + make_token(services, "w", channels=["secret"],
                                                      access="write")}
    testapp.get(path, status=401)  # anonymous: asked for credentials
    hidden = testapp.get(path, headers=other, status=404)
    absent = testapp.get(FILE.format("nochannel", "plan", "1", "plan.pdf"), headers=other,
                         status=404)
    assert hidden.body == absent.body  # a hidden channel answers exactly like an absent one
    for url in ("/api/channels/secret/artifacts", "/api/channels/secret/artifacts/gra/plan",
                "/api/channels/secret/artifacts/gra/plan/files"):
        assert testapp.get(url, headers=other, status=404).json["message"] == \
            "channel not found"
    assert testapp.get(path, headers=reader).body == b"%PDF"
    assert testapp.get("/api/v1/search?q=plan&family=gra", headers=other).json["count"] == 0
    assert testapp.get("/api/v1/search?q=plan&family=gra", headers=reader).json["count"] == 1
    put(testapp, "secret", "plan", "2", "plan.pdf", b"%PDF2", reader, status=403)
    testapp.delete(path, headers=reader, status=403)
    put(testapp, "secret", "plan", "2", "plan.pdf", b"%PDF2", writer)
    testapp.delete(path, headers=writer)


def test_removing_a_channel_removes_its_artifacts(testapp: Any, channels: None,
                                                  admin_headers: dict[str, str],
                                                  make_channel: Any) -> None:
    put(testapp, "main", "a", "1", "a.txt", b"a", admin_headers)
    testapp.delete("/api/v1/channels/main", headers=admin_headers)
    make_channel("main")
    assert testapp.get("/api/channels/main/artifacts").json["packages"] == []
    testapp.get(FILE.format("main", "a", "1", "a.txt"), status=404)


def test_start_up_recovery_removes_unreferenced_blobs_only(
        testapp: Any, services: Any, channels: None, admin_headers: dict[str, str],
        root: Path, caplog: pytest.LogCaptureFixture) -> None:
    from repoproxy.domain.recovery import recover

    put(testapp, "main", "kept", "1", "kept.txt", b"kept", admin_headers)
    blobs = root / "channels" / "main" / ".artifacts"
    orphan = blobs / hashlib.sha256(b"orphan").hexdigest()  # a crash before the commit
    orphan.write_bytes(b"orphan")
    (blobs / ".tmp-x").write_bytes(b"partial")
    recover(services)
    assert [p.name for p in blobs.iterdir()] == [hashlib.sha256(b"kept").hexdigest()]
    assert ".artifacts" not in caplog.text  # not mistaken for a subdir
    assert testapp.get(FILE.format("main", "kept", "1", "kept.txt")).body == b"kept"
