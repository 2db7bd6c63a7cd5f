"""Access features beyond the permission table: users, members, tokens, backends, audit."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from repoproxy.storage.accounts import Accounts
from repoproxy.storage.db import write_transaction
from repoproxy.testing.fixtures import make_token


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def _add_user(services: Any, name: str, role: str = "user") -> None:
    db = services.db()
    with write_transaction(db):
        Accounts(db).add_user(name, f"{name}-password", role)


def test_passwords_are_stored_with_argon2id(services: Any) -> None:
    _add_user(services, "ann")
    stored = Accounts(services.db()).get_user("ann")["password_hash"]
    assert stored.startswith("$argon2id$")
    assert "ann-password" not in stored


def test_user_creates_channel_and_becomes_its_only_owner(testapp: Any, services: Any) -> None:
    _add_user(services, "ann")
    _add_user(services, "ben")
    ann = _basic("ann", "ann-password")
    testapp.post_json("/api/v1/channels", {"name": "anns", "privacy": "private"}, headers=ann,
                      status=201)
    members = testapp.get("/api/v1/channels/anns/members", headers=ann).json["members"]
    assert [(m["user"], m["role"]) for m in members] == [("ann", "owner")]
    # the last owner can be neither removed nor demoted
    r = testapp.delete("/api/v1/channels/anns/members/ann", headers=ann, status=409)
    assert "at least one owner" in r.json["message"]
    testapp.post_json("/api/v1/channels/anns/members", {"user": "ann", "role": "member"},
                      headers=ann, status=409)
    testapp.post_json("/api/v1/channels/anns/members", {"user": "ben", "role": "owner"},
                      headers=ann, status=201)
    testapp.delete("/api/v1/channels/anns/members/ann", headers=ann, status=200)
    testapp.get("/anns/noarch/repodata.json", headers=ann, status=404)
    testapp.get("/anns/noarch/repodata.json", headers=_basic("ben", "ben-password"), status=200)


def test_privacy_levels_through_the_api(testapp: Any, make_channel: Any,
                                        admin_headers: dict[str, str], services: Any) -> None:
    make_channel("lvl")
    _add_user(services, "ann")
    for privacy, anon, user in (("authenticated", 401, 200), ("private", 401, 404),
                                ("public", 200, 200)):
        testapp.patch_json("/api/v1/channels/lvl", {"privacy": privacy}, headers=admin_headers)
        testapp.get("/lvl/noarch/repodata.json", status=anon)
        testapp.get("/lvl/noarch/repodata.json", headers=_basic("ann", "ann-password"),
                    status=user)
    actions = [e["details"] for e in Accounts(services.db()).audit_entries(channel="lvl")
               if e["action"] == "channel.privacy"]
    assert [(a["old"], a["new"]) for a in actions] == [
        ("public", "authenticated"), ("authenticated", "private"), ("private", "public")]


def test_tokens_list_edit_revoke_and_never_show_secrets(testapp: Any, make_channel: Any,
                                                        admin_headers: dict[str, str]) -> None:
    make_channel("tok", privacy="private")
    made = testapp.post_json("/api/v1/tokens", {"name": "ci", "channels": ["tok"],
                                                "permission": "read", "expires_in_days": 30},
                             headers=admin_headers, status=201).json
    secret, token_id = made["token"], made["id"]
    assert made["expires"]
    listed = testapp.get("/api/v1/tokens", headers=admin_headers).text
    assert token_id in listed
    assert secret not in listed
    bearer = {"Authorization": f"Bearer {secret}"}
    testapp.get("/tok/noarch/repodata.json", headers=bearer, status=200)
    testapp.post("/api/v1/upload/tok", b"x", headers={**bearer, "X-File-Name": "a-1-0.conda"},
                 status=403)
    testapp.patch_json(f"/api/v1/tokens/{token_id}", {"permission": "write"},
                       headers=admin_headers)
    r = testapp.post("/api/v1/upload/tok", b"x", headers={**bearer, "X-File-Name": "a-1-0.conda"},
                     status=400)  # now allowed to try: refused for the bytes, not the rights
    assert "not a readable" in r.json["message"] or "empty" in r.json["message"]
    testapp.delete(f"/api/v1/tokens/{token_id}", headers=admin_headers)
    r = testapp.get("/tok/noarch/repodata.json", headers=bearer, status=401)
    assert r.json["message"] == "token revoked"


def test_one_token_covers_several_channels(testapp: Any, make_channel: Any,
                                           services: Any) -> None:
    for name in ("a1", "a2", "a3"):
        make_channel(name, privacy="private")
    token = make_token(services, "multi", channels=["a1", "a2"])
    h = {"Authorization": f"Bearer {token}"}
    testapp.get("/a1/noarch/repodata.json", headers=h, status=200)
    testapp.get("/a2/noarch/repodata.json", headers=h, status=200)
    testapp.get("/a3/noarch/repodata.json", headers=h, status=404)
    names = {c["name"] for c in testapp.get("/api/v1/channels", headers=h).json["channels"]}
    assert names == {"a1", "a2"}


def test_personal_token_follows_its_users_memberships(testapp: Any, make_channel: Any,
                                                      services: Any,
                                                      admin_headers: dict[str, str]) -> None:
    make_channel("team", privacy="private")
    _add_user(services, "ann")
    ann = _basic("ann", "ann-password")
    secret = testapp.post_json("/api/v1/tokens", {"name": "laptop"}, headers=ann,
                               status=201).json["token"]
    h = {"Authorization": f"Bearer {secret}"}
    testapp.get("/team/noarch/repodata.json", headers=h, status=404)
    testapp.post_json("/api/v1/channels/team/members", {"user": "ann"}, headers=admin_headers)
    testapp.get("/team/noarch/repodata.json", headers=h, status=200)
    who = testapp.get("/api/v1/whoami", headers=h).json
    assert who["name"] == "ann"
    assert who["channels"] == {"team": "read"}
    # Basic with user name + token works too
    testapp.get("/team/noarch/repodata.json", headers=_basic("ann", secret), status=200)
    testapp.get("/team/noarch/repodata.json", headers=_basic("eve", secret), status=401)


def test_whoami_anonymous_and_admin(testapp: Any, admin_headers: dict[str, str],
                                    make_channel: Any) -> None:
    make_channel("open")
    anon = testapp.get("/api/v1/whoami").json
    assert anon["name"] == "anonymous"
    assert anon["channels"] == {"open": "read"}
    admin = testapp.get("/api/v1/whoami", headers=admin_headers).json
    assert admin["role"] == "admin"
    assert admin["channels"] == {"open": "manage"}


@pytest.fixture
def predefined(settings: dict[str, Any]) -> str:
    settings["repoproxy.auth.predefined_tokens"] = "bot:bot-token-123:write:shared"
    return "bot-token-123"


def test_predefined_token_backend(predefined: str, testapp: Any, make_channel: Any) -> None:
    make_channel("shared", privacy="private")
    h = {"Authorization": f"Bearer {predefined}"}
    testapp.get("/shared/noarch/repodata.json", headers=h, status=200)
    testapp.get("/shared/noarch/repodata.json",
                headers={"Authorization": "Bearer bot-token-124"}, status=401)


@pytest.fixture
def htpasswd(settings: dict[str, Any], tmp_path: Path) -> None:
    import bcrypt

    path = tmp_path / "htpasswd"
    path.write_text("hank:" + bcrypt.hashpw(b"hank-pw", bcrypt.gensalt(4)).decode() + "\n")
    settings["repoproxy.auth.htpasswd_file"] = str(path)
    settings["repoproxy.auth.authenticated_role_bindings"] = "team-*=read"


def test_htpasswd_backend_with_role_bindings(htpasswd: None, testapp: Any,
                                             make_channel: Any) -> None:
    make_channel("team-a", privacy="private")
    make_channel("secret", privacy="private")
    good = _basic("hank", "hank-pw")
    testapp.get("/team-a/noarch/repodata.json", headers=good, status=200)
    testapp.get("/secret/noarch/repodata.json", headers=good, status=404)
    testapp.get("/team-a/noarch/repodata.json", headers=_basic("hank", "wrong"), status=401)


def test_bad_role_binding_is_a_configuration_error(settings: dict[str, Any]) -> None:
    from repoproxy.errors import ConfigError
    from repoproxy.web.security import parse_bindings

    with pytest.raises(ConfigError, match="authenticated_role_bindings"):
        parse_bindings("team=owner", "repoproxy.auth.authenticated_role_bindings")


def test_audit_log_records_who_did_what(testapp: Any, make_channel: Any, services: Any,
                                        admin_headers: dict[str, str], pkgdir: Path) -> None:
    from repoproxy.testing.fixtures import upload_raw
    from repoproxy.testing.packages import PackageSpec, build_package

    make_channel("aud")
    _add_user(services, "ann")
    path = build_package(PackageSpec("p", "1.0"), pkgdir)
    upload_raw(testapp, "aud", path, admin_headers)
    testapp.post_json("/api/v1/channels/aud/members", {"user": "ann"}, headers=admin_headers)
    testapp.delete(f"/api/v1/delete/aud/noarch/{path.name}", headers=admin_headers)
    lines = testapp.get("/api/v1/audit?channel=aud", headers=admin_headers).text.splitlines()
    actions = [json.loads(line)["action"] for line in lines]
    assert actions == ["channel.create", "package.upload", "member.add", "package.delete"]
    assert all(json.loads(line)["actor"] == "token:admin" for line in lines)
    testapp.get("/api/v1/audit", status=401)


def test_cli_users_and_audit(tmp_path: Path) -> None:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("REPOPROXY_")}
    root = str(tmp_path / "r")

    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "repoproxy", *args], input=stdin,
                              capture_output=True, text=True, env=env, timeout=60, check=False)

    assert run("user", "add", "zoe", "--root", root, "--password-stdin",
               stdin="zoe-password\n").returncode == 0
    short = run("user", "add", "yan", "--root", root, "--password-stdin", stdin="short\n")
    assert short.returncode == 1
    assert "at least 8" in short.stderr
    assert "zoe\tuser" in run("user", "list", "--root", root).stdout
    tok = run("token", "create", "--root", root, "--user-id", "zoe", "--name", "z").stdout.strip()
    assert tok.startswith("rp-")
    audit = run("audit", "list", "--root", root).stdout.splitlines()
    assert [json.loads(a)["action"] for a in audit] == ["user.add", "token.create"]
    assert tok not in "".join(audit)
    # client-config asks the server: tests/functional/test_cli_hardening.py
