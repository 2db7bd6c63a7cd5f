"""Memory: the RSS of one serving process with a big channel, and what a 1 GiB upload adds.

    python bench/memory.py [--files 50000] [--upload-mib 1024] [--work DIR] [--block PLUGINS]
                           [--malloc-arenas N]

Builds ``--files`` small packages, imports them into one channel (``repoproxy import``), starts
``repoproxy serve --workers 1`` and reads its RSS (``/proc/PID/status``) idle, after serving
the channel's indexes, shard index, 500 shards, 200 package files and the file listing API
(each reading 3 s after its step: the server's heap trimmer looks every 2 s), then while a
package of 1 MiB (the index rebuild of the big subdir that any upload causes) and then one of
``--upload-mib`` MiB (random bytes: incompressible) are streamed to the upload API (peak
sampled every 20 ms). Goals (issue 11): <= 150 MB serving the channel; the upload adds
<= 20 MB. ``--work DIR`` keeps the packages and the imported root there and reuses them on
the next run (building and importing 50,000 files takes minutes).
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

import msgpack
import requests
import zstandard

sys.path.insert(0, str(Path(__file__).parent))
from _common import clean_env, python, run

from repoproxy.testing.packages import PackageSpec, build_many, build_package
from repoproxy.testing.server import RunningServer, free_port

MB = 1_000_000
#: seconds between a step and its reading: the server's heap trimmer looks every 2 s
#: (web/heap.py), so a reading is what the process holds, not the garbage of the last answer
#: (the peak, VmHWM, is printed too)
SETTLE = 3.0


def rss(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(field)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=50_000)
    ap.add_argument("--upload-mib", type=int, default=1024)
    ap.add_argument("--block", default="",
                    help="plugins to block in the server (e.g. repoproxy_sbom: its worker "
                         "builds the SBOMs an import queued, in the serving process)")
    ap.add_argument("--malloc-arenas", type=int, default=None,
                    help="the server's repoproxy.malloc_arenas (default: its own, 2; 0 is "
                         "glibc's 8 per core)")
    ap.add_argument("--work", type=Path, default=None,
                    help="keep packages and root here and reuse them (default: a temp dir)")
    args = ap.parse_args()
    if args.work is not None:
        args.work.mkdir(parents=True, exist_ok=True)
        measure(args, args.work)
        return
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        measure(args, Path(tmp))


def prepare(files: int, work: Path) -> tuple[list[Path], Path]:
    """The packages and the imported root, made once per ``work`` directory."""
    src = work / "src" / "noarch"
    root = work / "root"
    done_marker = work / f"imported-{files}"
    if done_marker.exists():
        paths = sorted(src.iterdir())
        print(f"reusing {len(paths)} packages and the root in {work}", flush=True)
        return paths, root
    src.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    paths = build_many(src, files)
    print(f"built {files} packages in {time.perf_counter() - t:.0f} s", flush=True)
    t = time.perf_counter()
    run([python(), "-m", "repoproxy", "import", str(src.parent), "--channel", "big",
         "--create", "--root", str(root)])
    print(f"imported in {time.perf_counter() - t:.0f} s", flush=True)
    done_marker.touch()
    return paths, root


def serve_channel(http: requests.Session, url: str, paths: list[Path],
                  auth: dict[str, str], pid: int) -> None:
    """What clients and the UI ask of a big channel; the RSS after each step."""
    base = f"{url}/big/noarch"

    def step(label: str) -> None:
        time.sleep(SETTLE)
        print(f"  after {label}: RSS {rss(pid) / MB:.0f} MB  [{load()}]", flush=True)

    for name in ("repodata.json", "repodata.json.zst", "repodata_shards.msgpack.zst"):
        http.get(f"{base}/{name}", timeout=300).raise_for_status()
    step("repodata.json, .zst and the shard index")
    index = msgpack.unpackb(zstandard.ZstdDecompressor().decompressobj().decompress(
        http.get(f"{base}/repodata_shards.msgpack.zst", timeout=60).content))
    for digest in list(index["shards"].values())[:500]:
        http.get(f"{base}/shards/{digest.hex()}.msgpack.zst", timeout=60)
    step("500 shards")
    for path in random.Random(1).sample(paths, min(200, len(paths))):
        http.get(f"{base}/{path.name}", timeout=60).raise_for_status()
    step("200 package files")
    for what in ("", "/files", "/files?subdir=noarch", "/files?limit=1000&offset=20000"):
        http.get(f"{url}/api/v1/channels/big{what}", headers=auth,
                 timeout=600).raise_for_status()
    step("channel details and the file listing API (whole, then paged)")
    for what in ("/api/channels/big/artifacts", "/api/v1/search?q=pkg12",
                 "/api/v1/search?q=pkg", "/ui/channels/big/", "/ui/channels/big/?page=50",
                 "/ui/channels/big/packages/pkg7/"):
        http.get(f"{url}{what}", headers=auth, timeout=600)
    step("package listing, search and the UI's channel pages")


def load() -> str:
    return "load " + " ".join(Path("/proc/loadavg").read_text().split()[:3])


def measure(args: argparse.Namespace, work: Path) -> None:
    paths, root = prepare(args.files, work)
    token = run([python(), "-m", "repoproxy", "token", "create", "--root", str(root),
                 "--admin", "--name", "bench"]).stdout.strip()
    auth = {"Authorization": f"Bearer {token}"}
    env = clean_env()
    env["REPOPROXY_LOG_REQUESTS"] = "false"
    env["REPOPROXY_MAX_UPLOAD_SIZE"] = str((args.upload_mib + 64) << 20)
    if args.block:
        env["REPOPROXY_PLUGINS__BLOCK"] = args.block
    if args.malloc_arenas is not None:
        env["REPOPROXY_MALLOC_ARENAS"] = str(args.malloc_arenas)
    # a long start: the first one over a reused root may rebuild its 50,000-file indexes
    srv = RunningServer(root, free_port(), work / "server.log", env, workers=1).start(900)
    assert srv.proc is not None
    pid = srv.proc.pid
    try:
        http = requests.Session()
        http.get(f"{srv.url}/-/health", timeout=60)
        idle = rss(pid)
        print(f"RSS idle {idle / MB:.0f} MB  [{load()}]", flush=True)
        serve_channel(http, srv.url, paths, auth, pid)
        time.sleep(SETTLE)
        serving = rss(pid)
        print(f"RSS idle {idle / MB:.0f} MB; serving a {args.files}-file channel "
              f"{serving / MB:.0f} MB (peak {rss(pid, 'VmHWM') / MB:.0f} MB; goal <= 150 MB)"
              f"  [{load()}]", flush=True)
        if args.upload_mib:
            # a small package first: what one index rebuild of the big subdir adds (the
            # indexer keeps the subdir's parts for the next build), apart from the stream
            upload(http, srv.url, auth, pid, 1, work)
            upload(http, srv.url, auth, pid, args.upload_mib, work)
    finally:
        srv.stop()


def upload(http: requests.Session, url: str, auth: dict[str, str], pid: int, mib: int,
           work: Path) -> None:
    """Stream a package of ``mib`` MiB to the upload API; the RSS it adds at its peak."""
    made = sorted((work / "upload").glob(f"huge-{mib}.0-*"))
    if made:
        big = made[0]
    else:
        rng = random.Random(2)  # randbytes() overflows past 256 MiB at once
        blob = b"".join(rng.randbytes(1 << 20) for _ in range(mib))
        big = build_package(PackageSpec("huge", f"{mib}.0", files={"data/blob": blob}),
                            work / "upload")
        del blob
    digest = hashlib.sha256()
    with open(big, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    before = rss(pid)
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss(pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    t = time.perf_counter()
    try:
        with open(big, "rb") as f:
            # force: a reused root has the package from the last run
            r = http.post(f"{url}/api/v1/upload/big?force=true", data=f, timeout=1800,
                          headers={**auth, "X-File-Name": big.name,
                                   "Content-Type": "application/octet-stream",
                                   "X-File-SHA256": digest.hexdigest(),
                                   "Content-Length": str(big.stat().st_size)})
    finally:
        done.set()
        sampler.join()
    elapsed = time.perf_counter() - t
    r.raise_for_status()
    size = big.stat().st_size
    print(f"upload of {size / (1 << 30):.2f} GiB in {elapsed:.0f} s: RSS before "
          f"{before / MB:.0f} MB, peak during {peak[0] / MB:.0f} MB, added "
          f"{(peak[0] - before) / MB:.1f} MB (goal <= 20 MB)  [{load()}]", flush=True)


if __name__ == "__main__":
    main()
