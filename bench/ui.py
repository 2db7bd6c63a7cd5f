"""UI page budget: server time of the home, channel and package pages of a 5,000-file channel.

    python bench/ui.py [--files 5000] [--rounds 30]

Builds a channel of ``--files`` small packages (five versions per name, over two subdirs),
then times the app's own handling of each page (the WSGI call, in this process: the server's
time without the network) ``--rounds`` times, anonymous and as the channel's owner, and prints
the median and the 90th percentile. The goal is a median under 100 ms for every page.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import clean_env, median

from repoproxy.testing.packages import PackageSpec, build_package

GOAL_MS = 100.0


def build(root: Path, src: Path, files: int) -> tuple[object, str]:
    from repoproxy.domain import channels, members, packages, users
    from repoproxy.domain.core import load_core

    core = load_core({"repoproxy.root": str(root), "repoproxy.log_requests": "false"},
                     clean_env())
    channels.create_channel(core, "big", "A channel of many files", "public")
    users.add_user(core, "owner", "a password for the bench")
    members.add_member(core, "big", "owner", "owner")
    paths = []
    for i in range(files):
        subdir = "noarch" if i % 2 else "linux-64"
        paths.append(build_package(PackageSpec(f"pkg{i // 10}", f"1.{(i // 2) % 5}",
                                               build=f"b{i % 2}", subdir=subdir,
                                               depends=[f"pkg{(i // 10 + 1)}"]), src))
    started = time.perf_counter()
    result = packages.import_files(core, "big", [(p, None) for p in paths])
    print(f"imported {len(result.added)} files in {time.perf_counter() - started:.1f} s")
    return core, "pkg7"


def measure(app: object, url: str, rounds: int, cookie: str | None = None) -> list[float]:
    from webtest import TestApp

    client = TestApp(app)
    headers = {"Accept": "text/html"}
    if cookie:
        client.set_cookie("repoproxy_session", cookie)
    client.get(url, headers=headers, status=200)  # warm: templates compiled, caches filled
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        client.get(url, headers=headers, status=200)
        times.append((time.perf_counter() - started) * 1000)
    return times


def sign_in(app: object) -> str:
    from bs4 import BeautifulSoup
    from webtest import TestApp

    client = TestApp(app)
    page = client.get("/ui/login")
    token = BeautifulSoup(page.text, "html.parser").find("input", attrs={"name": "csrf_token"})
    assert token is not None
    client.post("/ui/login", {"username": "owner", "password": "a password for the bench",
                              "csrf_token": token["value"]}, status=303)
    return str(client.cookies["repoproxy_session"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    from repoproxy.web.app import make_app

    with tempfile.TemporaryDirectory() as tmp:
        core, name = build(Path(tmp) / "root", Path(tmp) / "src", args.files)
        app = make_app(core)  # type: ignore[arg-type]
        cookie = sign_in(app)
        pages = [("home", "/ui/"), ("channel", "/ui/channels/big/"),
                 ("channel, filtered", "/ui/channels/big/?q=pkg4"),
                 ("package overview", f"/ui/channels/big/packages/{name}/"),
                 ("package files", f"/ui/channels/big/packages/{name}/files"),
                 ("package dependencies", f"/ui/channels/big/packages/{name}/dependencies")]
        print(f"{'page':<22} {'who':<10} {'median ms':>10} {'p90 ms':>8}  goal {GOAL_MS:.0f} ms")
        worst = 0.0
        for label, url in pages:
            for who, session in (("anonymous", None), ("owner", cookie)):
                times = measure(app, url, args.rounds, session)
                med = median(times)
                p90 = statistics.quantiles(times, n=10)[-1]
                worst = max(worst, med)
                print(f"{label:<22} {who:<10} {med:>10.1f} {p90:>8.1f}  "
                      f"{'ok' if med < GOAL_MS else 'OVER'}")
        print(f"worst median: {worst:.1f} ms ({'within' if worst < GOAL_MS else 'over'} "
              f"the {GOAL_MS:.0f} ms goal)")
        core.close()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
