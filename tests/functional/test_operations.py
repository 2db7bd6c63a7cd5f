"""The application layer's write operations: each leaves exactly one audit row, written in the
same transaction as its change; removing a channel leaves nothing a new channel of the same
name could inherit.

Everything runs for real: the WSGI app with the first-party plugins, SQLite, files; the CLI
through click's runner on the same root.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from repoproxy_cve import plugin as cve_plugin
from repoproxy_policy import ops as policy_ops

from repoproxy.domain import channels, members, packages, tokens, users
from repoproxy.models import Identity
from repoproxy.storage.accounts import Accounts
from repoproxy.testing.fixtures import make_token, upload_raw
from repoproxy.testing.packages import PackageSpec, build_package

ADMIN = "token:admin"


def entries(services: Any) -> list[dict[str, Any]]:
    return Accounts(services.db()).audit_entries()


class AuditWatch:
    """What audit rows an action added."""

    def __init__(self, services: Any) -> None:
        self.services = services
        self.seen = len(entries(services))

    def new(self) -> list[tuple[str, str, str | None, str | None]]:
        rows = entries(self.services)[self.seen:]
        self.seen += len(rows)
        return [(r["actor"], r["action"], r["channel"], r["target"]) for r in rows]


@pytest.fixture
def audit(services: Any) -> AuditWatch:
    return AuditWatch(services)


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def _cli(root: Path, *args: str, stdin: str | None = None) -> str:
    from repoproxy.cli import build_cli

    out = CliRunner().invoke(build_cli(), [*args, "--root", str(root)], input=stdin)
    assert out.exit_code == 0, out.output
    return out.output


# --- every write operation, one audit row ---------------------------------------------------
def test_api_write_operations_leave_exactly_one_audit_row_each(
        testapp: Any, services: Any, admin_headers: dict[str, str], audit: AuditWatch,
        pkgdir: Path) -> None:
    h = admin_headers
    users.add_user(services, "ann", "ann-password")
    audit.new()

    testapp.post_json("/api/v1/channels", {"name": "ops", "privacy": "private"}, headers=h,
                      status=201)
    assert audit.new() == [(ADMIN, "channel.create", "ops", None)]
    testapp.patch_json("/api/v1/channels/ops", {"privacy": "public"}, headers=h)
    assert audit.new() == [(ADMIN, "channel.privacy", "ops", None)]
    testapp.patch_json("/api/v1/channels/ops", {"description": "ours"}, headers=h)
    assert audit.new() == [(ADMIN, "channel.update", "ops", None)]

    testapp.post_json("/api/v1/channels/ops/members", {"user": "ann"}, headers=h, status=201)
    assert audit.new() == [(ADMIN, "member.add", "ops", "ann")]
    testapp.delete("/api/v1/channels/ops/members/ann", headers=h)
    assert audit.new() == [(ADMIN, "member.remove", "ops", "ann")]

    made = testapp.post_json("/api/v1/tokens", {"name": "ci", "channels": ["ops"]}, headers=h,
                             status=201).json
    assert audit.new() == [(ADMIN, "token.create", "ops", made["id"])]
    testapp.patch_json(f"/api/v1/tokens/{made['id']}", {"permission": "write"}, headers=h)
    assert audit.new() == [(ADMIN, "token.edit", "ops", made["id"])]
    testapp.delete(f"/api/v1/tokens/{made['id']}", headers=h)
    assert audit.new() == [(ADMIN, "token.revoke", "ops", made["id"])]

    # the three upload forms
    a = build_package(PackageSpec("alpha", "1.0"), pkgdir)
    upload_raw(testapp, "ops", a, h)
    assert audit.new() == [(ADMIN, "package.upload", "ops", f"ops/noarch/{a.name}")]
    b = build_package(PackageSpec("alpha", "2.0"), pkgdir)
    testapp.post(f"/api/channels/ops/upload/{b.name}", b.read_bytes(), headers=h, status=201)
    assert audit.new() == [(ADMIN, "package.upload", "ops", f"ops/noarch/{b.name}")]
    c = build_package(PackageSpec("beta", "1.0"), pkgdir)
    testapp.put(f"/ops/noarch/{c.name}", c.read_bytes(), headers=h, status=201)
    assert audit.new() == [(ADMIN, "package.upload", "ops", f"ops/noarch/{c.name}")]

    testapp.delete(f"/api/v1/delete/ops/noarch/{c.name}", headers=h)
    assert audit.new() == [(ADMIN, "package.delete", "ops", f"ops/noarch/{c.name}")]
    # a whole package (two files): one row naming both
    gone = testapp.delete("/api/channels/ops/artifacts/conda/alpha", headers=h).json
    assert sorted(gone["deleted"]) == sorted([f"ops/noarch/{a.name}", f"ops/noarch/{b.name}"])
    assert audit.new() == [(ADMIN, "package.remove", "ops", "alpha")]
    row = entries(services)[-1]
    assert row["details"]["files"] == sorted(gone["deleted"])

    testapp.post("/api/v1/reindex/ops/noarch", headers=h)
    assert audit.new() == [(ADMIN, "channel.reindex", "ops", "noarch")]

    # the policy plugin's operations
    pol = testapp.post_json("/api/v1/policies", {"name": "p", "platform_not": "win-32"},
                            headers=h, status=201).json
    pid = str(pol["id"])
    assert audit.new() == [(ADMIN, "policy.create", None, pid)]
    testapp.patch_json(f"/api/v1/policies/{pid}", {"description": "d"}, headers=h)
    assert audit.new() == [(ADMIN, "policy.edit", None, pid)]
    testapp.post_json(f"/api/v1/policies/{pid}/assign", {"channel": "ops"}, headers=h)
    assert audit.new() == [(ADMIN, "policy.assign", "ops", pid)]
    testapp.post_json(f"/api/v1/policies/{pid}/unassign", {"channel": "ops"}, headers=h)
    assert audit.new() == [(ADMIN, "policy.unassign", "ops", pid)]
    testapp.delete(f"/api/v1/policies/{pid}", headers=h)
    assert audit.new() == [(ADMIN, "policy.delete", None, pid)]

    testapp.delete("/api/v1/channels/ops", headers=h)
    assert audit.new() == [(ADMIN, "channel.delete", "ops", None)]


def test_refused_writes_leave_no_audit_row(testapp: Any, make_channel: Any,
                                           admin_headers: dict[str, str],
                                           audit: AuditWatch, pkgdir: Path) -> None:
    make_channel("ref")
    path = build_package(PackageSpec("gamma", "1.0"), pkgdir)
    upload_raw(testapp, "ref", path, admin_headers)
    audit.new()
    testapp.post_json("/api/v1/channels", {"name": "ref"}, headers=admin_headers, status=409)
    upload_raw(testapp, "ref", path, admin_headers, status=409)  # a duplicate
    testapp.delete("/api/v1/delete/ref/noarch/none-1-0.conda", headers=admin_headers,
                   status=404)
    testapp.post_json("/api/v1/channels/ref/members", {"user": "nobody"},
                      headers=admin_headers, status=404)
    testapp.post("/api/v1/upload/ref", b"x", status=401,
                 headers={"X-File-Name": "a-1-0.conda"})
    assert audit.new() == []


def test_cli_write_operations_leave_exactly_one_audit_row_each(
        services: Any, root: Path, audit: AuditWatch, pkgdir: Path, tmp_path: Path) -> None:
    _cli(root, "user", "add", "zed", "--password-stdin", stdin="zed-password\n")
    assert audit.new() == [("cli", "user.add", None, "zed")]
    _cli(root, "user", "passwd", "zed", "--password-stdin", stdin="zed-password-2\n")
    assert audit.new() == [("cli", "user.password", None, "zed")]
    secret = _cli(root, "token", "create", "--user-id", "zed", "--name", "z").strip()
    (row,) = audit.new()
    assert row[:3] == ("cli", "token.create", None)
    assert secret not in json.dumps(entries(services))

    src = tmp_path / "src"
    p1 = build_package(PackageSpec("imp", "1.0"), src)
    p2 = build_package(PackageSpec("imp", "2.0"), src)
    _cli(root, "import", str(src), "--channel", "imp", "--create", "--workers", "1")
    assert sorted(audit.new()) == sorted([
        ("cli", "channel.create", "imp", None),
        ("cli", "package.upload", "imp", f"imp/noarch/{p1.name}"),
        ("cli", "package.upload", "imp", f"imp/noarch/{p2.name}"),
    ])

    made = json.loads(_cli(root, "policy", "--create", "--name", "cp", "--channel-name", "imp",
                           "--platform-not", "win-32"))
    assert audit.new() == [("cli", "policy.create", "imp", str(made["id"]))]
    _cli(root, "policy", "--delete", str(made["id"]))
    assert audit.new() == [("cli", "policy.delete", None, str(made["id"]))]

    curated = tmp_path / "c.json"
    curated.write_text(json.dumps({"format": "repoproxy-cve-v1", "cves": [
        {"id": "CVE-2024-0009", "score": 5.0, "description": "x",
         "affected": [{"name": "imp", "versions": "<2"}]}]}))
    _cli(root, "cve", "import", str(curated))
    assert audit.new() == [("cli", "cve.import", None, "c.json")]
    _cli(root, "cve", "status", "CVE-2024-0009", "mitigated")
    assert audit.new() == [("cli", "cve.status", None, "CVE-2024-0009")]
    assert entries(services)[-1]["details"] == {"old": "uncurated", "new": "mitigated"}

    _cli(root, "user", "remove", "zed")
    assert audit.new() == [("cli", "user.remove", None, "zed")]


# --- atomicity: a failure before commit leaves neither the change nor its row ----------------
class Boom(Exception):
    pass


@pytest.fixture
def failing_audit(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Accounts.audit writes its row, then the transaction fails before COMMIT."""
    written: list[str] = []
    original = Accounts.audit

    def audit_then_fail(self: Accounts, actor: str, action: str, *args: Any,
                        **kwargs: Any) -> None:
        original(self, actor, action, *args, **kwargs)
        written.append(action)
        raise Boom(action)

    monkeypatch.setattr(Accounts, "audit", audit_then_fail)
    return written


