"""repoproxy behind its nginx front vs plain nginx over the same files, measured with wrk.

    python bench/front.py [--runs 3] [--duration 6] [--threads 2] [--connections 16]
                          [--only 304,shard,zst,package,private]

One root with a public and a private channel holding the same packages (one of 5 MB), one
`repoproxy serve` with repoproxy.accel_redirect behind the front printed by
`repoproxy nginx-conf`, and a plain nginx serving the channels directory as static files.
Each request is run ``--runs`` times against both (wrk -t2 -c16 -d6s by default); the table
shows medians of requests/s and the ratio front/plain against the issue's goals (public
>= 0.9x plain nginx, private package bytes >= 0.8x). Needs wrk and nginx.
"""

from __future__ import annotations

import argparse
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import median, serving_env

from repoproxy.cli.http import Client
from repoproxy.testing.front import (
    ACCEL,
    NGINX,
    RunningNginx,
    nginx_conf,
)
from repoproxy.testing.packages import PackageSpec, build_package
from repoproxy.testing.server import RunningServer, free_port

PLAIN = """\
{user}daemon off;
worker_processes auto;
pid nginx.pid;
error_log stderr warn;
events {{ worker_connections 4096; }}
http {{
    types {{ application/json json; application/zstd zst; }}
    default_type application/octet-stream;
    access_log off;
    client_body_temp_path client_body_temp;
    proxy_temp_path proxy_temp;
    fastcgi_temp_path fastcgi_temp;
    uwsgi_temp_path uwsgi_temp;
    scgi_temp_path scgi_temp;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    server {{
        listen 127.0.0.1:{port};
        root {channels};
    }}
}}
"""


def wrk(url: str, args: argparse.Namespace, headers: dict[str, str]) -> float:
    cmd = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s"]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    if "Non-2xx or 3xx responses" in out:
        raise RuntimeError(f"wrk saw errors for {url}:\n{out}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if match is None:
        raise RuntimeError(out)
    return float(match.group(1))


def load() -> str:
    """The one-minute load average: the machine is shared, so every figure carries it."""
    return Path("/proc/loadavg").read_text().split()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=int, default=6)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--only", default="",
                        help="rows to measure, by key: 304,shard,zst,package,private")
    args = parser.parse_args()
    if shutil.which("wrk") is None or NGINX is None:
        sys.exit("bench/front.py needs wrk and nginx (apt-get install wrk nginx)")

    tmp = Path(tempfile.mkdtemp(prefix="bench-front-"))
    env = serving_env()
    env["REPOPROXY_ACCEL_REDIRECT"] = ACCEL
    env["REPOPROXY_LOG_REQUESTS"] = "false"
    srv = RunningServer(tmp / "root", free_port(), tmp / "server.log", env).start()
    front = plain = None
    try:
        admin = srv.token("--admin", "--name", "admin")
        client = Client(srv.url, admin)
        pkgdir = tmp / "pkgs"
        pkgdir.mkdir()
        big = build_package(PackageSpec("big", "1.0", subdir="linux-64",
                                        files={"share/big.bin": os.urandom(5 * 1024**2)}),
                            pkgdir)
        small = [build_package(PackageSpec(f"pkg{i}", "1.0", subdir="linux-64"), pkgdir)
                 for i in range(40)]
        for name, privacy in (("pub", "public"), ("sec", "private")):
            client.request("POST", "/api/v1/channels", json={"name": name, "privacy": privacy})
            for path in (big, *small):
                client.upload(name, path)
        token = srv.token("--channel", "sec", "--permission", "read", "--name", "bench")
        port = free_port()
        front = RunningNginx(nginx_conf(srv.root, [f"127.0.0.1:{srv.port}"],
                                        f"127.0.0.1:{port}", env),
                             tmp / "front", port).start()
        pport = free_port()
        # workers as the tree's owner, as the front's (a temporary directory is 0700)
        user = f"user {pwd.getpwuid(os.getuid()).pw_name};" if os.getuid() == 0 else ""
        plain = RunningNginx(PLAIN.format(port=pport, channels=srv.root / "channels",
                                          user=user),
                             tmp / "plain", pport).start()
        etag = requests.get(f"{front.url}/pub/linux-64/repodata.json", timeout=30
                            ).headers["ETag"]
        bearer = {"Authorization": f"Bearer {token}"}
        cases = [
            ("304", "304 of repodata.json", "/pub/linux-64/repodata.json",
             {"If-None-Match": etag}),
            ("shard", "GET shard index", "/pub/linux-64/repodata_shards.msgpack.zst", {}),
            ("zst", "GET repodata.json.zst", "/pub/linux-64/repodata.json.zst", {}),
            ("package", "GET 5 MB package", f"/pub/linux-64/{big.name}", {}),
            ("private", "GET 5 MB package, private + bearer", f"/sec/linux-64/{big.name}",
             bearer),
        ]
        wanted = set(filter(None, args.only.split(",")))
        print(f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s, "
              f"{args.runs} runs, medians (req/s)\n")
        print("| request | load | front | plain nginx | front/plain | goal |")
        print("|---|---:|---:|---:|---:|---|")
        for key, label, path, headers in cases:
            if wanted and key not in wanted:
                continue
            goal = 0.8 if "private" in label else 0.9
            # alternated, so that load from elsewhere on the machine hits both alike; plain
            # nginx serves the same file with no access control (tokens ignored)
            ours_runs, theirs_runs = [], []
            for _ in range(args.runs):
                ours_runs.append(wrk(front.url + path, args, headers))
                theirs_runs.append(wrk(plain.url + path, args, headers))
            ours, theirs = median(ours_runs), median(theirs_runs)
            ratio = ours / theirs
            verdict = "met" if ratio >= goal else "NOT met"
            print(f"| {label} | {load()} | {ours:,.0f} | {theirs:,.0f} | {ratio:.2f}x | "
                  f">= {goal}x {verdict} |", flush=True)
    finally:
        for server in (front, plain):
            if server is not None:
                server.stop()
        srv.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
