"""The permission table: identities x channel privacy x actions, each cell's status."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from repoproxy.storage.accounts import Accounts
from repoproxy.storage.catalog import Catalog
from repoproxy.storage.db import write_transaction
from repoproxy.testing.fixtures import make_token
from repoproxy.testing.packages import PackageSpec, build_package
from repoproxy.testing.visibility import shard_digests

PRIVACIES = ("public", "authenticated", "private")
CHANNEL = {"public": "pub", "authenticated": "auth", "private": "priv"}
READS = ("repodata", "zst", "shard_index", "shard", "package", "channeldata", "show")
WRITES = ("upload", "delete")
MANAGES = ("member_add", "token_create")
ACTIONS = (*READS, *WRITES, *MANAGES, "list")
SUCCESS = {"upload": 201, "member_add": 201, "token_create": 201}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    import os

    from webtest import TestApp

    from repoproxy.domain.core import load_core
    from repoproxy.web.app import make_app

    tmp = tmp_path_factory.mktemp("perm")
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPOPROXY_")}
    services = load_core({"repoproxy.root": str(tmp / "root"),
                              "repoproxy.log_requests": "false"}, env)
    app = TestApp(make_app(services))
    admin = make_token(services, "admin", admin=True)
    h = {"Authorization": f"Bearer {admin}"}
    pkg = build_package(PackageSpec("thing", "1.0"), tmp)
    data = pkg.read_bytes()
    for privacy, name in CHANNEL.items():
        app.post_json("/api/v1/channels", {"name": name, "privacy": privacy}, headers=h)
        app.post(f"/api/v1/upload/{name}", data, headers={**h, "X-File-Name": pkg.name,
                 "X-File-SHA256": hashlib.sha256(data).hexdigest()})
    app.post_json("/api/v1/channels", {"name": "other", "privacy": "private"}, headers=h)
    db = services.db()
    with write_transaction(db):
        accounts = Accounts(db)
        for user in ("mem", "own", "carol", "bob"):
            accounts.add_user(user, f"{user}-password-1")
        for name in CHANNEL.values():
            accounts.add_member(name, "mem", "member")
            accounts.add_member(name, "own", "owner")
    chans = list(CHANNEL.values())
    tokens = {
        "read_token": make_token(services, "r", channels=chans, access="read"),
        "write_token": make_token(services, "w", channels=chans, access="write"),
        "manage_token": make_token(services, "m", channels=chans, access="manage"),
        "other_channel_token": make_token(services, "o", channels=["other"], access="manage"),
        "expired": make_token(services, "e", channels=chans, access="manage"),
        "revoked": make_token(services, "v", channels=chans, access="manage"),
    }
    with write_transaction(db):
        catalog = Catalog(db)
        for row in catalog.list_tokens():
            if row["name"] == "e":
                catalog.update_token(row["id"], expires="2000-01-01T00:00:00+00:00")
            if row["name"] == "v":
                catalog.update_token(row["id"], revoked=1)
    shard = {}
    for name in CHANNEL.values():  # indexed_timestamp differs per channel, so do shards
        index = app.get(f"/{name}/noarch/repodata_shards.msgpack.zst", headers=h).body
        shard[name] = shard_digests(index)["thing"]
    yield {"app": app, "services": services, "admin": h, "tokens": tokens, "pkg": pkg,
           "shard": shard, "tmp": tmp}
    services.close()


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def headers_for(world: dict[str, Any], who: str) -> dict[str, str]:
    t = world["tokens"]
    return {
        "anonymous": {},
        "malformed_token": {"Authorization": "Bearer not_a_token!"},
        "unknown_token": {"Authorization": "Bearer rp-AAAAAAAAAA-" + "x" * 43},
        "expired": {"Authorization": f"Bearer {t['expired']}"},
        "revoked": {"Authorization": f"Bearer {t['revoked']}"},
        "member": basic("mem", "mem-password-1"),
        "owner": basic("own", "own-password-1"),
        "read_token": {"Authorization": f"Bearer {t['read_token']}"},
        "write_token": {"Authorization": f"Bearer {t['write_token']}"},
        "manage_token": {"Authorization": f"Bearer {t['manage_token']}"},
        "other_channel_token": {"Authorization": f"Bearer {t['other_channel_token']}"},
        "basic_user": basic("carol", "carol-password-1"),
        "admin": world["admin"],
    }[who]


IDENTITIES = ("anonymous", "malformed_token", "unknown_token", "expired", "revoked", "member",
              "owner", "read_token", "write_token", "manage_token", "other_channel_token",
              "basic_user", "admin")
INVALID = {"malformed_token", "unknown_token", "expired", "revoked"}
# the highest right each identity holds on each privacy level: None, "read", "write", "manage"
RIGHTS: dict[str, dict[str, str | None]] = {
    "anonymous": {"public": "read", "authenticated": None, "private": None},
    "member": dict.fromkeys(PRIVACIES, "read"),
    "owner": dict.fromkeys(PRIVACIES, "manage"),
    "read_token": dict.fromkeys(PRIVACIES, "read"),
    "write_token": dict.fromkeys(PRIVACIES, "write"),
    "manage_token": dict.fromkeys(PRIVACIES, "manage"),
    "other_channel_token": {"public": "read", "authenticated": "read", "private": None},
    "basic_user": {"public": "read", "authenticated": "read", "private": None},
    "admin": dict.fromkeys(PRIVACIES, "manage"),
}
NEEDS = {**dict.fromkeys(READS, "read"), **dict.fromkeys(WRITES, "write"),
         **dict.fromkeys(MANAGES, "manage")}
ORDER = (None, "read", "write", "manage")


def expected(who: str, privacy: str, action: str) -> int:
    if who in INVALID:
        return 401
    if action == "list":
        return 200
    have = RIGHTS[who][privacy]
    if have is None:
        return 401 if who == "anonymous" else 404
    if ORDER.index(have) >= ORDER.index(NEEDS[action]):
        return SUCCESS.get(action, 200)
    return 401 if who == "anonymous" else 403


def perform(world: dict[str, Any], action: str, channel: str,
            headers: dict[str, str]) -> Any:
    app = world["app"]
    pkg: Path = world["pkg"]
    req: dict[str, Callable[[], Any]] = {
        "repodata": lambda: app.get(f"/{channel}/noarch/repodata.json", headers=headers,
                                    expect_errors=True),
        "zst": lambda: app.get(f"/{channel}/noarch/repodata.json.zst", headers=headers,
                               expect_errors=True),
        "shard_index": lambda: app.get(f"/{channel}/noarch/repodata_shards.msgpack.zst",
                                       headers=headers, expect_errors=True),
        "shard": lambda: app.get(f"/{channel}/noarch/shards/{world['shard'][channel]}.msgpack.zst",
                                 headers=headers, expect_errors=True),
        "package": lambda: app.get(f"/{channel}/noarch/{pkg.name}", headers=headers,
                                   expect_errors=True),
        "channeldata": lambda: app.get(f"/{channel}/channeldata.json", headers=headers,
                                       expect_errors=True),
        "show": lambda: app.get(f"/api/v1/channels/{channel}", headers=headers,
                                expect_errors=True),
        "list": lambda: app.get("/api/v1/channels", headers=headers, expect_errors=True),
        "upload": lambda: app.post(
            f"/api/v1/upload/{channel}?force=true", pkg.read_bytes(), expect_errors=True,
            headers={**headers, "X-File-Name": pkg.name, "Content-Type": "application/x"}),
        "delete": lambda: app.delete(f"/api/v1/delete/{channel}/noarch/{pkg.name}",
                                     headers=headers, expect_errors=True),
        "member_add": lambda: app.post_json(f"/api/v1/channels/{channel}/members",
                                            {"user": "bob", "role": "member"},
                                            headers=headers, expect_errors=True),
        "token_create": lambda: app.post_json("/api/v1/tokens",
                                              {"name": "made", "channels": [channel]},
                                              headers=headers, expect_errors=True),
    }
    return req[action]()


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("privacy", PRIVACIES)
@pytest.mark.parametrize("who", IDENTITIES)
def test_permission_cell(world: dict[str, Any], who: str, privacy: str, action: str) -> None:
    channel = CHANNEL[privacy]
    app, admin, pkg = world["app"], world["admin"], world["pkg"]
    # every cell starts from the same state: the package is in the channel
    app.post(f"/api/v1/upload/{channel}?force=true", pkg.read_bytes(),
             headers={**admin, "X-File-Name": pkg.name})
    response = perform(world, action, channel, headers_for(world, who))
    assert response.status_int == expected(who, privacy, action), response.body[:300]
    if response.status_int == 401:
        assert "WWW-Authenticate" in response.headers
    if action == "list" and response.status_int == 200:
        names = {c["name"] for c in response.json["channels"]}
        assert (channel in names) == (RIGHTS[who][privacy] is not None)


@pytest.mark.parametrize("who", ["member", "read_token", "other_channel_token", "basic_user",
                                 "anonymous"])
def test_hidden_and_absent_channels_answer_byte_for_byte_alike(world: dict[str, Any],
                                                               who: str) -> None:
    app = world["app"]
    headers = headers_for(world, who)
    hidden_name = "other" if who != "other_channel_token" else "priv"
    for path in ("/{}/noarch/repodata.json", "/{}/noarch/repodata_shards.msgpack.zst",
                 "/{}/channeldata.json", "/api/v1/channels/{}"):
        hidden = app.get(path.format(hidden_name), headers=headers, expect_errors=True)
        absent = app.get(path.format("no-such-channel"), headers=headers, expect_errors=True)
        assert hidden.status_int in (401, 404)
        assert hidden.status == absent.status
        assert hidden.body == absent.body
        assert sorted(hidden.headerlist) == sorted(absent.headerlist)


def test_tokens_are_never_echoed_in_error_bodies(world: dict[str, Any]) -> None:
    for token in (*world["tokens"].values(), "rp-AAAAAAAAAA-" + "y" * 43):
        for url in ("/priv/noarch/repodata.json", f"/t/{token}/priv/noarch/repodata.json"):
            r = world["app"].get(url, headers={"Authorization": f"Bearer {token}"},
                                 expect_errors=True)
            assert token not in r.text


def test_a_thousand_wrong_tokens_are_refused_and_the_server_stays_responsive(
        world: dict[str, Any]) -> None:
    app = world["app"]
    for i in range(1000):
        wrong = f"rp-{i:010d}-" + "z" * 43
        assert app.get("/priv/noarch/repodata.json", expect_errors=True,
                       headers={"Authorization": f"Bearer {wrong}"}).status_int == 401
    ok = app.get("/priv/noarch/repodata.json", headers=world["admin"])
    assert ok.status_int == 200