def _state(services: Any, root: Path) -> Any:
    """Everything an operation could change: core tables, audit, channel files."""
    db = services.db()
    tables = {t: db.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall()  # noqa: S608
              for t in ("channels", "packages", "members", "tokens", "users", "audit",
                        "policies", "policy_channels", "cves")}
    files = sorted((str(p.relative_to(root)), p.stat().st_ino)
                   for p in (root / "channels").rglob("*.conda"))
    return tables, files


OPERATIONS: dict[str, Callable[[Any, Path, Path], Any]] = {
    "create_channel": lambda s, old, new: channels.create_channel(s, "new", actor="t"),
    "create_channel_as_user": lambda s, old, new: channels.create_channel(
        s, "new", actor=Identity("ann", "user")),
    "update_channel": lambda s, old, new: channels.update_channel(s, "atom", privacy="private"),
    "remove_channel": lambda s, old, new: channels.remove_channel(s, "atom"),
    "add_member": lambda s, old, new: members.add_member(s, "atom", "ann", "owner"),
    "create_token": lambda s, old, new: tokens.create_token(s, name="n", channels=["atom"]),
    "revoke_token": lambda s, old, new: tokens.revoke_token(
        s, tokens.visible_tokens(s, "cli")[0].id),
    "add_user": lambda s, old, new: users.add_user(s, "bob", "bob-password"),
    "upload": lambda s, old, new: packages.upload_file(s, "atom", new),
    "replace": lambda s, old, new: packages.upload_file(s, "atom", old, force=True),
    "delete_file": lambda s, old, new: packages.delete_file(s, "atom", "noarch", old.name),
    "delete_package": lambda s, old, new: packages.delete_package(s, "atom", "atomic"),
    "policy_create": lambda s, old, new: policy_ops.create(
        s, {"name": "pp", "channel_name": "atom"}),
    "cve_status": lambda s, old, new: cve_plugin.set_status(s, "CVE-2024-0009", "active"),
}


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_a_failure_before_commit_leaves_neither_the_change_nor_its_audit_row(
        operation: str, services: Any, root: Path, pkgdir: Path,
        request: pytest.FixtureRequest) -> None:
    channels.create_channel(services, "atom")
    users.add_user(services, "ann", "ann-password")
    tokens.create_token(services, name="t", channels=["atom"])
    old = build_package(PackageSpec("atomic", "1.0"), pkgdir)
    new = build_package(PackageSpec("atomic", "2.0"), pkgdir)
    packages.upload_file(services, "atom", old)
    curated = pkgdir / "c.json"
    curated.write_text(json.dumps({"format": "repoproxy-cve-v1", "cves": [
        {"id": "CVE-2024-0009", "score": 5.0, "description": "x",
         "affected": [{"name": "atomic", "versions": "<2"}]}]}))
    cve_plugin.import_path(services, curated)
    before = _state(services, root)
    written = request.getfixturevalue("failing_audit")

    with pytest.raises(Boom):
        OPERATIONS[operation](services, old, new)
    assert len(written) == 1  # the change and its row were both written, then rolled back
    assert _state(services, root) == before
    # and the channel still serves what it served
    assert (root / "channels" / "atom" / "noarch" / "repodata.json").exists()


