"""Assign and unassign a policy on a channel of 5,000 files while a reader polls repodata.

    python bench/policy.py [--files 5000] [--repeat 5]

Builds the packages with ``build_many``, imports them with ``repoproxy import``, starts a real
``repoproxy serve``, then times ``assign`` and ``unassign`` of a policy that hides half the
names (the same code path as ``repoproxy policy --assign``, run in this process on the same
root). Meanwhile a reader thread polls ``GET /bench/noarch/repodata.json`` and checks that
every answer is exactly the unfiltered or exactly the filtered listing, never a mix.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).parent))
from _common import clean_env, median, python, run

from repoproxy.testing.fixtures import RunningServer, free_port
from repoproxy.testing.packages import build_many


class Reader(threading.Thread):
    def __init__(self, url: str, states: list[frozenset[str]]) -> None:
        super().__init__(daemon=True)
        self.url, self.states = url, states
        self.polls, self.bad, self.seen = 0, 0, [0] * len(states)
        self.stop = threading.Event()

    def run(self) -> None:
        with requests.Session() as session:
            while not self.stop.is_set():
                data = session.get(self.url, timeout=30).json()
                files = frozenset(data["packages"]) | frozenset(data["packages.conda"])
                self.polls += 1
                if files in self.states:
                    self.seen[self.states.index(files)] += 1
                else:
                    self.bad += 1


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    from repoproxy_policy import ops

    from repoproxy.domain.core import load_core

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        src = work / "pkgs"
        src.mkdir()
        t = time.perf_counter()
        paths = build_many(src, args.files)
        print(f"built {len(paths)} packages in {time.perf_counter() - t:.1f} s")
        root = work / "root"
        t = time.perf_counter()
        run([python(), "-m", "repoproxy", "import", str(src), "--channel", "bench", "--create",
             "--root", str(root)])
        print(f"imported in {time.perf_counter() - t:.1f} s")

        names = sorted({p.name.rsplit("-", 2)[0] for p in paths})
        hidden_names = set(names[: len(names) // 2])
        full = frozenset(p.name for p in paths)
        filtered = frozenset(p.name for p in paths if p.name.rsplit("-", 2)[0] not in hidden_names)

        srv = RunningServer(root, free_port(), work / "server.log", clean_env()).start()
        services = load_core({"repoproxy.root": str(root)}, clean_env())
        reader = Reader(f"{srv.url}/bench/noarch/repodata.json", [full, filtered])
        try:
            policy = ops.create(services, {"name": "half",
                                           "exclude_package_name": sorted(hidden_names)})
            reader.start()
            assign, unassign = [], []
            for _ in range(args.repeat):
                t = time.perf_counter()
                ops.assign(services, policy["id"], "bench")
                assign.append(time.perf_counter() - t)
                time.sleep(0.2)
                t = time.perf_counter()
                ops.unassign(services, policy["id"], "bench")
                unassign.append(time.perf_counter() - t)
                time.sleep(0.2)
        finally:
            reader.stop.set()
            reader.join(timeout=30)
            services.close()
            srv.stop()
    print(f"files: {args.files}; policy hides {len(full) - len(filtered)} of them")
    print(f"assign   median {median(assign):.3f} s  (runs: "
          + ", ".join(f"{x:.3f}" for x in assign) + ")")
    print(f"unassign median {median(unassign):.3f} s  (runs: "
          + ", ".join(f"{x:.3f}" for x in unassign) + ")")
    print(f"reader: {reader.polls} polls, {reader.seen[0]} unfiltered, {reader.seen[1]} "
          f"filtered, {reader.bad} half-filtered")
    if reader.bad:
        sys.exit(1)


if __name__ == "__main__":
    main()
