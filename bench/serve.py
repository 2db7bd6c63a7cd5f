"""Serving: requests per second, measured with wrk, of repoproxy and its peers on the same files.

    python bench/serve.py [--packages 200] [--duration 5] [--repeat 3] [--connections 16]
                          [--workers N] [--only 304,shard,zst,5mb]

Servers, all on loopback, all serving the very files repoproxy materialised:

- repoproxy, one process (``--workers 1``), anonymous on a public channel and with a bearer
  token on a private copy of it; the same with ``--workers N`` (default: cores);
- repoproxy with its access log on (one process, the 304 row only: what logging costs);
- a bare WSGI app that stats the file and answers 304 or streams it with
  ``wsgi.file_wrapper``, on repoproxy's own waitress server (same threads, options, poll
  loop, keep-alive after 304 and sendfile): the Python ceiling, only the app differing;
- plain nginx (``nginx -p PREFIX -c FILE -g 'daemon off;'``, a generated minimal conf);
- repoproxy behind its nginx front (``repoproxy nginx-conf``), public and with a token, when
  that command exists; otherwise the row says so (see ``start_front``).

Requests: a 304 revalidation of repodata.json, the shard index, repodata.json.zst and a 5 MB
package. The load generator is wrk (``-t2 -cC``) where installed; otherwise keep-alive
http.client threads in this process (which cap every server near 2,000 req/s: the notice
says so). Prints medians of ``--repeat`` runs and ratios.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import clean_env, median, python, run, serving_env

from repoproxy.testing.packages import PackageSpec, build_many, build_package
from repoproxy.testing.server import RunningServer, free_port
from repoproxy.web.front import DEFAULT_ACCEL

#: the bare WSGI app: the least a Python file server on waitress can do per request. It runs
#: on repoproxy's own waitress server (web/server.py: keep-alive after a 304, sendfile, the
#: same options), so that only the application differs: stock waitress closes the connection
#: after every 304, which made the ceiling of the 304 row a reconnect per request
BARE_APP = r'''
import os, sys
from repoproxy.web.server import make_server
ROOT = sys.argv[1]

def app(environ, start_response):
    path = os.path.join(ROOT, environ["PATH_INFO"].lstrip("/"))
    try:
        st = os.stat(path)
    except OSError:
        start_response("404 Not Found", [("Content-Length", "0")])
        return [b""]
    etag = '"%x-%x-%x"' % (st.st_ino, st.st_mtime_ns, st.st_size)
    headers = [("ETag", etag), ("Cache-Control", "public, max-age=60")]
    if environ.get("HTTP_IF_NONE_MATCH") == etag:
        start_response("304 Not Modified", headers)
        return []
    f = open(path, "rb")
    start_response("200 OK", headers + [("Content-Length", str(st.st_size)),
                                        ("Content-Type", "application/octet-stream")])
    return environ["wsgi.file_wrapper"](f, 65536)

# repoproxy's server_options() with its defaults, the connection limit fixed
make_server(app, None, host="127.0.0.1", port=int(sys.argv[2]), threads=int(sys.argv[3]),
            asyncore_use_poll=True, connection_limit=1000, backlog=2048, channel_timeout=30,
            cleanup_interval=15, clear_untrusted_proxy_headers=True, ident="bare").run()
'''

NGINX_CONF = """\
worker_processes {workers};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log;
{user}
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    server {{
        listen 127.0.0.1:{port};
        root {root};
    }}
}}
"""


def wait_port(port: int, proc: subprocess.Popen[bytes] | None = None,
              timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server on {port} exited")
        try:
            http.client.HTTPConnection("127.0.0.1", port, timeout=1).connect()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path, headers=headers or {})
    r = conn.getresponse()
    r.read()
    conn.close()
    return r.status, r.getheader("ETag") or ""


# --- load generators ------------------------------------------------------------------------
def wrk_rate(port: int, path: str, headers: dict[str, str], duration: float,
             connections: int) -> float:
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{duration:g}s"]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    out = subprocess.run([*cmd, f"http://127.0.0.1:{port}{path}"], capture_output=True,
                         text=True, check=True, timeout=duration + 60).stdout
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if bad:
        raise RuntimeError(f"{path}: {bad.group(1)} error answers\n{out}")
    errors = re.search(r"Socket errors: .*", out)
    if errors and re.search(r"(read|write|timeout) [1-9]", errors.group(0)):
        print(f"  note: {path} on {port}: {errors.group(0)}")
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not m:
        raise RuntimeError(out)
    return float(m.group(1))


def thread_rate(port: int, path: str, headers: dict[str, str], duration: float,
                connections: int) -> float:
    """The fallback: keep-alive http.client threads (a ceiling near 2,000 req/s)."""
    count = [0] * connections
    stop = time.monotonic() + duration

    def worker(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.monotonic() < stop:
            conn.request("GET", path, headers=headers)
            r = conn.getresponse()
            r.read()
            if r.status >= 400:
                raise RuntimeError(f"{path}: {r.status}")
            count[i] += 1
        conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(count) / (time.monotonic() - start)


def _stop(*steps: Callable[[], object]) -> None:
    for step in steps:
        step()


# --- servers --------------------------------------------------------------------------------
class Server:
    def __init__(self, name: str, port: int, stop: Callable[[], None],
                 token: str | None = None, prefix: str = "") -> None:
        self.name, self.port, self.stop, self.token, self.prefix = name, port, stop, token, prefix


def start_repoproxy(root: Path, work: Path, workers: int, log: bool = False,
                    accel: str = "") -> Server:
    env = serving_env()
    env["REPOPROXY_LOG_REQUESTS"] = "true" if log else "false"
    # behind the front: package bytes leave through its internal location (web/accel.py)
    env["REPOPROXY_ACCEL_REDIRECT"] = accel
    env["REPOPROXY_THREADS"] = os.environ.get("BENCH_THREADS", "8")
    log_path = work / f"repoproxy-{workers}-{log}-{bool(accel)}.log"
    srv = RunningServer(root, free_port(), log_path, env,
                        workers=workers).start()
    # the workers are up once the server answers (the supervisor binds before they start)
    deadline = time.monotonic() + 30
    while get(srv.port, "/-/health")[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    return Server(f"repoproxy x{workers}", srv.port, lambda: _stop(srv.stop))


def start_bare(directory: Path, threads: int) -> Server:
    port = free_port()
    proc = subprocess.Popen([python(), "-c", BARE_APP, str(directory), str(port), str(threads)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port, proc)
    return Server("bare WSGI", port, lambda: _stop(proc.terminate, proc.wait))


def start_nginx(directory: Path, work: Path, workers: int) -> Server | None:
    nginx = shutil.which("nginx")
    if nginx is None:
        print("notice: nginx is not installed: no nginx column")
        return None
    prefix = work / "nginx"
    (prefix / "logs").mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = prefix / "nginx.conf"
    # as root, nginx's workers would drop to nobody, who cannot read our 0700 temp dir
    conf.write_text(NGINX_CONF.format(workers=workers, prefix=prefix, port=port, root=directory,
                                      user="user root;" if os.geteuid() == 0 else ""))
    proc = subprocess.Popen([nginx, "-p", str(prefix), "-c", str(conf), "-g", "daemon off;"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port, proc)
    return Server("nginx", port, lambda: _stop(proc.terminate, proc.wait))


def start_front(root: Path, work: Path, upstream: Server) -> Server | None:
    """repoproxy behind its nginx front (issue 11, item 4): ``repoproxy nginx-conf --root
    --upstream --listen`` prints a conf that ``nginx -p PREFIX -c FILE`` runs in the foreground.

    HOOK for the lead: this runs the command as the issue specifies it; where it is missing
    (a branch without it) or fails, the front columns say "n/a" and the reason is printed.
    """
    nginx = shutil.which("nginx")
    if nginx is None:
        return None
    port = free_port()
    prefix = work / "front"
    prefix.mkdir(exist_ok=True)
    made = subprocess.run(
        [python(), "-m", "repoproxy", "nginx-conf", "--root", str(root),
         "--upstream", f"127.0.0.1:{upstream.port}", "--listen", f"127.0.0.1:{port}"],
        capture_output=True, text=True, env=clean_env(), check=False)
    if made.returncode != 0:
        print("notice: `repoproxy nginx-conf` is not available here "
              f"({(made.stderr.strip().splitlines() or ['?'])[-1]}): no front columns")
        return None
    conf = prefix / "nginx.conf"
    conf.write_text(made.stdout)
    proc = subprocess.Popen([nginx, "-p", str(prefix), "-c", str(conf)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, proc, timeout=15)
    except RuntimeError as e:
        print(f"notice: the nginx front did not start ({e}); see {prefix}")
        return None
    return Server("front", port, lambda: _stop(proc.terminate, proc.wait))


# --- the run --------------------------------------------------------------------------------
def prepare(work: Path, packages: int) -> tuple[Path, str, str]:
    """A root with a public channel and a private copy, a read token for the copy; returns
    (root, the 5 MB package's file name, the token)."""
    src = work / "src" / "noarch"
    src.mkdir(parents=True)
    build_many(src, packages)
    big = build_package(PackageSpec("bigpkg", "1.0", files={"data/blob": os.urandom(5 << 20)}),
                        src)
    root = work / "root"
    for channel, privacy in (("bench", "public"), ("priv", "private")):
        run([python(), "-m", "repoproxy", "import", str(src.parent), "--channel", channel,
             "--create", "--privacy", privacy, "--root", str(root)])
    token = run([python(), "-m", "repoproxy", "token", "create", "--root", str(root),
                 "--name", "bench", "--channel", "priv"]).stdout.strip()
    return root, big.name, token


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--packages", type=int, default=200)
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--threads", type=int, default=8, help="waitress threads (both servers)")
    ap.add_argument("--only", default="304,shard,zst,5mb")
    ap.add_argument("--columns", default="", help="measure only these columns (comma-separated "
                    "names as in the table, e.g. 'nginx,front,front +token')")
    args = ap.parse_args()
    if shutil.which("wrk"):
        rate, generator = wrk_rate, f"wrk -t2 -c{args.connections}"
    else:
        rate, generator = thread_rate, f"{args.connections} Python threads"
        print("notice: wrk is not installed (apt-get install wrk): falling back to Python "
              "threads in this process, which cap every server near 2,000 req/s")
    os.environ["BENCH_THREADS"] = str(args.threads)
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        work = Path(tmp)
        root, big, token = prepare(work, args.packages)
        channels = root / "channels"
        servers: dict[str, Server | None] = {}
        try:
            servers["rp1"] = start_repoproxy(root, work, 1)
            servers["rpN"] = start_repoproxy(root, work, args.workers)
            servers["rp1log"] = start_repoproxy(root, work, 1, log=True)
            servers["bare"] = start_bare(channels, args.threads)
            servers["nginx"] = start_nginx(channels, work, args.workers)
            # the front's own upstream: one process with repoproxy.accel_redirect set, as the
            # front requires (README "Production")
            upstream = servers["rp1accel"] = start_repoproxy(root, work, 1, accel=DEFAULT_ACCEL)
            servers["front"] = start_front(root, work, upstream)
            auth = {"Authorization": f"Bearer {token}"}
            cases = {
                "304": ("304 of repodata.json", "noarch/repodata.json", True),
                "shard": ("GET shard index", "noarch/repodata_shards.msgpack.zst", False),
                "zst": ("GET repodata.json.zst", "noarch/repodata.json.zst", False),
                "5mb": ("GET 5 MB package", f"noarch/{big}", False),
            }
            # (column, server key, channel, headers)
            columns = [
                ("repoproxy", "rp1", "bench", {}),
                ("+token", "rp1", "priv", auth),
                (f"--workers {args.workers}", "rpN", "bench", {}),
                (f"x{args.workers} +token", "rpN", "priv", auth),
                ("log on", "rp1log", "bench", {}),
                ("bare WSGI", "bare", "bench", {}),
                ("nginx", "nginx", "bench", {}),
                ("front", "front", "bench", {}),
                ("front +token", "front", "priv", auth),
            ]
            print(f"{args.packages} packages + one 5 MB; {generator}, {args.duration:g} s, "
                  f"median of {args.repeat} interleaved rounds (every column once per round); "
                  f"waitress threads {args.threads}; {os.cpu_count()} cores")
            table: dict[str, dict[str, float | None]] = {}
            load_of: dict[str, str] = {}
            for key in args.only.split(","):
                label, rel, conditional = cases[key]
                # (column, port, path, headers) of the columns this row measures
                plan: list[tuple[str, int, str, dict[str, str]]] = []
                row: dict[str, float | None] = {}
                wanted = set(filter(None, args.columns.split(",")))
                for column, server_key, channel, headers in columns:
                    row[column] = None
                    if wanted and column not in wanted:
                        continue
                    server = servers.get(server_key)
                    if server is None or (column == "log on" and key != "304"):
                        continue
                    path = f"/{channel}/{rel}"
                    status, etag = get(server.port, path, headers)
                    if status != 200:
                        print(f"  {column}: {path} answered {status}")
                        continue
                    hdrs = dict(headers)
                    if conditional:
                        hdrs["If-None-Match"] = etag
                    plan.append((column, server.port, path, hdrs))
                # interleaved: round after round of every column, so that a change of the
                # machine's load hits all columns alike; medians per column
                samples: dict[str, list[float]] = {column: [] for column, *_ in plan}
                loads = [os.getloadavg()[0]]
                for _ in range(args.repeat):
                    for column, port, path, hdrs in plan:
                        samples[column].append(rate(port, path, hdrs, args.duration,
                                                    args.connections))
                    loads.append(os.getloadavg()[0])
                for column, values in samples.items():
                    row[column] = median(values)
                table[label] = row
                load_of[label] = f"{min(loads):.1f}-{max(loads):.1f}"
                print(f"  {label} (load {min(loads):.1f}-{max(loads):.1f}): "
                      + ", ".join(f"{c} {v:,.0f}/s" for c, v in row.items() if v is not None),
                      flush=True)
            print_table(table, args.workers, load_of)
        finally:
            for server in servers.values():
                if server is not None:
                    server.stop()


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a and b else "n/a"


def print_table(table: dict[str, dict[str, float | None]], workers: int,
                load_of: dict[str, str]) -> None:
    columns = list(next(iter(table.values())).keys())
    head = ["request", "load", *columns, "rp/bare", "rp+tok/bare", f"x{workers}/x1",
            f"x{workers}+tok/x1+tok", "log on/off", "rp/nginx", "front/nginx", "front+tok/nginx"]
    print()
    print("| " + " | ".join(head) + " |")
    print("|---|" + "---:|" * (len(head) - 1))
    for label, row in table.items():
        cells = [f"{v:,.0f}/s" if v else "" for v in row.values()]
        rp, tok = row["repoproxy"], row["+token"]
        multi, multi_tok = row[f"--workers {workers}"], row[f"x{workers} +token"]
        cells += [ratio(rp, row["bare WSGI"]), ratio(tok, row["bare WSGI"]),
                  ratio(multi, rp), ratio(multi_tok, tok), ratio(row["log on"], rp),
                  ratio(rp, row["nginx"]), ratio(row["front"], row["nginx"]),
                  ratio(row["front +token"], row["nginx"])]
        print(f"| {label} | {load_of[label]} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