# --- removing a channel: the same name starts empty ------------------------------------------
def test_a_removed_channel_leaves_nothing_to_a_new_one_of_the_same_name(
        testapp: Any, services: Any, admin_headers: dict[str, str], root: Path,
        pkgdir: Path) -> None:
    from repoproxy_stats.counter import buffer_for

    h = admin_headers
    users.add_user(services, "ann", "ann-password")
    testapp.post_json("/api/v1/channels", {"name": "other"}, headers=h, status=201)
    testapp.post_json("/api/v1/channels", {"name": "reborn", "privacy": "private"},
                      headers=h, status=201)
    testapp.post_json("/api/v1/channels/reborn/members", {"user": "ann", "role": "owner"},
                      headers=h, status=201)
    testapp.post_json("/api/v1/policies", {"name": "nowin", "channel_name": "reborn",
                                           "platform_not": "win-64"}, headers=h, status=201)
    path = build_package(PackageSpec("kept", "1.0"), pkgdir)
    upload_raw(testapp, "reborn", path, h)
    only = make_token(services, "only", channels=["reborn"])
    both = make_token(services, "both", channels=["reborn", "other"])
    testapp.get(f"/reborn/noarch/{path.name}", headers=h, status=200)
    buffer_for(services).flush()
    testapp.get(f"/reborn/noarch/{path.name}", headers=h, status=200)  # still buffered
    assert testapp.get("/api/v1/channels/reborn", headers=h).json["downloads"] == 2
    sbom_dir = root / "sbom" / "reborn"
    # SBOMs are queued at upload; asking for one builds and stores it
    testapp.get(f"/api/channels/reborn/sbom/noarch/{path.name}", headers=h, status=200)
    assert any(sbom_dir.rglob("*.cdx.json"))
    watch = root / "watch" / "reborn"
    watch.mkdir(parents=True)
    (watch / "waiting-1.0-0.conda").write_bytes(b"not yet")
    (root / "watch" / ".rejected" / "reborn").mkdir(parents=True)

    testapp.delete("/api/v1/channels/reborn", headers=h)
    testapp.post_json("/api/v1/channels", {"name": "reborn", "privacy": "private"}, headers=h,
                      status=201)

    details = testapp.get("/api/v1/channels/reborn", headers=h).json
    assert details["downloads"] == 0
    assert details["package_files"] == {"noarch": 0}
    assert testapp.get("/api/v1/channels/reborn/members", headers=h).json["members"] == []
    policies = testapp.get("/api/v1/policies", headers=h).json["policies"]
    assert [p["channels"] for p in policies if p["name"] == "nowin"] == [[]]
    assert not sbom_dir.exists()
    assert not watch.exists()
    assert not (root / "watch" / ".rejected" / "reborn").exists()
    testapp.get(f"/reborn/noarch/{path.name}", headers=h, status=404)
    # old grants do not carry over: ann, the one-channel token, the two-channel token
    testapp.get("/reborn/noarch/repodata.json", headers=_basic("ann", "ann-password"),
                status=404)
    r = testapp.get("/reborn/noarch/repodata.json",
                    headers={"Authorization": f"Bearer {only}"}, status=401)
    assert r.json["message"] == "token revoked"
    testapp.get("/reborn/noarch/repodata.json",
                headers={"Authorization": f"Bearer {both}"}, status=404)
    testapp.get("/other/noarch/repodata.json",
                headers={"Authorization": f"Bearer {both}"}, status=200)
    listed = {t["name"]: t for t in testapp.get("/api/v1/tokens", headers=h).json["tokens"]}
    assert listed["only"]["revoked"] is True
    assert listed["both"]["channels"] == ["other"]
    removal = [e for e in entries(services) if e["action"] == "channel.delete"]
    assert removal[-1]["details"]["files"] == 1
    assert len(removal[-1]["details"]["revoked_tokens"]) == 1
    assert len(removal[-1]["details"]["narrowed_tokens"]) == 1


