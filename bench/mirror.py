"""Mirrors: a passive mirror's cached reads vs the same files from a local channel, a first
(uncached) package fetch through the proxy vs directly from the upstream, and an active
mirror's run vs `repoproxy import` of the same files. One run, medians and ratios.

Upstream A is a real `repoproxy serve` holding ``--files`` generated packages; B is a second
server with a local channel (the same files imported) and a passive mirror of A.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import clean_env, fmt_ratio, median, python, run

from repoproxy.testing.packages import build_many
from repoproxy.testing.server import RunningServer, free_port


def _get_times(session: requests.Session, urls: list[str]) -> list[float]:
    out = []
    for url in urls:
        start = time.perf_counter()
        r = session.get(url, timeout=60)
        out.append(time.perf_counter() - start)
        r.raise_for_status()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--first", type=int, default=50, help="uncached packages fetched")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        src = work / "pkgs"
        src.mkdir()
        files = build_many(src, args.files)
        env = clean_env()
        run([python(), "-m", "repoproxy", "import", str(src), "--channel", "up", "--create",
             "--root", str(work / "a")], env=env)
        run([python(), "-m", "repoproxy", "import", str(src), "--channel", "local", "--create",
             "--root", str(work / "b")], env=env)
        a = RunningServer(work / "a", free_port(), work / "a.log", env).start()
        b = RunningServer(work / "b", free_port(), work / "b.log",
                          {**env, "REPOPROXY_MIRROR__INDEX_FRESHNESS": "3600"}).start()
        try:
            run([python(), "-m", "repoproxy", "channel", "create", "proxy", "--url", b.url,
                 "--token", b.token("--admin", "--name", "x")], env=env)
            run([python(), "-m", "repoproxy", "mirror", "--create", "pa", "--channel", "proxy",
                 "--source", f"{a.url}/up", "--mode", "passive", "--root", str(work / "b")],
                env=env)
            s = requests.Session()
            names = [p.name for p in files]
            # 1. cached reads: the shard index and one package, proxy vs local channel
            for channel in ("proxy", "local"):  # warm both (the proxy fetches and stores)
                _get_times(s, [f"{b.url}/{channel}/noarch/repodata_shards.msgpack.zst",
                               f"{b.url}/{channel}/noarch/{names[0]}"])
            for what, path in (("shard index", "noarch/repodata_shards.msgpack.zst"),
                               ("package", f"noarch/{names[0]}")):
                proxy = median(_get_times(s, [f"{b.url}/proxy/{path}"] * args.requests))
                local = median(_get_times(s, [f"{b.url}/local/{path}"] * args.requests))
                print(f"cached {what}: proxy {proxy * 1000:.2f} ms, local {local * 1000:.2f} ms;"
                      f" throughput proxy/local {local / proxy:.2f}x "
                      f"(target >= 0.8x)")
            # 2. first fetch of an uncached package: proxy vs straight from the upstream
            picks = names[1:1 + 2 * args.first]
            via_proxy = median(_get_times(s, [f"{b.url}/proxy/noarch/{n}"
                                              for n in picks[::2]]))
            direct = median(_get_times(s, [f"{a.url}/up/noarch/{n}" for n in picks[1::2]]))
            print(f"first fetch: proxy {via_proxy * 1000:.2f} ms, direct {direct * 1000:.2f} ms;"
                  f" ratio {via_proxy / direct:.2f}x (target <= 1.2x)")
            # 3. an active mirror of every file vs `repoproxy import` of the same files
            run([python(), "-m", "repoproxy", "channel", "create", "copy", "--url", b.url,
                 "--token", b.token("--admin", "--name", "y")], env=env)
            start = time.perf_counter()
            run([python(), "-m", "repoproxy", "mirror", "--create", "aa", "--channel", "copy",
                 "--source", f"{a.url}/up", "--mode", "active", "--subdirs", "noarch",
                 "--run_now", "--root", str(work / "b")], env=env)
            active = time.perf_counter() - start
            start = time.perf_counter()
            run([python(), "-m", "repoproxy", "import", str(src), "--channel", "again",
                 "--create", "--root", str(work / "c")], env=env)
            imported = time.perf_counter() - start
            print(f"active mirror of {args.files} files: {active:.2f}s "
                  f"({args.files / active:.0f} files/s); repoproxy import {imported:.2f}s; "
                  f"ratio {fmt_ratio(active, imported, higher_is_better=False)}")
        finally:
            b.stop()
            a.stop()


if __name__ == "__main__":
    main()
