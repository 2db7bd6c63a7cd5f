"""No timing oracle: a channel the caller may not read costs what an absent one costs.

Hardening finding 8: a hidden channel answered 50-90 µs slower than an absent one, which let a
caller learn that it exists. Here, for several read routes, requests to a hidden channel and to
an absent one are interleaved in pairs (random order within each pair, so drifts of the
machine's load hit both alike) through the WSGI app as a signed-in non-member, and the paired
differences go through an exact two-sided sign test at a strict level. A difference counts only
if it is both significant and of a size that matters (a median above 10 µs; the finding was
50-90 µs, main before this test still 15-25 µs): a consistent shift of a microsecond or two
(a cache line, an interned string) is real, detectable with enough pairs, and no oracle over a
network.

The detector is shown to have the power the finding needs: the same test, with 100 µs of work
added to the hidden channel's path only (the finding's size), must flag it. No wall-clock
threshold is asserted: only that the two populations cannot be told apart.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from repoproxy.testing.fixtures import make_token, upload_raw
from repoproxy.testing.packages import PackageSpec, build_package
from repoproxy.web.resources import ChannelResource

PAIRS = 200
WARMUP = 20
#: p-values below this say "the two paths differ"; strict, so that a fair test run on a busy
#: machine does not fail by chance (1 in 10^4 per route)
ALPHA = 1e-4
#: the smallest median difference that counts (seconds); fixed code measures within ±6 µs
TOLERANCE = 10e-6
ROUTES = [
    "/{ch}/noarch/repodata.json",
    "/api/v1/channels/{ch}",
    "/api/channels/{ch}/artifacts/conda/lib",
    "/api/channels/{ch}/artifacts/conda/lib/files",
    "/api/channels/{ch}/badges/lib/version.svg",
    "/api/channels/{ch}/sbom/noarch",
]


def sign_test(diffs: list[float]) -> float:
    """Exact two-sided sign test of "the median difference is zero" (ties dropped)."""
    pos = sum(d > 0 for d in diffs)
    n = pos + sum(d < 0 for d in diffs)
    k = min(pos, n - pos)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def differs(diffs: list[float]) -> bool:
    """Significantly and materially different."""
    return sign_test(diffs) < ALPHA and abs(median(diffs)) > TOLERANCE


def paired_diffs(get: Callable[[str], Any], hidden: str, absent: str, pairs: int = PAIRS,
                 seed: int = 8) -> list[float]:
    """t(hidden) - t(absent) for interleaved pairs, in seconds."""
    rng = random.Random(seed)
    for _ in range(WARMUP):
        get(hidden)
        get(absent)
    diffs = []
    for _ in range(pairs):
        times = {}
        for url in rng.sample([hidden, absent], 2):
            start = time.perf_counter()
            get(url)
            times[url] = time.perf_counter() - start
        diffs.append(times[hidden] - times[absent])
    return diffs


@pytest.fixture
def setup(testapp: Any, make_channel: Any, admin_headers: dict[str, str], pkgdir: Path,
          services: Any) -> Callable[[str], Any]:
    make_channel("pub")
    make_channel("secret", privacy="private")
    path = build_package(PackageSpec("lib", "1.0"), pkgdir)
    for ch in ("pub", "secret"):
        upload_raw(testapp, ch, path, admin_headers)
    headers = {"Authorization": f"Bearer {make_token(services, 'outsider', channels=['pub'])}"}

    def get(url: str) -> Any:
        return testapp.get(url, headers=headers, status=404)

    return get


@pytest.mark.slow
@pytest.mark.parametrize("route", ROUTES)
def test_a_hidden_channel_costs_what_an_absent_one_costs(route: str, setup: Any) -> None:
    # names of one length: the path's length is not what is compared
    hidden, absent = route.format(ch="secret"), route.format(ch="absent")
    assert setup(hidden).body == setup(absent).body
    diffs = paired_diffs(setup, hidden, absent)
    assert not differs(diffs), (
        f"{route}: a hidden channel answers {median(diffs) * 1e6:+.0f} µs (median) after an "
        f"absent one (sign test p={sign_test(diffs):.2g})")


@pytest.mark.slow
def test_the_detector_flags_100_microseconds_on_the_hidden_path(
        setup: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The finding's size of difference (work done for existing channels only) is caught."""
    acl = ChannelResource.__acl__

    def slower_for_existing_channels(self: ChannelResource) -> Any:
        if self.exists:
            time.sleep(0.0001)
        return acl.fget(self)  # type: ignore[attr-defined]

    monkeypatch.setattr(ChannelResource, "__acl__", property(slower_for_existing_channels))
    route = ROUTES[2]
    diffs = paired_diffs(setup, route.format(ch="secret"), route.format(ch="absent"))
    assert differs(diffs)


def test_sign_test() -> None:
    assert sign_test([1.0] * 20) == pytest.approx(2 / 2**20)
    assert sign_test([1.0, -1.0] * 50) == 1.0
    assert sign_test([0.0, 1.0, -1.0]) == 1.0  # ties carry no information
    assert differs([100e-6] * 30)
    assert not differs([2e-6] * 30)  # significant, but too small to matter
    assert not differs([100e-6, -100e-6] * 15)
