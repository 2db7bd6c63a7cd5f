"""Abuse resistance through the real app: password checks cannot be used to burn CPU (failed
login limit, bounded hashing, verified-password cache that a new password ends at once), JSON
bodies are bounded and typed, and ``?token=`` is for read-only GET/HEAD only."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bcrypt
import pytest
from click.testing import CliRunner

from repoproxy.storage.accounts import Accounts
from repoproxy.storage.db import write_transaction
from repoproxy.testing.fixtures import make_token

ALICE, BOB = "alice-password", "bob-password"


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def whoami(testapp: Any, user: str, password: str, addr: str = "10.0.0.1",
           status: int | str = "*") -> Any:
    return testapp.get("/api/v1/whoami", headers=basic(user, password),
                       extra_environ={"REMOTE_ADDR": addr}, status=status)


@pytest.fixture
def settings_extra() -> dict[str, str]:
    """Settings of one test, given with ``@pytest.mark.parametrize("settings_extra", ...)``."""
    return {}


@pytest.fixture
def settings(settings: dict[str, Any], settings_extra: dict[str, str],
             tmp_path: Path) -> dict[str, Any]:
    return {**settings, **{k: v.format(tmp=tmp_path) for k, v in settings_extra.items()}}


def extra(**values: str) -> Any:
    return pytest.mark.parametrize(
        "settings_extra", [{k.replace("__", "."): v for k, v in values.items()}])


@pytest.fixture
def users(services: Any) -> None:
    db = services.db()
    with write_transaction(db):
        Accounts(db).add_user("alice", ALICE)
        Accounts(db).add_user("bob", BOB)


class FakeClock:
    """Monotonic seconds that a test moves forward instead of sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def guard(testapp: Any) -> Any:
    return testapp.app.registry.password_guard


# --- finding 6: password checks ------------------------------------------------------------
@pytest.mark.usefixtures("users")
@extra(repoproxy__auth__max_failures="3", repoproxy__auth__failure_window="30",
       repoproxy__auth__max_failures_per_address="0")
