"""waitress's ``threads`` and ``connection_limit``, measured: the defaults come from here.

    python bench/threads.py [--threads 1,2,4,8,16] [--limits 100,0] [--connections 16,256]
                            [--duration 3] [--repeat 3] [--packages 50]

One repoproxy process per setting on the same root (bench/serve.py's files), measured with wrk
in interleaved rounds (every server once per round, medians): a 304 of repodata.json, the
shard index and the 5 MB package, at each ``--connections``. Then the connection limit: the
304 with 1,000 concurrent connections against ``--limits`` (0 = repoproxy's automatic limit,
sized to the open-file limit), with wrk's socket errors. Prints the load beside every row.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import clean_env, median, serving_env
from serve import get, prepare

from repoproxy.testing.server import RunningServer, free_port


def start(root: Path, work: Path, threads: int, limit: int) -> RunningServer:
    env = serving_env()
    env["REPOPROXY_LOG_REQUESTS"] = "false"
    env["REPOPROXY_THREADS"] = str(threads)
    env["REPOPROXY_CONNECTION_LIMIT"] = str(limit)
    return RunningServer(root, free_port(), work / f"rp-{threads}-{limit}.log", env,
                         workers=1).start()


def wrk(port: int, path: str, headers: dict[str, str], duration: float,
        connections: int) -> tuple[float, str]:
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{duration:g}s"]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    out = subprocess.run([*cmd, f"http://127.0.0.1:{port}{path}"], capture_output=True,
                         text=True, check=True, timeout=duration + 60).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Socket errors: (.*)", out)
    return rate, errors.group(1) if errors else "none"


def measure(servers: dict[str, RunningServer], cases: list[tuple[str, str, bool]],
            connections: int, args: argparse.Namespace) -> None:
    for label, path, conditional in cases:
        plan = []
        for name, srv in servers.items():
            status, etag = get(srv.port, path)
            assert status == 200, (name, path, status)
            plan.append((name, srv.port, {"If-None-Match": etag} if conditional else {}))
        samples: dict[str, list[float]] = {name: [] for name, *_ in plan}
        errors: dict[str, str] = {}
        loads = [os.getloadavg()[0]]
        for _ in range(args.repeat):
            for name, port, headers in plan:
                rate, err = wrk(port, path, headers, args.duration, connections)
                samples[name].append(rate)
                if err != "none":
                    errors[name] = err
            loads.append(os.getloadavg()[0])
        best = max(median(v) for v in samples.values())
        cells = ", ".join(f"{name} {median(v):,.0f}/s ({median(v) / best:.2f})"
                          for name, v in samples.items())
        print(f"  {label}, -c{connections} (load {min(loads):.1f}-{max(loads):.1f}): {cells}",
              flush=True)
        for name, err in errors.items():
            print(f"    {name}: socket errors {err}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", default="1,2,4,8,16")
    ap.add_argument("--limits", default="100,0")
    ap.add_argument("--connections", default="16,256")
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--packages", type=int, default=50)
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install wrk)")
    with tempfile.TemporaryDirectory(prefix="bench-threads-") as tmp:
        work = Path(tmp)
        root, big, _ = prepare(work, args.packages)
        cases = [("304 of repodata.json", "/bench/noarch/repodata.json", True),
                 ("GET shard index", "/bench/noarch/repodata_shards.msgpack.zst", False),
                 ("GET 5 MB package", f"/bench/noarch/{big}", False)]
        print(f"{os.cpu_count()} cores; wrk -t2, {args.duration:g} s, median of "
              f"{args.repeat} interleaved rounds; (x) = share of the row's best")
        servers = {f"threads={t}": start(root, work, int(t), 0)
                   for t in args.threads.split(",")}
        try:
            for connections in (int(c) for c in args.connections.split(",")):
                measure(servers, cases, connections, args)
        finally:
            for srv in servers.values():
                srv.stop()
        default_threads = int(clean_env().get("BENCH_DEFAULT_THREADS", "8"))
        servers = {f"limit={lim or 'auto'}": start(root, work, default_threads, int(lim))
                   for lim in args.limits.split(",")}
        try:
            measure(servers, cases[:1], 1000, args)
        finally:
            for srv in servers.values():
                srv.stop()


if __name__ == "__main__":
    main()