def test_token_rules_live_in_the_operation(services: Any) -> None:
    """The CLI and the API share one token operation and its rules."""
    from repoproxy.errors import Forbidden, NotFound, RepoproxyError

    channels.create_channel(services, "rules", privacy="private")
    users.add_user(services, "ann", "ann-password")
    ann = Identity("ann", "user")
    with pytest.raises(Forbidden, match="admin"):
        tokens.create_token(services, actor=ann, name="x", admin=True)
    with pytest.raises(Forbidden, match="admin"):
        tokens.create_token(services, actor=ann, name="x", owner="root")
    with pytest.raises(NotFound):
        tokens.create_token(services, actor=ann, name="x", channels=["rules"])
    with pytest.raises(Forbidden, match="personal"):
        tokens.create_token(services, actor=Identity("bot", "predefined"), name="x")
    with pytest.raises(RepoproxyError, match="name"):
        tokens.create_token(services, name=" ", admin=True)
    with pytest.raises(NotFound, match="does not exist"):
        tokens.create_token(services, name="x", owner="nobody")
    members.add_member(services, "rules", "ann", "owner")
    owner = Identity("ann", "user", grants=Accounts(services.db()).grants_of("ann"))
    _, row = tokens.create_token(services, actor=owner, name="svc", channels=["rules"],
                                 access="write")
    assert (row.channels, str(row.access), row.owner) == (["rules"], "write", None)
    assert [t.id for t in tokens.visible_tokens(services, owner)] == [row.id]


