"""Bulk ingest: `repoproxy import` vs py-rattler's `rattler.index` (and conda-index where it
imports) on the same generated packages; upload-to-visible in a big channel; and a burst of
uploads read by a poller that checks repodata.json, its .zst and the shard index agree.

    python bench/ingest.py [--sizes 1000 5000] [--big] [--repeat 3] [--burst 500]
                           [--skip-import] [--src DIR] [--sbom-backlog] [--serve-workers N]

``--big`` adds 50,000 files to the import comparison and to upload-to-visible (building the
files alone takes minutes; ``--sizes 50000 --skip-import`` measures upload-to-visible only).
Prints medians and ratios (ours / theirs; below 1 means repoproxy is faster), each round's
ratio and the load. `repoproxy import` runs as it copies by default and with ``--link``, and
``rattler.index``, interleaved; all run as subprocesses and write repodata.json, .zst and
shards.
Needs no test tooling: only repoproxy (with its ``repoproxy.testing`` helpers) and requests.

Upload-to-visible: from the start of an upload POST until both repodata.json and the shard
index (through the name's shard) on disk name the new file; a thread polls the served files
on disk while the upload runs (over HTTP an 18 MB repodata.json would take longer to fetch
than the publish).
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).parent))
from _common import (
    RATTLER_INDEX,
    clean_env,
    compile_sources,
    fmt_ratio,
    load,
    median,
    python,
    run,
)

from repoproxy.pipeline.repodata import SHARD_INDEX
from repoproxy.testing.packages import PackageSpec, build_many, build_package
from repoproxy.testing.server import RunningServer, free_port
from repoproxy.testing.visibility import Reader, View

ENV: dict[str, str] = {}
SBOM_BACKLOG = False
SERVE_WORKERS = 1


def import_cmd(src: Path, root: Path, workers: int | None = None,
               link: bool = False) -> list[str]:
    cmd = [python(), "-m", "repoproxy", "import", str(src), "--channel", "bench", "--create",
           "--root", str(root)]
    return cmd + (["--workers", str(workers)] if workers else []) + (["--link"] if link else [])


# No round's tree is deleted before the bench ends. This machine's ext4 runs without a
# journal, and then its inode allocator skips every inode freed in the last 60 s (360 s while
# its inode block is dirty), reading each one's block: right after a 5,000-file tree was
# removed, creating 5,000 files took 2.0-2.9 s instead of 0.13-0.18 s (perf: recently_deleted
# and find_inode_bit). An import creates one inode per file it copies, rattler.index none, so
# deleting the previous round's tree charged that kernel scan to the import alone.


def time_import(src: Path, root: Path, link: bool = False) -> float:
    start = time.perf_counter()
    run(import_cmd(src, root, link=link), env={**clean_env(), **ENV})
    return time.perf_counter() - start


def time_rattler(src: Path, copy: Path) -> float:
    shutil.copytree(src, copy)
    start = time.perf_counter()
    run([python(), "-c", RATTLER_INDEX, str(copy)])
    return time.perf_counter() - start


def bench_import_vs_rattler(src: Path, work: Path, repeat: int
                            ) -> tuple[float, float, float, list[float], list[float]]:
    """Medians of `repoproxy import` (copying, and with --link), and `rattler.index`, run
    interleaved (A, B, C, A, B, C...) so that all see the same load; with each round's ratios
    ours/rattler."""
    ours, linked, theirs, ratios, link_ratios = [], [], [], [], []
    for i in range(repeat):
        ours.append(time_import(src, work / f"root-{i}"))
        linked.append(time_import(src, work / f"root-link-{i}", link=True))
        theirs.append(time_rattler(src, work / f"rattler-{i}"))
        ratios.append(ours[-1] / theirs[-1])
        link_ratios.append(linked[-1] / theirs[-1])
    return median(ours), median(linked), median(theirs), ratios, link_ratios


def conda_index_available() -> bool:
    try:
        run([python(), "-c", "import conda_index"])
    except Exception:
        return False
    return True


def bench_conda_index(src: Path, work: Path, repeat: int) -> float:
    times = []
    for i in range(repeat):
        copy = work / f"ci-{i}"
        shutil.copytree(src, copy)
        start = time.perf_counter()
        run([python(), "-m", "conda_index", "--zst", str(copy)])
        times.append(time.perf_counter() - start)
    return median(times)


def disk_reader(root: Path, channel: str = "bench", subdir: str = "noarch") -> Reader:
    directory = root / "channels" / channel / subdir

    def fetch(name: str) -> bytes | None:
        try:
            return (directory / name).read_bytes()
        except FileNotFoundError:
            return None

    return Reader(fetch)


def _ident(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def visible_on_disk(root: Path, filename: str, name: str,
                    stop: threading.Event) -> float | None:
    """perf_counter time when repodata.json and the shard index on disk both name the file.

    A file is re-read only when its inode, mtime or size changed (every publish renames a new
    file in), so the poller costs the server next to nothing between publishes; the shard
    index is followed to the package name's shard only (as a client does: reading all shards
    of a 50,000-file channel took the poller longer than the publish).
    """
    directory = root / "channels" / "bench" / "noarch"
    needle = f'"{filename}"'.encode()
    reader = disk_reader(root)
    seen: dict[str, tuple[int, int, int] | None] = {}
    named = {"repodata.json": False, SHARD_INDEX: False}
    while not stop.is_set():
        for index in named:
            ident = _ident(directory / index)
            if ident is None or seen.get(index) == ident:
                continue
            seen[index] = ident
            if index == SHARD_INDEX:
                named[index] = filename in reader.name_files(name)
            else:
                try:
                    named[index] = needle in (directory / index).read_bytes()
                except FileNotFoundError:
                    named[index] = False
        if all(named.values()):
            return time.perf_counter()
        time.sleep(0.0005)
    return None


def serve(src: Path, work: Path, tag: str) -> tuple[RunningServer, str, Path]:
    root = work / f"served-{tag}"
    # set-up, not measured: linked, a 50,000-file channel is there in a fraction of the time
    run(import_cmd(src, root, link=True), env={**clean_env(), **ENV})
    env = {**clean_env(), **ENV, "REPOPROXY_LOG_REQUESTS": "false"}
    if not SBOM_BACKLOG:
        # the import queued one SBOM per file; the server's SBOM thread would build them all
        # during the measurement, competing with the publishes for the GIL
        env["REPOPROXY_SBOM__WORKER_INTERVAL"] = "86400"
    srv = RunningServer(root, free_port(), work / f"server-{tag}.log", env,
                        workers=SERVE_WORKERS).start()
    return srv, srv.token("--admin", "--name", "bench"), root


def post(srv: RunningServer, token: str, path: Path,
         session: requests.Session | None = None) -> float:
    data = path.read_bytes()
    start = time.perf_counter()
    r = (session or requests).post(
        f"{srv.url}/api/v1/upload/bench", data=data, timeout=300,
        headers={"Authorization": f"Bearer {token}", "X-File-Name": path.name,
                 "X-File-SHA256": hashlib.sha256(data).hexdigest(),
                 "Content-Type": "application/octet-stream"})
    r.raise_for_status()
    return time.perf_counter() - start


def bench_visible(src: Path, work: Path, n: int, repeat: int) -> tuple[float, float, float]:
    """Medians (s): upload-to-visible, the upload's answer, and visible at its slowest."""
    srv, token, root = serve(src, work, f"visible-{n}")
    try:
        session = requests.Session()
        post(srv, token, build_package(PackageSpec("warm", "1.0"), work / "fresh"), session)
        visible, answered = [], []
        for i in range(repeat):
            path = build_package(PackageSpec(f"fresh{i}", "9.0"), work / "fresh")
            stop = threading.Event()
            with ThreadPoolExecutor(1) as pool:
                seen = pool.submit(visible_on_disk, root, path.name, f"fresh{i}", stop)
                time.sleep(0.01)  # the poller is running
                start = time.perf_counter()
                answered.append(post(srv, token, path, session))
                try:
                    at = seen.result(timeout=60)
                finally:
                    stop.set()
            assert at is not None, f"{path.name} never became visible"
            visible.append(max(0.0, at - start))
        return median(visible), median(answered), max(visible)
    finally:
        srv.stop()


