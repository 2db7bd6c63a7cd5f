"""Serving: requests per second of repoproxy vs a static server on the same files.

    python bench/serve.py [--packages 500] [--requests 2000] [--concurrency 8] [--repeat 3]

Endpoints: a 304 revalidation of repodata.json, the shard index, repodata.json.zst and a
package download. The static peer is nginx where installed, else `python -m http.server`,
serving the very files repoproxy materialised. Clients are keep-alive http.client threads in
this process. Prints medians over --repeat rounds and the ratio ours/static (above 1 means
repoproxy is faster).
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import clean_env, fmt_ratio, median, python, run

from repoproxy.testing.fixtures import RunningServer, free_port
from repoproxy.testing.packages import build_many


def load(port: int, path: str, headers: dict[str, str], total: int, concurrency: int,
         expect: int) -> float:
    per_thread = total // concurrency
    errors: list[str] = []

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for _ in range(per_thread):
            conn.request("GET", path, headers=headers)
            r = conn.getresponse()
            r.read()
            if r.status != expect:
                errors.append(f"{path}: {r.status}")
                return
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise RuntimeError(errors[0])
    return per_thread * concurrency / elapsed


def validators(port: int, path: str) -> dict[str, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path)
    r = conn.getresponse()
    r.read()
    out = {}
    if r.getheader("ETag"):
        out["If-None-Match"] = r.getheader("ETag") or ""
    if r.getheader("Last-Modified"):
        out["If-Modified-Since"] = r.getheader("Last-Modified") or ""
    return out


def start_static(directory: Path, work: Path) -> tuple[subprocess.Popen[bytes], int, str]:
    port = free_port()
    nginx = shutil.which("nginx")
    if nginx:
        conf = work / "nginx.conf"
        # as root, nginx workers drop to www-data, which cannot read our 0700 temp dir
        user = "user root;\n" if os.geteuid() == 0 else ""
        conf.write_text(
            f"{user}daemon off; worker_processes 2; pid {work}/nginx.pid; "
            f"error_log {work}/ng.err;\n"
            "events { worker_connections 1024; }\n"
            f"http {{ access_log off; server {{ listen 127.0.0.1:{port}; root {directory}; }} }}\n"
        )
        proc = subprocess.Popen([nginx, "-c", str(conf)])
        name = "nginx"
    else:
        proc = subprocess.Popen([python(), "-m", "http.server", "--bind", "127.0.0.1",
                                 "--directory", str(directory), str(port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        name = "python -m http.server"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            http.client.HTTPConnection("127.0.0.1", port, timeout=1).connect()
            break
        except OSError:
            time.sleep(0.1)
    return proc, port, name


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--packages", type=int, default=500)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        work = Path(tmp)
        src = work / "src" / "noarch"
        src.mkdir(parents=True)
        first = build_many(src, args.packages)[0]
        root = work / "root"
        run([python(), "-m", "repoproxy", "import", str(src.parent), "--channel", "bench",
             "--create", "--root", str(root)])
        env = clean_env()
        env["REPOPROXY_LOG_REQUESTS"] = "false"
        ours = RunningServer(root, free_port(), work / "server.log", env).start()
        static, static_port, static_name = start_static(root / "channels", work)
        try:
            cases = [
                ("304 repodata.json", "/bench/noarch/repodata.json", True),
                ("shard index", "/bench/noarch/repodata_shards.msgpack.zst", False),
                ("repodata.json.zst", "/bench/noarch/repodata.json.zst", False),
                ("package download", f"/bench/noarch/{first.name}", False),
            ]
            print(f"{args.packages} packages, {args.requests} requests x "
                  f"{args.concurrency} connections, median of {args.repeat}; "
                  f"static peer: {static_name}")
            for label, path, conditional in cases:
                results = {}
                for name, port in (("repoproxy", ours.port), ("static", static_port)):
                    headers = validators(port, path) if conditional else {}
                    expect = 304 if conditional else 200
                    rates = [load(port, path, headers, args.requests, args.concurrency, expect)
                             for _ in range(args.repeat)]
                    results[name] = median(rates)
                print(f"{label:20s} repoproxy {results['repoproxy']:8.0f} req/s   "
                      f"static {results['static']:8.0f} req/s   ratio "
                      f"{fmt_ratio(results['repoproxy'], results['static'], True)}")
        finally:
            ours.stop()
            static.terminate()
            static.wait(timeout=10)


if __name__ == "__main__":
    main()
