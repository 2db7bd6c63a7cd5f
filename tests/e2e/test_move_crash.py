"""Crash safety of a move: SIGKILL the process at every step of a move (``REPOPROXY_FAULT_AT``)
and check, after the start-up recovery a restarted server runs, that the file is served from
at least one channel and the catalog agrees with the files.

The move runs in a subprocess on a real root (the application layer, as ``serve`` would run
it); the fault hook kills it with SIGKILL: no ``finally``, no rollback but SQLite's own.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from webtest import TestApp

from repoproxy.domain import channels
from repoproxy.domain.core import load_core
from repoproxy.domain.packages import upload_file
from repoproxy.domain.recovery import recover
from repoproxy.names import is_package_filename
from repoproxy.pipeline.faults import ENV
from repoproxy.testing.packages import PackageSpec, build_package
from repoproxy.web.app import make_app

pytestmark = pytest.mark.e2e

#: every step of a move, in order (see repoproxy.domain.transfers)
STEPS = ["move:linked", "commit:placed", "move:rows-deleted", "move:unlinked",
         "move:committed", "move:published"]

MOVE = """
from repoproxy.domain.core import load_core
from repoproxy.domain.transfers import Spec, move_package
move_package(load_core(), Spec.parse("main::tool"), "prod/rc")
"""


def _env(root: Path, step: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPOPROXY_")}
    env["REPOPROXY_ROOT"] = str(root)
    if step:
        env[ENV] = step
    return env


def _served(app: TestApp, channel: str, subdir: str, filename: str, sha: str) -> bool:
    listed = app.get(f"/{channel}/{subdir}/repodata.json").json["packages.conda"]
    if filename not in listed:
        return False
    assert listed[filename]["sha256"] == sha
    body = app.get(f"/{channel}/{subdir}/{filename}").body
    assert hashlib.sha256(body).hexdigest() == sha
    return True


def _consistent(core: Any, channel: str, subdir: str) -> None:
    """Catalog rows, files on disk and repodata.json name the same files."""
    rows = {r.filename: r.sha256 for r in core.catalog().packages(channel, subdir=subdir)}
    directory = core.store.subdir_dir(channel, subdir)
    on_disk = {p.name for p in directory.iterdir() if p.is_file()
               and is_package_filename(p.name)} if directory.is_dir() else set()
    assert set(rows) == on_disk, (channel, rows, on_disk)
    for name in on_disk:
        assert hashlib.sha256((directory / name).read_bytes()).hexdigest() == rows[name]
    repodata = json.loads((directory / "repodata.json").read_text())
    assert set(repodata["packages.conda"]) == set(rows)
    assert not [p.name for p in directory.iterdir() if p.name.startswith((".bak-", ".tmp-"))]


@pytest.mark.parametrize("step", [*STEPS, None], ids=[*STEPS, "no-fault"])
def test_sigkill_at_every_step_of_a_move(tmp_path: Path, step: str | None) -> None:
    root = tmp_path / "root"
    pkg = build_package(PackageSpec("tool", "1.0"), tmp_path, "conda")
    sha = hashlib.sha256(pkg.read_bytes()).hexdigest()
    core = load_core({"repoproxy.root": str(root)}, _env(root, None))
    for name in ("main", "prod", "prod/rc"):
        channels.create_channel(core, name)
    upload_file(core, "main", pkg)
    core.close()

    done = subprocess.run([sys.executable, "-c", MOVE], env=_env(root, step),
                          capture_output=True, timeout=120)
    if step is None:
        assert done.returncode == 0, done.stderr.decode()
    else:
        assert done.returncode == -9, f"step {step} was never reached: {done.stderr.decode()}"

    # what `repoproxy serve` does first on the same root, then the served view of it
    core = load_core({"repoproxy.root": str(root)}, _env(root, None))
    recover(core)
    app = TestApp(make_app(core))
    in_origin = _served(app, "main", "noarch", pkg.name, sha)
    in_destination = _served(app, "prod/rc", "noarch", pkg.name, sha)
    assert in_origin or in_destination, f"after a kill at {step}, the file is nowhere"
    for channel in ("main", "prod/rc"):
        _consistent(core, channel, "noarch")
    assert list(core.store.tmp_dir.iterdir()) == []
    if step in (None, "move:committed", "move:published"):
        assert in_destination
        assert not in_origin
    if step in ("move:linked", "commit:placed", "move:rows-deleted"):
        assert in_origin  # nothing committed: the origin still has it
    core.close()
