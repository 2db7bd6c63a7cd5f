"""Mirrors: a passive mirror's cached reads vs the same files from a local channel, a first
(uncached) package fetch through the proxy vs directly from the upstream, and an active
mirror's run vs `repoproxy import` of the same files. One run, medians and ratios, each
figure printed with the machine's load (`os.getloadavg`).

Upstream A is a real `repoproxy serve` holding ``--files`` small generated packages (noarch)
and ``--first`` larger ones of each ``--first-mb`` size (linux-64, incompressible payload:
what a first fetch costs is moving bytes); B is a second server with a local channel (the
small files imported) and a passive mirror of A. The cached reads are measured over HTTP and
again as WSGI calls in this process (server time only). The first fetches are measured on the
bare loopback, then behind an emulated link (``--link-mb-per-s``, a rate-limited TCP forwarder
in front of A that both the client's direct fetches and the proxy's go through; the client
reaches B directly, as a proxy near its clients is meant to be reached).

Timing notes: the first-fetch pairs are interleaved (for each large package: proxy then
direct, or direct then proxy, alternately; each package is fetched once through each proxy,
uncached, and once from A); the client reads 1 MiB at a time. The active mirror run and the
import are each one long run (with 5,000 files both take minutes), run back to back with
``--rounds`` alternations.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import clean_env, fmt_ratio, median, python, run, serving_env

from repoproxy.testing.packages import PackageSpec, build_many, build_package
from repoproxy.testing.server import RunningServer, free_port


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f}"


def _get_times(session: requests.Session, urls: list[str]) -> list[float]:
    """Each URL fetched whole (read in 1 MiB pieces, as a download client does: requests'
    own ``.content`` reads 10 KiB at a time, slow enough to hide a server's costs)."""
    out = []
    for url in urls:
        start = time.perf_counter()
        with session.get(url, timeout=300, stream=True) as r:
            r.raise_for_status()
            got = sum(len(c) for c in r.iter_content(1 << 20))
            if r.headers.get("Content-Length") not in (None, str(got)):
                raise RuntimeError(f"{url}: {got} bytes, {r.headers['Content-Length']} announced")
        out.append(time.perf_counter() - start)
    return out


class Link:
    """A TCP forwarder to ``port`` on the loopback whose answers flow at most ``rate`` bytes
    per second on each connection: a network link between the clients (and the proxy) and the
    upstream. On the bare loopback bytes move at memory speed and the proxy's second hop is
    pure CPU; behind a link the transfer itself dominates, as with a real upstream.

    Run in a process of its own (:class:`LinkProcess`): in the bench's process its threads
    took the GIL from the client reading the answers. Both of its sockets send at once
    (TCP_NODELAY, as the servers' do): with Nagle's algorithm an answer's last segment waited
    for the client's delayed ACK, 40 ms added to some direct fetches and not others. The
    pacing makes up for a sleep that overslept by up to ``BURST`` bytes (a token bucket that
    deep): each oversleep was lost, and the link ran at 60-70% of its rate."""

    BURST = 1 << 16

    def __init__(self, port: int, rate: float) -> None:
        self.target, self.rate = port, rate
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for src, dst, rate in ((client, upstream, 0.0), (upstream, client, self.rate)):
                threading.Thread(target=self._pump, args=(src, dst, rate), daemon=True).start()

    @classmethod
    def _pump(cls, src: socket.socket, dst: socket.socket, rate: float) -> None:
        free_at = time.perf_counter()  # when the link can take the next bytes
        try:
            while data := src.recv(1 << 16):
                if rate:
                    free_at = max(free_at, time.perf_counter() - cls.BURST / rate)
                    free_at += len(data) / rate
                    time.sleep(max(0.0, free_at - time.perf_counter()))
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (dst, src):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.sock.close()


class LinkProcess:
    """A :class:`Link` in a child process (``--serve-link``); ``cpu()`` is its CPU time."""

    def __init__(self, port: int, rate: float) -> None:
        self.proc = subprocess.Popen(
            [python(), __file__, "--serve-link", str(port), str(rate)],
            stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())
        self.url = f"http://127.0.0.1:{self.port}"

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid)

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def _serve_link(port: int, rate: float) -> None:
    link = Link(port, rate)
    print(link.port, flush=True)
    threading.Event().wait()


