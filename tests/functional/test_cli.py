"""The command line against a real server: channels, upload, reindex, import, tokens, serve."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests

from repoproxy.testing.packages import PackageSpec, build_many, build_package

pytestmark = pytest.mark.e2e


def cli(*args: str, env: dict[str, str] | None = None, check: bool = True,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("REPOPROXY_")}
    base.update(env or {})
    return subprocess.run([sys.executable, "-m", "repoproxy", *args], capture_output=True,
                          text=True, env=base, check=check, timeout=timeout)


def test_token_create_offline_prints_only_the_token(tmp_path: Path) -> None:
    out = cli("token", "create", "--root", str(tmp_path / "r"), "--admin", "--name", "me")
    token = out.stdout.strip()
    assert out.stdout == token + "\n"
    assert token.startswith("rp-")
    assert set(token) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")
    listed = cli("token", "list", "--root", str(tmp_path / "r")).stdout
    assert "me" in listed
    assert token not in listed
    db = (tmp_path / "r" / "catalog.db").read_bytes()
    assert token.encode() not in db  # stored hashed


def test_channel_commands_upload_and_reindex(server: Any, tmp_path: Path) -> None:
    env = {"REPOPROXY_URL": server.url, "REPOPROXY_TOKEN": server.token("--admin", "--name", "a")}
    cli("channel", "create", "tools", "--description", "our tools", env=env)
    assert "tools\tpublic\tour tools" in cli("channel", "list", env=env).stdout
    dup = cli("channel", "create", "tools", env=env, check=False)
    assert dup.returncode == 1
    assert "already exists" in dup.stderr
    assert len(dup.stderr.strip().splitlines()) == 1

    files = [build_package(PackageSpec("tool", f"1.{i}"), tmp_path) for i in range(3)]
    out = cli("upload", *map(str, files), "--channel", "tools", env=env)
    assert "uploaded 3 file(s)" in out.stdout
    again = cli("upload", str(files[0]), "--channel", "tools", env=env, check=False)
    assert again.returncode == 1
    assert "already exists" in again.stderr
    cli("upload", str(files[0]), "--channel", "tools", "--skip-existing", env=env)
    repodata = requests.get(f"{server.url}/tools/noarch/repodata.json", timeout=30).json()
    assert set(repodata["packages.conda"]) == {f.name for f in files}

    # a file removed behind the server's back disappears on reindex
    (server.root / "channels" / "tools" / "noarch" / files[0].name).unlink()
    cli("reindex", "tools", env=env)
    repodata = requests.get(f"{server.url}/tools/noarch/repodata.json", timeout=30).json()
    assert set(repodata["packages.conda"]) == {f.name for f in files[1:]}

    assert '"name": "tools"' in cli("channel", "show", "tools", env=env).stdout
    cli("channel", "remove", "tools", "--yes", env=env)
    assert "tools" not in cli("channel", "list", env=env).stdout


def test_client_errors_are_one_line(tmp_path: Path) -> None:
    out = cli("channel", "list", env={"REPOPROXY_URL": "http://127.0.0.1:9"}, check=False)
    assert out.returncode == 1
    assert out.stderr.strip().startswith("Error: cannot reach")
    assert len(out.stderr.strip().splitlines()) == 1


def test_import_directory_uses_the_pipeline(tmp_path: Path) -> None:
    src = tmp_path / "src"
    build_many(src / "noarch", 40)
    build_package(PackageSpec("plat", "1.0", subdir="linux-64"), src / "linux-64", "tar.bz2")
    (src / "noarch" / "junk-1.0-0.conda").write_bytes(b"not a package")
    root = tmp_path / "r"
    out = cli("import", str(src), "--channel", "imp", "--create", "--root", str(root),
              check=False)
    assert out.returncode == 1  # one file was refused
    assert "41 imported, 0 already present, 1 refused" in out.stdout
    assert "junk-1.0-0.conda" in out.stderr
    import json

    noarch = json.loads((root / "channels/imp/noarch/repodata.json").read_text())
    assert len(noarch["packages.conda"]) == 40
    linux = json.loads((root / "channels/imp/linux-64/repodata.json").read_text())
    assert list(linux["packages"]) == ["plat-1.0-0.tar.bz2"]
    again = cli("import", str(src), "--channel", "imp", "--root", str(root), check=False)
    assert "0 imported, 41 already present, 1 refused" in again.stdout


def test_import_link_shares_the_files_and_indexes_the_same(tmp_path: Path) -> None:
    import json

    src = tmp_path / "src"
    build_many(src / "noarch", 20)
    (src / "noarch" / "junk-1.0-0.conda").write_bytes(b"not a package")
    (src / "noarch" / "notes.conda").write_bytes(b"no package name: skipped, not refused")
    copied, linked = tmp_path / "copied", tmp_path / "linked"
    cli("import", str(src), "--channel", "imp", "--create", "--root", str(copied), check=False)
    out = cli("import", str(src), "--channel", "imp", "--create", "--root", str(linked),
              "--link", check=False)
    assert out.returncode == 1  # a refused file is refused as with a copy
    assert "20 imported, 0 already present, 1 refused" in out.stdout

    def records(root: Path) -> dict[str, object]:
        data = json.loads((root / "channels/imp/noarch/repodata.json").read_text())
        return {fn: {k: v for k, v in r.items() if k != "indexed_timestamp"}
                for fn, r in data["packages.conda"].items()}

    assert records(linked) == records(copied)
    for stored in (linked / "channels/imp/noarch").glob("*.conda"):
        assert stored.stat().st_ino == (src / "noarch" / stored.name).stat().st_ino
    for stored in (copied / "channels/imp/noarch").glob("*.conda"):
        assert stored.stat().st_ino != (src / "noarch" / stored.name).stat().st_ino
    assert not [p for p in (linked / "tmp").iterdir() if p.is_file()]  # no link left behind


def test_serve_refuses_bad_configuration_with_one_line(tmp_path: Path) -> None:
    out = cli("serve", "--root", str(tmp_path / "r"), env={"REPOPROXY_PORT": "http"},
              check=False)
    assert out.returncode == 1
    lines = [line for line in out.stderr.splitlines() if line.startswith("Error")]
    assert lines == ["Error: repoproxy.port: invalid value 'http' (invalid literal for int() "
                     "with base 10: 'http')"]


def test_serve_with_ini_file(tmp_path: Path) -> None:
    from repoproxy.testing.fixtures import free_port

    port = free_port()
    ini = tmp_path / "dev.ini"
    ini.write_text(
        "[app:main]\nuse = egg:repoproxy\nrepoproxy.root = %(here)s/root\n"
        "repoproxy.index_max_age = 7\n\n"
        f"[server:main]\nuse = egg:waitress#main\nhost = 127.0.0.1\nport = {port}\n"
    )
    base = {k: v for k, v in os.environ.items() if not k.startswith("REPOPROXY_")}
    proc = subprocess.Popen([sys.executable, "-m", "repoproxy", "serve", "-c", str(ini)],
                            env=base, stderr=subprocess.PIPE, text=True)
    try:
        import time

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                r = requests.get(f"http://127.0.0.1:{port}/-/health", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        assert r.json()["status"] == "ok"
        assert (tmp_path / "root" / "catalog.db").exists()
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert "plugin repoproxy.builtin.tokenauth" in err
    assert '"GET /-/health" 200' in err


def test_privacy_members_and_whoami_commands(server: Any) -> None:
    admin = server.token("--admin", "--name", "a")
    env = {"REPOPROXY_URL": server.url, "REPOPROXY_TOKEN": admin}
    cli("channel", "create", "locked", env=env)
    assert "locked is now private" in cli("channel", "lock", "locked", env=env).stdout
    assert requests.get(f"{server.url}/locked/noarch/repodata.json", timeout=10).status_code \
        == 401
    cli("channel", "soft-lock", "locked", env=env)
    r = subprocess.run([sys.executable, "-m", "repoproxy", "user", "add", "una", "--root",
                        str(server.root), "--password-stdin"], input="una-password\n",
                       text=True, capture_output=True, timeout=60, check=True)
    assert "user una added" in r.stdout
    cli("channel", "member", "add", "locked", "una", "--role", "owner", env=env)
    assert "una\towner" in cli("channel", "member", "list", "locked", env=env).stdout
    cli("channel", "unlock", "locked", env=env)
    who = cli("whoami", env=env).stdout
    assert '"role": "admin"' in who
    assert '"locked": "manage"' in who
    made = cli("token", "create", "--name", "svc", "--token-channels", "locked",
               "--permission", "write", env=env).stdout.strip()
    assert made.startswith("rp-")
    listed = cli("token", "list", env=env).stdout
    assert '"name": "svc"' in listed
    assert made not in listed
