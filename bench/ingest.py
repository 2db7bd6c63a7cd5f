"""Bulk ingest: `repoproxy import` vs py-rattler's `rattler.index` (and conda-index where it
imports) on the same generated packages; and upload-to-visible latency in a big channel.

    python bench/ingest.py [--sizes 1000 5000] [--repeat 3]

Prints medians and ratios (ours / theirs; below 1 means repoproxy is faster). Both indexers
run as subprocesses and write repodata.json, .zst and shards.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).parent))
from _common import RATTLER_INDEX, clean_env, fmt_ratio, median, python, run

from repoproxy.testing.packages import PackageSpec, build_many, build_package
from repoproxy.testing.server import RunningServer, free_port

ENV: dict[str, str] = {}


def bench_import(src: Path, work: Path, repeat: int) -> float:
    times = []
    for i in range(repeat):
        root = work / f"root-{i}"
        start = time.perf_counter()
        run([python(), "-m", "repoproxy", "import", str(src), "--channel", "bench", "--create",
             "--root", str(root)], env={**clean_env(), **ENV})
        times.append(time.perf_counter() - start)
        shutil.rmtree(root)
    return median(times)


def bench_rattler(src: Path, work: Path, repeat: int) -> float:
    times = []
    for i in range(repeat):
        copy = work / f"rattler-{i}"
        shutil.copytree(src, copy)
        start = time.perf_counter()
        run([python(), "-c", RATTLER_INDEX, str(copy)])
        times.append(time.perf_counter() - start)
        shutil.rmtree(copy)
    return median(times)


def bench_conda_index(src: Path, work: Path, repeat: int) -> float | None:
    try:
        import conda_index  # noqa: F401
    except ImportError:
        return None
    times = []
    for i in range(repeat):
        copy = work / f"ci-{i}"
        shutil.copytree(src, copy)
        start = time.perf_counter()
        run([python(), "-m", "conda_index", "--zst", str(copy)])
        times.append(time.perf_counter() - start)
        shutil.rmtree(copy)
    return median(times)


def bench_visible(src: Path, work: Path, repeat: int) -> float:
    """Seconds from starting an upload to seeing the file in repodata.json, channel of N."""
    root = work / "served"
    run([python(), "-m", "repoproxy", "import", str(src), "--channel", "bench", "--create",
         "--root", str(root)], env={**clean_env(), **ENV})
    srv = RunningServer(root, free_port(), work / "server.log", {**clean_env(), **ENV}).start()
    try:
        token = srv.token("--admin", "--name", "bench")
        times = []
        for i in range(repeat):
            path = build_package(PackageSpec("fresh", f"9.{i}"), work)
            data = path.read_bytes()
            start = time.perf_counter()
            r = requests.post(
                f"{srv.url}/api/v1/upload/bench", data=data, timeout=120,
                headers={"Authorization": f"Bearer {token}", "X-File-Name": path.name,
                         "X-File-SHA256": hashlib.sha256(data).hexdigest()})
            r.raise_for_status()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                rd = requests.get(f"{srv.url}/bench/noarch/repodata.json", timeout=30).json()
                if path.name in rd["packages.conda"]:
                    break
            times.append(time.perf_counter() - start)
        return median(times)
    finally:
        srv.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--block", default="",
                    help="plugins to disable for repoproxy, e.g. 'repoproxy_sbom' (core only)")
    args = ap.parse_args()
    if args.block:
        ENV["REPOPROXY_PLUGINS__BLOCK"] = args.block
        print(f"plugins blocked: {args.block}")
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        work = Path(tmp)
        for n in args.sizes:
            src = work / f"src-{n}" / "noarch"
            src.mkdir(parents=True)
            build_many(src, n)
            ours = bench_import(src.parent, work, args.repeat)
            theirs = bench_rattler(src.parent, work, args.repeat)
            ci = bench_conda_index(src.parent, work, args.repeat)
            print(f"N={n}: repoproxy import {ours:.2f}s ({n / ours:.0f} files/s), "
                  f"rattler.index {theirs:.2f}s ({n / theirs:.0f} files/s), "
                  f"ratio ours/rattler {fmt_ratio(ours, theirs, higher_is_better=False)}")
            if ci is None:
                print(f"N={n}: conda-index not importable here; skipped")
            else:
                print(f"N={n}: conda-index {ci:.2f}s, ratio ours/conda-index "
                      f"{fmt_ratio(ours, ci, higher_is_better=False)}")
        n = max(args.sizes)
        latency = bench_visible(work / f"src-{n}", work, max(args.repeat, 5))
        print(f"upload-to-visible in a channel of {n}: median {latency * 1000:.0f} ms")


if __name__ == "__main__":
    main()
