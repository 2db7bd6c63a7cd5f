"""py-rattler opens hundreds of downloads at once: the server must serve them all."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any

import pytest
import requests

from repoproxy.testing.packages import build_many

pytestmark = pytest.mark.e2e


def test_hundreds_of_parallel_downloads(server_factory: Any, tmp_path: Path) -> None:
    import subprocess
    import sys

    src = tmp_path / "src" / "noarch"
    files = build_many(src, 60)
    root = tmp_path / "root"
    subprocess.run([sys.executable, "-m", "repoproxy", "import", str(src.parent), "--channel",
                    "par", "--create", "--root", str(root)], check=True, capture_output=True,
                   timeout=300)
    srv = server_factory(root, REPOPROXY_LOG_REQUESTS="false")
    expected = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
    names = sorted(expected) * 5  # 300 concurrent requests, each its own connection
    results: dict[int, str] = {}
    start = threading.Barrier(len(names), timeout=60)

    def fetch(i: int, name: str) -> None:
        try:
            start.wait()
            r = requests.get(f"{srv.url}/par/noarch/{name}", timeout=120)
            ok = r.status_code == 200 and hashlib.sha256(r.content).hexdigest() == expected[name]
            results[i] = "ok" if ok else f"{r.status_code}"
        except Exception as e:  # recorded, asserted below
            results[i] = repr(e)

    threads = [threading.Thread(target=fetch, args=(i, n)) for i, n in enumerate(names)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    failures = {i: r for i, r in results.items() if r != "ok"}
    assert len(results) == len(names)
    assert not failures, list(failures.values())[:5]
    assert requests.get(f"{srv.url}/-/health", timeout=10).json()["status"] == "ok"