def test_failed_logins_lock_out_even_the_right_password_until_the_window_passes(
        testapp: Any) -> None:
    clock = FakeClock()
    guard(testapp).clock = clock
    for _ in range(3):
        assert whoami(testapp, "alice", "wrong-password").status_int == 401
    refused = whoami(testapp, "alice", ALICE)
    assert refused.status_int == 429
    assert refused.json["error"] == "too-many-requests"
    assert "too many failed logins" in refused.json["message"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 30
    clock.now += 29
    later = whoami(testapp, "alice", ALICE)
    assert (later.status_int, later.headers["Retry-After"]) == (429, "1")
    clock.now += 2  # the window is over
    assert whoami(testapp, "alice", ALICE).json["name"] == "alice"


@pytest.mark.usefixtures("users")
@extra(repoproxy__auth__max_failures="2", repoproxy__auth__max_failures_per_address="2")
def test_lockout_is_per_address_and_per_user_name(testapp: Any) -> None:
    for _ in range(2):
        whoami(testapp, "alice", "wrong-password", addr="10.0.0.1", status=401)
    # another user from another address is unaffected
    assert whoami(testapp, "bob", BOB, addr="10.0.0.2").json["name"] == "bob"
    # the user name is locked whatever the address, and the address whatever the user
    assert whoami(testapp, "alice", ALICE, addr="10.0.0.2").status_int == 429
    assert whoami(testapp, "bob", BOB, addr="10.0.0.1").status_int == 429
    # unknown names count too (each one costs a hash)
    for _ in range(2):
        whoami(testapp, "nobody", "whatever-password", addr="10.0.0.3", status=401)
    assert whoami(testapp, "bob", BOB, addr="10.0.0.3").status_int == 429


@pytest.mark.usefixtures("users")
def test_a_verified_password_is_not_hashed_again(testapp: Any) -> None:
    for _ in range(3):
        assert whoami(testapp, "alice", ALICE).json["name"] == "alice"
    assert guard(testapp).hashes == 1


@pytest.mark.usefixtures("users")
def test_password_change_ends_the_cached_password_at_once(root: Path, testapp: Any) -> None:
    from repoproxy.cli import build_cli

    assert whoami(testapp, "alice", ALICE).json["name"] == "alice"  # now cached
    result = CliRunner().invoke(build_cli(), ["user", "passwd", "alice", "--root", str(root),
                                              "--password-stdin"], input="alice-new-pass\n")
    assert result.exit_code == 0, result.output
    assert whoami(testapp, "alice", ALICE).status_int == 401
    assert whoami(testapp, "alice", "alice-new-pass").json["name"] == "alice"


@pytest.mark.usefixtures("users")
@extra(repoproxy__auth__verify_concurrency="1", repoproxy__auth__verify_wait="0")
def test_hashing_beyond_the_pool_answers_503_instead_of_queueing(testapp: Any) -> None:
    slots = guard(testapp)._slots
    assert slots.acquire(blocking=False)  # the one hashing slot is taken
    try:
        busy = whoami(testapp, "alice", ALICE)
    finally:
        slots.release()
    assert busy.status_int == 503
    assert busy.headers["Retry-After"] == "1"
    assert "busy" in busy.json["message"]
    assert whoami(testapp, "alice", ALICE).json["name"] == "alice"


@extra(repoproxy__auth__htpasswd_file="{tmp}/htpasswd")
def test_htpasswd_is_parsed_once_per_file_version_and_verified_once(
        tmp_path: Path, testapp: Any) -> None:
    from repoproxy.builtin import htpasswd

    path = tmp_path / "htpasswd"

    def write(password: str) -> None:
        hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
        tmp = tmp_path / "htpasswd.tmp"
        tmp.write_text(f"# team\ncarol:{hashed}\n")
        os.replace(tmp, path)  # a new file version (inode), as editors and htpasswd write it

    write("carol-password")
    parses = htpasswd.parses
    for _ in range(3):
        assert whoami(testapp, "carol", "carol-password").json["kind"] == "htpasswd"
    assert htpasswd.parses == parses + 1
    assert guard(testapp).hashes == 1
    write("carol-new-password")
    assert whoami(testapp, "carol", "carol-password").status_int == 401
    assert whoami(testapp, "carol", "carol-new-password").json["name"] == "carol"
    assert htpasswd.parses == parses + 2


@extra(repoproxy__auth__htpasswd_file="{tmp}/htpasswd", repoproxy__auth__max_failures="2")
def test_htpasswd_wrong_passwords_are_limited(tmp_path: Path, testapp: Any) -> None:
    path = tmp_path / "htpasswd"
    path.write_text("dan:" + bcrypt.hashpw(b"dan-password", bcrypt.gensalt(rounds=4)).decode())
    for _ in range(2):
        whoami(testapp, "dan", "wrong-password", status=401)
    assert whoami(testapp, "dan", "dan-password").status_int == 429


@pytest.mark.parametrize(("settings_extra", "key"), [
    ({"repoproxy.auth.verify_concurrency": "0"}, "repoproxy.auth.verify_concurrency"),
    ({"repoproxy.auth.failure_window": "0"}, "repoproxy.auth.failure_window")])
def test_bad_guard_settings_stop_the_app(services: Any, key: str) -> None:
    from repoproxy.errors import ConfigError
    from repoproxy.web.app import make_app

    with pytest.raises(ConfigError, match=key):
        make_app(services)


# --- finding 7: JSON bodies ------------------------------------------------------------------
@pytest.fixture
def world(make_channel: Callable[..., Any], testapp: Any, admin_headers: dict[str, str],
          services: Any) -> dict[str, Any]:
    make_channel("main")
    db = services.db()
    with write_transaction(db):
        Accounts(db).add_user("erin", "erin-password")
    policy = testapp.post_json("/api/v1/policies", {"name": "p"}, headers=admin_headers).json
    return {"policy": policy["id"]}


def send(testapp: Any, method: str, url: str, body: bytes, headers: dict[str, str]) -> Any:
    return testapp.request(url, method=method, body=body, status="*",
                           headers={**headers, "Content-Type": "application/json"})


BAD_FIELDS = [
    ("POST", "/api/v1/tokens", {"name": "x" * 300}, "'name' is longer than 200"),
    ("POST", "/api/v1/tokens", {"name": "t", "channels": 5}, "'channels' must be a list"),
    ("POST", "/api/v1/tokens", {"name": "t", "channels": ["main"], "expires_in_days": 10**12},
     "'expires_in_days' must be between 1 and 36500"),
    ("POST", "/api/v1/tokens", {"name": "t", "channels": ["main"], "expires_in_days": "9"},
     "'expires_in_days' must be an integer"),
    ("POST", "/api/v1/tokens", {"name": "t", "admin": "yes"}, "'admin' must be true or false"),
    ("POST", "/api/v1/channels", {"name": ["main2"]}, "'name' must be a string"),
    ("POST", "/api/v1/channels", {"name": "main2", "description": "d" * 5000},
     "'description' is longer than 4096"),
    ("PATCH", "/api/v1/channels/main", {"privacy": 5}, "'privacy' must be a string"),
    ("PATCH", "/api/v1/channels/main", {"description": {"a": 1}},
     "'description' must be a string"),
    ("POST", "/api/v1/channels/main/members", {"user": ["erin"]}, "'user' must be a string"),
    ("POST", "/api/v1/channels/main/members", {"user": "erin", "role": 1},
     "'role' must be a string"),
    ("POST", "/api/v1/policies", {"name": ["p2"]}, "'name' must be a string"),
    ("PATCH", "/api/v1/policies/{policy}", {"description": []},
     "'description' must be a string"),
    ("PATCH", "/api/v1/policies/{policy}", {"channel_name": {"a": 1}},
     "'channel_name' must be a string"),
    ("POST", "/api/v1/policies/{policy}/assign", {"channel": {}}, "'channel' must be a string"),
]


@pytest.mark.parametrize(("method", "url", "body", "message"), BAD_FIELDS)
def test_bad_fields_are_400_with_a_message(world: dict[str, Any], testapp: Any,
                                           admin_headers: dict[str, str], method: str,
                                           url: str, body: dict[str, Any], message: str) -> None:
    r = send(testapp, method, url.format(**world), json.dumps(body).encode(), admin_headers)
    assert r.status_int == 400, r.text
    assert message in r.json["message"]


BAD_BODIES = [
    (b"[" * 100_000 + b"]" * 100_000, 400, "nested more than"),
    (b"[" * 40 + b"]" * 40, 400, "must be a JSON object"),
    (b'{"a": ' + b"[" * 40 + b"]" * 40 + b"}", 400, "nested more than 32"),
    (b"\xff\xfe{", 400, "not valid JSON"),
    (b"{", 400, "not valid JSON"),
    (b"", 400, "not valid JSON"),
    (b'"name"', 400, "must be a JSON object"),
]
JSON_ENDPOINTS = [
    ("POST", "/api/v1/channels"), ("PATCH", "/api/v1/channels/main"),
    ("POST", "/api/v1/channels/main/members"), ("POST", "/api/v1/tokens"),
    ("POST", "/api/v1/policies"), ("POST", "/api/v1/policies/{policy}/assign"),
]


@pytest.mark.parametrize(("method", "url"), JSON_ENDPOINTS)
def test_malformed_bodies_are_4xx_on_every_json_endpoint(
        world: dict[str, Any], testapp: Any, admin_headers: dict[str, str], method: str,
        url: str) -> None:
    for raw, status, message in BAD_BODIES:
        r = send(testapp, method, url.format(**world), raw, admin_headers)
        assert (r.status_int, message in r.json["message"]) == (status, True), (raw[:20], r.text)


@extra(repoproxy__max_json_body="1000")
def test_json_body_larger_than_the_limit_is_413_and_nothing_stored(
        world: dict[str, Any], testapp: Any, admin_headers: dict[str, str],
        services: Any) -> None:
    r = send(testapp, "POST", "/api/v1/tokens",
             json.dumps({"name": "n" * 2000, "channels": ["main"]}).encode(), admin_headers)
    assert r.status_int == 413
    assert "larger than 1000 bytes" in r.json["message"]
    assert not any(t["name"].startswith("nnn") for t in services.catalog().list_tokens())


@pytest.mark.parametrize(("date_from", "date_to"), [("9999-12-30", "9999-12-31"),
                                                ("0001-01-01", "0001-02-01")])
def test_report_dates_far_away_are_400(testapp: Any, admin_headers: dict[str, str],
                                       date_from: str, date_to: str) -> None:
    r = testapp.get("/api/v1/reports/downloads", {"date_from": date_from, "date_to": date_to},
                    headers=admin_headers, status="*")
    assert r.status_int == 400
    assert "dates must be between" in r.json["message"]


# --- finding 10: query tokens ----------------------------------------------------------------
def test_query_token_is_for_read_only_get(make_channel: Callable[..., Any], testapp: Any,
                                          admin_token: str, services: Any) -> None:
    make_channel("secret", privacy="private")
    refused = testapp.post(f"/api/v1/channels?token={admin_token}",
                           json.dumps({"name": "viaquery"}),
                           headers={"Content-Type": "application/json"}, status=401)
    assert "GET and HEAD only" in refused.json["message"]
    assert services.catalog().get_channel("viaquery") is None
    assert admin_token not in refused.text
    read = make_token(services, "r", channels=["secret"], access="read")
    repodata = testapp.get(f"/secret/noarch/repodata.json?token={read}")
    assert "packages" in repodata.json
    assert testapp.head(f"/secret/noarch/repodata.json?token={read}").status_int == 200
    write = make_token(services, "w", channels=["secret"], access="write")
    r = testapp.get(f"/secret/noarch/repodata.json?token={write}", status=401)
    assert "only a read-only token" in r.json["message"]
    r = testapp.get(f"/api/v1/channels?token={admin_token}", status=401)
    assert "only a read-only token" in r.json["message"]


@pytest.mark.e2e
def test_chunked_json_body_over_the_limit_is_413_on_a_real_server(
        server_factory: Callable[..., Any]) -> None:
    import requests

    server = server_factory(REPOPROXY_MAX_JSON_BODY="4096")
    admin = server.token("--admin", "--name", "a")

    def chunks() -> Any:  # no Content-Length: the limit must hold while reading
        yield b'{"name": "'
        for _ in range(64):
            yield b"n" * 1024
        yield b'"}'

    r = requests.post(f"{server.url}/api/v1/tokens", data=chunks(), timeout=60,
                      headers={"Authorization": f"Bearer {admin}",
                               "Content-Type": "application/json"})
    assert r.status_code == 413
    assert "larger than 4096 bytes" in r.json()["message"]
