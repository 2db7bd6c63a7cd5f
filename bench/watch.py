"""Watch folder: files per second from drop to visible in repodata, beside `repoproxy import`.

    python bench/watch.py [--files 1000] [--quiet 0.5] [--repeat 1]

The same generated packages go in four ways, each into a fresh root:

* `repoproxy import DIR` (offline, the bulk path), wall time of the command;
* a running `repoproxy serve`, files renamed into the watch folder (an atomic move-in needs
  no quiet time): from the first rename to the last file listed in repodata.json;
* the same server, files copied in (plain writes: each waits the quiet time);
* `repoproxy watch --once` on a folder filled beforehand (offline, like import).

Prints medians and files per second, the repodata builds and batches the server reports, and
the ratio of times watch/import (below 1 means the watch folder is faster).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).parent))
from _common import clean_env, compile_sources, fmt_ratio, median, python, run, serving_env

from repoproxy.testing.fixtures import RunningServer, free_port
from repoproxy.testing.packages import build_many

CH = "bench"


def bench_import(src: Path, work: Path, tag: str) -> float:
    root = work / f"import-{tag}"
    start = time.perf_counter()
    run([python(), "-m", "repoproxy", "import", str(src), "--channel", CH, "--create",
         "--root", str(root)])
    elapsed = time.perf_counter() - start
    shutil.rmtree(root)
    return elapsed


def _listed(url: str) -> int:
    r = requests.get(f"{url}/{CH}/noarch/repodata.json", timeout=60)
    if r.status_code != 200:
        return 0
    rd = r.json()
    return len(rd["packages"]) + len(rd["packages.conda"])


def bench_served(src: Path, work: Path, tag: str, quiet: float, mode: str
                 ) -> tuple[float, dict[str, Any]]:
    """Seconds from the first file dropped to all of them in repodata.json."""
    root = work / f"serve-{mode}-{tag}"
    # SBOMs queued, not built meanwhile, as `repoproxy import` (which this is compared with)
    # leaves them: built in the serving process they would compete with the ingest measured
    env = serving_env()
    env.update(REPOPROXY_WATCH__QUIET_SECONDS=str(quiet), REPOPROXY_WATCH__POLL_INTERVAL="0.2",
               REPOPROXY_LOG_REQUESTS="false")
    srv = RunningServer(root, free_port(), work / f"server-{mode}-{tag}.log", env).start()
    try:
        token = srv.token("--admin", "--name", "bench")
        auth = {"Authorization": f"Bearer {token}"}
        requests.post(f"{srv.url}/api/v1/channels", json={"name": CH}, headers=auth,
                      timeout=60).raise_for_status()
        folder = root / "watch" / CH
        folder.mkdir(parents=True, exist_ok=True)
        files = sorted(src.rglob("*.conda"))
        staging = root / "watch" / ".staging"  # same filesystem; hidden, so never watched
        if mode == "move":
            staging.mkdir()
            for path in files:
                shutil.copyfile(path, staging / path.name)
        n = len(files)
        start = time.perf_counter()
        for path in files:
            if mode == "move":
                os.replace(staging / path.name, folder / path.name)
            else:
                shutil.copyfile(path, folder / path.name)
        deadline = time.monotonic() + 600
        while _listed(srv.url) < n:
            if time.monotonic() > deadline:
                raise RuntimeError("the watch folder did not catch up within 600 s")
            time.sleep(0.02)
        elapsed = time.perf_counter() - start
        while True:  # the totals are saved just after the last batch is published
            report = requests.get(f"{srv.url}/api/v1/watch", headers=auth, timeout=60).json()
            if report["processed"] >= n or time.monotonic() > deadline:
                return elapsed, report
            time.sleep(0.05)
    finally:
        srv.stop()
        shutil.rmtree(root, ignore_errors=True)


def bench_once(src: Path, work: Path, tag: str, quiet: float) -> float:
    root = work / f"once-{tag}"
    folder = root / "watch" / CH
    folder.mkdir(parents=True)
    for path in sorted(src.rglob("*.conda")):
        shutil.copyfile(path, folder / path.name)
    env = clean_env()
    env.update(REPOPROXY_WATCH__QUIET_SECONDS=str(quiet), REPOPROXY_WATCH__CREATE_CHANNELS="1")
    time.sleep(quiet)  # the files are old enough: measure the ingest, not the wait
    start = time.perf_counter()
    subprocess.run([python(), "-m", "repoproxy", "watch", "--once", "--root", str(root)],
                   check=True, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - start
    shutil.rmtree(root)
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--quiet", type=float, default=0.5, help="repoproxy_watch.quiet_seconds")
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    compile_sources()
    n = args.files
    with tempfile.TemporaryDirectory(prefix="bench-watch-") as tmp:
        work = Path(tmp)
        src = work / "src" / "noarch"
        src.mkdir(parents=True)
        build_many(src, n)
        imports, moves, copies, onces = [], [], [], []
        reports: dict[str, dict[str, Any]] = {}
        for i in range(args.repeat):
            imports.append(bench_import(src.parent, work, str(i)))
            elapsed, reports["move"] = bench_served(src, work, str(i), args.quiet, "move")
            moves.append(elapsed)
            elapsed, reports["copy"] = bench_served(src, work, str(i), args.quiet, "copy")
            copies.append(elapsed)
            onces.append(bench_once(src, work, str(i), args.quiet))
        ours_import = median(imports)
        print(f"N={n}, cores={os.cpu_count()}, quiet={args.quiet}s, repeat={args.repeat}")
        print(f"repoproxy import (offline):      {ours_import:6.2f}s  "
              f"{n / ours_import:6.0f} files/s")
        for label, times, key in (("watch, serve, moved in:", moves, "move"),
                                  ("watch, serve, copied in:", copies, "copy")):
            t = median(times)
            r = reports[key]
            print(f"{label:32} {t:6.2f}s  {n / t:6.0f} files/s  drop->visible; "
                  f"{r['repodata_builds']} repodata builds, {r['batches']} batches; "
                  f"vs import {fmt_ratio(t, ours_import, higher_is_better=False)}")
        t = median(onces)
        print(f"{'repoproxy watch --once:':32} {t:6.2f}s  {n / t:6.0f} files/s  "
              f"vs import {fmt_ratio(t, ours_import, higher_is_better=False)}")


if __name__ == "__main__":
    main()