def cpu_seconds(pid: int) -> float:
    """A process's CPU time (user and system, all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cached(s: requests.Session, b_url: str, name: str, requests_: int) -> None:
    """The shard index and a package, cached by the proxy, vs the same from a local channel."""
    for channel in ("proxy", "local"):  # warm both (the proxy fetches and stores)
        _get_times(s, [f"{b_url}/{channel}/noarch/repodata_shards.msgpack.zst",
                       f"{b_url}/{channel}/noarch/{name}"])
    for what, path in (("shard index", "noarch/repodata_shards.msgpack.zst"),
                       ("package", f"noarch/{name}")):
        proxy_t: list[float] = []
        local_t: list[float] = []
        for _ in range(requests_):  # interleaved
            proxy_t += _get_times(s, [f"{b_url}/proxy/{path}"])
            local_t += _get_times(s, [f"{b_url}/local/{path}"])
        p, lo = median(proxy_t), median(local_t)
        print(f"cached {what}: proxy {p * 1000:.2f} ms, local {lo * 1000:.2f} ms; "
              f"throughput proxy/local {lo / p:.2f}x (target >= 0.8x) [{load()}]", flush=True)


def _environ(path: str) -> dict[str, object]:
    import io

    return {"REQUEST_METHOD": "GET", "PATH_INFO": path, "SERVER_NAME": "bench",
            "SERVER_PORT": "80", "HTTP_HOST": "bench", "wsgi.url_scheme": "http",
            "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
            "wsgi.input": io.BytesIO()}


def _first_in_process(root: Path, channel: str, names: list[str]) -> None:
    """First fetches through ``channel`` (a passive mirror none of ``names`` went through)
    as WSGI calls in this process: the CPU time of the calling thread from the call to the
    answer's first byte, the proxy's fixed cost of a first fetch (routing, the view, the
    file's lock, the upstream request's set-up and its answer's parsing; the upstream's own
    work is another process's). CPU time, steadier than wall time on a shared machine."""
    from repoproxy_mirror.locks import FETCH_LOCK, range_lock

    from repoproxy.domain.core import load_core
    from repoproxy.web.app import make_app

    core = load_core({"repoproxy.root": str(root), "repoproxy.log_requests": "false"},
                     clean_env())
    app = make_app(core)
    took = []
    try:
        for name in names:
            status: list[str] = []
            start = time.thread_time()
            body = app(_environ(f"/{channel}/linux-64/{name}"),
                       lambda s, h, e=None, out=status: out.append(s))
            chunks = iter(body)
            next(chunks)
            took.append(time.thread_time() - start)
            for _ in chunks:
                pass
            getattr(body, "close", lambda: None)()
            if not status[0].startswith("200"):
                raise RuntimeError(f"{name}: {status[0]}")
        # the relays commit on helper threads after the answer: wait for every file's lock
        for lock in (root / "mirror" / "cache").rglob(f"linux-64/pkgs/{FETCH_LOCK}"):
            release = range_lock(lock, 0, 0, blocking=True)
            if release is not None:
                release()
    finally:
        core.close()
    took.sort()
    print(f"first fetch, in-process WSGI call (n={len(took)}): CPU of the request's thread "
          f"to the first byte, median {median(took) * 1e6:.0f} µs (quartiles "
          f"{took[len(took) // 4] * 1e6:.0f}-{took[3 * len(took) // 4] * 1e6:.0f} µs) "
          f"[{load()}]", flush=True)


def _cached_in_process(root: Path, name: str, rounds: int) -> None:
    """The same cached reads as WSGI calls in this process (server time only, no HTTP client:
    the proxy's own cost over a local channel's, steadier than the HTTP figures)."""

    from repoproxy.domain.core import load_core
    from repoproxy.web.app import make_app

    core = load_core({"repoproxy.root": str(root), "repoproxy.log_requests": "false"},
                     clean_env())
    app = make_app(core)

    def call(path: str) -> float:
        environ = _environ(path)
        status: list[str] = []
        start = time.perf_counter()
        body = app(environ, lambda s, h, e=None: status.append(s))
        for _ in body:
            pass
        getattr(body, "close", lambda: None)()
        took = time.perf_counter() - start
        if not status[0].startswith("200"):
            raise RuntimeError(f"{path}: {status[0]}")
        return took

    try:
        for what, path in (("shard index", "noarch/repodata_shards.msgpack.zst"),
                           ("package", f"noarch/{name}")):
            times: dict[str, list[float]] = {"proxy": [], "local": []}
            for _ in range(rounds):  # interleaved
                for channel in ("proxy", "local"):
                    times[channel].append(call(f"/{channel}/{path}"))
            p, lo = median(times["proxy"]), median(times["local"])
            print(f"cached {what}, in-process WSGI call: proxy {p * 1e6:.0f} µs, local "
                  f"{lo * 1e6:.0f} µs (+{(p - lo) * 1e6:.0f} µs); throughput proxy/local "
                  f"{lo / p:.2f}x [{load()}]", flush=True)
    finally:
        core.close()


def _first(s: requests.Session, a_url: str, b_url: str, mb: float, names: list[str],
           meters: dict[str, Callable[[], float]], channel: str = "proxy",
           where: str = "") -> None:
    """First fetch of uncached large packages: through the proxy vs straight from the
    upstream (``a_url``), in interleaved pairs (the order alternating). ``meters`` read the
    CPU seconds of each process taking part; their CPU per MB moved is printed for each path
    (this process's is the client's)."""
    via_proxy: list[float] = []
    direct: list[float] = []
    spent: dict[int, dict[str, float]] = {id(via_proxy): {}, id(direct): {}}
    meters = {**meters, "client": time.process_time}
    for i, name in enumerate(names):
        pair = [(via_proxy, f"{b_url}/{channel}/linux-64/{name}"),
                (direct, f"{a_url}/up/linux-64/{name}")]
        for out, url in (pair if i % 2 == 0 else pair[::-1]):
            before = {k: m() for k, m in meters.items()}
            out += _get_times(s, [url])
            for k, m in meters.items():
                spent[id(out)][k] = spent[id(out)].get(k, 0.0) + m() - before[k]
    vp, d = median(via_proxy), median(direct)
    moved = mb * len(names)

    def per_mb(out: list[float]) -> str:
        return ", ".join(f"{k} {v * 1000 / moved:.2f}" for k, v in spent[id(out)].items())

    print(f"first fetch of a {mb:g} MB package{where} (n={len(names)}): proxy "
          f"{vp * 1000:.1f} ms, "
          f"direct {d * 1000:.1f} ms; ratio {vp / d:.2f}x (target <= 1.2x; pairs "
          f"{', '.join(f'{x / y:.2f}' for x, y in zip(via_proxy, direct, strict=True))})"
          f" [{load()}]", flush=True)
    print(f"  CPU ms per MB, through the proxy: {per_mb(via_proxy)}; direct: "
          f"{per_mb(direct)}", flush=True)


def _active(work: Path, src: Path, a_url: str, b_url: str, admin: str, files: int,
            rounds: int, env: dict[str, str]) -> None:
    """An active mirror of the small files vs `repoproxy import` of the same files."""
    active_t: list[float] = []
    import_t: list[float] = []
    for r in range(rounds):
        channel = f"copy{r}"  # a fresh channel each round: every file is copied
        run([python(), "-m", "repoproxy", "channel", "create", channel, "--url",
             b_url, "--token", admin], env=env)
        start = time.perf_counter()
        run([python(), "-m", "repoproxy", "mirror", "--create", f"aa{r}", "--channel",
             channel, "--source", f"{a_url}/up", "--mode", "active", "--subdirs",
             "noarch", "--run_now", "--root", str(work / "b")], env=env)
        active_t.append(time.perf_counter() - start)
        start = time.perf_counter()
        run([python(), "-m", "repoproxy", "import", str(src), "--channel", "again",
             "--create", "--root", str(work / f"c{r}")], env=env)
        import_t.append(time.perf_counter() - start)
    act, imp = median(active_t), median(import_t)
    copied = requests.get(f"{b_url}/copy0/noarch/repodata.json", timeout=60).json()
    n = len(copied["packages"]) + len(copied["packages.conda"])
    print(f"active mirror of {files} files ({n} copied): {act:.1f}s "
          f"({files / act:.0f} files/s); repoproxy import {imp:.1f}s "
          f"({files / imp:.0f} files/s); time ratio "
          f"{fmt_ratio(act, imp, higher_is_better=False)} (medians of "
          f"{rounds}; rounds: active {', '.join(f'{x:.1f}' for x in active_t)}, "
          f"import {', '.join(f'{x:.1f}' for x in import_t)}) [{load()}]", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--files", type=int, default=5000, help="small upstream packages")
    ap.add_argument("--requests", type=int, default=300, help="cached reads per side")
    ap.add_argument("--first", type=int, default=10,
                    help="large packages fetched first, per size")
    ap.add_argument("--first-mb", default="1,8,32",
                    help="sizes of the large packages, MB, comma-separated")
    ap.add_argument("--rounds", type=int, default=1,
                    help="active-mirror/import alternations (each is one whole run)")
    ap.add_argument("--parts", default="cached,first,active",
                    help="which measurements to run (comma-separated)")
    ap.add_argument("--link-mb-per-s", type=float, default=100.0,
                    help="first fetches again behind a link of this many MB/s per connection "
                         "between the clients or the proxy and the upstream (0: not)")
    ap.add_argument("--serve-link", nargs=2, type=float, metavar=("PORT", "RATE"),
                    help=argparse.SUPPRESS)  # the Link's own process (LinkProcess)
    args = ap.parse_args()
    if args.serve_link:
        _serve_link(int(args.serve_link[0]), args.serve_link[1])
        return
    parts = set(args.parts.split(","))
    sizes = [float(x) for x in args.first_mb.split(",") if x.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        src, big = work / "pkgs", work / "big"
        src.mkdir()
        big.mkdir()
        t = time.perf_counter()
        files = build_many(src, args.files)
        rng = random.Random(0)
        large = {mb: [build_package(PackageSpec(
            f"large{mb:g}mb{i}".replace(".", "_"), subdir="linux-64",
            files={"data.bin": rng.randbytes(int(mb * 1024 * 1024))}), big)
            for i in range(args.first)] if "first" in parts else [] for mb in sizes}
        print(f"built {len(files)} + {sum(map(len, large.values()))} packages in "
              f"{time.perf_counter() - t:.1f}s", flush=True)
        env = clean_env()
        run([python(), "-m", "repoproxy", "import", str(src), "--channel", "up",
             "--create", "--root", str(work / "a")], env=env)
        run([python(), "-m", "repoproxy", "import", str(big), "--channel", "up",
             "--root", str(work / "a")], env=env)
        run([python(), "-m", "repoproxy", "import", str(src), "--channel", "local", "--create",
             "--root", str(work / "b")], env=env)
        # both imports queued SBOMs: built during the measurement, they would compete with
        # the upstream's and the proxy's answers (bench/_common.serving_env)
        a = RunningServer(work / "a", free_port(), work / "a.log", serving_env()).start()
        b = RunningServer(work / "b", free_port(), work / "b.log",
                          {**serving_env(), "REPOPROXY_MIRROR__INDEX_FRESHNESS": "3600"}).start()
        try:
            admin = b.token("--admin", "--name", "x")
            run([python(), "-m", "repoproxy", "channel", "create", "proxy", "--url", b.url,
                 "--token", admin], env=env)
            run([python(), "-m", "repoproxy", "mirror", "--create", "pa", "--channel", "proxy",
                 "--source", f"{a.url}/up", "--mode", "passive", "--root", str(work / "b")],
                env=env)
            s = requests.Session()
            if "cached" in parts:
                _cached(s, b.url, files[0].name, args.requests)
                _cached_in_process(work / "b", files[0].name, args.requests * 10)
            if "first" in parts:
                _get_times(s, [f"{b.url}/proxy/linux-64/repodata.json"])  # index cached first
                assert a.proc is not None
                assert b.proc is not None
                a_pid, b_pid = a.proc.pid, b.proc.pid
                meters = {"proxy": lambda: cpu_seconds(b_pid),
                          "upstream": lambda: cpu_seconds(a_pid)}
                for mb in sizes:
                    _first(s, a.url, b.url, mb, [p.name for p in large[mb]], meters)
                run([python(), "-m", "repoproxy", "channel", "create", "proxyin", "--url",
                     b.url, "--token", admin], env=env)
                run([python(), "-m", "repoproxy", "mirror", "--create", "pin", "--channel",
                     "proxyin", "--source", f"{a.url}/up", "--mode", "passive", "--root",
                     str(work / "b")], env=env)
                _get_times(s, [f"{b.url}/proxyin/linux-64/repodata.json"])
                _first_in_process(work / "b", "proxyin", [p.name for p in large[sizes[0]]])
            if "first" in parts and args.link_mb_per_s:
                link = LinkProcess(a.port, args.link_mb_per_s * 1e6)
                where = f" behind a {args.link_mb_per_s:g} MB/s link"
                try:
                    run([python(), "-m", "repoproxy", "channel", "create", "proxylink",
                         "--url", b.url, "--token", admin], env=env)
                    run([python(), "-m", "repoproxy", "mirror", "--create", "pl", "--channel",
                         "proxylink", "--source", f"{link.url}/up", "--mode", "passive",
                         "--root", str(work / "b")], env=env)
                    _get_times(s, [f"{b.url}/proxylink/linux-64/repodata.json"])
                    for mb in sizes:
                        _first(s, link.url, b.url, mb, [p.name for p in large[mb]],
                               {**meters, "link": link.cpu}, "proxylink", where)
                finally:
                    link.close()
            if "active" in parts:
                _active(work, src, a.url, b.url, admin, args.files, args.rounds, env)
        finally:
            b.stop()
            a.stop()


if __name__ == "__main__":
    main()