def bench_burst(src: Path, work: Path, uploads: int, uploaders: int = 4) -> None:
    """A burst of uploads while a reader polls the three indexes on disk."""
    srv, token, root = serve(src, work, "burst")
    paths = [build_package(PackageSpec(f"burst{i // 5}", f"1.{i % 5}"), work / "burst")
             for i in range(uploads)]
    done = threading.Event()
    polls: list[tuple[float, View]] = []
    answers: list[float] = []

    def read() -> None:
        reader = disk_reader(root)
        while not done.is_set():
            polls.append((time.perf_counter(), reader.view()))

    poller = threading.Thread(target=read)
    poller.start()
    start = time.perf_counter()
    try:
        with ThreadPoolExecutor(uploaders) as pool:
            answers = list(pool.map(lambda p: post(srv, token, p), paths))
    finally:
        done.set()
        poller.join()
        srv.stop()
    elapsed = time.perf_counter() - start
    # how long the views disagreed, each time they did
    windows, since = [], None
    for at, view in polls:
        if not view.agree() and since is None:
            since = at
        elif view.agree() and since is not None:
            windows.append(at - since)
            since = None
    back = sum(1 for _, v in polls if not v.ordered())
    # during a burst a publish is nearly always under way, so windows of disagreement chain
    # one publish into the next; per file: from the first poll whose shard index named it to
    # the first whose repodata.json did (what "disagree for longer than one publish" means
    # for a client)
    in_shards: dict[str, float] = {}
    in_json: dict[str, float] = {}
    for at, view in polls:
        for fn in view.shards:
            in_shards.setdefault(fn, at)
        for fn in view.json:
            in_json.setdefault(fn, at)
    lags = [in_json[fn] - at for fn, at in in_shards.items() if fn in in_json]
    print(f"burst of {uploads} uploads ({uploaders} clients) into {src.name}: {elapsed:.1f} s, "
          f"answer median {statistics.median(answers) * 1000:.0f} ms, "
          f"max {max(answers) * 1000:.0f} ms; {len(polls)} polls, "
          f"{sum(1 for _, v in polls if not v.agree())} saw the views differ "
          f"(longest run of such polls {max(windows, default=0) * 1000:.0f} ms); a file in the "
          f"shard index before repodata.json for at most {max(lags, default=0) * 1000:.0f} ms "
          f"(one publish is at most the slowest answer); {back} saw a view go back in time "
          f"({load()})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000])
    ap.add_argument("--big", action="store_true", help="add 50,000 files (takes long)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--visible-repeat", type=int, default=9)
    ap.add_argument("--burst", type=int, default=500, help="uploads in the burst (0: skip)")
    ap.add_argument("--sbom-backlog", action="store_true",
                    help="let the server build the imported files' SBOMs while measuring "
                         "uploads (by default its SBOM worker waits)")
    ap.add_argument("--serve-workers", type=int, default=1,
                    help="the server's --workers (N > 1: the SBOM worker has a process of its "
                         "own; see --sbom-backlog)")
    ap.add_argument("--src", type=Path, default=None,
                    help="reuse generated packages: DIR/src-N/noarch (made if absent)")
    ap.add_argument("--skip-import", action="store_true",
                    help="only upload-to-visible (and the burst): e.g. --sizes 50000 "
                         "--skip-import measures a big channel without three big imports")
    ap.add_argument("--block", default="",
                    help="plugins to disable for repoproxy, e.g. 'repoproxy_sbom' (core only)")
    args = ap.parse_args()
    compile_sources()
    global SBOM_BACKLOG, SERVE_WORKERS
    SBOM_BACKLOG = args.sbom_backlog
    SERVE_WORKERS = args.serve_workers
    sizes = sorted(set(args.sizes + ([50_000] if args.big else [])))
    if args.block:
        ENV["REPOPROXY_PLUGINS__BLOCK"] = args.block
        print(f"plugins blocked: {args.block}")
    ci = conda_index_available()
    if not ci:
        print("conda-index not importable here: not compared")
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        work = Path(tmp)
        sources: dict[int, Path] = {}
        for n in sizes:
            src = (args.src or work) / f"src-{n}" / "noarch"
            if not (src.is_dir() and len(list(src.iterdir())) == n):
                src.mkdir(parents=True, exist_ok=True)
                build_many(src, n)
            sources[n] = src.parent
            if args.skip_import:
                continue
            ours, linked, theirs, ratios, link_ratios = bench_import_vs_rattler(
                src.parent, work / f"import-{n}", args.repeat)
            print(f"N={n}: repoproxy import {ours:.2f}s ({n / ours:.0f} files/s), "
                  f"with --link {linked:.2f}s ({n / linked:.0f} files/s), "
                  f"rattler.index {theirs:.2f}s ({n / theirs:.0f} files/s); "
                  f"ratio ours/rattler {fmt_ratio(ours, theirs, higher_is_better=False)} "
                  f"(rounds {', '.join(f'{r:.2f}' for r in ratios)}), with --link "
                  f"{fmt_ratio(linked, theirs, higher_is_better=False)} "
                  f"(rounds {', '.join(f'{r:.2f}' for r in link_ratios)}) ({load()})",
                  flush=True)
            if ci:
                c = bench_conda_index(src.parent, work / f"import-{n}", args.repeat)
                print(f"N={n}: conda-index {c:.2f}s, ratio ours/conda-index "
                      f"{fmt_ratio(ours, c, higher_is_better=False)} ({load()})", flush=True)
        for n in [s for s in sizes if s >= 5000] or [max(sizes)]:
            vis, answer, worst = bench_visible(sources[n], work, n, args.visible_repeat)
            print(f"upload-to-visible in a channel of {n}: median {vis * 1000:.0f} ms "
                  f"(slowest {worst * 1000:.0f} ms); upload answer median "
                  f"{answer * 1000:.0f} ms ({load()})", flush=True)
        if args.burst:
            bench_burst(sources[min(sizes)], work, args.burst)


if __name__ == "__main__":
    main()