def test_the_watch_folder_audits_as_watch(settings: dict[str, Any], tmp_path: Path) -> None:
    """A background face runs the same operations: a created channel and every file it takes
    in leave their rows, with the actor ``watch``."""
    from repoproxy_watch.config import WatchConfig
    from repoproxy_watch.worker import WatchWorker

    from repoproxy.domain.core import load_core

    core = load_core(dict(settings, **{"repoproxy_watch.create_channels": "true",
                                       "repoproxy_watch.quiet_seconds": "0.1",
                                       "repoproxy_watch.poll_interval": "0.05",
                                       "repoproxy_watch.batch_wait": "0.1",
                                       "repoproxy_watch.workers": "1"}), {})
    try:
        worker = WatchWorker(core, WatchConfig.from_settings(core.settings))
        a = build_package(PackageSpec("wa", "1.0"), worker.config.root / "dropped")
        b = build_package(PackageSpec("wb", "1.0"), worker.config.root / "dropped")
        assert worker.run(until_idle=True, timeout=60) is True
        rows = [(e["actor"], e["action"], e["channel"], e["target"]) for e in entries(core)]
        assert sorted(rows) == sorted([
            ("watch", "channel.create", "dropped", None),
            ("watch", "package.upload", "dropped", f"dropped/noarch/{a.name}"),
            ("watch", "package.upload", "dropped", f"dropped/noarch/{b.name}"),
        ])
    finally:
        core.close()
