"""Memory: the RSS of one serving process with a big channel, and what a 1 GiB upload adds.

    python bench/memory.py [--files 50000] [--upload-mib 1024]

Builds ``--files`` small packages, imports them into one channel (``repoproxy import``), starts
``repoproxy serve --workers 1`` and reads its RSS (``/proc/PID/status``) idle, after serving
the channel's indexes, shard index, 500 shards, 200 package files and the file listing API,
then while a package of ``--upload-mib`` MiB (random bytes: incompressible) is streamed to
the upload API (peak sampled every 20 ms). Goals (issue 11): <= 150 MB serving the channel;
the upload adds <= 20 MB.
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
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        work = Path(tmp)
        src = work / "src" / "noarch"
        src.mkdir(parents=True)
        t = time.perf_counter()
        paths = build_many(src, args.files)
        print(f"built {args.files} packages in {time.perf_counter() - t:.0f} s", flush=True)
        root = work / "root"
        t = time.perf_counter()
        run([python(), "-m", "repoproxy", "import", str(src.parent), "--channel", "big",
             "--create", "--root", str(root)])
        print(f"imported in {time.perf_counter() - t:.0f} s", flush=True)
        token = run([python(), "-m", "repoproxy", "token", "create", "--root", str(root),
                     "--admin", "--name", "bench"]).stdout.strip()
        env = clean_env()
        env["REPOPROXY_LOG_REQUESTS"] = "false"
        env["REPOPROXY_MAX_UPLOAD_SIZE"] = str((args.upload_mib + 64) << 20)
        srv = RunningServer(root, free_port(), work / "server.log", env, workers=1).start()
        assert srv.proc is not None
        pid = srv.proc.pid
        try:
            http = requests.Session()
            http.get(f"{srv.url}/-/health", timeout=60)
            idle = rss(pid)
            base = f"{srv.url}/big/noarch"
            for name in ("repodata.json", "repodata.json.zst", "repodata_shards.msgpack.zst"):
                http.get(f"{base}/{name}", timeout=300).raise_for_status()
            index = msgpack.unpackb(zstandard.ZstdDecompressor().decompressobj().decompress(
                http.get(f"{base}/repodata_shards.msgpack.zst", timeout=60).content))
            for digest in list(index["shards"].values())[:500]:
                http.get(f"{base}/shards/{digest.hex()}.msgpack.zst", timeout=60)
            for path in random.Random(1).sample(paths, min(200, len(paths))):
                http.get(f"{base}/{path.name}", timeout=60).raise_for_status()
            http.get(f"{srv.url}/api/v1/channels/big/files",
                     headers={"Authorization": f"Bearer {token}"}, timeout=300)
            serving = rss(pid)
            print(f"RSS idle {idle / MB:.0f} MB; serving a {args.files}-file channel "
                  f"{serving / MB:.0f} MB (peak {rss(pid, 'VmHWM') / MB:.0f} MB; goal <= 150 MB)",
                  flush=True)

            rng = random.Random(2)  # randbytes() overflows past 256 MiB at once
            blob = b"".join(rng.randbytes(1 << 20) for _ in range(args.upload_mib))
            big = build_package(PackageSpec("huge", "1.0", files={"data/blob": blob}),
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
            with open(big, "rb") as f:
                r = http.post(f"{srv.url}/api/v1/upload/big", data=f, timeout=1800, headers={
                    "Authorization": f"Bearer {token}", "X-File-Name": big.name,
                    "Content-Type": "application/octet-stream",
                    "X-File-SHA256": digest.hexdigest(),
                    "Content-Length": str(big.stat().st_size)})
            elapsed = time.perf_counter() - t
            done.set()
            sampler.join()
            r.raise_for_status()
            size = big.stat().st_size
            print(f"upload of {size / (1 << 30):.2f} GiB in {elapsed:.0f} s: RSS before "
                  f"{before / MB:.0f} MB, peak during {peak[0] / MB:.0f} MB, added "
                  f"{(peak[0] - before) / MB:.1f} MB (goal <= 20 MB)")
        finally:
            srv.stop()


if __name__ == "__main__":
    main()
