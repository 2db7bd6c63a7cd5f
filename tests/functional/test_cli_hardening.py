"""The command line against real servers: empty uploads answer at once, client-config asks the
server (privacy, admin tokens, path prefixes, missing channels), read-only commands refuse a
missing root, start-up failures are one line, production.ini shows the plugins' INFO lines."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from repoproxy.testing.fixtures import RunningServer, free_port, make_token

REPO = Path(__file__).resolve().parents[2]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPOPROXY_")}
    env.update(extra)
    return env


def repoproxy(*args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "repoproxy", *args], capture_output=True,
                          text=True, env=clean_env(**env), timeout=timeout, check=False)


def invoke(*args: str, **env: str) -> Any:
    from repoproxy.cli import build_cli

    return CliRunner().invoke(build_cli(), list(args), env=env)


# --- upload --------------------------------------------------------------------------------
@pytest.mark.e2e
def test_upload_of_an_empty_file_gets_the_servers_answer_at_once(
        server: RunningServer, tmp_path: Path) -> None:
    admin = server.token("--admin", "--name", "a")
    assert repoproxy("channel", "create", "main", "--url", server.url, "--token",
                     admin).returncode == 0
    empty = tmp_path / "empty-1.0-0.conda"
    empty.write_bytes(b"")
    # before the fix, the client announced a chunked body it never sent: 5 minutes, then
    # "cannot reach server"; the timeout turns that into a failure here
    done = repoproxy("upload", str(empty), "--channel", "main", "--url", server.url,
                     "--token", admin, timeout=60)
    assert done.returncode == 1
    assert "the file is empty (0 bytes)" in done.stderr
    assert "cannot reach" not in done.stderr


# --- client-config -------------------------------------------------------------------------
@pytest.fixture
def prefixed(app: Any) -> Iterator[str]:
    """The app behind a real HTTP server under ``/prefix`` (as behind a reverse proxy)."""
    from waitress.server import create_server

    def under_prefix(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ["PATH_INFO"]
        if not path.startswith("/prefix/"):
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"outside the prefix"]
        environ["SCRIPT_NAME"], environ["PATH_INFO"] = "/prefix", path[len("/prefix"):]
        return app(environ, start_response)

    server = create_server(under_prefix, host="127.0.0.1", port=free_port())
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/prefix"
    finally:
        server.close()
        thread.join(timeout=10)


def test_client_config_for_a_public_channel_prints_no_token(
        prefixed: str, make_channel: Callable[..., Any], admin_token: str) -> None:
    make_channel("pub")
    result = invoke("client-config", "--channel", "pub", "--url", prefixed,
                    REPOPROXY_TOKEN=admin_token)
    assert result.exit_code == 0, result.output
    assert admin_token not in result.output
    assert "/t/" not in result.output
    assert f"  - {prefixed}/pub\n" in result.output  # the path prefix is kept
    assert "clients need no token" in result.output


def test_client_config_never_prints_an_admin_token(
        prefixed: str, make_channel: Callable[..., Any], admin_token: str,
        services: Any) -> None:
    make_channel("priv", privacy="private")
    result = invoke("client-config", "--channel", "priv", "--url", prefixed,
                    REPOPROXY_TOKEN=admin_token)
    assert result.exit_code == 0, result.output
    assert admin_token not in result.output
    assert f"{prefixed}/t/<TOKEN>/priv" in result.output
    reader = make_token(services, "reader", channels=["priv"], access="read")
    result = invoke("client-config", "--channel", "priv", "--url", prefixed, "--token", reader)
    assert result.exit_code == 0, result.output
    assert f"{prefixed}/t/{reader}/priv" in result.output
    assert f"micromamba auth login {prefixed} --bearer {reader}" in result.output
    assert '"127.0.0.1": {' in result.output


def test_client_config_refuses_a_missing_channel(prefixed: str, admin_token: str) -> None:
    result = invoke("client-config", "--channel", "nope", "--url", prefixed,
                    "--token", admin_token)
    assert result.exit_code == 1
    assert "channel 'nope' not found at" in result.output
    assert len(result.output.strip().splitlines()) == 1


# --- read-only commands on a missing root --------------------------------------------------
@pytest.mark.parametrize("args", [("token", "list"), ("user", "list"), ("audit", "list")])
def test_read_only_commands_refuse_a_missing_root(tmp_path: Path, args: tuple[str, ...]
                                                  ) -> None:
    root = tmp_path / "typo"
    result = invoke(*args, "--root", str(root))
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: {root} is not a repoproxy server root " \
                                    "(no catalog.db)"
    assert not root.exists()


@pytest.mark.parametrize("days", ["0", "36501", "99999999999"])
def test_token_expiry_out_of_range_is_refused_offline_like_through_the_api(
        tmp_path: Path, days: str) -> None:
    root = str(tmp_path / "r")
    assert invoke("token", "create", "--name", "ok", "--admin", "--root", root).exit_code == 0
    result = invoke("token", "create", "--name", "t", "--admin", "--expires-in", days,
                    "--root", root)
    assert result.exit_code == 1
    assert result.output.strip() == ("Error: expires_in_days must be a whole number of days "
                                     "from 1 to 36500")
    assert "Traceback" not in result.output
    assert invoke("token", "list", "--root", root).output.count("\n") <= 1  # none was made


# --- start-up failures ---------------------------------------------------------------------
def serve(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    try:
        return repoproxy("serve", "--root", str(tmp_path / "r"), *args, timeout=60, **env)
    except subprocess.TimeoutExpired:
        pytest.fail("the server started although its configuration is bad")


def assert_one_line_error(done: subprocess.CompletedProcess[str], message: str) -> None:
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == f"Error: {message}"


@pytest.mark.slow
def test_port_in_use_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = serve(tmp_path, "--host", "127.0.0.1", "--port", str(port))
    assert_one_line_error(done, f"cannot listen on 127.0.0.1:{port}: Address already in use")


@pytest.mark.slow
def test_bad_host_is_one_line(tmp_path: Path) -> None:
    done = serve(tmp_path, "--host", "999.1.1.1", "--port", str(free_port()))
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("Error: cannot listen on 999.1.1.1:")


@pytest.mark.slow
@pytest.mark.parametrize(("env", "message"), [
    ({"REPOPROXY_WATCH__QUIET_SECONDS": "-1"},
     "repoproxy_watch.quiet_seconds: must not be negative"),
    ({"REPOPROXY_AUTH__AUTHENTICATED_ROLE_BINDINGS": "team-*"},
     "repoproxy.auth.authenticated_role_bindings: expected channel-glob=read|write|manage, "
     "got 'team-*'"),
    ({"REPOPROXY_AUTH__PREDEFINED_TOKENS": "ci:tok:superuser:*"},
     "repoproxy.auth.predefined_tokens: expected name:token:read|write|manage|admin:channels "
     "entries"),
    ({"REPOPROXY_AUTH__VERIFY_CONCURRENCY": "0"},
     "repoproxy.auth.verify_concurrency: must be at least 1"),
])
def test_bad_settings_stop_start_up_with_one_line(tmp_path: Path, env: dict[str, str],
                                                  message: str) -> None:
    assert_one_line_error(serve(tmp_path, "--port", str(free_port()), **env), message)


# --- production.ini ------------------------------------------------------------------------
def test_production_ini_logs_the_plugins_info_lines() -> None:
    from importlib.metadata import entry_points

    plugins = sorted(ep.value for ep in entry_points(group="repoproxy")
                     if ep.value.startswith("repoproxy_"))
    assert len(plugins) >= 6
    check = ("import logging, logging.config, sys; "
             "logging.config.fileConfig(sys.argv[1], disable_existing_loggers=False); "
             "print(' '.join(n for n in sys.argv[2:] "
             "if not logging.getLogger(n + '.worker').isEnabledFor(logging.INFO)))")
    done = subprocess.run([sys.executable, "-c", check, str(REPO / "etc" / "production.ini"),
                           *plugins], capture_output=True, text=True, check=True, timeout=60)
    assert done.stdout.strip() == ""  # every plugin's loggers log INFO
